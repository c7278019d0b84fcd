// Package gorillaecho is the echo server on gorilla/websocket, written the
// way its documentation recommends: an Upgrader that reuses the HTTP
// server's 4 KiB read buffer, a 4 KiB write buffer from a WriteBufferPool (so
// that a connection holds a write buffer only while it writes), compression
// off, and one goroutine per connection (the handler's
// own) that copies each message from NextReader to NextWriter, which reads
// straight into the write buffer (messageWriter.ReadFrom) without
// allocating. Pings and the close handshake are answered by gorilla's
// default handlers. Broadcast uses a PreparedMessage written to every
// connection by a writer goroutine per connection (the one-writer rule),
// each write under a deadline, as gorilla's chat example does.
package gorillaecho

import (
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsactor/wsactor/bench/internal/hub"
	"github.com/wsactor/wsactor/bench/internal/servers/httpserve"
)

// Options configure a Server. The zero value is the benchmark
// configuration.
type Options struct {
	// WriteTimeout is the deadline of each broadcast write: a connection
	// that does not read is closed after it. Default 10 s (the chat
	// example's writeWait).
	WriteTimeout time.Duration
}

// Server is the gorilla echo server.
type Server struct {
	*httpserve.Server
	up           websocket.Upgrader
	hub          hub.Hub[*websocket.PreparedMessage]
	writeTimeout time.Duration
}

// New returns a Server with opts.
func New(opts Options) *Server {
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	s := &Server{
		writeTimeout: opts.WriteTimeout,
		up: websocket.Upgrader{
			// Zero: reuse the HTTP server's 4 KiB read buffer (the docs'
			// "Buffers" section) rather than allocate another.
			ReadBufferSize:  0,
			WriteBufferSize: 4096,
			WriteBufferPool: &sync.Pool{},
			// The load generator sends no Origin; accept any.
			CheckOrigin:       func(*http.Request) bool { return true },
			EnableCompression: false,
		},
	}
	s.Server = httpserve.New(http.HandlerFunc(s.echo), http.HandlerFunc(s.broadcast))
	return s
}

func (s *Server) echo(w http.ResponseWriter, r *http.Request) {
	c, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	if !s.Conns.Add(c) {
		return
	}
	defer s.Conns.Done(c)
	defer c.Close()
	for {
		mt, rd, err := c.NextReader()
		if err != nil {
			return
		}
		wr, err := c.NextWriter(mt)
		if err != nil {
			return
		}
		_, err = io.Copy(wr, rd)
		if err != nil {
			return
		}
		err = wr.Close()
		if err != nil {
			return
		}
	}
}
