package rawecho

import (
	"bufio"
	"net"
	"time"

	"github.com/gobwas/pool/pbufio"
	"github.com/gobwas/ws"

	"github.com/wsactor/wsactor/bench/internal/netwait"
)

// client is one broadcast connection. Frames are encoded once, shared by
// every client, and written by the client's writer goroutine, which drains
// its queue into a pooled bufio.Writer and flushes once per drained burst.
type client struct {
	conn net.Conn
	out  chan []byte   // whole server frames, never modified once queued
	stop chan struct{} // closed by the reader when it is done
	done chan struct{} // closed by the writer when it has exited
}

func (s *Server) serveBroadcast(c net.Conn) {
	cl := &client{
		conn: c,
		out:  make(chan []byte, 256),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	s.hub.Add(cl.out)
	s.Set.Go(func() { cl.writeLoop(s.opts.BufferSize, s.opts.WriteTimeout) })
	_ = s.broadcastRead(cl)
	s.hub.Remove(cl.out)
	close(cl.stop)
	<-cl.done
}

// broadcastRead reads frames: data frames go to the hub, pings are answered
// on the client's own queue, a close frame is answered and ends the loop.
func (s *Server) broadcastRead(cl *client) error {
	fr := newFrameReader(netwait.New(cl.conn), &s.rpool, s.opts.HoldBuffers, s.opts.FrameLimit)
	defer fr.release()
	for {
		h, err := fr.next(noop)
		if err != nil {
			var code ws.StatusCode
			switch err {
			case errProtocol:
				code = ws.StatusProtocolError
			case errTooBig:
				code = ws.StatusMessageTooBig
			default:
				return err
			}
			cl.out <- ws.MustCompileFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(code, "")))
			return err
		}
		if !h.OpCode.IsControl() && (!h.Fin || h.OpCode == ws.OpContinuation) {
			// Fragments of concurrent senders would interleave.
			cl.out <- ws.MustCompileFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(
				ws.StatusUnsupportedData, "fragmented messages are not broadcast")))
			return errProtocol
		}
		// The frame is encoded once and shared by every client's queue.
		n := int(h.Length)
		frame := appendHeader(make([]byte, 0, ws.MaxHeaderSize+n), true, h.OpCode, n)
		err = fr.stream(h.Length, h.Mask, func(p []byte) error {
			frame = append(frame, p...)
			return nil
		})
		if err != nil {
			return err
		}
		switch h.OpCode {
		case ws.OpPing:
			frame[0] = 0x80 | byte(ws.OpPong)
			cl.out <- frame
		case ws.OpPong:
		case ws.OpClose:
			body := closeBody(frame[len(frame)-n:])
			cl.out <- append(appendHeader(nil, true, ws.OpClose, len(body)), body...)
			return nil
		default:
			s.hub.Publish(frame)
		}
	}
}

func noop() error { return nil }

// writeLoop writes the client's queued frames until the reader stops, then
// writes what is still queued (a close reply) and returns.
func (cl *client) writeLoop(size int, timeout time.Duration) {
	defer close(cl.done)
	var failed bool
	for {
		var f []byte
		select {
		case f = <-cl.out:
		case <-cl.stop:
			cl.writeBurst(nil, size, timeout, &failed)
			return
		}
		cl.writeBurst(f, size, timeout, &failed)
	}
}

// writeBurst writes first (if not nil) and every frame already queued behind
// it, with one flush, within timeout. After a write error it only drains the
// queue.
func (cl *client) writeBurst(first []byte, size int, timeout time.Duration, failed *bool) {
	var bw *bufio.Writer
	if !*failed {
		bw = pbufio.GetWriter(cl.conn, size)
		defer pbufio.PutWriter(bw)
		_ = cl.conn.SetWriteDeadline(time.Now().Add(timeout))
	}
	write := func(f []byte) {
		if *failed || len(f) == 0 {
			return
		}
		_, err := bw.Write(f)
		if err != nil {
			cl.fail(failed)
		}
	}
	if first != nil {
		write(first)
	}
	for {
		select {
		case f := <-cl.out:
			write(f)
			continue
		default:
		}
		break
	}
	if !*failed && bw.Flush() != nil {
		cl.fail(failed)
	}
}

// fail stops writing to a client whose socket failed and closes it, so that
// its reader ends too.
func (cl *client) fail(failed *bool) {
	*failed = true
	_ = cl.conn.Close()
}
