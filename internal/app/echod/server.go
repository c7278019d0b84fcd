package echod

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/session"
)

// Server is the echo daemon: its HTTP handler, the sessions it serves, and
// its metrics. Create one with New; it serves through Handler or Serve
// until Shutdown.
type Server struct {
	cfg      Config
	log      *slog.Logger
	epoch    time.Time       // New's time: now counts from it
	echoOpts session.Options // every echo session's
	roomOpts session.Options // every room session's (/room/NAME, /broadcast)
	page     []byte
	selftest []byte
	rooms    *session.Rooms
	m        metrics

	// The sessions. conns changes under mu and is read without it.
	conns connTable

	mu       sync.Mutex
	open     int           // sessions registered and not yet removed from conns
	pending  int           // handshakes under way: slots reserved, not yet registered
	draining bool          // Shutdown began
	forced   bool          // Shutdown's deadline passed
	changed  chan struct{} // closed when the set of sessions changes, for waiters
	servers  []*http.Server
	fronts   []*front // Serve's, for plain HTTP/1.1
}

// goingAway is what Shutdown sends every session.
var goingAway = session.CloseReason{Code: codec.CloseGoingAway, Reason: "server shutting down"}

// New returns a Server for cfg, its zero fields set to their defaults. It
// starts nothing: serve its Handler, or call Serve.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:   cfg,
		log:   cfg.Logger,
		epoch: time.Now(),
	}
	opts := session.Options{
		OriginPatterns:   cfg.Origins,
		HandshakeTimeout: cfg.HandshakeTimeout,
		IdleTimeout:      cfg.IdleTimeout,
		WriteTimeout:     cfg.WriteTimeout,
		MessageTimeout:   cfg.MessageTimeout,
		MessageMinRate:   cfg.MessageMinRate,
		MaxMessageSize:   cfg.MaxMessage,
		MaxPendingBytes:  cfg.MaxPendingBytes,
	}
	if cfg.Compression {
		opts.Compression = &session.Compression{}
	}
	s.echoOpts = opts
	s.echoOpts.OnOpen = s.onEchoOpen
	s.echoOpts.OnMessage = s.onEcho
	s.echoOpts.OnClose = s.onEchoClose
	s.rooms = session.NewRooms(&session.RoomsOptions{
		Group:  session.GroupOptions{MaxBacklog: cfg.MaxPendingBytes},
		Broker: cfg.Broker,
	})
	s.roomOpts = opts
	s.roomOpts.OnOpen = s.onRoomOpen
	s.roomOpts.OnMessage = s.onRoom
	s.roomOpts.OnClose = s.onRoomClose
	s.page, s.selftest = renderPages(cfg.Path)
	s.initMetrics()
	return s
}

// Handler returns the Server's HTTP handler:
//
//   - Config.Path: the echo endpoint, or the page for a browser's plain GET
//   - /: the page (when Path is elsewhere)
//   - /selftest: the page a browser test loads
//   - /room/NAME: room NAME (every message to every member)
//   - /broadcast: the room "broadcast", with Config.Broadcast
//   - /healthz: 200 "ok" while the Server accepts sessions, 503 once
//     Shutdown began
//   - /debug/vars: the metrics as expvar's JSON, with ?gc=1 after a
//     garbage collection
//
// The echo endpoint comes first: a Path that names another route hides it.
//
// Over HTTP/2 the WebSocket endpoints take RFC 8441's extended CONNECT;
// session.Handler keeps each stream for its session (http2.go).
func (s *Server) Handler() http.Handler { return session.Handler(http.HandlerFunc(s.serveHTTP)) }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == s.cfg.Path:
		if wantsPage(r) {
			servePage(w, r, s.page)
			return
		}
		s.serveSession(w, r, &s.echoOpts, false)
	case p == "/broadcast" && s.cfg.Broadcast:
		s.serveRoom(w, r, broadcastRoom)
	case strings.HasPrefix(p, "/room/"):
		name, ok := roomName(p)
		if !ok {
			http.Error(w, "bad room name: /room/NAME, NAME 1-128 bytes of UTF-8 without '/'", http.StatusBadRequest)
			return
		}
		s.serveRoom(w, r, name)
	case p == "/":
		servePage(w, r, s.page)
	case p == "/selftest":
		servePage(w, r, s.selftest)
	case p == "/healthz":
		s.serveHealth(w, r)
	case p == "/debug/vars":
		s.serveVars(w, r)
	default:
		http.NotFound(w, r)
	}
}

// wantsPage reports whether r is a browser's plain GET (no Upgrade header,
// HTML accepted) rather than a WebSocket handshake or a client that wants
// to learn, with 426, that this is one.
func wantsPage(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		r.Header.Get("Upgrade") == "" &&
		strings.Contains(r.Header.Get("Accept"), "text/html")
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ok\n"))
}

// serveSession runs the opening handshake of one session and registers it.
// The request's goroutine returns once the session started: the session's
// own goroutines serve it.
func (s *Server) serveSession(w http.ResponseWriter, r *http.Request, opts *session.Options, broadcast bool) {
	if msg := s.reserve(); msg != "" {
		s.m.rejectedConns.Add(1)
		http.Error(w, msg, http.StatusServiceUnavailable)
		return
	}
	start := s.now()
	ss, err := session.Accept(w, r, opts)
	if err != nil {
		s.release()
		s.m.handshakeFailures.Add(1)
		s.log.Debug("handshake failed", "remote", r.RemoteAddr, "path", r.URL.Path, "err", err)
		return
	}
	s.countProtocol(r)
	s.register(ss, broadcast, start)
}

// reserve takes a session slot for a handshake, or says why there is none.
func (s *Server) reserve() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.draining:
		return "server shutting down"
	case s.cfg.MaxConns > 0 && s.pending+s.open >= s.cfg.MaxConns:
		return "too many connections"
	}
	s.pending++
	return ""
}

// release gives back the slot of a handshake that failed.
func (s *Server) release() {
	s.mu.Lock()
	s.pending--
	s.notifyLocked()
	s.mu.Unlock()
}

// register moves session ss, whose handshake began at start, from its
// handshake to the open sessions. Its end is accounted for by its OnClose,
// which may have run already. A session that arrives once Shutdown began is
// closed at once.
func (s *Server) register(ss *session.Session, broadcast bool, start time.Duration) {
	s.mu.Lock()
	c := s.connLocked(ss)
	c.start = start
	c.registered = true
	s.pending--
	s.open++
	s.m.sessionsOpen.Add(1)
	s.m.sessionsTotal.Add(1)
	if c.ended {
		s.removeLocked(ss, c)
	}
	draining, forced := s.draining, s.forced
	s.notifyLocked()
	s.mu.Unlock()
	switch {
	case forced:
		ss.Cancel(session.Terminal, nil)
	case draining:
		ss.Close(goingAway, nil)
	}
}

// now returns the time on the Server's clock, which counts from New, as a
// monotonic duration: 8 bytes in a record where a time.Time takes 24.
func (s *Server) now() time.Duration { return time.Since(s.epoch) }

// notifyLocked wakes the goroutines waiting for the set of sessions to
// change.
func (s *Server) notifyLocked() {
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
}

// waitIdle waits until no session is open or being opened, or until ctx is
// done.
func (s *Server) waitIdle(ctx context.Context) error {
	for {
		s.mu.Lock()
		if s.pending == 0 && s.conns.len() == 0 {
			s.mu.Unlock()
			return nil
		}
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Serve serves the Handler on ln until Shutdown, with TLS when
// Config.CertFile and KeyFile are set (HTTP/2 and HTTP/1.1 by ALPN); without,
// WebSocket upgrades are accepted by the front (front.go) and the rest
// served by net/http: HTTP/1.1 and, with Config.H2C, cleartext HTTP/2 (the
// front hands a connection that starts with HTTP/2's preface to net/http).
// Reading a request's headers is bounded by the handshake timeout from the
// moment the connection is accepted (for a head longer than the front's
// 4 KiB, from when net/http takes it over), and the headers by
// MaxHeaderBytes (431 beyond). It returns
// http.ErrServerClosed after Shutdown, or the error that stopped it.
func (s *Server) Serve(ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.cfg.HandshakeTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		Protocols:         s.protocols(),
	}
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	s.servers = append(s.servers, hs)
	s.mu.Unlock()
	if s.cfg.CertFile != "" || s.cfg.KeyFile != "" {
		return hs.ServeTLS(ln, s.cfg.CertFile, s.cfg.KeyFile)
	}
	f := newFront(s, ln, hs)
	s.mu.Lock()
	s.fronts = append(s.fronts, f)
	s.mu.Unlock()
	return f.serve()
}

// Shutdown stops the Server: it stops accepting (Serve's listeners close,
// /healthz answers 503, new handshakes get 503), sends close 1001 (going
// away) to every session, and waits for their closing handshakes and for
// Serve's plain HTTP requests, until ctx is done. Then the sessions and
// connections left are closed by force, and Shutdown returns ctx's error.
// It returns once every session has ended.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	first := !s.draining
	s.draining = true
	servers := slices.Clone(s.servers)
	open := s.openLocked()
	s.mu.Unlock()
	if first {
		s.log.Info("shutting down", "sessions", len(open))
	}

	httpDone := make(chan error, len(servers))
	for _, hs := range servers {
		go func() { httpDone <- hs.Shutdown(ctx) }()
	}
	for _, ss := range open {
		ss.Close(goingAway, nil)
	}
	err := s.waitIdle(ctx)
	if err != nil {
		s.mu.Lock()
		s.forced = true
		open = s.openLocked()
		s.mu.Unlock()
		s.log.Warn("shutdown deadline passed: closing the sessions left by force", "sessions", len(open))
		for _, ss := range open {
			ss.Cancel(session.Terminal, nil)
		}
		// Cancel(Terminal) ends a session at once; a handshake still under
		// way ends within the handshake timeout and is canceled as it
		// registers.
		s.waitIdle(context.Background())
	}
	for range servers {
		if e := <-httpDone; err == nil && e != nil && !errors.Is(e, http.ErrServerClosed) {
			err = e
		}
	}
	if err != nil {
		for _, hs := range servers {
			hs.Close()
		}
	}
	return err
}

// openLocked returns the registered sessions (register itself closes those
// still to come).
func (s *Server) openLocked() []*session.Session {
	open := make([]*session.Session, 0, s.open)
	for ss, c := range s.conns.all() {
		if c.registered {
			open = append(open, ss)
		}
	}
	return open
}
