package echod

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// Frames a client sends right behind its request reach the session, on
// the echo endpoint and in a room, through the front's own upgrade.
func TestFrontPipelinedFrames(t *testing.T) {
	_, addr := start(t, Config{})
	for _, path := range []string{"/", "/room/pipelined", "/?query=1"} {
		t.Run(path, func(t *testing.T) {
			r := rawDial(t, addr)
			b := []byte(handshakeRequest(addr, path))
			for i := range 3 {
				b = append(b, clientFrame(true, ws.OpText, []byte(fmt.Sprint("pipelined ", i)))...)
			}
			r.write(b)
			resp, err := http.ReadResponse(r.br, nil)
			if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("handshake: %v, %v", resp, err)
			}
			for i := range 3 {
				h, p, err := r.frame()
				if err != nil || h.OpCode != ws.OpText || string(p) != fmt.Sprint("pipelined ", i) {
					t.Fatalf("echo %d: %v %q %v", i, h.OpCode, p, err)
				}
			}
		})
	}
}

// What is not a WebSocket upgrade on a WebSocket route goes to net/http,
// with the bytes the front read, and is served as before.
func TestFrontHandsOver(t *testing.T) {
	_, addr := start(t, Config{})
	for _, tc := range []struct {
		name   string
		req    string
		status int
		body   string // a part of the body
	}{
		{
			name:   "the page",
			req:    "GET / HTTP/1.1\r\nHost: " + addr + "\r\nAccept: text/html\r\n\r\n",
			status: http.StatusOK,
			body:   "<html",
		},
		{
			name:   "metrics",
			req:    "GET /debug/vars HTTP/1.1\r\nHost: " + addr + "\r\n\r\n",
			status: http.StatusOK,
			body:   `"rss_peak_bytes"`,
		},
		{
			name:   "health",
			req:    "GET /healthz HTTP/1.1\r\nHost: " + addr + "\r\n\r\n",
			status: http.StatusOK,
			body:   "ok",
		},
		{
			name:   "an upgrade elsewhere",
			req:    handshakeRequest(addr, "/nowhere"),
			status: http.StatusNotFound,
		},
		{
			name:   "a bad room name",
			req:    handshakeRequest(addr, "/room/"),
			status: http.StatusBadRequest,
		},
		{
			name:   "an escaped room name",
			req:    handshakeRequest(addr, "/room/a%20b"),
			status: http.StatusSwitchingProtocols,
		},
		{
			name:   "an absolute target",
			req:    handshakeRequest(addr, "http://"+addr+"/"),
			status: http.StatusSwitchingProtocols,
		},
		{
			name:   "an upgrade over HTTP/1.0",
			req:    strings.Replace(handshakeRequest(addr, "/"), "HTTP/1.1", "HTTP/1.0", 1),
			status: http.StatusHTTPVersionNotSupported,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rawDial(t, addr)
			resp, body := r.request(tc.req)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.body) {
				t.Fatalf("%s %.80q, want %d with %q", resp.Status, body, tc.status, tc.body)
			}
		})
	}

	t.Run("keep-alive", func(t *testing.T) {
		// The second request is read by net/http from the socket itself.
		r := rawDial(t, addr)
		for i := range 3 {
			resp, body := r.request("GET /healthz HTTP/1.1\r\nHost: " + addr + "\r\n\r\n")
			if resp.StatusCode != http.StatusOK || body != "ok\n" {
				t.Fatalf("request %d: %s %q", i, resp.Status, body)
			}
		}
		// Then an upgrade on the same connection: net/http's.
		resp, _ := r.request(handshakeRequest(addr, "/"))
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade after keep-alive requests: %s", resp.Status)
		}
		r.write(clientFrame(true, ws.OpBinary, []byte("after")))
		if h, p, err := r.frame(); err != nil || h.OpCode != ws.OpBinary || string(p) != "after" {
			t.Fatalf("echo: %v %q %v", h.OpCode, p, err)
		}
	})

	t.Run("HTTP/2 prior knowledge", func(t *testing.T) {
		// net/http answers the preface: with HTTP/1.1 only, an HTTP/1.1
		// error; with unencrypted HTTP/2 on, its SETTINGS frame. What
		// matters here is that net/http, not the front, answers.
		r := rawDial(t, addr)
		r.write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
		head := make([]byte, 10)
		if _, err := io.ReadFull(r.br, head); err != nil {
			t.Fatalf("no answer to the HTTP/2 preface: %v", err)
		}
		const settings = 0x4
		if !strings.HasPrefix(string(head), "HTTP/1.1 4") && !strings.HasPrefix(string(head), "HTTP/1.1 5") && head[3] != settings {
			t.Fatalf("answer to the HTTP/2 preface: %q", head)
		}
	})
}

// A client that never finishes its request head is cut at the handshake
// timeout, counted from the accept: silent, stopped halfway, or trickling
// a byte at a time.
func TestFrontSlowloris(t *testing.T) {
	const timeout = 300 * time.Millisecond
	_, addr := start(t, Config{HandshakeTimeout: timeout})
	head := handshakeRequest(addr, "/")
	for _, tc := range []struct {
		name    string
		prefix  string
		trickle bool
	}{
		{
			name: "silent",
		},
		{
			name:   "half a head",
			prefix: head[:len(head)/2],
		},
		{
			name:    "trickle",
			prefix:  head[:10],
			trickle: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rawDial(t, addr)
			began := time.Now()
			if tc.prefix != "" {
				r.write([]byte(tc.prefix))
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			if tc.trickle {
				wg.Go(func() {
					tick := time.NewTicker(20 * time.Millisecond)
					defer tick.Stop()
					for i := 10; i < len(head)-2; i++ {
						select {
						case <-stop:
							return
						case <-tick.C:
						}
						if _, err := r.nc.Write([]byte{head[i]}); err != nil {
							return
						}
					}
				})
			}
			_, err := io.ReadAll(r.br)
			close(stop)
			wg.Wait()
			// A reset is a close too: the trickle's last bytes were unread.
			if err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("want the connection closed, got %v", err)
			}
			if d := time.Since(began); d < timeout-50*time.Millisecond {
				t.Fatalf("closed after %v, before the handshake timeout of %v", d, timeout)
			}
			checkServing(t, addr)
		})
	}
}

// A storm of upgrades leaves no goroutine per session: the sessions start
// parked and the handshakes ran on the accept loop or on goroutines that
// ended with them.
func TestFrontStorm(t *testing.T) {
	const n = 300
	s, addr := start(t, Config{})
	before := runtime.NumGoroutine()
	conns := make([]*raw, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range conns {
		r := rawDial(t, addr)
		conns[i] = r
		wg.Go(func() {
			r.nc.Write([]byte(handshakeRequest(addr, "/")))
			resp, err := http.ReadResponse(r.br, nil)
			if err == nil && resp.StatusCode != http.StatusSwitchingProtocols {
				err = errors.New(resp.Status)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("handshake: %v", err)
	}
	waitOpen(t, s, n)
	// A few goroutines may still be on their way out; a reader per session
	// would be n.
	if g := runtime.NumGoroutine() - before; g > n/10 {
		t.Fatalf("%d goroutines more with %d idle sessions open", g, n)
	}
	// Every session still answers.
	for i, r := range conns {
		r.write(clientFrame(true, ws.OpText, []byte(fmt.Sprint(i))))
	}
	for i, r := range conns {
		if _, p, err := r.frame(); err != nil || string(p) != fmt.Sprint(i) {
			t.Fatalf("echo %d: %q %v", i, p, err)
		}
	}
}

// Shutdown ends the heads still being read at once, not at the handshake
// timeout, and Serve returns after them.
func TestFrontShutdownWhileReading(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{HandshakeTimeout: time.Minute, Logger: slog.New(slog.DiscardHandler)})
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	r := rawDial(t, ln.Addr().String())
	r.write([]byte("GET / HTTP/1.1\r\n"))
	eventually(t, "a head being read", testTimeout, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.fronts) == 0 {
			return false
		}
		f := s.fronts[0]
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.reading) == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve: %v, want http.ErrServerClosed", err)
	}
	r.expectEOF()
}
