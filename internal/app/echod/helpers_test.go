package echod

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/session"
)

// testTimeout bounds every wait of a test that should take milliseconds.
const testTimeout = 10 * time.Second

// slack is how late a timeout may fire on a loaded machine (the tests share
// two cores with other work, under the race detector).
const slack = 5 * time.Second

// start serves a Server for cfg on a loopback port until the test ends.
// Unset timeouts are short, so that a test that goes wrong fails fast.
func start(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = 5 * time.Second
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 5 * time.Second
	}
	return serve(t, cfg)
}

// serve serves a Server for cfg as it is (its defaults are the daemon's) on
// cfg.Addr, a free loopback port when empty, until the test ends.
func serve(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	addr := cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := New(cfg)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
	})
	return s, ln.Addr().String()
}

// dial opens a client session to url; the test ends it if it is still
// open.
func dial(t *testing.T, url string, opts *session.Options) *session.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := session.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() {
		c.Cancel(session.Terminal, nil)
		<-c.Done()
		if c.Messages() != nil {
			for m := range c.Messages() {
				m.Release()
			}
		}
	})
	return c
}

// echo writes p as a message of type typ on c and checks that the same
// message comes back.
func echo(t *testing.T, c *session.Session, typ session.MessageType, p []byte) {
	t.Helper()
	if err := c.WriteContext(context.Background(), typ, p); err != nil {
		t.Fatalf("write %d bytes: %v", len(p), err)
	}
	select {
	case m, ok := <-c.Messages():
		if !ok {
			t.Fatalf("no echo of %d bytes: session ended: %v", len(p), c.Err())
		}
		defer m.Release()
		if m.Type != typ || !bytes.Equal(m.Payload, p) {
			t.Fatalf("echo of %s %d bytes: got %s %d bytes", typ, len(p), m.Type, len(m.Payload))
		}
	case <-time.After(testTimeout):
		t.Fatalf("no echo of %d bytes within %v", len(p), testTimeout)
	}
}

// closeClient runs the close handshake from c and checks that the server
// echoed code.
func closeClient(t *testing.T, c *session.Session, code codec.CloseCode, reason string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.CloseContext(ctx, session.CloseReason{Code: code, Reason: reason}); err != nil {
		t.Fatalf("close: %v", err)
	}
	<-c.Done()
	if got := session.CloseCode(c.Err()); got != code {
		t.Fatalf("session ended with %v (code %d), want the server to echo %d", c.Err(), got, code)
	}
}

// waitUntil waits until cond holds, checking it whenever the Server's set
// of sessions changes.
func waitUntil(t *testing.T, s *Server, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		s.mu.Lock()
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%s: not within %v", what, testTimeout)
		}
	}
}

// waitOpen waits until n sessions are open.
func waitOpen(t *testing.T, s *Server, n int64) {
	t.Helper()
	waitUntil(t, s, "sessions open", func() bool { return s.m.sessionsOpen.Value() == n })
}

// stats reads the Server's /debug/vars through its handler.
func stats(t *testing.T, s *Server) map[string]any {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/vars", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/debug/vars: %d %s", rec.Code, rec.Body)
	}
	var v map[string]any
	dec := json.NewDecoder(rec.Body)
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("/debug/vars: not JSON: %v", err)
	}
	return v
}

// statInt returns a numeric variable of v; key "a.b" reads b in object a.
// A key missing from an object reads 0.
func statInt(t *testing.T, v map[string]any, key string) int64 {
	t.Helper()
	var x any = v
	for part := range strings.SplitSeq(key, ".") {
		obj, ok := x.(map[string]any)
		if !ok {
			t.Fatalf("stat %s: %T is not an object", key, x)
		}
		if x, ok = obj[part]; !ok {
			return 0
		}
	}
	n, ok := x.(json.Number)
	if !ok {
		t.Fatalf("stat %s: %v (%T) is not a number", key, x, x)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatalf("stat %s: %v", key, err)
	}
	return i
}

// raw is a client that speaks bytes, for what a well-behaved client never
// sends.
type raw struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func rawDial(t *testing.T, addr string) *raw {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(testTimeout))
	return &raw{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// handshakeRequest is a valid opening handshake for path, with extra
// header lines.
func handshakeRequest(addr, path string, extra ...string) string {
	var b strings.Builder
	b.WriteString("GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\n")
	b.WriteString("Upgrade: websocket\r\nConnection: Upgrade\r\n")
	b.WriteString("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// request sends a raw HTTP request and reads the response head, and the
// body unless the status is 101.
func (r *raw) request(req string) (*http.Response, string) {
	r.t.Helper()
	r.write([]byte(req))
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil {
		r.t.Fatalf("read response: %v", err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return resp, ""
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// rawUpgrade opens a raw connection and completes the opening handshake.
func rawUpgrade(t *testing.T, addr, path string) *raw {
	t.Helper()
	r := rawDial(t, addr)
	if resp, body := r.request(handshakeRequest(addr, path)); resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %s %s", resp.Status, body)
	}
	return r
}

func (r *raw) write(b []byte) {
	r.t.Helper()
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

var testMask = [4]byte{0x1f, 0x2e, 0x3d, 0x4c}

// clientFrame encodes a masked frame, as a client must send it.
func clientFrame(fin bool, op ws.OpCode, p []byte) []byte {
	h := ws.Header{Fin: fin, OpCode: op, Masked: true, Mask: testMask, Length: int64(len(p))}
	var b bytes.Buffer
	ws.WriteHeader(&b, h)
	start := b.Len()
	b.Write(p)
	ws.Cipher(b.Bytes()[start:], testMask, 0)
	return b.Bytes()
}

// closeFrame encodes a client's close frame.
func closeFrame(code codec.CloseCode, reason string) []byte {
	return clientFrame(true, ws.OpClose, codec.AppendClosePayload(nil, code, reason))
}

// header64 encodes the header of a masked binary frame whose 64-bit
// length field holds n as it is, top bit included.
func header64(n uint64) []byte {
	b := []byte{0x82, 0x80 | 127}
	b = binary.BigEndian.AppendUint64(b, n)
	return append(b, testMask[:]...)
}

// frame reads one server frame.
func (r *raw) frame() (ws.Header, []byte, error) {
	h, err := ws.ReadHeader(r.br)
	if err != nil {
		return h, nil, err
	}
	if h.Masked {
		r.t.Fatalf("server frame is masked")
	}
	if h.Length > 32<<20 {
		r.t.Fatalf("server frame of %d bytes", h.Length)
	}
	p := make([]byte, h.Length)
	_, err = io.ReadFull(r.br, p)
	return h, p, err
}

// expectClose reads past pings to the server's close frame, checks its
// code and that the server then closes TCP, and returns the reason.
func (r *raw) expectClose(code codec.CloseCode) string {
	r.t.Helper()
	reason := r.expectCloseFrame(code)
	r.expectEOF()
	return reason
}

// expectCloseFrame reads past pings to the server's close frame, checks
// its code and returns the reason, leaving the connection open.
func (r *raw) expectCloseFrame(code codec.CloseCode) string {
	r.t.Helper()
	for {
		h, p, err := r.frame()
		if err != nil {
			r.t.Fatalf("want close %d, got %v", code, err)
		}
		switch h.OpCode {
		case ws.OpPing, ws.OpPong:
			continue
		case ws.OpClose:
		default:
			r.t.Fatalf("want close %d, got a %v frame of %d bytes", code, h.OpCode, len(p))
		}
		got, reason, err := codec.ParseClosePayload(p)
		if err != nil || got != code {
			r.t.Fatalf("close frame: code %d (%v), want %d", got, err, code)
		}
		return string(reason)
	}
}

// expectEOF checks that the server closes the connection, sending nothing
// more.
func (r *raw) expectEOF() {
	r.t.Helper()
	var b [1]byte
	n, err := r.br.Read(b[:])
	if n > 0 {
		r.t.Fatalf("want the connection closed, got more bytes: %q", b[:n])
	}
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		r.t.Fatalf("want the connection closed, got %v", err)
	}
}

// totalAlloc returns the bytes allocated by the process so far.
func totalAlloc() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

// logRecorder is a slog.Handler that keeps the records, for checking the
// log lines.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.records = append(l.records, r.Clone())
	l.mu.Unlock()
	return nil
}

func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// sessionEnds returns the attributes of every "session end" line.
func (l *logRecorder) sessionEnds() []map[string]slog.Value {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]slog.Value
	for _, r := range l.records {
		if r.Message != "session end" {
			continue
		}
		m := map[string]slog.Value{}
		r.Attrs(func(a slog.Attr) bool {
			m[a.Key] = a.Value
			return true
		})
		out = append(out, m)
	}
	return out
}
