package session

// The session's actor: what it does with each mailbox message (the
// user's commands, the reader's and the timers' events). Every function
// here runs on the actor, which owns the session's state.

import (
	"errors"
	"fmt"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/internal/bufpool"
)

// behavior is the Session seen by its actor: the methods below run on the
// actor goroutine only, which owns the state they touch.
type behavior Session

func (b *behavior) Receive(c cmd) { (*Session)(b).receive(c) }

func (b *behavior) Flush() { (*Session)(b).flush() }

func (b *behavior) Panicked(err error) {
	(*Session)(b).fail(fmt.Errorf("session: %w", err), codec.CloseInternalError, false)
}

func (s *Session) receive(c cmd) {
	switch c.kind {
	case cmdFrame:
		s.onFrame(&c)
	case cmdCutStream:
		s.onCutStream(&c)
	case cmdWrite, cmdPrepared, cmdCast, cmdPing:
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
		if c.kind == cmdCast {
			s.onCast(&c)
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
	return s.endErr()
}
