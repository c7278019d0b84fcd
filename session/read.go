package session

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/actor"
	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/internal/bufpool"
)

// reader is the read side's state, owned by the reader goroutine. It lives
// only while the goroutine does.
type reader struct {
	s *Session
	p codec.Parser // frames, checked as they arrive; its Decoder holds the message's state

	ctrl []byte // pooled while a control frame arrives
	msg  []byte // pooled buffer of the message being gathered
	mlen int

	rb *readBuf // the read being decoded, when its messages may alias it

	// The read in progress, for the raw-socket path.
	buf  []byte
	n    int
	rerr error
	fn   func(fd uintptr) bool

	size   int
	nctrl  int
	held   int32 // messages handed to the handler since the actor last ran
	closed bool  // the peer's close frame came: drop whatever follows
}

func (s *Session) readLoop() {
	r := &reader{s: s, p: codec.Parser{Decoder: codec.Decoder{
		Role:       s.role,
		MaxMessage: s.opts.MaxMessageSize,
		Deflate:    s.deflate,
		MaxFrame:   s.opts.MaxFrameSize,
	}}}
	r.fn = r.rawRead
	s.runReader(r)
}

// runReader reads until the session's reading side ends or the reader
// parks (park.go); a parked reader's state is carried on by a new goroutine.
func (s *Session) runReader(r *reader) {
	parked := false
	defer func() {
		if s.opts.OnMessage != nil {
			s.mb.Kick() // a handler that panicked left the actor held
		}
		s.readerG.Store(0)
		if v := recover(); v != nil {
			s.mb.SendUrgent(cmd{kind: cmdReaderPanic, err: fmt.Errorf("session: reader: %w", &actor.PanicError{Value: v})})
		}
		if parked {
			return
		}
		r.release()
		// Every way out of this loop has told the actor, which ends the
		// session; waiting for it means that Err says why once the channel
		// is closed, and that the actor has said whether to tear down.
		<-s.mb.Done()
		if s.inbound != nil {
			close(s.inbound)
		}
		if s.park.Swap(parkDone) == parkLinger {
			s.teardown()
		}
	}()
	if s.opts.OnMessage != nil || s.opts.OnControl != nil {
		// Handlers run on this goroutine: blocking calls that need the
		// reader look for it (onReader).
		s.readerG.Store(goid())
	}
	if b := s.initial; b != nil {
		s.initial = nil
		if r.process(b) {
			return
		}
	}
	for s.park.Load() != parkLinger {
		buf, err := r.read()
		if s.park.Load() == parkLinger {
			// The session ended: what came is teardown's to drop.
			if buf != nil {
				bufpool.Put(buf[:cap(buf)])
			}
			return
		}
		if len(buf) > 0 {
			s.active.Store(1)
			var stop bool
			if s.opts.OnMessage != nil {
				// The handler's messages alias the read (zero copy).
				r.rb = newReadBuf(buf[:cap(buf)])
				stop = r.process(buf)
				r.rb.release()
				r.rb = nil
			} else {
				stop = r.process(buf)
				bufpool.Put(buf[:cap(buf)])
			}
			if stop {
				return
			}
			r.progress(len(buf))
		} else if buf != nil {
			bufpool.Put(buf[:cap(buf)])
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && s.park.Load() == parkRequested {
				if parked = s.parkReader(r); parked {
					return
				}
				continue
			}
			s.mb.SendUrgent(cmd{kind: cmdReadError, err: err})
			return
		}
	}
}

// progress keeps the deadline of the message in progress after a read of
// n bytes (Options.MessageTimeout): from the read that begins a message,
// the timeout plus a second per MessageMinRate bytes; each later read adds
// its bytes' share. The tick enforces it, parked or not.
func (r *reader) progress(n int) {
	s := r.s
	timeout := s.opts.messageTimeout(s.role)
	if timeout == 0 {
		return
	}
	due := s.msgDue.Load()
	if !r.p.InFrame() && !r.p.InMessage() {
		if due != 0 {
			s.msgDue.Store(0)
		}
		return
	}
	share := int64(n) * int64(time.Second) / s.opts.messageMinRate()
	if due == 0 {
		due = time.Now().Add(timeout).UnixNano()
	}
	s.msgDue.Store(due + share)
}

func (r *reader) releaseCtrl() {
	if r.ctrl != nil {
		bufpool.Put(r.ctrl)
		r.ctrl = nil
	}
}

// release gives back the reader's buffers when reading is over.
func (r *reader) release() {
	r.releaseCtrl()
	if r.msg != nil {
		bufpool.Put(r.msg)
		r.msg = nil
	}
}

// read reads what has arrived into a pooled buffer taken only once bytes
// are there: a parked reader holds no buffer. On a plain socket it waits
// for readability through the poller and reads with one system call;
// otherwise it reads into a buffer it holds while it waits.
func (r *reader) read() ([]byte, error) {
	r.size = r.s.opts.readBufferSize()
	if need := r.p.Remaining(); need > int64(r.size) {
		// A large payload is on its way: read more of it per call. On a
		// plain socket the buffer is taken once the bytes are there and
		// given back after them, so it may follow the declared length; a
		// read that blocks holds its buffer while it waits, so there it
		// grows only with what has come of the message (twice that), never
		// to a length that the peer only declared.
		limit := int64(256 << 10)
		if r.s.raw == nil {
			limit = min(limit, int64(max(r.size, 2*r.mlen)))
		}
		r.size = int(min(need+codec.MaxHeaderLen, limit))
	}
	if r.s.raw == nil {
		buf := bufpool.Get(r.size)
		n, err := r.s.conn.Read(buf)
		return buf[:n], err
	}
	err := r.s.raw.Read(r.fn)
	buf, n, rerr := r.buf, r.n, r.rerr
	r.buf, r.rerr = nil, nil
	if err != nil {
		if buf != nil {
			bufpool.Put(buf)
		}
		return nil, err
	}
	if rerr != nil {
		return buf[:0], rerr
	}
	if n == 0 {
		return buf[:0], io.EOF
	}
	return buf[:n], nil
}

func (r *reader) rawRead(fd uintptr) bool {
	buf := bufpool.Get(r.size)
	for {
		n, err := syscall.Read(int(fd), buf)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			bufpool.Put(buf)
			return false // wait for readability, holding nothing
		}
		if n < 0 {
			n = 0
		}
		r.buf, r.n, r.rerr = buf, n, err
		return true
	}
}

// maxQueuedPongs is how many pongs may wait for the actor before further
// pings are answered only by the latest.
const maxQueuedPongs = 32

// inlineSets bounds how many sets of commands the reader runs for the actor
// after a read before it hands the rest to the actor's own goroutine.
const inlineSets = 4

// heldMessages is how many messages a handler may answer before the reader
// runs the actor, so that one large read of tiny messages cannot fill the
// mailbox: at most a quarter of the mailbox (room for four commands per
// message, as 256 leaves in the default 1024).
const heldMessages = 256

// process decodes one read. With a handler, the actor is held while the
// handler answers the read's messages and then run here, on the reader's
// goroutine: the answers to a whole read go out in one vectored write, and
// the reader, busy writing, reads no more until they are written — the echo
// of a peer that does not read slows that peer down, not the process.
func (r *reader) process(b []byte) (stop bool) {
	s := r.s
	if s.opts.OnMessage == nil {
		return r.feed(b)
	}
	s.mb.Hold()
	r.held = 0
	stop = r.feed(b)
	s.mb.RunHeld(inlineSets)
	return stop
}

// feed decodes b. It reports whether reading must stop.
func (r *reader) feed(b []byte) (stop bool) {
	for len(b) > 0 && !r.closed { // after the peer's close frame: read and drop
		c, n, ok, err := r.p.Next(b)
		b = b[n:]
		if err != nil {
			return r.fail(err)
		}
		if !ok {
			continue // a header split across reads, kept by the parser
		}
		if c.First {
			if c.Op.IsControl() {
				r.nctrl = 0
			} else if c.Op != ws.OpContinuation {
				r.mlen = 0
			}
		}
		var alias []byte // the frame's payload where it lies in rb: a whole message
		if len(c.Payload) > 0 {
			switch {
			case c.Op.IsControl():
				if r.ctrl == nil {
					r.ctrl = bufpool.Get(ws.MaxControlFramePayloadSize)
				}
				r.nctrl += copy(r.ctrl[r.nctrl:], c.Payload)
			case r.rb != nil && c.Whole() && c.Fin && c.Op != ws.OpContinuation:
				// A whole message in this read, unmasked where it lies.
				alias = c.Payload
			default:
				// More of the message to come: this frame's rest, which is
				// in a later read, or its next frames.
				more := !c.Last || len(b) == 0
				copy(r.grow(len(c.Payload), more, c.Fin), c.Payload)
			}
		}
		if c.Last && r.endFrame(c.Op, alias) {
			return true
		}
	}
	return false
}

// grow makes room for n more bytes of the message and returns it; fin is
// the current frame's FIN bit. The buffer grows with the bytes that arrive,
// never to a length the peer only declared; when the rest of the frame is
// all here (more is false) and ends the message, it is sized to fit.
func (r *reader) grow(n int, more, fin bool) []byte {
	want := r.mlen + n
	if r.msg == nil || want > cap(r.msg) {
		size := want
		if more || !fin {
			size = max(want, 2*cap(r.msg), 256)
			if total := r.p.MessageSize(); fin && int64(size) > total {
				size = int(total)
			}
		}
		nb := bufpool.Get(size)
		if r.msg != nil {
			copy(nb, r.msg[:r.mlen])
			bufpool.Put(r.msg)
		}
		r.msg = nb[:cap(nb)]
	}
	dst := r.msg[r.mlen:want]
	r.mlen = want
	return dst
}

// endFrame acts on a frame of opcode op whose payload has all arrived (the
// parser has checked a data frame's end); alias is its payload when it is a
// whole message left where it lies in the read buffer. It reports whether
// reading must stop.
func (r *reader) endFrame(op ws.OpCode, alias []byte) (stop bool) {
	s := r.s
	switch op {
	case ws.OpPing, ws.OpPong, ws.OpClose:
		p := r.ctrl[:r.nctrl]
		defer r.releaseCtrl()
		var code codec.CloseCode
		var reason []byte
		if op == ws.OpClose {
			var err error
			if code, reason, err = codec.ParseClosePayload(p); err != nil {
				return r.fail(err)
			}
		}
		if f := s.opts.OnControl; f != nil {
			f(s, ControlOp(op), p)
		}
		switch op {
		case ws.OpPing:
			if !s.is(flagCloseSent) {
				pong := bufpool.Get(len(p))
				copy(pong, p)
				if s.pongs.Add(1) <= maxQueuedPongs {
					s.mb.SendUrgent(cmd{kind: cmdPong, p: pong})
				} else {
					// A peer that floods pings faster than their pongs can
					// be written: keep only the latest, answered once the
					// queued ones are out, so that memory stays bounded.
					s.pongs.Add(-1)
					s.pongMu.Lock()
					old := s.latestPing
					s.latestPing = pong
					s.pongMu.Unlock()
					if old != nil {
						bufpool.Put(old)
					}
				}
			}
		case ws.OpPong:
			s.gotPong(p)
		case ws.OpClose:
			s.mb.SendUrgent(cmd{kind: cmdPeerClose, code: code, reason: string(reason)})
			if s.role == codec.Server {
				return true // the server closes TCP once its close frame is out
			}
			r.closed = true // the client reads on until the server's FIN
		}
		return false
	}
	if r.p.InMessage() {
		return false // a fragment: the message goes on
	}
	m := Message{Type: MessageType(r.p.Opcode())}
	if r.p.Compressed() {
		if err := r.inflate(&m, alias); err != nil {
			return r.fail(err)
		}
	} else if alias != nil {
		m = aliasMessage(m.Type, alias, r.rb)
	} else if r.mlen > 0 {
		m = ownedMessage(m.Type, r.msg[:r.mlen], r.msg)
	} else if r.msg != nil {
		bufpool.Put(r.msg)
	}
	r.msg, r.mlen = nil, 0
	if s.is(flagCloseSent) {
		m.Release() // data after our close frame is read and dropped
		return false
	}
	if f := s.opts.OnMessage; f != nil {
		f(s, m)
		if r.held++; int(r.held) >= min(heldMessages, max(1, s.opts.mailboxSize()/4)) {
			s.mb.RunHeld(inlineSets)
			s.mb.Hold()
			r.held = 0
		}
		return false
	}
	select {
	case s.inbound <- m:
		return false
	case <-s.closing:
		if s.is(flagCloseSent) {
			// Close was called while the caller was not reading: the
			// handshake needs the peer's close frame behind this message,
			// which is dropped like the ones after our close frame.
			m.Release()
			return false
		}
		// A Close that Cancel(Total) withdrew: wait for the caller again.
	case <-s.mb.Done():
		m.Release()
		return true
	}
	select {
	case s.inbound <- m:
	case <-s.mb.Done():
		m.Release()
		return true
	}
	return false
}

// inflate sets m's payload to the compressed message just read (alias, in
// the read buffer, or gathered in r.msg), inflated into a pooled buffer, and
// gives back the compressed one.
func (r *reader) inflate(m *Message, alias []byte) error {
	var z []byte
	switch {
	case alias != nil:
		z = alias // the read's buffer: nothing to give back
	case r.mlen > 0:
		z = r.msg[:r.mlen]
	}
	out, err := codec.Inflate(z, r.s.opts.inflateLimit())
	if r.msg != nil {
		bufpool.Put(r.msg)
	}
	r.msg, r.mlen = nil, 0
	if err == nil && m.Type == Text && !codec.ValidUTF8(out) {
		bufpool.Put(out)
		err = codec.ErrInvalidUTF8
	}
	if err != nil {
		return err
	}
	if len(out) > 0 {
		*m = ownedMessage(m.Type, out, out[:cap(out)])
	} else {
		bufpool.Put(out)
	}
	return nil
}

func (r *reader) fail(err error) bool {
	var pe *codec.ProtocolError
	if !errors.As(err, &pe) {
		err = &codec.ProtocolError{Code: codec.CloseProtocolError, Reason: err.Error()}
	}
	r.s.mb.SendUrgent(cmd{kind: cmdProtocolError, err: err})
	return true
}
