package coderecho

import (
	"context"
	"net/http"
	"sync"

	"github.com/coder/websocket"
)

type hub struct {
	mu      sync.RWMutex
	clients []*client
}

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

func (h *hub) add(c *client) {
	h.mu.Lock()
	h.clients = append(h.clients, c)
	h.mu.Unlock()
}

func (h *hub) remove(c *client) {
	h.mu.Lock()
	for i, x := range h.clients {
		if x == c {
			last := len(h.clients) - 1
			h.clients[i] = h.clients[last]
			h.clients[last] = nil
			h.clients = h.clients[:last]
			break
		}
	}
	h.mu.Unlock()
}

// publish queues m on every client, blocking while a queue is full.
func (h *hub) publish(m message) {
	h.mu.RLock()
	for _, c := range h.clients {
		c.out <- m
	}
	h.mu.RUnlock()
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
	s.hub.add(bc)
	s.Conns.Go(bc.writeLoop)
	ctx := context.Background()
	for {
		typ, p, err := c.Read(ctx)
		if err != nil {
			break
		}
		s.hub.publish(message{typ: typ, p: p})
	}
	s.hub.remove(bc)
	close(bc.stop)
	<-bc.done
}

// writeLoop writes the client's queue until the reader stops; after a
// write error it only drains.
func (bc *client) writeLoop() {
	defer close(bc.done)
	ctx := context.Background()
	failed := false
	for {
		select {
		case m := <-bc.out:
			if failed {
				continue
			}
			if bc.c.Write(ctx, m.typ, m.p) != nil {
				failed = true
				_ = bc.c.CloseNow()
			}
		case <-bc.stop:
			return
		}
	}
}
