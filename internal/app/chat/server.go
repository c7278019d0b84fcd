package chat

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wsactor/wsactor/session"
)

// Server is the chat server: its HTTP handler, its rooms and the names
// present in them. Create one with New; it serves through Handler or Serve
// until Shutdown.
type Server struct {
	cfg   Config
	log   *slog.Logger
	opts  session.Options // every session's
	rooms *session.Rooms
	page  []byte

	mu       sync.Mutex
	present  map[string]map[string]*member // room -> name -> member: the names taken
	sessions map[*session.Session]*member  // every session opened and not yet ended
	pending  int                           // handshakes under way
	draining bool                          // Shutdown began
	forced   bool                          // Shutdown's deadline passed
	changed  chan struct{}                 // closed when sessions or pending change, for waitIdle
	servers  []*http.Server
}

// member is a session's place in the chat, its session's value.
type member struct {
	s      *session.Session
	room   string
	name   string
	joined bool // in present and in the room; guarded by Server.mu

	// closing is set when the session was closed for what it sent; its
	// later messages are dropped. Only the session's reader (OnMessage)
	// touches it.
	closing bool
}

// goingAway is what Shutdown sends every session.
var goingAway = session.CloseReason{Code: session.CloseGoingAway, Reason: "server shutting down"}

// New returns a Server for cfg, its zero fields set to their defaults. It
// starts nothing: serve its Handler, or call Serve.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg: cfg,
		log: cfg.Logger,
		// See the package doc: a member that misses an event has a wrong
		// member list, so one that cannot keep up is closed instead.
		rooms: session.NewRooms(&session.RoomsOptions{
			Group:  session.GroupOptions{SlowPolicy: session.CloseSlow},
			Broker: cfg.Broker,
		}),
		page:     page,
		present:  make(map[string]map[string]*member),
		sessions: make(map[*session.Session]*member),
	}
	s.opts = session.Options{
		OriginPatterns:   cfg.Origins,
		HandshakeTimeout: cfg.HandshakeTimeout,
		MaxMessageSize:   cfg.MaxMessage,
		OnOpen:           s.onOpen,
		OnMessage:        s.onMessage,
		OnClose:          s.onClose,
	}
	return s
}

// Handler returns the Server's HTTP handler:
//
//   - /: the page, for browsers
//   - /ws?room=ROOM&name=NAME: the chat's WebSocket endpoint; a bad room or
//     name gets 400, a request during Shutdown 503, a request that is not a
//     WebSocket handshake the status session.Accept gives (426 for a plain
//     GET)
//   - /debug/vars: the counts, as JSON (see Vars)
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.servePage)
	mux.HandleFunc("GET /ws", s.serveWS)
	mux.HandleFunc("GET /debug/vars", s.serveVars)
	return mux
}

// Vars returns the Server's counts, by name: rooms and room_members now;
// since the start, broadcasts delivered to members (delivered), dropped
// (dropped) and members closed for being slow (slow_closed); with a
// broker, the says handed to it (broker_published), refused by it and so
// lost for the other servers (broker_lost), and delivered here from the
// other servers (broker_remote). Config.Vars adds its own.
func (s *Server) Vars() map[string]any {
	st := s.rooms.Stats()
	v := map[string]any{
		"rooms":            st.Rooms,
		"room_members":     st.Members,
		"delivered":        st.Delivered,
		"dropped":          st.Dropped,
		"slow_closed":      st.SlowClosed,
		"broker_published": st.Published,
		"broker_lost":      st.Lost,
		"broker_remote":    st.Remote,
	}
	for name, f := range s.cfg.Vars {
		v[name] = f()
	}
	return v
}

func (s *Server) serveVars(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	json.NewEncoder(w).Encode(s.Vars())
}

// joinKey is the request context key of the room and name asked for: the
// request's context is what Options.OnOpen gets.
type joinKey struct{}

type joinQuery struct{ room, name string }

// serveWS validates the query, runs the opening handshake and leaves the
// session to its OnOpen, which puts it in its room.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	room, ok := cleanName(q.Get("room"))
	if !ok {
		http.Error(w, "bad room: want 1 to 32 letters, digits, '-', '_' or '.'", http.StatusBadRequest)
		return
	}
	name, ok := cleanName(q.Get("name"))
	if !ok {
		http.Error(w, "bad name: want 1 to 32 letters, digits, '-', '_' or '.'", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	s.pending++
	s.mu.Unlock()

	ctx := context.WithValue(r.Context(), joinKey{}, joinQuery{room: room, name: name})
	_, err := session.Accept(w, r.WithContext(ctx), &s.opts)
	if err != nil {
		s.log.Debug("handshake failed", "remote", r.RemoteAddr, "err", err)
	}
	// OnOpen registered the session before Accept returned: waitIdle
	// never sees a gap between its handshake and its session.
	s.mu.Lock()
	s.pending--
	s.notifyLocked()
	s.mu.Unlock()
}

// onOpen gives the session its name, sends it the welcome, tells the room
// and puts the session in it: all under s.mu, so that joins and leaves are
// seen in one order by everyone. The welcome is queued before the session
// joins the room, so it comes before any event of the room; the joined
// event goes out before the join, so not to the newcomer itself.
func (s *Server) onOpen(ctx context.Context, ss *session.Session) {
	j, _ := ctx.Value(joinKey{}).(joinQuery)
	m := &member{s: ss, room: j.room}
	s.mu.Lock()
	select {
	case <-ss.Done():
		// Ended already (its OnClose may have run): nothing to undo later.
		s.mu.Unlock()
		return
	default:
	}
	s.sessions[ss] = m
	if s.draining {
		forced := s.forced
		s.mu.Unlock()
		if forced {
			ss.Cancel(session.Terminal, nil)
		} else {
			ss.Close(goingAway, nil)
		}
		return
	}
	names := s.present[j.room]
	if names == nil {
		names = make(map[string]*member)
		s.present[j.room] = names
	}
	m.name = uniqueName(j.name, func(n string) bool { return names[n] != nil })
	names[m.name] = m
	m.joined = true
	ss.SetValue(m)
	ss.WriteText(encode(welcome{Type: "welcome", Room: m.room, Name: m.name, Members: slices.Sorted(maps.Keys(names))}), nil)
	s.tellLocal(m.room, encode(presence{Type: "joined", Name: m.name}))
	// When the session has just ended, Join fails and its OnClose, waiting
	// for s.mu, takes the name back and sends "left".
	s.rooms.Join(m.room, ss)
	n := len(names)
	s.mu.Unlock()
	s.log.Info("joined", "room", m.room, "name", m.name, "asked", j.name, "members", n, "remote", ss.RemoteAddr().String())
}

// onMessage publishes a member's say to its room, or closes the session
// for a message that breaks the protocol.
func (s *Server) onMessage(ss *session.Session, msg session.Message) {
	defer msg.Release()
	m, _ := ss.Value().(*member)
	if m == nil || m.closing {
		return // opened during Shutdown, or closed for an earlier message
	}
	text, v := parseSay(msg.Type, msg.Payload)
	if v != nil {
		m.closing = true
		ss.Close(v.close, nil)
		s.log.Info("closed for a bad message", "room", m.room, "name", m.name, "code", int(v.close.Code), "why", v.detail)
		return
	}
	s.rooms.Publish(m.room, session.Text, saidAt(m.name, text, time.Now()))
	s.log.Debug("said", "room", m.room, "name", m.name, "runes", utf8.RuneCountInString(text))
}

// onClose takes the ended session's name back and tells its room. It runs
// on the session's actor, and waits only for s.mu, which is never held
// across anything that waits.
func (s *Server) onClose(ss *session.Session, err error) {
	s.mu.Lock()
	m := s.sessions[ss]
	if m == nil {
		s.mu.Unlock()
		return
	}
	delete(s.sessions, ss)
	var n int
	if m.joined {
		names := s.present[m.room]
		delete(names, m.name)
		n = len(names)
		if n == 0 {
			delete(s.present, m.room)
		}
		// ss has left the room already: the event goes to the others.
		s.tellLocal(m.room, encode(presence{Type: "left", Name: m.name}))
	}
	s.notifyLocked()
	s.mu.Unlock()
	if m.joined {
		s.log.Info("left", "room", m.room, "name", m.name, "members", n, "code", int(session.CloseCode(err)), "err", err)
	}
}

// tellLocal sends a presence event to the room's members on this server
// only: presence is each server's own, so that the members a welcome lists
// and the events that follow it always agree (with a broker, a room's
// joined and left events from other servers would name members that no
// welcome here listed).
func (s *Server) tellLocal(room string, p []byte) {
	if g := s.rooms.Get(room); g != nil {
		g.Broadcast(session.Text, p)
	}
}

func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	// The page needs nothing from elsewhere: say so to the browser.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'")
	if r.Method == http.MethodHead {
		return
	}
	w.Write(s.page)
}

// Serve serves the Handler on ln until Shutdown. Reading a request's
// headers is bounded by the handshake timeout, and the headers by
// MaxHeaderBytes. It returns http.ErrServerClosed after Shutdown, or the
// error that stopped it.
func (s *Server) Serve(ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.cfg.HandshakeTimeout,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	s.servers = append(s.servers, hs)
	s.mu.Unlock()
	return hs.Serve(ln)
}

// Shutdown stops the Server: it stops accepting (Serve's listeners close,
// new handshakes get 503), closes every member of every room with 1001
// (going away), and waits for their closing handshakes until ctx is done.
// Then the sessions left are closed by force, and Shutdown returns ctx's
// error. It returns once every session has ended.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	servers := slices.Clone(s.servers)
	n := len(s.sessions)
	s.mu.Unlock()
	s.log.Info("shutting down", "sessions", n)

	httpDone := make(chan error, len(servers))
	for _, hs := range servers {
		go func() { httpDone <- hs.Shutdown(ctx) }()
	}
	// Every session is in a room or closes itself: onOpen joins under
	// s.mu, and one that opens from now on sees draining.
	s.rooms.Close(goingAway)
	err := s.waitIdle(ctx)
	if err != nil {
		s.mu.Lock()
		s.forced = true
		left := slices.Collect(maps.Keys(s.sessions))
		s.mu.Unlock()
		s.log.Warn("shutdown deadline passed: closing the sessions left by force", "sessions", len(left))
		for _, ss := range left {
			ss.Cancel(session.Terminal, nil)
		}
		// Cancel(Terminal) ends a session at once; a handshake under way
		// ends within the handshake timeout, canceled by onOpen.
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

// notifyLocked wakes waitIdle.
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
		if s.pending == 0 && len(s.sessions) == 0 {
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
