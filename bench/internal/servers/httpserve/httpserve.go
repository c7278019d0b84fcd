// Package httpserve is the net/http plumbing shared by the benchmark servers
// that upgrade from net/http: the mux (echo at /, broadcast at /broadcast,
// stats at /debug/vars) and a Close that also ends hijacked connections.
package httpserve

import (
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/wsactor/wsactor/bench/internal/connset"
	"github.com/wsactor/wsactor/bench/internal/stats"
)

// Server serves a library's echo and broadcast handlers and the stats
// endpoint over HTTP.
type Server struct {
	// Conns holds the upgraded connections and their goroutines; the
	// handlers Add and Done them.
	Conns connset.Set
	srv   *http.Server
}

// New returns a Server for the echo handler and, if not nil, the broadcast
// handler.
func New(echo, broadcast http.Handler) *Server { return NewDropping(echo, broadcast, nil) }

// NewDropping is New for a server whose broadcast drops for members that do
// not keep up: dropped, if not nil, reports how many broadcasts it dropped,
// and the stats endpoint serves it.
func NewDropping(echo, broadcast http.Handler, dropped func() int64) *Server {
	s := &Server{}
	mux := http.NewServeMux()
	mux.Handle("/", echo)
	if broadcast != nil {
		mux.Handle("/broadcast", broadcast)
	}
	mux.Handle(stats.Path, stats.Handler(stats.Source{Conns: s.Conns.Len, Dropped: dropped}))
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}
	return s
}

// Serve serves ln until Close; it returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	err := s.srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close closes the listeners and the HTTP connections, then every upgraded
// connection, and waits for their goroutines.
func (s *Server) Close() error {
	err := s.srv.Close()
	s.Conns.Close()
	return err
}
