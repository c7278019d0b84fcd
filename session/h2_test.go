package session

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	_ "github.com/wsactor/wsactor/xconnect" // RFC 8441 on in net/http's server
)

// h2Server serves h over HTTP/2 on loopback: cleartext (h2c, with
// HTTP/1.1 beside it) or TLS. It returns the ws:// or wss:// base URL, a
// client pool that trusts the server, and the number of TCP connections
// the server accepted so far.
func h2Server(t *testing.T, tlsOn bool, h http.Handler) (string, *HTTP2, *atomic.Int32) {
	t.Helper()
	conns := new(atomic.Int32)
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handler panics are tested
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	pool := new(HTTP2)
	scheme := "ws"
	if tlsOn {
		srv.EnableHTTP2 = true
		srv.StartTLS()
		roots := x509.NewCertPool()
		roots.AddCert(srv.Certificate())
		pool.TLSConfig = &tls.Config{RootCAs: roots}
		scheme = "wss"
	} else {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		srv.Config.Protocols = &p
		srv.Start()
	}
	t.Cleanup(func() {
		pool.CloseIdleConnections()
		srv.Close()
	})
	return scheme + strings.TrimPrefix(strings.TrimPrefix(srv.URL, "https"), "http"), pool, conns
}

// sessionsOf collects the sessions a server accepts and ends them when the
// test is over.
type sessionsOf struct {
	mu sync.Mutex
	ss []*Session
}

func (so *sessionsOf) add(t *testing.T, s *Session) {
	so.mu.Lock()
	so.ss = append(so.ss, s)
	so.mu.Unlock()
}

func (so *sessionsOf) end(t *testing.T) {
	so.mu.Lock()
	defer so.mu.Unlock()
	for _, s := range so.ss {
		s.Cancel(Terminal, nil)
		select {
		case <-s.Done():
		case <-time.After(testTimeout):
			t.Errorf("server session did not end")
			return
		}
	}
}

func TestExtendedConnectOn(t *testing.T) {
	if !ExtendedConnect() {
		t.Fatal("ExtendedConnect() = false with the xconnect package imported")
	}
}

func TestHTTP2Echo(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tls      bool
		compress bool
	}{
		{name: "h2c", tls: false},
		{name: "h2c/deflate", tls: false, compress: true},
		{name: "tls", tls: true},
		{name: "tls/deflate", tls: true, compress: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions()
			opts.Subprotocols = []string{"echo.v2", "echo"}
			if tc.compress {
				opts.Compression = &Compression{}
			}
			so := new(sessionsOf)
			t.Cleanup(func() { so.end(t) })
			var proto atomic.Value
			sopts := *opts
			sopts.Subprotocols = []string{"echo"}
			sopts.OnMessage = func(s *Session, m Message) { s.WriteMessage(&m, nil) }
			url, pool, _ := h2Server(t, tc.tls, Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				proto.Store(r.Proto)
				s, err := Accept(w, r, &sopts)
				if err != nil {
					t.Errorf("Accept: %v", err)
					return
				}
				so.add(t, s)
			})))
			opts.HTTP2 = pool
			c := dialSession(t, url+"/echo", opts)
			if got := proto.Load(); got != "HTTP/2.0" {
				t.Fatalf("the server saw %v, want HTTP/2.0", got)
			}
			if c.Subprotocol() != "echo" || c.Compressed() != tc.compress {
				t.Fatalf("subprotocol %q, compressed %v", c.Subprotocol(), c.Compressed())
			}
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			for _, size := range []int{0, 10, 5000, 300 << 10} {
				p := bytes.Repeat([]byte("wsactor "), size/8+1)[:size]
				if err := c.WriteContext(ctx, Binary, append([]byte(nil), p...)); err != nil {
					t.Fatal(err)
				}
				m, err := c.Read(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(m.Payload, p) {
					t.Fatalf("size %d: echo differs", size)
				}
				m.Release()
			}
			if err := c.CloseContext(ctx, CloseReason{Code: CloseNormalClosure}); err != nil {
				t.Fatalf("close: %v", err)
			}
			so.mu.Lock()
			s := so.ss[0]
			so.mu.Unlock()
			var ce *CloseError
			if err := awaitDone(t, s); !errors.As(err, &ce) || ce.Code != CloseNormalClosure || ce.Local {
				t.Fatalf("server session ended with %v, want the client's 1000", err)
			}
		})
	}
}

// TestHTTP2ManySessionsOneConnection: 100 sessions dialed through one pool
// share one TCP connection, each echoing its own messages.
func TestHTTP2ManySessionsOneConnection(t *testing.T) {
	const n = 100
	opts := testOptions()
	so := new(sessionsOf)
	t.Cleanup(func() { so.end(t) })
	sopts := *opts
	sopts.OnMessage = func(s *Session, m Message) { s.WriteMessage(&m, nil) }
	url, pool, conns := h2Server(t, false, Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s, err := Accept(w, r, &sopts); err == nil {
			so.add(t, s)
		}
	})))
	opts.HTTP2 = pool
	// The first session makes the connection; the others join it.
	first := dialSession(t, url, opts)
	clients := []*Session{first}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range n - 1 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			s, err := Dial(ctx, url, opts)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			clients = append(clients, s)
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, s := range clients[1:] {
		endSession(t, s)
	}
	if t.Failed() {
		return
	}
	for i, s := range clients {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			for j := range 10 {
				want := fmt.Sprintf("session %d message %d", i, j)
				if err := s.WriteContext(ctx, Text, []byte(want)); err != nil {
					t.Error(err)
					return
				}
				m, err := s.Read(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if string(m.Payload) != want {
					t.Errorf("got %q, want %q", m.Payload, want)
				}
				m.Release()
			}
			if err := s.CloseContext(ctx, CloseReason{Code: CloseNormalClosure}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := conns.Load(); got != 1 {
		t.Fatalf("%d sessions used %d TCP connections, want 1", n, got)
	}
}

// TestHTTP2CarelessHandlers: 100 handlers return right after Accept, the
// shape every HTTP/1.1 example has; their sessions write afterwards, and
// every message arrives whole and in order on the right session. Under
// -race, a write that touched the ResponseWriter after its handler
// returned would be reported.
func TestHTTP2CarelessHandlers(t *testing.T) {
	const n, msgs = 100, 20
	opts := testOptions()
	so := new(sessionsOf)
	t.Cleanup(func() { so.end(t) })
	returned := make(chan *Session, n)
	url, pool, _ := h2Server(t, false, Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := Accept(w, r, opts)
		if err != nil {
			t.Errorf("Accept: %v", err)
			return
		}
		so.add(t, s)
		defer func() { returned <- s }()
	})))
	var writers sync.WaitGroup
	writers.Go(func() {
		for range n {
			s := <-returned
			// The handler has returned: its session writes on its own.
			writers.Go(func() {
				name := r2name(s)
				for j := range msgs {
					s.WriteText(fmt.Appendf(nil, "%s %d %s", name, j, strings.Repeat("x", j*300)), nil)
				}
				s.Close(CloseReason{Code: CloseNormalClosure, Reason: name}, nil)
			})
		}
	})
	copts := testOptions()
	copts.HTTP2 = pool
	var readers sync.WaitGroup
	for range n {
		readers.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			c, err := Dial(ctx, url, copts)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.CloseNow()
			var name string
			for j := range msgs {
				m, err := c.Read(ctx)
				if err != nil {
					t.Errorf("message %d: %v", j, err)
					return
				}
				f := strings.Fields(string(m.Payload))
				m.Release()
				if j == 0 {
					name = f[0]
				}
				if len(f) < 2 || f[0] != name || f[1] != fmt.Sprint(j) || (j > 0 && len(f[2]) != j*300) {
					t.Errorf("message %d of %s reads %.40q", j, name, f)
					return
				}
			}
			var ce *CloseError
			if _, err := c.Read(ctx); !errors.As(err, &ce) || ce.Code != CloseNormalClosure || ce.Reason != name {
				t.Errorf("%s ended with %v, want its 1000", name, err)
			}
		})
	}
	readers.Wait()
	writers.Wait()
}

// r2name names a server session by its peer's address.
func r2name(s *Session) string { return s.RemoteAddr().String() + "/" + fmt.Sprintf("%p", s) }

// TestHTTP2NeedsHandler: without Handler, Accept refuses an HTTP/2
// WebSocket, loudly, and the client learns why.
func TestHTTP2NeedsHandler(t *testing.T) {
	errc := make(chan error, 1)
	url, pool, _ := h2Server(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := Accept(w, r, testOptions())
		if s != nil {
			s.CloseNow()
		}
		errc <- err
	}))
	opts := testOptions()
	opts.HTTP2 = pool
	_, err := Dial(context.Background(), url, opts)
	var he *HandshakeError
	if !errors.As(err, &he) || he.Response == nil || he.Response.StatusCode != http.StatusInternalServerError {
		t.Fatalf("Dial: %v, want a 500", err)
	}
	if err := <-errc; !errors.Is(err, ErrHTTP2Handler) || !errors.Is(err, ErrHandshake) {
		t.Fatalf("Accept: %v, want ErrHTTP2Handler", err)
	}
}

// TestHTTP2HandlerPanics: a handler that panics after Accept ends its
// session first; the client sees the stream end, the process goes on.
func TestHTTP2HandlerPanics(t *testing.T) {
	so := new(sessionsOf)
	t.Cleanup(func() { so.end(t) })
	url, pool, _ := h2Server(t, false, Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := Accept(w, r, testOptions())
		if err != nil {
			return
		}
		so.add(t, s)
		s.WriteText([]byte("before the panic"), nil)
		panic("the handler's bug")
	})))
	opts := testOptions()
	opts.HTTP2 = pool
	c := dialSession(t, url, opts)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for {
		m, err := c.Read(ctx)
		if err != nil {
			if CloseCode(err) == 0 || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("read: %v, want the session's end", err)
			}
			break
		}
		m.Release()
	}
	so.mu.Lock()
	s := so.ss[0]
	so.mu.Unlock()
	awaitDone(t, s)
}

// TestHTTP2Checks: the version, the origin and the protocol are checked as
// over HTTP/1.1.
func TestHTTP2Checks(t *testing.T) {
	url, pool, _ := h2Server(t, false, Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s, err := Accept(w, r, testOptions()); err == nil {
			s.CloseNow()
		}
	})))
	for _, tc := range []struct {
		name   string
		header http.Header
		status int
	}{
		{
			name:   "foreign origin",
			header: http.Header{"Origin": {"https://elsewhere.example"}},
			status: http.StatusForbidden,
		},
		{
			name:   "own origin",
			header: http.Header{"Origin": {"http://" + strings.TrimPrefix(url, "ws://")}},
			status: http.StatusOK,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions()
			opts.HTTP2 = pool
			opts.Header = tc.header
			s, err := Dial(context.Background(), url, opts)
			if tc.status == http.StatusOK {
				if err != nil {
					t.Fatal(err)
				}
				awaitDone(t, s)
				return
			}
			var he *HandshakeError
			if !errors.As(err, &he) || he.Response == nil || he.Response.StatusCode != tc.status {
				t.Fatalf("Dial: %v, want %d", err, tc.status)
			}
		})
	}
	// A CONNECT without the version, sent by hand.
	req, _ := http.NewRequest(http.MethodConnect, "http"+strings.TrimPrefix(url, "ws"), http.NoBody)
	req.Header.Set(":protocol", "websocket")
	resp, err := pool.roundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Sec-WebSocket-Version") != "13" {
		t.Fatalf("no version: %s %v", resp.Status, resp.Header)
	}
}

// TestHTTP2WriteTimeout: a client that reads nothing stops the server's
// writes once HTTP/2's flow control window is full; the session's write
// timeout ends it, as it ends one over TCP.
func TestHTTP2WriteTimeout(t *testing.T) {
	so := new(sessionsOf)
	t.Cleanup(func() { so.end(t) })
	opts := testOptions()
	opts.WriteTimeout = 200 * time.Millisecond
	accepted := make(chan *Session, 1)
	url, pool, _ := h2Server(t, false, Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := Accept(w, r, opts)
		if err != nil {
			return
		}
		so.add(t, s)
		p := make([]byte, 1<<20)
		for range 16 { // more than the client's 4 MiB window
			s.WriteBinary(p, nil)
		}
		accepted <- s
	})))
	rawStream(t, url, pool) // reads nothing, sends nothing
	var s *Session
	select {
	case s = <-accepted:
	case <-time.After(testTimeout):
		t.Fatal("no session")
	}
	if err := awaitDone(t, s); !errors.Is(err, ErrWriteTimeout) {
		t.Fatalf("ended with %v, want ErrWriteTimeout", err)
	}
}

// rawStream opens an extended CONNECT by hand and returns what the server
// sends and a writer for what the client sends.
func rawStream(t *testing.T, url string, pool *HTTP2) (io.Reader, *io.PipeWriter) {
	t.Helper()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	req, _ := http.NewRequest(http.MethodConnect, "http"+strings.TrimPrefix(url, "ws"), pr)
	req.Header.Set(":protocol", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	resp, err := pool.roundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("extended CONNECT: %s", resp.Status)
	}
	return resp.Body, pw
}

// TestHTTP2KeepAlive: over a stream the session's own timers keep the
// idle timeout: a ping at half of it, then close 1001 and the end of the
// stream, for a peer that answers nothing.
func TestHTTP2KeepAlive(t *testing.T) {
	so := new(sessionsOf)
	t.Cleanup(func() { so.end(t) })
	opts := testOptions()
	opts.IdleTimeout = 300 * time.Millisecond
	url, pool, _ := h2Server(t, false, Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s, err := Accept(w, r, opts); err == nil {
			so.add(t, s)
		}
	})))
	body, _ := rawStream(t, url, pool)
	var ops []string
	for {
		h, err := ws.ReadHeader(body)
		if err != nil {
			if err != io.EOF {
				t.Fatalf("after %v: %v, want the end of the stream", ops, err)
			}
			break
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(body, p); err != nil {
			t.Fatal(err)
		}
		switch h.OpCode {
		case ws.OpPing:
			ops = append(ops, "ping")
		case ws.OpClose:
			ops = append(ops, fmt.Sprintf("close %d", binary.BigEndian.Uint16(p)))
		default:
			ops = append(ops, fmt.Sprintf("opcode %d", h.OpCode))
		}
	}
	if strings.Join(ops, ", ") != "ping, close 1001" {
		t.Fatalf("the server sent %v, want a ping then close 1001", ops)
	}
	so.mu.Lock()
	s := so.ss[0]
	so.mu.Unlock()
	if err := awaitDone(t, s); !errors.Is(err, ErrIdleTimeout) {
		t.Fatalf("ended with %v, want ErrIdleTimeout", err)
	}
}

// TestHTTP2CancelTerminal: Cancel(Terminal) ends a session over a stream
// at once; the client sees the stream end.
func TestHTTP2CancelTerminal(t *testing.T) {
	accepted := make(chan *Session, 1)
	url, pool, _ := h2Server(t, false, Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s, err := Accept(w, r, testOptions()); err == nil {
			accepted <- s
		}
	})))
	opts := testOptions()
	opts.HTTP2 = pool
	c := dialSession(t, url, opts)
	s := <-accepted
	if err := s.CloseNow(); err != nil {
		t.Fatalf("CloseNow: %v", err)
	}
	if err := awaitDone(t, c); CloseCode(err) != 1006 {
		t.Fatalf("the client ended with %v, want the stream's end (1006)", err)
	}
}

// hiding wraps a ResponseWriter without Unwrap, as some middleware does.
type hiding struct{ http.ResponseWriter }

// TestHTTP2HiddenWriter: a ResponseWriter whose wrapper hides the stream's
// deadlines is refused at Accept, since nothing could stop a blocked
// write: loud, not a goroutine stuck forever.
func TestHTTP2HiddenWriter(t *testing.T) {
	errc := make(chan error, 1)
	url, pool, _ := h2Server(t, false, Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := Accept(hiding{w}, r, testOptions())
		if s != nil {
			s.CloseNow()
		}
		errc <- err
	})))
	opts := testOptions()
	opts.HTTP2 = pool
	_, err := Dial(context.Background(), url, opts)
	var he *HandshakeError
	if !errors.As(err, &he) || he.Response == nil || he.Response.StatusCode != http.StatusInternalServerError {
		t.Fatalf("Dial: %v, want a 500", err)
	}
	if err := <-errc; !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "Unwrap") {
		t.Fatalf("Accept: %v, want a handshake error naming Unwrap", err)
	}
}
