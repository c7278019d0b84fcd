// Package gwsecho is the echo server on lxzan/gws, event-driven as its
// README's "Best Practice" shows: gws.NewUpgrader with an event handler,
// ParallelEnabled (the README's setting; -parallel=false turns it off),
// gws.Recovery, compression off, the upgraded socket's ReadLoop on its own
// goroutine, and OnMessage writing the message back with WriteMessage
// before closing it (returning its buffer to gws's pool). Pings are answered
// with a pong in OnPing as the README does. Broadcast uses gws.NewBroadcaster,
// which frames a message once and queues it on every connection.
package gwsecho

import (
	"net/http"
	"sync"

	"github.com/lxzan/gws"

	"github.com/wsactor/wsactor/bench/internal/servers/httpserve"
)

// Options configure a Server.
type Options struct {
	// Parallel sets gws's ParallelEnabled: messages of one connection are
	// handled on up to ParallelGolimit (8) goroutines, so replies may leave
	// in another order than the requests came.
	Parallel bool
}

// Server is the gws echo server.
type Server struct {
	*httpserve.Server
	echoUp  *gws.Upgrader
	bcastUp *gws.Upgrader
	bcast   *broadcastHandler
}

// New returns a Server.
func New(opts Options) *Server {
	s := &Server{bcast: &broadcastHandler{}}
	option := func() *gws.ServerOption {
		return &gws.ServerOption{
			ParallelEnabled:   opts.Parallel,
			Recovery:          gws.Recovery,
			PermessageDeflate: gws.PermessageDeflate{Enabled: false},
		}
	}
	s.echoUp = gws.NewUpgrader(echoHandler{}, option())
	s.bcastUp = gws.NewUpgrader(s.bcast, option())
	s.Server = httpserve.New(s.serve(s.echoUp), s.serve(s.bcastUp))
	return s
}

func (s *Server) serve(up *gws.Upgrader) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		socket, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		nc := socket.NetConn()
		if !s.Conns.Add(nc) {
			return
		}
		go func() {
			defer s.Conns.Done(nc)
			socket.ReadLoop()
		}()
	})
}

// echoHandler echoes every message.
type echoHandler struct{ gws.BuiltinEventHandler }

func (echoHandler) OnPing(socket *gws.Conn, payload []byte) {
	_ = socket.WritePong(payload)
}

func (echoHandler) OnMessage(socket *gws.Conn, message *gws.Message) {
	defer message.Close()
	_ = socket.WriteMessage(message.Opcode, message.Bytes())
}

// broadcastHandler sends every message to every connection of the
// broadcast endpoint.
type broadcastHandler struct {
	gws.BuiltinEventHandler
	mu    sync.RWMutex
	conns map[*gws.Conn]struct{}
}

func (h *broadcastHandler) OnOpen(socket *gws.Conn) {
	h.mu.Lock()
	if h.conns == nil {
		h.conns = make(map[*gws.Conn]struct{})
	}
	h.conns[socket] = struct{}{}
	h.mu.Unlock()
}

func (h *broadcastHandler) OnClose(socket *gws.Conn, err error) {
	h.mu.Lock()
	delete(h.conns, socket)
	h.mu.Unlock()
}

func (h *broadcastHandler) OnPing(socket *gws.Conn, payload []byte) {
	_ = socket.WritePong(payload)
}

func (h *broadcastHandler) OnMessage(socket *gws.Conn, message *gws.Message) {
	defer message.Close()
	// The Broadcaster frames the payload (a copy) on its first Broadcast
	// call, so the message can be closed when this returns.
	b := gws.NewBroadcaster(message.Opcode, message.Bytes())
	h.mu.RLock()
	for c := range h.conns {
		_ = b.Broadcast(c)
	}
	h.mu.RUnlock()
	_ = b.Close()
}
