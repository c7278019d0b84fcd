package tcpecho

import (
	"net"
	"time"
)

// client is one broadcast connection. What one read brought (whole frames)
// is copied once, shared by every client, and written by the client's
// writer goroutine, which writes everything queued with one writev.
type client struct {
	conn net.Conn
	out  chan []byte
	stop chan struct{}
	done chan struct{}
}

func (s *Server) serveBroadcast(c net.Conn) error {
	cl := &client{
		conn: c,
		out:  make(chan []byte, 256),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	s.hub.Add(cl.out)
	s.Set.Go(func() { cl.writeLoop(s.opts.WriteTimeout) })
	defer func() {
		s.hub.Remove(cl.out)
		close(cl.stop)
		<-cl.done
	}()
	return s.readFrames(c, func(frames []byte) error {
		s.hub.Publish(append([]byte(nil), frames...))
		return nil
	})
}

// writeLoop writes the client's queue until the reader stops; after a
// write error (or one that took longer than timeout) it only drains.
func (cl *client) writeLoop(timeout time.Duration) {
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
		_ = cl.conn.SetWriteDeadline(time.Now().Add(timeout))
		b := bufs
		_, err := b.WriteTo(cl.conn)
		if err != nil {
			failed = true
			_ = cl.conn.Close()
		}
		clear(bufs)
	}
}
