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

	// Owned by the session's reader goroutine (OnMessage runs there).
	echo *echoWindow // nil until the first message

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

// Echo flow control. A session's echoes are written by its actor while its
// reader goes on reading; with no bound a client that sends without reading
// would fill the session's mailbox (and echoes past it would be refused) and
// the daemon's memory. So each session keeps at most echoInflight echoes and
// echoInflightBytes of payload in flight (one message of any size is always
// let through); beyond, the reader waits for completions, stops reading the
// socket, and TCP pushes back on the client.
const (
	echoInflight      = 16
	echoInflightBytes = 1 << 20
)

// echoWindow tracks a session's echoes in flight. It is taken at the first
// message, so that a session that never sends costs nothing for it, and
// kept for the session's life, so that echoing allocates nothing.
type echoWindow struct {
	reply chan session.Completion // capacity echoInflight: the actor never waits on it
	sizes [echoInflight]int64     // sizes of the echoes in flight, oldest first
	head  int
	count int
	bytes int64
}

// onEcho echoes m with its own type, without a copy: the session writes the
// message's own buffer and gives it back to the pool once written.
func (c *conn) onEcho(s *session.Session, m session.Message) {
	size := int64(len(m.Payload))
	c.n.msgsIn.Add(1)
	c.n.bytesIn.Add(size)
	w := c.echo
	if w == nil {
		w = &echoWindow{reply: make(chan session.Completion, echoInflight)}
		c.echo = w
	}
	w.reap(false)
	for w.count == echoInflight || (w.count > 0 && w.bytes+size > echoInflightBytes) {
		w.reap(true)
	}
	w.sizes[(w.head+w.count)%echoInflight] = size
	w.count++
	w.bytes += size
	s.WriteMessage(m, w.reply)
	c.n.msgsOut.Add(1)
	c.n.bytesOut.Add(size)
}

// reap takes the completions that arrived, or waits for one when wait is
// set. Writes complete in order, so each frees the oldest entry. Every
// write completes, when the session ends too, so the wait cannot hang.
func (w *echoWindow) reap(wait bool) {
	for w.count > 0 {
		if wait {
			<-w.reply
			wait = false
		} else {
			select {
			case <-w.reply:
			default:
				return
			}
		}
		w.bytes -= w.sizes[w.head]
		w.head = (w.head + 1) % echoInflight
		w.count--
	}
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
