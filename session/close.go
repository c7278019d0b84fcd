package session

// The closing handshake, its timer and the teardown, as Boost.Beast's
// websocket::stream does them. The session is in one of four states
// (Session.state); what each event does in each:
//
//	event                      | open                          | closing (our close frame    | peer closed (its close    | done
//	                           |                               | queued or sent)             | frame came)               |
//	---------------------------+-------------------------------+-----------------------------+---------------------------+---------------
//	Close                      | queue our close frame behind  | refused: ErrClosing         | refused: the peer's       | refused: Err
//	                           | the writes accepted before;   |                             | *CloseError               |
//	                           | start the close timer         |                             |                           |
//	                           | -> closing                    |                             |                           |
//	the peer's close frame     | write what was accepted, then | -> peer closed; a server    | (dropped by the reader)   | -
//	                           | our close frame echoing its   | finishes once our frame is  |                           |
//	                           | code -> peer closed           | out                         |                           |
//	our close frame written    | -                             | wait for the peer's         | server: finish (it closes | -
//	                           |                               |                             | TCP first); client: wait  |
//	                           |                               |                             | for the server's FIN      |
//	end of stream, read error  | finish: connection lost, 1006 | finish: connection lost     | finish, clean (the        | -
//	                           |                               |                             | client's wait is over)    |
//	protocol violation, idle   | write what was accepted, then | finish (our frame is out)   | finish                    | -
//	or message timeout, a      | our close frame with the      |                             |                           |
//	handler's panic (fail)     | code; finish                  |                             |                           |
//	the close timer fires      | -                             | finish: ErrCloseTimeout     | finish: ErrCloseTimeout   | -
//	Cancel(Terminal)           | finish: ErrCanceled           | finish: ErrCanceled         | finish: ErrCanceled       | nil
//	a write fails or times out | finish with its error         | finish with its error       | finish with its error     | -
//
// finish ends the session: Done closes, Err is set, every command left
// completes. Then the connection is torn down: half-closed (our FIN after
// our last frame) while the reader drops what the peer still sends until
// its FIN or the close timeout, then closed (closeConn, teardown); a
// Cancel(Terminal), a failed write and the close timer close it at once.

import (
	"fmt"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/actor"
	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/internal/bufpool"
)

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

func (s *Session) completeClose(err error) {
	hs := s.hs
	if hs == nil || hs.reply.Delivered() || hs.id == 0 {
		return
	}
	hs.reply.Deliver(&s.out, Completion{Session: s, Kind: KindClose, ID: hs.id, Err: err})
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
		s.flush() // written now: what follows cancels what is still queued
		if s.state == stateDone {
			return
		}
	}
	if !s.is(flagCloseSent) {
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
	s.leaveGroups()
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

// closeConn closes the connection as the session ends. While the reader
// still runs it only half-closes (our FIN follows our last frame) and
// leaves the rest to the reader's teardown: closing a socket that holds
// unread bytes sends a reset, which can destroy the close frame and what
// went before it on their way to the peer, and a peer often still sends
// (a ping behind its close frame, the rest of what broke the protocol).
// Cancel(Terminal), a failed write and the close timeout close at once.
func (s *Session) closeConn() {
	if !s.abrupt && !s.is(flagTerminal) && !s.is(flagTimedOut) &&
		(s.park.CompareAndSwap(parkRunning, parkLinger) || s.park.CompareAndSwap(parkRequested, parkLinger)) {
		if hc, ok := s.conn.(interface{ CloseWrite() error }); ok && hc.CloseWrite() == nil {
			s.conn.SetReadDeadline(aLongTimeAgo) // the reader stops reading for the session
			return
		}
	}
	s.conn.Close()
}

// teardown ends the connection of a session, on the reader's goroutine, as
// Boost.Beast's teardown does: with our FIN out, it reads and
// drops what the peer still sends until the peer closes too or the close
// timeout passes, then closes.
func (s *Session) teardown() {
	s.conn.SetReadDeadline(time.Now().Add(s.opts.closeTimeout()))
	buf := bufpool.Get(4096)
	for {
		if _, err := s.conn.Read(buf); err != nil {
			break
		}
	}
	bufpool.Put(buf)
	s.conn.Close()
}

func (s *Session) closeTimeout() {
	s.set(flagTimedOut)
	s.conn.Close()
	s.mb.SendUrgent(cmd{kind: cmdCloseTimeout})
}
