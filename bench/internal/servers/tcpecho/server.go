// Package tcpecho is the loopback ceiling: a plain TCP echo of
// length-prefixed frames (a 4-byte big-endian length, then the payload). It
// does the least work an echo can: each read goes into one buffer, and every
// whole frame parsed from it goes back with one write. Like rawecho, an idle
// connection holds no buffer. With Options.Broadcast it is the broadcast
// ceiling instead: what any connection sends goes to every connection.
package tcpecho

import (
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/wsactor/wsactor/bench/internal/hub"
	"github.com/wsactor/wsactor/bench/internal/netwait"
	"github.com/wsactor/wsactor/bench/internal/servers/base"
)

// Options configure a Server. The zero value is the benchmark configuration.
type Options struct {
	// BufferSize is the size of the pooled read buffer. A frame longer than
	// it is read into a buffer of its own. Default 128 KiB.
	BufferSize int
	// FrameLimit is the longest payload accepted; a longer one ends the
	// connection. Default 16 MiB.
	FrameLimit int
	// HoldBuffers keeps a connection's buffer while it waits for bytes.
	HoldBuffers bool
	// Broadcast makes every connection a member of one broadcast group:
	// the frames read from any connection are sent to all of them,
	// including the sender, instead of being echoed.
	Broadcast bool
	// WriteTimeout bounds one write to a broadcast client, so that a
	// client that stops reading cannot stall the broadcast forever: the
	// client is closed. Default 10 s.
	WriteTimeout time.Duration
}

// Server is the TCP echo server. Its methods are safe for concurrent use.
type Server struct {
	opts Options
	pool sync.Pool // of *[]byte of BufferSize
	base.Base
	hub hub.Hub[[]byte]
}

// New returns a Server with opts.
func New(opts Options) *Server {
	if opts.BufferSize <= 0 {
		opts.BufferSize = 128 << 10
	}
	if opts.FrameLimit <= 0 {
		opts.FrameLimit = 16 << 20
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	s := &Server{opts: opts}
	s.pool.New = func() any {
		b := make([]byte, s.opts.BufferSize)
		return &b
	}
	s.Init()
	return s
}

// Serve accepts connections on ln until Close; it returns nil after Close.
func (s *Server) Serve(ln net.Listener) error { return s.Set.Serve(ln, s.serveConn) }

func (s *Server) serveConn(c net.Conn) {
	defer s.Set.Done(c)
	defer c.Close()
	if s.opts.Broadcast {
		_ = s.serveBroadcast(c)
		return
	}
	_ = s.readFrames(c, func(frames []byte) error {
		_, err := c.Write(frames)
		return err
	})
}

// readFrames reads into one buffer and passes every whole frame of each
// read to f at once (the echo writes them back with one write), until the
// connection ends. When a read finds nothing and the buffer holds no partial
// frame, the buffer goes back to the pool while the connection waits.
func (s *Server) readFrames(c net.Conn, f func(frames []byte) error) error {
	var (
		nc     = netwait.New(c)
		pooled *[]byte
		buf    []byte
		have   int // bytes of buf holding data
	)
	get := func() []byte {
		pooled = s.pool.Get().(*[]byte)
		return *pooled
	}
	put := func([]byte) {
		if pooled != nil {
			s.pool.Put(pooled)
			pooled = nil
		}
	}
	defer put(nil)
	for {
		var (
			n    int
			rerr error
		)
		if s.opts.HoldBuffers || have > 0 {
			if buf == nil {
				buf = get()
			}
			n, rerr = nc.Read(buf[have:])
		} else {
			// Between bursts the connection holds no buffer.
			n, rerr = nc.ReadPooled(&buf, 0, get, put)
		}
		have += n

		end := 0
		for have-end >= 4 {
			l := int(binary.BigEndian.Uint32(buf[end:]))
			if l > s.opts.FrameLimit {
				return fmt.Errorf("tcpecho: frame of %d bytes is over the limit", l)
			}
			if have-end-4 < l {
				if 4+l > len(buf) && end == 0 {
					buf = grow(buf[:have], 4+l, put)
				}
				break
			}
			end += 4 + l
		}
		if end > 0 {
			err := f(buf[:end])
			if err != nil {
				return err
			}
			have = copy(buf, buf[end:have])
		}
		if rerr != nil {
			return rerr
		}
	}
}

// grow returns a buffer of at least n bytes holding data. The pooled buffer
// goes back to the pool; the long one is not pooled, and is dropped once
// the connection is idle again.
func grow(data []byte, n int, put func([]byte)) []byte {
	size := len(data) + 1
	for size < n {
		size *= 2
	}
	b := make([]byte, size)
	copy(b, data)
	put(nil)
	return b
}
