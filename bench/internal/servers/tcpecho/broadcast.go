package tcpecho

import (
	"net"
	"sync"
	"time"
)

// broadcastWriteTimeout bounds one write to a broadcast client, so that a
// client that stops reading cannot stall the publisher forever.
const broadcastWriteTimeout = 10 * time.Second

// hub is the set of connections of a broadcast server.
type hub struct {
	mu      sync.RWMutex
	clients []*client
}

// client is one broadcast connection. What one read brought (whole frames)
// is copied once, shared by every client, and written by the client's
// writer goroutine, which writes everything queued with one writev.
type client struct {
	conn net.Conn
	out  chan []byte
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

func (h *hub) publish(p []byte) {
	h.mu.RLock()
	for _, c := range h.clients {
		c.out <- p
	}
	h.mu.RUnlock()
}

func (s *Server) serveBroadcast(c net.Conn) error {
	cl := &client{
		conn: c,
		out:  make(chan []byte, 256),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	s.hub.add(cl)
	s.conns.Go(cl.writeLoop)
	defer func() {
		s.hub.remove(cl)
		close(cl.stop)
		<-cl.done
	}()
	return s.readFrames(c, func(frames []byte) error {
		s.hub.publish(append([]byte(nil), frames...))
		return nil
	})
}

// writeLoop writes the client's queue until the reader stops; after a
// write error it only drains.
func (cl *client) writeLoop() {
	defer close(cl.done)
	var (
		bufs   net.Buffers
		failed bool
	)
	for {
		select {
		case p := <-cl.out:
			bufs = append(bufs[:0], p)
		case <-cl.stop:
			return
		}
	more:
		for len(bufs) < 1024 {
			select {
			case p := <-cl.out:
				bufs = append(bufs, p)
			default:
				break more
			}
		}
		if failed {
			continue
		}
		_ = cl.conn.SetWriteDeadline(time.Now().Add(broadcastWriteTimeout))
		b := bufs
		_, err := b.WriteTo(cl.conn)
		if err != nil {
			failed = true
			_ = cl.conn.Close()
		}
		clear(bufs)
	}
}
