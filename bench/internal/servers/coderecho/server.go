// Package coderecho is the echo server on coder/websocket: Accept with
// compression disabled and the origin check off (the load generator sends
// no Origin), and a read/write loop on the handler's goroutine. The context
// is context.Background(), as the README advises against r.Context() for
// hijacked connections; since it can never be done, coder arms no timer per
// call. Each message is read from Reader into a pooled buffer (c.Read would
// allocate one per message with io.ReadAll) and written back with Write,
// which sends one frame and flushes once. coder answers pings and the close
// handshake itself while reading. Broadcast copies each message once and
// hands it to a writer goroutine per connection, which writes each under a
// timeout, as coder's chat example does.
package coderecho

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/wsactor/wsactor/bench/internal/hub"
	"github.com/wsactor/wsactor/bench/internal/servers/httpserve"
)

// readLimit is the largest message accepted (coder's default is 32 KiB).
const readLimit = 16 << 20

// Options configure a Server. The zero value is the benchmark
// configuration.
type Options struct {
	// WriteTimeout bounds each broadcast write: a connection that does not
	// read is closed after it. Default 10 s.
	WriteTimeout time.Duration
}

// Server is the coder echo server.
type Server struct {
	*httpserve.Server
	opts         *websocket.AcceptOptions
	bufs         sync.Pool // of *bytes.Buffer
	hub          hub.Hub[message]
	writeTimeout time.Duration
}

// New returns a Server with opts.
func New(opts Options) *Server {
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	s := &Server{
		writeTimeout: opts.WriteTimeout,
		opts: &websocket.AcceptOptions{
			InsecureSkipVerify: true,
			CompressionMode:    websocket.CompressionDisabled,
		},
	}
	s.bufs.New = func() any { return new(bytes.Buffer) }
	s.Server = httpserve.New(http.HandlerFunc(s.echo), http.HandlerFunc(s.broadcast))
	return s
}

// closer lets the connection set end a coder connection at once.
type closer struct{ c *websocket.Conn }

func (c closer) Close() error { return c.c.CloseNow() }

func (s *Server) accept(w http.ResponseWriter, r *http.Request) (*websocket.Conn, closer, bool) {
	c, err := websocket.Accept(w, r, s.opts)
	if err != nil {
		return nil, closer{}, false
	}
	c.SetReadLimit(readLimit)
	cl := closer{c}
	if !s.Conns.Add(cl) {
		return nil, closer{}, false
	}
	return c, cl, true
}

func (s *Server) echo(w http.ResponseWriter, r *http.Request) {
	c, cl, ok := s.accept(w, r)
	if !ok {
		return
	}
	defer s.Conns.Done(cl)
	defer c.CloseNow()
	ctx := context.Background()
	for {
		typ, rd, err := c.Reader(ctx)
		if err != nil {
			return
		}
		b := s.bufs.Get().(*bytes.Buffer)
		b.Reset()
		_, err = b.ReadFrom(rd)
		if err == nil {
			err = c.Write(ctx, typ, b.Bytes())
		}
		s.bufs.Put(b)
		if err != nil {
			return
		}
	}
}
