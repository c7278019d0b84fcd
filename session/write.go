package session

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/actor"
	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/internal/bufpool"
)

// behavior is the Session seen by its actor: the methods below run on the
// actor goroutine only, which owns the state they touch.
type behavior Session

func (b *behavior) Receive(c cmd) { (*Session)(b).receive(c) }
func (b *behavior) Flush()        { (*Session)(b).flush() }
func (b *behavior) Panicked(err error) {
	(*Session)(b).fail(fmt.Errorf("session: %w", err), codec.CloseInternalError, false)
}

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
	rb       *msgBuf // with release: the message buffer p lies in
	gen      uint32  // rb's generation
	stream   uint64  // a MessageWriter's frame: its message; 0 otherwise
	z        []byte  // p compressed (pooled), when that pays
	id       uint64
	end      int64 // the batch length once this frame was added
	p        []byte
	pm       *PreparedMessage
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

func (s *Session) receive(c cmd) {
	switch c.kind {
	case cmdFrame:
		s.onFrame(&c)
	case cmdCutStream:
		s.onCutStream(&c)
	case cmdWrite, cmdPrepared, cmdPing:
		if err := s.refusal(); err != nil {
			s.completeCmd(&c, err)
			return
		}
		if c.kind == cmdPing && len(c.p) > ws.MaxControlFramePayloadSize {
			s.completeCmd(&c, ErrControlTooLong)
			return
		}
		if c.kind == cmdWrite && c.op != ws.OpText && c.op != ws.OpBinary {
			s.completeCmd(&c, fmt.Errorf("session: write: invalid message type %d: use Text or Binary", c.op))
			return
		}
		if len(s.canceled) > 0 && s.takeCanceled(c.id) {
			s.completeCmd(&c, ErrCanceled)
			return
		}
		if s.stream != 0 && c.kind != cmdPing {
			s.hold(c) // a streamed message is under way
			return
		}
		s.queue(c.record())
	case cmdClose:
		s.clear(flagCloseQueued)
		s.onClose(&c)
	case cmdCancel:
		s.onCancel(&c)
	case cmdCancelID:
		s.onCancelID(c.id)
	case cmdForgetID:
		if len(s.canceled) > 0 {
			s.takeCanceled(c.id)
		}
	case cmdPong:
		s.pong(c.p)
		if s.pongs.Add(-1) == 0 {
			// Pings that came while too many pongs waited: answer the
			// latest (RFC 6455 section 5.5.3 allows answering only it).
			s.pongMu.Lock()
			p := s.latestPing
			s.latestPing = nil
			s.pongMu.Unlock()
			if p != nil {
				s.pong(p)
			}
		}
	case cmdPeerClose:
		s.onPeerClose(&CloseError{Code: c.code, Reason: c.reason})
	case cmdProtocolError:
		var pe *codec.ProtocolError
		code := codec.CloseProtocolError
		if errors.As(c.err, &pe) {
			code = pe.Code
		}
		s.fail(fmt.Errorf("session: read: %w", c.err), code, true)
	case cmdReadError:
		s.onReadError(c.err)
	case cmdReaderPanic:
		s.fail(c.err, codec.CloseInternalError, true)
	case cmdKeepalive:
		if s.state == stateOpen {
			s.queue(record{op: ws.OpPing})
		}
	case cmdMessageTimeout:
		if d := s.msgDue.Load(); d != 0 && time.Now().UnixNano() >= d {
			s.fail(fmt.Errorf("%w (%v, then %d bytes per second)", ErrMessageTimeout,
				s.opts.messageTimeout(s.role), s.opts.messageMinRate()), codec.ClosePolicyViolation, true)
		}
	case cmdIdleTimeout:
		s.fail(ErrIdleTimeout, codec.CloseGoingAway, true)
	case cmdCloseTimeout:
		if s.state != stateDone {
			s.finish(ErrCloseTimeout)
		}
	}
}

// pong queues a pong with payload p, a pooled buffer, while the session
// may still send one.
func (s *Session) pong(p []byte) {
	if s.state == stateOpen {
		s.queue(record{op: ws.OpPong, p: p, release: true})
	} else {
		bufpool.Put(p)
	}
}

// refusal returns why a new write or ping cannot be accepted now, or nil.
func (s *Session) refusal() error {
	switch s.state {
	case stateOpen:
		return nil
	case stateClosing:
		return ErrClosing
	case statePeerClose:
		if pc := s.peerClose(); pc != nil {
			return pc
		}
		return ErrClosing
	}
	return s.mb.Err()
}

// queue adds a frame to the current batch, writing the batch first when it
// has grown to the coalescing limit.
func (s *Session) queue(r record) {
	sc := s.acquire()
	switch {
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
		err = s.mb.Err()
	} else {
		if d := s.opts.writeTimeout(s.role); d > 0 {
			s.conn.SetWriteDeadline(time.Now().Add(d))
		}
		n, err = sc.batch.WriteTo(s.conn)
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
	for i := range sc.recs {
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
		case r.rb != nil:
			r.rb.release(r.gen) // a Message's buffer
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

func (s *Session) completeClose(err error) {
	hs := s.hs
	if hs == nil || hs.reply.Delivered() || hs.id == 0 {
		return
	}
	hs.reply.Deliver(&s.out, Completion{Session: s, Kind: KindClose, ID: hs.id, Err: err})
}

func (s *Session) onClose(c *cmd) {
	if err := codec.CheckCloseReason(c.code, c.reason); err != nil {
		if len(c.reason) > codec.MaxCloseReason {
			s.completeCmd(c, ErrControlTooLong)
		} else {
			s.completeCmd(c, fmt.Errorf("%w: %v", ErrBadCloseCode, err))
		}
		return
	}
	if err := s.refusal(); err != nil {
		s.completeCmd(c, err)
		return
	}
	s.state = stateClosing
	hs := s.handshake()
	hs.id = c.id
	hs.reply = newReply(c.reply)
	hs.ours = &CloseError{Code: c.code, Reason: c.reason, Local: true}
	s.queueClose(c.code, c.reason)
	// Writes held behind a streamed message cannot go before the close
	// frame without the rest of that message.
	s.dropHeld(ErrClosing)
}

// closeState is the closing handshake's state, made when the handshake
// begins (our Close, the peer's close frame, a failure): an open session
// does not carry it.
type closeState struct {
	reply actor.Reply[Completion] // our Close's
	id    uint64                  // our Close's; 0 when the peer started
	peer  error                   // the peer's *CloseError once its close frame came
	ours  *CloseError             // what our Close sent
	timer *time.Timer             // the close timeout's
}

// handshake returns the closing handshake's state, made on first use.
func (s *Session) handshake() *closeState {
	if s.hs == nil {
		s.hs = new(closeState)
	}
	return s.hs
}

// peerClose returns the peer's *CloseError once its close frame came, or
// nil.
func (s *Session) peerClose() error {
	if s.hs == nil {
		return nil
	}
	return s.hs.peer
}

// queueClose queues our close frame and starts the close timer.
func (s *Session) queueClose(code codec.CloseCode, reason string) {
	p := codec.AppendClosePayload(bufpool.Get(ws.MaxControlFramePayloadSize)[:0], code, reason)
	s.set(flagCloseSent)
	if s.closing != nil {
		select {
		case <-s.closing: // a Close that Cancel(Total) withdrew closed it
		default:
			close(s.closing) // wakes a reader waiting on a full Messages
		}
	}
	s.startCloseTimer()
	s.queue(record{op: ws.OpClose, p: p, release: true, close: true})
}

func (s *Session) startCloseTimer() {
	if hs := s.handshake(); hs.timer == nil {
		hs.timer = time.AfterFunc(s.opts.closeTimeout(), s.closeTimeout)
	}
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

// cancelPending completes with err every user command that has not begun
// to write: those in the current batch and those still in the mailbox. A
// close frame of ours that has not been written is withdrawn too when
// withdrawClose is set.
//
// With keepStream, a MessageWriter's message that has a frame on the wire
// has begun and goes on: its frames are kept. Otherwise a message under way
// is canceled with the rest.
func (s *Session) cancelPending(err error, withdrawClose, keepStream bool) {
	keep := keepStream && s.stream != 0 && s.streamWritten
	if !keep {
		s.stream, s.streamWritten = 0, false
	}
	s.unqueue(func(r *record) bool {
		if r.close && withdrawClose {
			bufpool.Put(r.p)
			s.clear(flagCloseSent)
			return true
		}
		if r.kind == 0 || keepStream && r.stream != 0 && r.op == ws.OpContinuation {
			// A later frame of a streamed message has begun: the frames
			// before it are on the wire (it may be the last, the message
			// already ended in the books).
			return false
		}
		s.completeRec(r, err)
		return true
	})
	s.dropHeld(err)
	s.mb.Drain(func(c cmd) {
		if keep && c.kind == cmdFrame && c.stream == s.stream {
			s.receive(c)
			return
		}
		s.completeCmd(&c, err)
	})
}

func (s *Session) onCancel(c *cmd) {
	if s.state == stateDone {
		err := s.mb.Err()
		if c.cancel == Terminal && errors.Is(err, ErrCanceled) {
			// The session ended as this Cancel asks: an in-flight write or
			// the reader saw the socket it closed before it came here.
			err = nil
		}
		s.completeCmd(c, err)
		return
	}
	if c.cancel == Terminal {
		s.finish(ErrCanceled)
		s.completeCmd(c, nil)
		return
	}
	if c.cancel != Total {
		s.completeCmd(c, fmt.Errorf("session: cancel: invalid kind %d", c.cancel))
		return
	}
	closeQueued := false
	if s.scratch != nil {
		closeQueued = slices.ContainsFunc(s.scratch.recs, func(r record) bool { return r.close })
	}
	// After a message cut short on the wire, the close frame that follows
	// is the only way to end it: Total may not withdraw it.
	withdraw := !s.cut
	s.cancelPending(ErrCanceled, withdraw, true)
	if withdraw && s.state == stateClosing && closeQueued {
		// Our Close had not begun: it is canceled, and the session is open
		// again. Once its frame is written it is no longer Total's to
		// cancel: the handshake goes on and completes it.
		s.completeClose(ErrCanceled)
		s.state = stateOpen
		// The session is open again, with no handshake under way.
		if s.hs.timer != nil {
			s.hs.timer.Stop()
		}
		s.hs = nil
	}
	s.completeCmd(c, nil)
}

func (s *Session) onCancelID(id uint64) {
	found := false
	s.unqueue(func(r *record) bool {
		if r.kind != 0 && r.id == id {
			found = true
			s.completeRec(r, ErrCanceled)
			return true
		}
		return false
	})
	if !found && s.state != stateDone {
		s.canceled = append(s.canceled, id)
	}
}

func (s *Session) takeCanceled(id uint64) bool {
	i := slices.Index(s.canceled, id)
	if i < 0 {
		return false
	}
	s.canceled = slices.Delete(s.canceled, i, i+1)
	return true
}

// onPeerClose handles the peer's close frame.
func (s *Session) onPeerClose(ce *CloseError) {
	switch s.state {
	case stateOpen:
		// The peer starts the handshake. What was accepted before it came
		// goes out first (RFC 6455 section 5.5.1 lets an endpoint finish
		// what it is sending; a handler's answers to the messages that
		// preceded the close are not lost), then our close frame, echoing
		// the peer's code unless a Close of ours came first.
		s.mb.Drain(func(c cmd) { s.receive(c) })
		if s.state == stateOpen {
			code := ce.Code
			if code == codec.CloseNoStatusReceived {
				code = 0
			}
			s.queueClose(code, "")
		}
		if s.state == stateDone {
			return
		}
		s.handshake().peer = ce
		s.state = statePeerClose
		s.flush()
	case stateClosing:
		s.handshake().peer = ce
		s.state = statePeerClose
		s.flush() // our close frame, if still queued
		if s.state == statePeerClose && s.role == codec.Server {
			s.finish(ce)
		}
	}
	// A client waits for the server to close TCP: the reader reports the
	// end of the stream, or the close timer fires.
}

func (s *Session) onReadError(err error) {
	switch {
	case s.state == stateDone:
	case s.is(flagTerminal):
		// Cancel(Terminal) closed the socket; its command may still be on
		// its way to the actor.
		s.finish(ErrCanceled)
	case s.is(flagTimedOut):
		s.finish(ErrCloseTimeout)
	case s.state == statePeerClose:
		// The client's wait for the server's FIN is over.
		s.finish(s.peerClose())
	default:
		err = fmt.Errorf("session: connection lost without a close frame (1006): %w", err)
		s.cancelPending(err, true, false)
		s.finish(err)
	}
}

// fail fails the connection with err and a close frame with code. With
// answer, the commands accepted before the failure go out first, as they
// do before the close frame that answers the peer's (the answers to the
// messages that came before a bad frame are not lost); the rest of what has
// not begun is not sent. Then our close frame goes out, unless ours already
// did, and the connection is torn down.
func (s *Session) fail(err error, code codec.CloseCode, answer bool) {
	if s.state == stateDone {
		return
	}
	if answer && s.state == stateOpen {
		s.mb.Drain(func(c cmd) { s.receive(c) })
		if s.state == stateDone {
			return
		}
	}
	if CloseCode(err) != code && !s.is(flagCloseSent) {
		err = &CloseError{Code: code, Local: true, err: err}
	}
	s.cancelPending(err, false, false)
	if !s.is(flagCloseSent) {
		s.queueClose(code, "")
	}
	s.flush()
	s.finish(err)
}

// finish ends the session with err: the connection is closed, the timers
// stopped, and every command still waiting completes with err. A pending
// Close completes here, after Done, so that its caller finds Err set: with
// nil when err is the peer's close frame (the handshake is done).
func (s *Session) finish(err error) {
	if s.state == stateDone {
		return
	}
	clean := err != nil && err == s.peerClose() // the handshake is done
	if clean && s.hs.ours != nil {
		err = s.hs.ours
	}
	err = ended(err)
	s.state = stateDone
	s.closeConn()
	if s.idleTimer != nil {
		s.idleTimer.Stop()
	}
	if s.hs != nil && s.hs.timer != nil {
		s.hs.timer.Stop()
	}
	s.mb.Stop(err)
	if clean {
		s.completeClose(nil)
	} else {
		s.completeClose(err)
	}
	s.unqueue(func(r *record) bool {
		s.completeRec(r, err)
		return true
	})
	s.mb.Drain(func(c cmd) { s.completeCmd(&c, err) })
	s.dropHeld(err)
	s.canceled = nil
	s.unpark()
	if f := s.opts.OnClose; f != nil {
		f(s, err)
	}
}
