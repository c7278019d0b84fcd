package wsload

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// testServer accepts loopback connections and serves each on its own
// goroutine until the test ends.
type testServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	from  map[string]int // connections accepted, by the client's IP address
	open  atomic.Int64   // connections being served
}

// sources returns how many connections came from each client address.
func (s *testServer) sources() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.from)
}

func startServer(t *testing.T, serve func(net.Conn)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf(
			"listen: %v",
			err,
		)
	}
	s := &testServer{ln: ln, conns: map[net.Conn]struct{}{}, from: map[string]int{}}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.from[c.RemoteAddr().(*net.TCPAddr).IP.String()]++
			s.mu.Unlock()
			s.open.Add(1)
			s.wg.Go(func() {
				defer func() {
					s.open.Add(-1)
					s.mu.Lock()
					delete(s.conns, c)
					s.mu.Unlock()
					c.Close()
				}()
				serve(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *testServer) url() string { return "ws://" + s.ln.Addr().String() + "/" }

// wsOptions change how the WebSocket echo server behaves.
type wsOptions struct {
	pingFirst  []byte // send this ping right after the handshake
	fragment   bool   // echo every message as two frames
	wrongOp    bool   // echo binary as text and text as binary
	closeAfter int    // close with closeCode after this many messages
	closeCode  ws.StatusCode
	pongs      chan []byte // receives the payload of every pong
}

// startWSEcho starts a WebSocket echo server built on gobwas/ws.
func startWSEcho(t *testing.T, o wsOptions) *testServer {
	t.Helper()
	return startServer(t, func(c net.Conn) {
		if _, err := ws.Upgrade(c); err != nil {
			return
		}
		if o.pingFirst != nil {
			if ws.WriteFrame(c, ws.NewPingFrame(o.pingFirst)) != nil {
				return
			}
		}
		control := wsutil.ControlFrameHandler(c, ws.StateServerSide)
		rd := &wsutil.Reader{Source: c, State: ws.StateServerSide, CheckUTF8: true, OnIntermediate: control}
		closed := false
		for n := 0; ; n++ {
			if o.closeAfter > 0 && n == o.closeAfter && !closed {
				closed = true
				body := ws.NewCloseFrameBody(o.closeCode, "enough")
				ws.WriteFrame(c, ws.NewCloseFrame(body))
			}
			h, err := rd.NextFrame()
			if err != nil {
				return
			}
			if h.OpCode == ws.OpPong && o.pongs != nil {
				p, _ := io.ReadAll(rd)
				o.pongs <- p
				n--
				continue
			}
			if h.OpCode.IsControl() {
				if control(h, rd) != nil {
					return
				}
				n--
				continue
			}
			p, err := io.ReadAll(rd)
			if err != nil {
				return
			}
			if o.closeAfter > 0 && n >= o.closeAfter {
				continue
			}
			op := h.OpCode
			if o.wrongOp {
				op ^= ws.OpText | ws.OpBinary
			}
			if o.fragment && len(p) > 1 {
				half := len(p) / 2
				if ws.WriteFrame(c, ws.NewFrame(op, false, p[:half])) != nil ||
					ws.WriteFrame(c, ws.NewFrame(ws.OpContinuation, true, p[half:])) != nil {
					return
				}
				continue
			}
			if wsutil.WriteServerMessage(c, op, p) != nil {
				return
			}
		}
	})
}

// startBroadcast starts a WebSocket server that sends every data message it
// receives to every connection, the sender included.
func startBroadcast(t *testing.T) *testServer {
	t.Helper()
	type peer struct {
		mu sync.Mutex
		c  net.Conn
	}
	var (
		mu    sync.Mutex
		peers = map[*peer]struct{}{}
	)
	return startServer(t, func(c net.Conn) {
		if _, err := ws.Upgrade(c); err != nil {
			return
		}
		me := &peer{c: c}
		mu.Lock()
		peers[me] = struct{}{}
		mu.Unlock()
		defer func() {
			mu.Lock()
			delete(peers, me)
			mu.Unlock()
		}()
		for {
			p, op, err := wsutil.ReadClientData(&lockedRW{c: c, mu: &me.mu})
			if err != nil {
				return
			}
			mu.Lock()
			for q := range peers {
				q.mu.Lock()
				wsutil.WriteServerMessage(q.c, op, p)
				q.mu.Unlock()
			}
			mu.Unlock()
		}
	})
}

// lockedRW reads from c freely and writes to it under mu, so that the
// control frames ReadClientData answers do not interleave with broadcasts.
type lockedRW struct {
	c  net.Conn
	mu *sync.Mutex
}

func (l *lockedRW) Read(p []byte) (int, error) { return l.c.Read(p) }

func (l *lockedRW) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.c.Write(p)
}

// startTCPEcho starts a length-prefixed echo server: it writes back every
// whole frame it has read, as is.
func startTCPEcho(t *testing.T) *testServer {
	t.Helper()
	return startServer(t, func(c net.Conn) {
		buf := make([]byte, 64<<10)
		have := 0
		for {
			n, err := c.Read(buf[have:])
			if err != nil {
				return
			}
			have += n
			end := 0
			for have-end >= 4 {
				flen := 4 + int(binary.BigEndian.Uint32(buf[end:]))
				if flen > len(buf) {
					return // larger than this test server handles
				}
				if have-end < flen {
					break
				}
				end += flen
			}
			if end > 0 {
				if _, err := c.Write(buf[:end]); err != nil {
					return
				}
				have = copy(buf, buf[end:have])
			}
		}
	})
}

// startStats serves a stats document whose figures grow with the open
// connections of s: rss 4096 and heap 1024 bytes each.
func startStats(t *testing.T, s *testServer, sawGC *atomic.Int64) string {
	t.Helper()
	h := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("gc") == "1" {
			sawGC.Add(1)
		}
		n := s.open.Load()
		json.NewEncoder(w).Encode(map[string]any{
			"rss_bytes":        1e6 + 4096*n,
			"heap_inuse_bytes": 5e5 + 1024*n,
			"goroutines":       3 + n,
			"cmdline":          []string{"test"},
		})
	}))
	t.Cleanup(h.Close)
	return h.URL + "/debug/vars"
}
