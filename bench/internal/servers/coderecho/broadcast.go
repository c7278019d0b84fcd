package coderecho

import (
	"context"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

type message struct {
	typ websocket.MessageType
	p   []byte // shared by every client, never modified
}

type client struct {
	c    *websocket.Conn
	out  chan message
	stop chan struct{}
	done chan struct{}
}

func (s *Server) broadcast(w http.ResponseWriter, r *http.Request) {
	c, cl, ok := s.accept(w, r)
	if !ok {
		return
	}
	defer s.Conns.Done(cl)
	defer c.CloseNow()

	bc := &client{
		c:    c,
		out:  make(chan message, 256),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	s.hub.Add(bc.out)
	s.Conns.Go(func() { bc.writeLoop(s.writeTimeout) })
	ctx := context.Background()
	for {
		typ, p, err := c.Read(ctx)
		if err != nil {
			break
		}
		s.hub.Publish(message{typ: typ, p: p})
	}
	s.hub.Remove(bc.out)
	close(bc.stop)
	<-bc.done
}

// writeLoop writes the client's queue until the reader stops; after a
// write error (a timeout included) it only drains.
func (bc *client) writeLoop(timeout time.Duration) {
	defer close(bc.done)
	failed := false
	for {
		select {
		case m := <-bc.out:
			if failed {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			err := bc.c.Write(ctx, m.typ, m.p)
			cancel()
			if err != nil {
				failed = true
				_ = bc.c.CloseNow()
			}
		case <-bc.stop:
			return
		}
	}
}
