// Package wsactorgroup is wsactor's fan-out server, on the library's own
// broadcast: session.Accept from net/http, every session of /broadcast a
// member of one session.Group (added from Options.OnOpen, gone by itself
// when it ends), and every data message it receives sent to every member
// with Group.Broadcast, which copies the payload once into a prepared frame
// and queues it to each member without a copy. A member that does not keep
// up loses broadcasts (DropSlow, counted in the stats endpoint's "dropped")
// once its backlog is over MaxBacklog, and a member that does not read at
// all is cut by the write timeout. The echo endpoint at / is the idiomatic
// handler (WriteMessage of the message received), so that the servers'
// smoke tests check it as they check the others.
//
// wsechod -broadcast serves /broadcast with the daemon's own hub, not a
// Group; this server is the library's API as an application would use it.
package wsactorgroup

import (
	"context"
	"net/http"
	"time"

	"github.com/wsactor/wsactor/session"

	"github.com/wsactor/wsactor/bench/internal/servers/httpserve"
)

// Options configure a Server. The zero value is the benchmark
// configuration.
type Options struct {
	// MaxBacklog is the group's GroupOptions.MaxBacklog: the payload bytes a
	// member may have waiting before the broadcasts it cannot take are
	// dropped. Default 256 KiB: far more than a member that reads ever has
	// waiting, and a bound on what one that does not read holds.
	MaxBacklog int64
	// WriteTimeout is the broadcast sessions' Options.WriteTimeout: a member
	// whose socket takes nothing for that long is cut. Default 2 s.
	WriteTimeout time.Duration
}

// Server is the wsactor fan-out server.
type Server struct {
	*httpserve.Server
	group     *session.Group
	echoOpts  session.Options
	groupOpts session.Options
}

// New returns a Server with opts.
func New(opts Options) *Server {
	if opts.MaxBacklog <= 0 {
		opts.MaxBacklog = 256 << 10
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 2 * time.Second
	}
	s := &Server{
		group: session.NewGroup(&session.GroupOptions{
			MaxBacklog: opts.MaxBacklog,
			SlowPolicy: session.DropSlow,
		}),
	}
	s.echoOpts = session.Options{
		OriginPatterns: []string{"*"},
		OnOpen:         func(ctx context.Context, ss *session.Session) { s.opened(ctx, ss) },
		OnClose:        s.closed,
		OnMessage: func(ss *session.Session, m session.Message) {
			defer m.Release()
			_, _ = ss.WriteMessage(&m, nil)
		},
	}
	s.groupOpts = session.Options{
		OriginPatterns: []string{"*"},
		WriteTimeout:   opts.WriteTimeout,
		OnOpen: func(ctx context.Context, ss *session.Session) {
			if s.opened(ctx, ss) {
				s.group.Add(ss)
			}
		},
		OnClose: s.closed,
		OnMessage: func(_ *session.Session, m session.Message) {
			s.group.Broadcast(m.Type, m.Payload)
			m.Release()
		},
	}
	s.Server = httpserve.NewDropping(s.accept(&s.echoOpts), s.accept(&s.groupOpts), func() int64 {
		return int64(s.group.Stats().Dropped)
	})
	return s
}

func (s *Server) accept(opts *session.Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = session.Accept(w, r, opts)
	})
}

// closer lets the connection set end a session at once.
type closer struct{ s *session.Session }

func (c closer) Close() error {
	_, _ = c.s.Cancel(session.Terminal, nil)
	return nil
}

// opened counts the session in the server's set, or ends it when the server
// is closing; it reports whether the session was counted.
func (s *Server) opened(_ context.Context, ss *session.Session) bool {
	if !s.Conns.Add(closer{ss}) {
		return false
	}
	ss.SetValue(counted{})
	return true
}

// counted marks a session that Conns counts.
type counted struct{}

func (s *Server) closed(ss *session.Session, _ error) {
	if _, ok := ss.Value().(counted); ok {
		s.Conns.Done(closer{ss})
	}
}

// Group returns the group of /broadcast.
func (s *Server) Group() *session.Group { return s.group }
