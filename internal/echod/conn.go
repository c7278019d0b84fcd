package echod

import (
	"errors"
	"strconv"
	"time"

	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/session"
)

// conn is the Server's record of one session.
type conn struct {
	srv    *Server
	s      *session.Session // set once the handshake is done
	opts   session.Options  // this session's Options: OnMessage reaches the conn without a lookup
	remote string
	path   string
	start  time.Time
	n      counters

	member *member // the broadcast membership, on /broadcast
}

func (s *Server) newConn(remote, path string) *conn {
	return &conn{srv: s, opts: s.opts, remote: remote, path: path, start: time.Now()}
}

func (s *Server) newEchoConn(remote string) *conn {
	c := s.newConn(remote, s.cfg.Path)
	c.opts.OnMessage = c.onEcho
	return c
}

func (s *Server) newBroadcastConn(remote string) *conn {
	c := s.newConn(remote, "/broadcast")
	c.member = new(member)
	c.opts.OnMessage = c.onBroadcast
	return c
}

// onEcho echoes m with its own type, without a copy: the session writes the
// message's own buffer and gives it back to the pool once written. No
// completion is asked for. Flow control needs none either: the answers to
// one read are written on the session's reader goroutine before it reads
// again, so a client that sends without reading is slowed down by TCP, and
// the daemon's memory stays bounded by the read buffer and the mailbox.
func (c *conn) onEcho(s *session.Session, m session.Message) {
	size := int64(len(m.Payload))
	c.n.msgsIn.Add(1)
	c.n.bytesIn.Add(size)
	s.WriteMessage(m, nil)
	c.n.msgsOut.Add(1)
	c.n.bytesOut.Add(size)
}

// ended accounts for a session that ended and logs it. The Server's
// record of the session goes last, so that whoever waits for the set of
// sessions to change sees the metrics and the log line already done.
func (s *Server) ended(c *conn) {
	err := c.s.Err()
	code := session.CloseCode(err)
	if c.member != nil {
		s.hub.leave(c.member)
	}
	attrs := []any{
		"remote", c.remote,
		"path", c.path,
		"code", int(code),
		"duration", time.Since(c.start).Round(time.Microsecond),
		"messages_in", c.n.msgsIn.Load(),
		"messages_out", c.n.msgsOut.Load(),
		"bytes_in", c.n.bytesIn.Load(),
		"bytes_out", c.n.bytesOut.Load(),
	}
	var ce *session.CloseError
	if errors.As(err, &ce) {
		attrs = append(attrs, "reason", ce.Reason)
	} else {
		attrs = append(attrs, "err", err)
	}
	s.log.Info("session end", attrs...)

	s.m.closesByCode.Add(strconv.Itoa(int(code)), 1)
	var pe *codec.ProtocolError
	if errors.As(err, &pe) {
		s.m.protocolErrors.Add(1)
	}
	s.m.sessionsOpen.Add(-1)
	s.mu.Lock()
	delete(s.conns, c)
	s.m.ended.msgsIn.Add(c.n.msgsIn.Load())
	s.m.ended.bytesIn.Add(c.n.bytesIn.Load())
	s.m.ended.msgsOut.Add(c.n.msgsOut.Load())
	s.m.ended.bytesOut.Add(c.n.bytesOut.Load())
	s.notifyLocked()
	s.mu.Unlock()
}
