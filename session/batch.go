package session

// Batching: the frames of every ready command gathered into one vectored
// write, and the completions that the write settles.

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/internal/bufpool"
)

// record is a frame in the current batch and, for a user command, the
// completion it owes.
type record struct {
	kind     Kind // 0 for the session's own frames (pongs, keep-alive pings, close frames)
	op       ws.OpCode
	release  bool    // p is a pooled buffer to give back after the write
	admitted bool    // counted by admit
	close    bool    // our close frame
	fin      bool    // a stream frame: the message's last
	rsv1     bool    // a stream frame: the first of a compressed message
	ref      *msgRef // with release: the hold of the message whose payload p is
	gen      uint32  // ref's generation, ours
	stream   uint64  // a MessageWriter's frame: its message; 0 otherwise
	z        []byte  // p compressed (pooled), when that pays
	id       uint64
	end      int64 // the batch length once this frame was added
	p        []byte
	pm       *PreparedMessage
	cast     *cast // a cast's broadcast; the last of a command's holds its reference
	bytes    int64 // a cast command's payload bytes, on its last record
	encoded  bool  // p is whole encoded frames (a cast's slab)
	reply    chan<- Completion
}

// scratch is what a drain needs to write: taken from a pool when the first
// frame of a drain is queued and given back after the write, so that an
// idle session holds no buffer.
type scratch struct {
	batch codec.Batch
	recs  []record
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// copyBelow is the Batch.CopyBelow of sessions (docs/decisions.md).
var copyBelow = 1024

func (s *Session) acquire() *scratch {
	if s.scratch == nil {
		sc := scratchPool.Get().(*scratch)
		sc.batch.Role = s.role
		sc.batch.CopyBelow = copyBelow
		s.scratch = sc
	}
	return s.scratch
}

// queue adds a frame to the current batch, writing the batch first when it
// has grown to the coalescing limit.
func (s *Session) queue(r record) {
	sc := s.acquire()
	switch {
	case r.encoded:
		sc.batch.AddEncoded(r.p)
	case r.stream != 0:
		var rsv byte
		if r.rsv1 {
			rsv = codec.RSV1
		}
		sc.batch.Add(r.fin, r.op, rsv, r.p)
	case r.pm != nil:
		r.pm.frame(s).AddTo(&sc.batch)
	case r.op == ws.OpText || r.op == ws.OpBinary:
		if s.deflate && r.z == nil && len(r.p) >= s.opts.Compression.threshold() {
			if z := codec.Compress(r.p, s.opts.Compression.level()); len(z) < len(r.p) {
				r.z = z
			} else {
				bufpool.Put(z)
			}
		}
		if r.z != nil {
			sc.batch.AddCompressed(r.op, r.z, s.opts.FragmentSize)
		} else {
			sc.batch.AddMessage(r.op, r.p, s.opts.FragmentSize)
		}
	default:
		sc.batch.Add(true, r.op, 0, r.p)
	}
	r.end = sc.batch.Len()
	sc.recs = append(sc.recs, r)
	if r.end >= s.opts.writeCoalesce() || sc.batch.Segments() >= 1000 {
		s.flush()
	}
}

// flush writes the current batch with one vectored write and completes its
// commands.
func (s *Session) flush() {
	sc := s.scratch
	if sc == nil {
		return
	}
	s.scratch = nil
	var n int64
	var err error
	if s.state == stateDone {
		err = s.endErr()
	} else {
		// The write timeout bounds a write that makes no progress: a peer
		// that reads, however slowly, is not cut in the middle of a large
		// message; one that stops reading is, after the timeout.
		d := s.opts.writeTimeout(s.role)
		total := sc.batch.Len()
		for {
			if d > 0 {
				s.conn.SetWriteDeadline(time.Now().Add(d))
			}
			var k int64
			k, err = sc.batch.WriteFrom(s.conn, n)
			n += k
			if st, ok := s.conn.(*streamConn); ok && err == nil {
				err = st.Flush() // an HTTP/2 stream sends a batch as a whole
			}
			if err == nil || k == 0 || n >= total || !errors.Is(err, os.ErrDeadlineExceeded) || s.is(flagTerminal) {
				break
			}
		}
		switch {
		case err == nil:
		case s.is(flagTerminal):
			err = ErrCanceled
		case errors.Is(err, os.ErrDeadlineExceeded):
			err = fmt.Errorf("%w (%v)", ErrWriteTimeout, s.opts.writeTimeout(s.role))
		default:
			err = fmt.Errorf("session: write: %w", err)
		}
	}
	closeWritten := false
	recs, done := sc.recs, -1 // a panic in one record's completion must not lose the rest
	defer func() {
		if done >= 0 && done < len(recs) {
			s.completeRest(recs[done+1:], err)
		}
	}()
	for i := range sc.recs {
		done = i
		r := &sc.recs[i]
		e := err
		if e != nil && n >= r.end {
			e = nil
		}
		if r.close && e == nil {
			closeWritten = true
		}
		if r.stream != 0 && r.stream == s.stream && e == nil {
			s.streamWritten = true
		}
		s.completeRec(r, e)
		sc.recs[i] = record{}
	}
	done = -1
	sc.recs = sc.recs[:0]
	sc.batch.Reset()
	scratchPool.Put(sc)
	if err != nil {
		s.abrupt = true // part of a frame may be out: no teardown to wait for
		s.finish(err)
		return
	}
	if closeWritten && s.state == statePeerClose && s.role == codec.Server {
		// The server closes TCP first, as soon as both close frames are
		// through (RFC 6455 section 7.1.1).
		s.finish(s.peerClose())
	}
}

// completeRest answers the records after one whose completion panicked
// (the actor contains the panic and ends the session), so that each command
// still gets its one completion.
func (s *Session) completeRest(recs []record, err error) {
	if err == nil {
		err = fmt.Errorf("session: a completion panicked: %w", ErrCanceled)
	}
	for i := range recs {
		func() {
			defer func() { recover() }()
			s.completeRec(&recs[i], err)
		}()
	}
}

// completeRec answers a record's command, or gives back a session frame's
// buffer.
func (s *Session) completeRec(r *record, err error) {
	if r.z != nil {
		bufpool.Put(r.z)
		r.z = nil
	}
	if r.kind == 0 {
		if r.release && r.p != nil {
			bufpool.Put(r.p)
		}
		return
	}
	if r.cast != nil {
		// A group's broadcast: no completion; the command's last record
		// settles it (onCast).
		if r.admitted {
			r.admitted = false
			s.outstanding.Add(-1)
			s.pendingBytes.Add(-r.bytes)
			r.cast.release()
		}
		return
	}
	n, p := r.settle(err)
	if r.admitted {
		r.admitted = false
		s.outstanding.Add(-1)
		if r.pm != nil {
			s.pendingBytes.Add(-int64(len(r.pm.plain.Payload())))
		} else if len(r.p) > 0 {
			s.pendingBytes.Add(-int64(len(r.p)))
		}
	}
	if r.pm != nil {
		r.pm.release()
	}
	if r.kind == KindCancel {
		s.cancels.Add(-1)
	}
	if len(s.canceled) > 0 {
		s.takeCanceled(r.id)
	}
	if r.reply != nil {
		s.out.Deliver(r.reply, Completion{Session: s, Kind: r.kind, ID: r.id, N: n, Err: err, Payload: p})
	}
}

// settle gives back what a user command's record holds but its prepared
// message (the caller releases that), and returns the byte count and the
// payload its completion reports.
func (r *record) settle(err error) (int, []byte) {
	n := len(r.p)
	if r.pm != nil {
		n = len(r.pm.plain.Payload())
	}
	if err != nil {
		n = 0
	}
	p := r.p
	if r.release {
		switch {
		case r.ref != nil:
			r.ref.release(r.gen) // a Message's buffer
		case r.stream != 0 && cap(p) > 0:
			bufpool.Put(p[:0]) // a MessageWriter's frame buffer
		}
		p = nil
	}
	return n, p
}

func (s *Session) completeCmd(c *cmd, err error) {
	r := c.record()
	s.completeRec(&r, err)
}

// unqueue removes from the current batch (not yet written) every record
// for which drop reports true, rebuilding the batch from the others.
func (s *Session) unqueue(drop func(*record) bool) {
	sc := s.scratch
	if sc == nil {
		return
	}
	s.scratch = nil
	keep := make([]record, 0, len(sc.recs))
	for i := range sc.recs {
		r := sc.recs[i]
		if drop(&r) {
			continue
		}
		keep = append(keep, r)
	}
	clear(sc.recs)
	sc.recs = sc.recs[:0]
	sc.batch.Reset()
	scratchPool.Put(sc)
	for _, r := range keep {
		s.queue(r)
	}
}
