// Package rawecho is the hand-written gobwas/ws echo server: ws.Upgrade on a
// net.Conn from its own listener, frame headers parsed straight out of a
// pooled bufio.Reader, payloads unmasked in place with ws.Cipher and echoed
// through a pooled bufio.Writer that is flushed once per drained burst (when
// the reader has no buffered byte left), so that a burst of N messages costs
// one read and one write system call. An idle connection holds no pooled
// buffer: it waits for bytes with netwait and takes its buffers back when
// they come.
//
// It serves the echo endpoint at any path but /broadcast, where every data
// message is sent to every connection of that endpoint. Its port speaks no
// HTTP, so the stats endpoint is served by ServeStats on another listener.
package rawecho

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/gobwas/pool/pbufio"
	"github.com/gobwas/ws"

	"github.com/wsactor/wsactor/bench/internal/hub"
	"github.com/wsactor/wsactor/bench/internal/netwait"
	"github.com/wsactor/wsactor/bench/internal/servers/base"
)

// Options configure a Server. The zero value is the benchmark configuration.
type Options struct {
	// BufferSize is the size of the pooled read and write buffers.
	// Default 64 KiB, the largest size pbufio pools: a busy connection reads
	// and writes a whole burst at once, and an idle one holds no buffer.
	BufferSize int
	// FrameLimit is the longest frame payload accepted; longer frames are
	// answered with close code 1009. Default 16 MiB.
	FrameLimit int64
	// HoldBuffers keeps a connection's buffers while it waits for bytes,
	// as a plain blocking read does, instead of returning them to the pools.
	HoldBuffers bool
	// HandshakeTimeout bounds the opening handshake. Default 30 s.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds one burst of writes to a broadcast client, so
	// that a client that stops reading cannot stall the broadcast forever:
	// the client is closed. Default 10 s.
	WriteTimeout time.Duration
}

// Server is the echo server. Its methods are safe for concurrent use.
type Server struct {
	opts  Options
	rpool sync.Pool // of *[]byte of BufferSize: read buffers
	base.Base
	hub hub.Hub[[]byte]
}

// New returns a Server with opts.
func New(opts Options) *Server {
	if opts.BufferSize <= 0 {
		opts.BufferSize = 64 << 10
	}
	if opts.FrameLimit <= 0 {
		opts.FrameLimit = 16 << 20
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 30 * time.Second
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	s := &Server{opts: opts}
	s.rpool.New = func() any {
		b := make([]byte, s.opts.BufferSize)
		return &b
	}
	s.Init()
	return s
}

// Serve accepts WebSocket connections on ln until Close; it returns nil
// after Close.
func (s *Server) Serve(ln net.Listener) error { return s.Set.Serve(ln, s.serveConn) }

// serveConn makes the opening handshake, then hands the connection to a
// new goroutine: the handshake needs a deep stack, and a goroutine's stack
// does not shrink back at once, while an idle session should cost as
// little as a fresh goroutine's stack.
func (s *Server) serveConn(c net.Conn) {
	broadcast := false
	u := ws.Upgrader{
		OnRequest: func(uri []byte) error {
			broadcast = pathOf(uri) == "/broadcast"
			return nil
		},
	}
	_ = c.SetDeadline(time.Now().Add(s.opts.HandshakeTimeout))
	_, err := u.Upgrade(c)
	if err == nil {
		err = c.SetDeadline(time.Time{})
	}
	if err != nil {
		_ = c.Close()
		s.Set.Done(c)
		return
	}
	go s.run(c, broadcast)
}

func (s *Server) run(c net.Conn, broadcast bool) {
	defer s.Set.Done(c)
	defer c.Close()
	if broadcast {
		s.serveBroadcast(c)
		return
	}
	_ = s.echo(c)
}

// pathOf returns the path of a request URI.
func pathOf(uri []byte) string {
	for i, b := range uri {
		if b == '?' {
			return string(uri[:i])
		}
	}
	return string(uri)
}

// echo echoes every frame with its own opcode and fin bit, answers pings,
// and answers the close handshake, until the connection ends.
func (s *Server) echo(c net.Conn) error {
	fr := newFrameReader(netwait.New(c), &s.rpool, s.opts.HoldBuffers, s.opts.FrameLimit)
	var bw *bufio.Writer
	// endBurst runs when every byte read has been echoed: one write for all
	// of the burst's replies, and no buffer kept while the socket is quiet.
	endBurst := func() error {
		if bw == nil {
			return nil
		}
		err := bw.Flush()
		if !s.opts.HoldBuffers {
			pbufio.PutWriter(bw)
			bw = nil
		}
		return err
	}
	defer func() {
		fr.release()
		if bw != nil {
			pbufio.PutWriter(bw)
		}
	}()
	write := func(p []byte) error {
		_, err := bw.Write(p)
		return err
	}

	for {
		h, err := fr.next(endBurst)
		if err != nil {
			return fail(c, bw, err)
		}
		if bw == nil {
			bw = pbufio.GetWriter(c, s.opts.BufferSize)
		}
		if h.Length > int64(fr.size()) {
			// Only data frames can be this long.
			err = writeHeader(bw, h.Fin, h.OpCode, int(h.Length))
			if err == nil {
				err = fr.stream(h.Length, h.Mask, write)
			}
			if err != nil {
				return err
			}
			continue
		}
		p, err := fr.payload(int(h.Length), h.Mask)
		if err != nil {
			return err
		}
		switch h.OpCode {
		case ws.OpPing:
			err = writeFrame(bw, true, ws.OpPong, p)
		case ws.OpPong:
		case ws.OpClose:
			err = writeFrame(bw, true, ws.OpClose, closeBody(p))
			if err == nil {
				err = bw.Flush()
			}
			if err == nil {
				return nil
			}
		default:
			err = writeFrame(bw, h.Fin, h.OpCode, p)
		}
		if err != nil {
			return err
		}
	}
}

func writeFrame(bw *bufio.Writer, fin bool, op ws.OpCode, p []byte) error {
	err := writeHeader(bw, fin, op, len(p))
	if err != nil {
		return err
	}
	_, err = bw.Write(p)
	return err
}

// fail answers a protocol violation with its close code (after the replies
// in bw, if any) and returns the error that ends the connection.
func fail(c net.Conn, bw *bufio.Writer, err error) error {
	var code ws.StatusCode
	switch {
	case errors.Is(err, errProtocol):
		code = ws.StatusProtocolError
	case errors.Is(err, errTooBig):
		code = ws.StatusMessageTooBig
	default:
		return err
	}
	body := ws.NewCloseFrameBody(code, "")
	var werr error
	if bw == nil {
		werr = ws.WriteFrame(c, ws.NewCloseFrame(body))
	} else if werr = writeFrame(bw, true, ws.OpClose, body); werr == nil {
		werr = bw.Flush()
	}
	if werr == nil {
		linger(c)
	}
	return err
}

// lingerTimeout bounds how long a failed connection waits for its peer to
// close after the close frame.
const lingerTimeout = time.Second

// linger half-closes c after a close frame and discards what the peer still
// sends until it closes too or lingerTimeout passes. Closing a socket with
// unread bytes in it sends a reset, which can destroy the close frame before
// the peer reads it; the peer may well have sent more after the bad frame.
func linger(c net.Conn) {
	if hc, ok := c.(interface{ CloseWrite() error }); ok {
		_ = hc.CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(lingerTimeout))
	var b [512]byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			return
		}
	}
}
