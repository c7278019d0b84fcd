package gorillaecho

import (
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

type client struct {
	c    *websocket.Conn
	out  chan *websocket.PreparedMessage
	stop chan struct{}
	done chan struct{}
}

// broadcast serves a connection of the broadcast endpoint: every message it
// sends is prepared once (framed once) and written to every connection.
func (s *Server) broadcast(w http.ResponseWriter, r *http.Request) {
	c, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	if !s.Conns.Add(c) {
		return
	}
	defer s.Conns.Done(c)
	defer c.Close()

	cl := &client{
		c:    c,
		out:  make(chan *websocket.PreparedMessage, 256),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	s.hub.Add(cl.out)
	s.Conns.Go(func() { cl.writeLoop(s.writeTimeout) })
	for {
		mt, p, err := c.ReadMessage()
		if err != nil {
			break
		}
		pm, err := websocket.NewPreparedMessage(mt, p)
		if err != nil {
			break
		}
		s.hub.Publish(pm)
	}
	s.hub.Remove(cl.out)
	close(cl.stop)
	<-cl.done
}

// writeLoop is the connection's one writer. It drains its queue until the
// reader stops; after a write error (a deadline of timeout included) it
// only drains.
func (cl *client) writeLoop(timeout time.Duration) {
	defer close(cl.done)
	failed := false
	for {
		select {
		case pm := <-cl.out:
			if failed {
				continue
			}
			_ = cl.c.SetWriteDeadline(time.Now().Add(timeout))
			if cl.c.WritePreparedMessage(pm) != nil {
				failed = true
				_ = cl.c.NetConn().Close()
			}
		case <-cl.stop:
			return
		}
	}
}
