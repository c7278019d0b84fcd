package echod

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/session"
)

// conn is the Server's record of one session: the session's value
// (session.SetValue), and in Server.conns for the metrics and Shutdown.
// Every session of an endpoint shares one session.Options, so this is all a
// session costs the Server: 64 bytes (and a member on /broadcast) and a
// table slot.
//
// The record is made by Options.OnOpen, before the session reads anything.
// A session may still end before Accept returns it to the Server: it leaves
// the table once both register and the accounting of its end are done.
type conn struct {
	n     counters
	start time.Duration // on the Server's clock (Server.now); guarded by Server.mu
	room  string        // the room, on /room/NAME and /broadcast

	// Guarded by Server.mu.
	registered bool // register ran
	ended      bool // the session's end is accounted for
}

// connLocked returns the record of ss, made if there is none. Call it under
// s.mu.
func (s *Server) connLocked(ss *session.Session) *conn {
	if c := s.conns.get(ss); c != nil {
		return c
	}
	c := &conn{start: s.now()}
	s.conns.add(ss, c)
	return c
}

func (s *Server) onEchoOpen(_ context.Context, ss *session.Session) { s.opened(ss, false) }

// opened makes the record of ss, from its Options.OnOpen: its handlers find
// it as the session's value, with no lookup.
func (s *Server) opened(ss *session.Session, _ bool) {
	s.mu.Lock()
	c := s.connLocked(ss)
	s.mu.Unlock()
	ss.SetValue(c)
}

// connOf returns the record of ss for its handlers.
func connOf(ss *session.Session) *conn { return ss.Value().(*conn) }

// onEcho echoes m with its own type, without a copy: the session writes the
// message's own buffer and gives it back to the pool once written. No
// completion is asked for. Flow control needs none either: the answers to
// one read are written on the session's reader goroutine before it reads
// again, so a client that sends without reading is slowed down by TCP, and
// the daemon's memory stays bounded by the read buffer and the mailbox.
//
// The session does not refuse a handler's answers for its own backlog (it
// writes the answers so far first); should an echo be refused all the
// same, it is not lost in silence: it is counted in echo_refused and the
// session is closed with 1011.
func (s *Server) onEcho(ss *session.Session, m session.Message) {
	// Counted before the write: once the echo is out, a client may read
	// the metrics.
	c := connOf(ss)
	size := int64(len(m.Payload))
	c.n.msgsIn.Add(1)
	c.n.bytesIn.Add(size)
	c.n.msgsOut.Add(1)
	c.n.bytesOut.Add(size)
	_, err := ss.WriteMessage(&m, nil)
	if err == nil {
		return
	}
	c.n.msgsOut.Add(-1)
	c.n.bytesOut.Add(-size)
	// Other refusals come from the session's end or its closing, which
	// its OnClose accounts for.
	if errors.Is(err, session.ErrMailboxFull) {
		s.m.echoRefused.Add(1)
		ss.Close(echoRefused, nil)
	}
}

// echoRefused is what closes a session whose echo the session refused.
var echoRefused = session.CloseReason{Code: codec.CloseInternalError, Reason: "echo refused: backlog over the pending-bytes bound"}

func (s *Server) onEchoClose(ss *session.Session, err error) { s.ended(ss, err, false) }

func (s *Server) onRoomClose(ss *session.Session, err error) { s.ended(ss, err, true) }

// ended accounts for a session that ended and logs it, from its
// Options.OnClose. The Server's record of the session goes last, so that
// whoever waits for the set of sessions to change sees the metrics and the
// log line already done.
func (s *Server) ended(ss *session.Session, err error, broadcast bool) {
	c := connOf(ss)
	s.mu.Lock()
	start := c.start
	s.mu.Unlock()

	code := session.CloseCode(err)
	path := s.cfg.Path
	if broadcast {
		path = "/room/" + c.room
		if c.room == broadcastRoom && s.cfg.Broadcast {
			path = "/broadcast"
		}
	}
	attrs := []any{
		"remote", ss.RemoteAddr().String(),
		"path", path,
		"code", int(code),
		"duration", (s.now() - start).Round(time.Microsecond),
		"messages_in", c.n.msgsIn.Load(),
		"messages_out", c.n.msgsOut.Load(),
		"bytes_in", c.n.bytesIn.Load(),
		"bytes_out", c.n.bytesOut.Load(),
	}
	if broadcast {
		// What this member lost for not keeping up: the operator's clue
		// to which receiver the drops in broadcast_dropped belong.
		attrs = append(attrs, "broadcast_dropped", int64(ss.Dropped()))
	}
	var ce *session.CloseError
	if errors.As(err, &ce) {
		attrs = append(attrs, "reason", ce.Reason)
		if ce.Unwrap() != nil {
			// This side failed the session (a protocol violation, a
			// timeout): the cause, beside the code it sent.
			attrs = append(attrs, "err", err)
		}
	} else {
		attrs = append(attrs, "err", err)
	}
	s.log.Info("session end", attrs...)

	s.m.closesByCode.Add(strconv.Itoa(int(code)), 1)
	var pe *codec.ProtocolError
	if errors.As(err, &pe) {
		s.m.protocolErrors.Add(1)
	}
	s.mu.Lock()
	c.ended = true
	if c.registered {
		s.removeLocked(ss, c)
	}
	s.mu.Unlock()
}

// removeLocked takes ss, registered and accounted for, out of the open
// sessions, its counts into the totals of the ended ones. Call it under
// s.mu.
func (s *Server) removeLocked(ss *session.Session, c *conn) {
	s.conns.delete(ss)
	s.open--
	s.m.sessionsOpen.Add(-1)
	s.m.ended.msgsIn.Add(c.n.msgsIn.Load())
	s.m.ended.bytesIn.Add(c.n.bytesIn.Load())
	s.m.ended.msgsOut.Add(c.n.msgsOut.Load())
	s.m.ended.bytesOut.Add(c.n.bytesOut.Load())
	s.notifyLocked()
}
