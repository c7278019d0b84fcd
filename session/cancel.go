package session

// Cancellation with Boost.Beast's meanings: Total cancels what has not
// begun to write, Terminal everything (close.go ends the session);
// WriteContext cancels one write by its id.

import (
	"errors"
	"fmt"
	"slices"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/internal/bufpool"
)

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
		err := s.endErr()
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
