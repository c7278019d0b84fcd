// Package gorillaecho is the echo server on gorilla/websocket, written the
// way its documentation recommends: an Upgrader that reuses the HTTP
// server's 4 KiB read buffer, a 4 KiB write buffer from a WriteBufferPool (so
// that a connection holds a write buffer only while it writes), compression
// off, and one goroutine per connection (the handler's
// own) that copies each message from NextReader to NextWriter, which reads
// straight into the write buffer (messageWriter.ReadFrom) without
// allocating. Pings and the close handshake are answered by gorilla's
// default handlers. Broadcast uses a PreparedMessage written to every
// connection by a writer goroutine per connection (the one-writer rule).
package gorillaecho

import (
	"io"
	"net/http"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/wsactor/wsactor/bench/internal/hub"
	"github.com/wsactor/wsactor/bench/internal/servers/httpserve"
)

// Server is the gorilla echo server.
type Server struct {
	*httpserve.Server
	up  websocket.Upgrader
	hub hub.Hub[*websocket.PreparedMessage]
}

// New returns a Server.
func New() *Server {
	s := &Server{
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
