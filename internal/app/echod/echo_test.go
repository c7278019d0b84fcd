package echod

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/session"
)

func TestEcho(t *testing.T) {
	logs := new(logRecorder)
	s, addr := start(t, Config{Logger: slog.New(logs)})
	c := dial(t, "ws://"+addr+"/", nil)

	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i*31 + 7)
	}
	msgs := []struct {
		name string
		typ  session.MessageType
		p    []byte
	}{
		{
			name: "text",
			typ:  session.Text,
			p:    []byte("héllo wörld"),
		},
		{
			name: "empty text",
			typ:  session.Text,
			p:    nil,
		},
		{
			name: "binary 0..255",
			typ:  session.Binary,
			p: func() []byte {
				b := make([]byte, 256)
				for i := range b {
					b[i] = byte(i)
				}
				return b
			}(),
		},
		{
			name: "binary 64 KiB",
			typ:  session.Binary,
			p:    big[:64<<10],
		},
		{
			name: "binary 3 MiB",
			typ:  session.Binary,
			p:    big,
		},
	}
	var bytesSent int64
	for _, m := range msgs {
		echo(t, c, m.typ, m.p)
		bytesSent += int64(len(m.p))
	}
	closeClient(t, c, codec.CloseNormalClosure, "bye")
	waitOpen(t, s, 0)

	v := stats(t, s)
	for _, want := range []struct {
		key string
		n   int64
	}{
		{"sessions_open", 0},
		{"conns", 0},
		{"sessions_total", 1},
		{"messages_in", int64(len(msgs))},
		{"messages_out", int64(len(msgs))},
		{"bytes_in", bytesSent},
		{"bytes_out", bytesSent},
		{"closes_by_code.1000", 1},
		{"protocol_errors", 0},
		{"handshake_failures", 0},
	} {
		if got := statInt(t, v, want.key); got != want.n {
			t.Errorf("%s = %d, want %d", want.key, got, want.n)
		}
	}

	ends := logs.sessionEnds()
	if len(ends) != 1 {
		t.Fatalf("%d session end lines, want 1", len(ends))
	}
	e := ends[0]
	if e["code"].Int64() != 1000 || e["reason"].String() != "bye" ||
		e["messages_in"].Int64() != int64(len(msgs)) || e["messages_out"].Int64() != int64(len(msgs)) ||
		e["remote"].String() == "" || e["duration"].Duration() <= 0 {
		t.Errorf("session end line: %v", e)
	}
}

// TestEchoPipelined sends many messages before reading any echo: the
// echo flow control must neither drop nor reorder them.
func TestEchoPipelined(t *testing.T) {
	s, addr := start(t, Config{})
	c := dial(t, "ws://"+addr+"/", &session.Options{InboundSize: 4096, MailboxSize: 4096})
	const n = 2000
	reply := make(chan session.Completion, n)
	payloads := make([][]byte, n)
	for i := range payloads {
		payloads[i] = bytes.Repeat([]byte{byte(i)}, i%700)
		c.WriteBinary(payloads[i], reply)
	}
	for i := range n {
		if comp := <-reply; comp.Err != nil {
			t.Fatalf("write %d: %v", i, comp.Err)
		}
	}
	for i := range n {
		m, ok := <-c.Messages()
		if !ok {
			t.Fatalf("echo %d: session ended: %v", i, c.Err())
		}
		if !bytes.Equal(m.Payload, payloads[i]) {
			t.Fatalf("echo %d: %d bytes, want %d", i, len(m.Payload), len(payloads[i]))
		}
		m.Release()
	}
	closeClient(t, c, codec.CloseNormalClosure, "")
	waitOpen(t, s, 0)
	if got := statInt(t, stats(t, s), "messages_out"); got != n {
		t.Errorf("messages_out = %d, want %d", got, n)
	}
}

func TestPingAnswered(t *testing.T) {
	_, addr := start(t, Config{})
	pongs := make(chan string, 1)
	c := dial(t, "ws://"+addr+"/", &session.Options{
		OnControl: func(_ *session.Session, op session.ControlOp, p []byte) {
			if op == session.ControlPong {
				pongs <- string(p)
			}
		},
	})
	c.Ping([]byte("are you there"), nil)
	select {
	case p := <-pongs:
		if p != "are you there" {
			t.Errorf("pong %q", p)
		}
	case <-time.After(testTimeout):
		t.Fatal("no pong")
	}
	closeClient(t, c, codec.CloseNormalClosure, "")
}

func TestClosesByCode(t *testing.T) {
	s, addr := start(t, Config{})
	for _, code := range []codec.CloseCode{1000, 4000, 4000, 1001} {
		c := dial(t, "ws://"+addr+"/", nil)
		echo(t, c, session.Text, []byte("x"))
		closeClient(t, c, code, "")
	}
	r := rawUpgrade(t, addr, "/")
	r.write(clientFrame(true, 0x3, nil)) // reserved opcode
	r.expectClose(codec.CloseProtocolError)
	waitOpen(t, s, 0)

	v := stats(t, s)
	for key, n := range map[string]int64{
		"closes_by_code.1000": 1,
		"closes_by_code.4000": 2,
		"closes_by_code.1001": 1,
		"closes_by_code.1002": 1,
		"protocol_errors":     1,
		"sessions_total":      5,
	} {
		if got := statInt(t, v, key); got != n {
			t.Errorf("%s = %d, want %d", key, got, n)
		}
	}
}

func TestBroadcast(t *testing.T) {
	s, addr := start(t, Config{Broadcast: true})
	url := "ws://" + addr + "/broadcast"
	clients := []*session.Session{dial(t, url, nil), dial(t, url, nil), dial(t, url, nil)}
	waitOpen(t, s, 3)
	if err := clients[0].WriteContext(context.Background(), session.Text, []byte("to all")); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		select {
		case m := <-c.Messages():
			if m.Type != session.Text || string(m.Payload) != "to all" {
				t.Errorf("client %d got %s %q", i, m.Type, m.Payload)
			}
			m.Release()
		case <-time.After(testTimeout):
			t.Fatalf("client %d got nothing", i)
		}
	}
	for _, c := range clients {
		closeClient(t, c, codec.CloseNormalClosure, "")
	}
	waitOpen(t, s, 0)
	v := stats(t, s)
	if in, out := statInt(t, v, "messages_in"), statInt(t, v, "messages_out"); in != 1 || out != 3 {
		t.Errorf("messages in %d, out %d; want 1, 3", in, out)
	}

	// Without Config.Broadcast there is no such endpoint.
	_, addr2 := start(t, Config{})
	resp, err := http.Get("http://" + addr2 + "/broadcast")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/broadcast without Config.Broadcast: %s", resp.Status)
	}
}

// TestWithHandshake: a client that sends a message, or a message and its
// close frame, with the handshake request is served and accounted for like
// any other, though the message reaches the session's handler, and the
// session may end, before the Server has registered the session.
func TestWithHandshake(t *testing.T) {
	for _, tc := range []struct {
		name      string
		path      string
		withClose bool // the close frame goes with the handshake too
	}{
		{
			name: "echo",
			path: "/",
		},
		{
			name:      "echo and close",
			path:      "/",
			withClose: true,
		},
		{
			name: "broadcast",
			path: "/broadcast",
		},
		{
			name:      "broadcast and close",
			path:      "/broadcast",
			withClose: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 50
			logs := new(logRecorder)
			s, addr := start(t, Config{Broadcast: true, Logger: slog.New(logs)})
			var first []byte
			first = append(first, handshakeRequest(addr, tc.path)...)
			first = append(first, clientFrame(true, ws.OpText, []byte("hi"))...)
			closing := closeFrame(codec.CloseNormalClosure, "bye")
			if tc.withClose {
				first = append(first, closing...)
			}
			for i := range n {
				r := rawDial(t, addr)
				r.write(first)
				resp, err := http.ReadResponse(r.br, nil)
				if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
					t.Fatalf("handshake %d: %v %v", i, resp, err)
				}
				// The answer to a message that came before the client's
				// close goes out before the session's close frame.
				if h, p, err := r.frame(); err != nil || h.OpCode != ws.OpText || string(p) != "hi" {
					t.Fatalf("session %d: got %v %q %v, want the text back", i, h.OpCode, p, err)
				}
				if !tc.withClose {
					r.write(closing)
				}
				r.expectClose(codec.CloseNormalClosure)
				r.nc.Close()
				// Out of the hub before the next one joins.
				waitUntil(t, s, "session registered and ended", func() bool {
					return s.m.sessionsTotal.Value() == int64(i+1) && s.m.sessionsOpen.Value() == 0
				})
			}
			v := stats(t, s)
			for _, want := range []struct {
				key string
				n   int64
			}{
				{"sessions_open", 0},
				{"sessions_total", n},
				{"messages_in", n},
				{"messages_out", n},
				{"bytes_in", 2 * n},
				{"bytes_out", 2 * n},
				{"closes_by_code.1000", n},
			} {
				if got := statInt(t, v, want.key); got != want.n {
					t.Errorf("%s = %d, want %d", want.key, got, want.n)
				}
			}
			ends := logs.sessionEnds()
			if len(ends) != n {
				t.Fatalf("%d session end lines, want %d", len(ends), n)
			}
			for _, e := range ends {
				if e["path"].String() != tc.path || e["code"].Int64() != 1000 || e["reason"].String() != "bye" ||
					e["messages_in"].Int64() != 1 || e["messages_out"].Int64() != 1 || e["duration"].Duration() <= 0 {
					t.Errorf("session end line: %v", e)
				}
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.conns.len() != 0 || s.open != 0 || s.pending != 0 {
				t.Errorf("%d records, %d open, %d pending left", s.conns.len(), s.open, s.pending)
			}
		})
	}
}

func TestPages(t *testing.T) {
	for _, tc := range []struct {
		name   string
		path   string // Config.Path
		get    string
		accept string
		status int
		want   string // in the body
	}{
		{
			name:   "browser at the endpoint",
			path:   "/",
			get:    "/",
			accept: "text/html,application/xhtml+xml,*/*;q=0.8",
			status: http.StatusOK,
			want:   `const path = "/";`,
		},
		{
			name:   "curl at the endpoint",
			path:   "/",
			get:    "/",
			accept: "*/*",
			status: http.StatusUpgradeRequired,
		},
		{
			name:   "self-test",
			path:   "/",
			get:    "/selftest",
			status: http.StatusOK,
			want:   `id="result"`,
		},
		{
			name:   "page at / with the endpoint elsewhere",
			path:   "/ws",
			get:    "/",
			accept: "*/*",
			status: http.StatusOK,
			want:   `const path = "/ws";`,
		},
		{
			name:   "curl at the endpoint elsewhere",
			path:   "/ws",
			get:    "/ws",
			status: http.StatusUpgradeRequired,
		},
		{
			name:   "unknown path",
			path:   "/",
			get:    "/nope",
			status: http.StatusNotFound,
		},
		{
			name:   "health",
			path:   "/",
			get:    "/healthz",
			status: http.StatusOK,
			want:   "ok",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Config{Path: tc.path, Logger: slog.New(slog.DiscardHandler)})
			req := httptest.NewRequest(http.MethodGet, tc.get, nil)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("GET %s: %d, want %d: %s", tc.get, rec.Code, tc.status, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), tc.want) {
				t.Errorf("GET %s: body lacks %q", tc.get, tc.want)
			}
			if tc.status == http.StatusUpgradeRequired && rec.Header().Get("Sec-WebSocket-Version") != "13" {
				t.Errorf("426 without Sec-WebSocket-Version: 13: %v", rec.Header())
			}
		})
	}
}

func TestDebugVars(t *testing.T) {
	s := New(Config{Logger: slog.New(slog.DiscardHandler)})
	for _, q := range []string{"/debug/vars", "/debug/vars?gc=1"} {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, q, nil))
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s: Content-Type %q", q, ct)
		}
	}
	v := stats(t, s)
	for _, key := range []string{
		"sessions_open", "sessions_total", "messages_in", "messages_out", "bytes_in", "bytes_out",
		"protocol_errors", "handshake_failures", "goroutines", "conns",
	} {
		if got := statInt(t, v, key); got < 0 {
			t.Errorf("%s = %d", key, got)
		}
	}
	for _, key := range []string{"rss_bytes", "heap_inuse_bytes", "stack_inuse_bytes", "goroutines"} {
		if statInt(t, v, key) <= 0 {
			t.Errorf("%s = %d, want more than 0", key, statInt(t, v, key))
		}
	}
	if _, ok := v["closes_by_code"].(map[string]any); !ok {
		t.Errorf("closes_by_code is %T, want an object", v["closes_by_code"])
	}
	for _, key := range []string{"cmdline", "memstats"} {
		if _, ok := v[key]; !ok {
			t.Errorf("expvar's %s missing", key)
		}
	}
}

func TestOrigin(t *testing.T) {
	_, addr := start(t, Config{Origins: []string{"*.allowed.example"}})
	for _, tc := range []struct {
		name   string
		origin string
		status int
	}{
		{
			name:   "own host",
			origin: "http://" + addr,
			status: http.StatusSwitchingProtocols,
		},
		{
			name:   "allowed by pattern",
			origin: "https://app.allowed.example",
			status: http.StatusSwitchingProtocols,
		},
		{
			name:   "not allowed",
			origin: "https://evil.example",
			status: http.StatusForbidden,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rawDial(t, addr)
			resp, body := r.request(handshakeRequest(addr, "/", "Origin: "+tc.origin))
			if resp.StatusCode != tc.status {
				t.Errorf("Origin %s: %s %s", tc.origin, resp.Status, body)
			}
			if resp.StatusCode == http.StatusSwitchingProtocols {
				r.write(closeFrame(1000, ""))
				r.expectClose(1000)
			}
		})
	}
}

// TestSessionOutlivesHandshakeTimeout: the deadlines of the header read
// must not stay on a hijacked connection.
func TestSessionOutlivesHandshakeTimeout(t *testing.T) {
	const hto = 200 * time.Millisecond
	_, addr := start(t, Config{HandshakeTimeout: hto})
	c := dial(t, "ws://"+addr+"/", nil)
	echo(t, c, session.Text, []byte("now"))
	<-time.After(3 * hto)
	echo(t, c, session.Text, []byte("later"))
	closeClient(t, c, codec.CloseNormalClosure, "")
}

// TestHandlerOnly runs the Server through its Handler alone, as the
// conformance suite does: Shutdown closes the sessions without Serve.
func TestHandlerOnly(t *testing.T) {
	s := New(Config{Logger: slog.New(slog.DiscardHandler)})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	c := dial(t, "ws"+strings.TrimPrefix(ts.URL, "http")+"/", nil)
	echo(t, c, session.Binary, []byte{1, 2, 3})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	<-c.Done()
	if code := session.CloseCode(c.Err()); code != codec.CloseGoingAway {
		t.Errorf("client ended with %v, want 1001", c.Err())
	}
}

func TestTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	_, addr := start(t, Config{CertFile: certFile, KeyFile: keyFile})
	tlsConf := &tls.Config{RootCAs: pool}
	c := dial(t, "wss://"+addr+"/", &session.Options{TLSConfig: tlsConf})
	echo(t, c, session.Text, []byte("secret"))
	closeClient(t, c, codec.CloseNormalClosure, "")

	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("https /healthz: %s %q", resp.Status, body)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key to files.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "wsechod test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestCompression: with Config.Compression the daemon negotiates
// permessage-deflate with a client that offers it, and echoes compressed
// messages; without it, it declines.
func TestCompression(t *testing.T) {
	for _, on := range []bool{true, false} {
		_, addr := start(t, Config{Compression: on})
		c := dial(t, "ws://"+addr+"/", &session.Options{Compression: &session.Compression{}})
		if c.Compressed() != on {
			t.Fatalf("Config.Compression %v: Compressed() = %v", on, c.Compressed())
		}
		echo(t, c, session.Text, bytes.Repeat([]byte("compress me "), 10_000))
		echo(t, c, session.Binary, []byte{1, 2, 3})
	}
}

// TestRooms: a session on /room/NAME gets every message of its room (the
// sender's own included) and nothing from other rooms; a bad name is 400;
// Shutdown closes the rooms' members with 1001.
func TestRooms(t *testing.T) {
	s, addr := start(t, Config{})
	a1 := dial(t, "ws://"+addr+"/room/a", nil)
	a2 := dial(t, "ws://"+addr+"/room/a", nil)
	b := dial(t, "ws://"+addr+"/room/b%20c", nil) // "b c"
	waitOpen(t, s, 3)
	waitUntil(t, s, "three members in two rooms", func() bool {
		st := s.rooms.Stats()
		return st.Members == 3 && st.Rooms == 2
	})
	ctx := context.Background()
	if err := a1.WriteContext(ctx, session.Text, []byte("to a")); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteContext(ctx, session.Text, []byte("to b c")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		c    *session.Session
		want string
	}{
		{a1, "to a"},
		{a2, "to a"},
		{b, "to b c"},
	} {
		select {
		case m := <-tc.c.Messages():
			if string(m.Payload) != tc.want {
				t.Errorf("got %q, want %q", m.Payload, tc.want)
			}
			m.Release()
		case <-time.After(testTimeout):
			t.Fatalf("no message, want %q", tc.want)
		}
	}
	// Two deliveries in room a, one in "b c"; none dropped or closed.
	v := stats(t, s)
	for key, want := range map[string]int64{"broadcast_delivered": 3, "broadcast_dropped": 0, "broadcast_slow_closed": 0} {
		if got := statInt(t, v, key); got != want {
			t.Errorf("/debug/vars %s = %d, want %d", key, got, want)
		}
	}
	if _, ok := v["broadcast_slow_closed"]; !ok {
		t.Error("/debug/vars has no broadcast_slow_closed")
	}
	select {
	case m := <-a2.Messages():
		t.Errorf("a member of room a got %q from another room", m.Payload)
		m.Release()
	case <-time.After(100 * time.Millisecond):
	}
	for _, path := range []string{"/room/", "/room/x/y"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %s, want 400", path, resp.Status)
		}
	}
	shutdownCtx, cancel := context.WithTimeout(ctx, testTimeout)
	defer cancel()
	go s.Shutdown(shutdownCtx)
	for _, c := range []*session.Session{a1, a2, b} {
		for m := range c.Messages() {
			m.Release()
		}
		if code := session.CloseCode(c.Err()); code != codec.CloseGoingAway {
			t.Errorf("a member ended with %v, want 1001", c.Err())
		}
	}
}
