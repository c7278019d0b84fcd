package session

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/internal/netpoll"
)

// Accept answers a request that is no valid WebSocket handshake with the
// status that says what is wrong, and checks the Origin.
func TestAcceptStatus(t *testing.T) {
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	upgrade := func(extra ...string) http.Header {
		h := http.Header{
			"Connection":            {"Upgrade"},
			"Upgrade":               {"websocket"},
			"Sec-Websocket-Version": {"13"},
			"Sec-Websocket-Key":     {key},
		}
		for i := 0; i < len(extra); i += 2 {
			h.Set(extra[i], extra[i+1])
		}
		return h
	}
	tests := []struct {
		name        string
		header      http.Header
		sameOrigin  bool // set Origin to the server's own
		patterns    []string
		wantStatus  int
		wantVersion bool // the answer carries Sec-WebSocket-Version: 13
	}{
		{
			name:        "plain GET",
			header:      http.Header{},
			wantStatus:  http.StatusUpgradeRequired,
			wantVersion: true,
		},
		{
			name:        "upgrade to another protocol",
			header:      upgrade("Upgrade", "h2c"),
			wantStatus:  http.StatusUpgradeRequired,
			wantVersion: true,
		},
		{
			name:        "wrong version",
			header:      upgrade("Sec-WebSocket-Version", "8"),
			wantStatus:  http.StatusUpgradeRequired,
			wantVersion: true,
		},
		{
			name:       "malformed key",
			header:     upgrade("Sec-WebSocket-Key", "not base64!"),
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "key of the wrong length",
			header:     upgrade("Sec-WebSocket-Key", "c2hvcnQ="),
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "foreign origin",
			header:     upgrade("Origin", "https://evil.example.net"),
			wantStatus: http.StatusForbidden,
		},
		{
			name:       "foreign origin not matching the patterns",
			header:     upgrade("Origin", "https://evil.example.net"),
			patterns:   []string{"*.example.com"},
			wantStatus: http.StatusForbidden,
		},
		{
			name:       "origin allowed by a pattern",
			header:     upgrade("Origin", "https://app.example.com"),
			patterns:   []string{"*.example.com"},
			wantStatus: http.StatusSwitchingProtocols,
		},
		{
			name:       "same origin",
			header:     upgrade(),
			sameOrigin: true,
			wantStatus: http.StatusSwitchingProtocols,
		},
		{
			name:       "no origin",
			header:     upgrade(),
			wantStatus: http.StatusSwitchingProtocols,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions()
			opts.OriginPatterns = tc.patterns
			accepted := make(chan error, 1)
			var sess *Session
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s, err := Accept(w, r, opts)
				sess = s
				accepted <- err
			}))
			t.Cleanup(srv.Close)
			req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = tc.header.Clone()
			if tc.sameOrigin {
				req.Header.Set("Origin", srv.URL)
			}
			tr := &http.Transport{DisableKeepAlives: true}
			t.Cleanup(tr.CloseIdleConnections)
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			err = <-accepted
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d (Accept: %v)", resp.StatusCode, tc.wantStatus, err)
			}
			if tc.wantVersion && resp.Header.Get("Sec-WebSocket-Version") != "13" {
				t.Fatalf("426 without Sec-WebSocket-Version: 13: %v", resp.Header)
			}
			if tc.wantStatus == http.StatusSwitchingProtocols {
				if err != nil {
					t.Fatalf("Accept = %v", err)
				}
				// The client hung up: the session ends without a close frame.
				if err := awaitDone(t, sess); CloseCode(err) != codec.CloseAbnormalClosure {
					t.Fatalf("Err() = %v, want an abnormal closure", err)
				}
				endSession(t, sess)
				return
			}
			if !errors.Is(err, ErrHandshake) {
				t.Fatalf("Accept = %v, want ErrHandshake", err)
			}
		})
	}
}

// Subprotocol negotiation, with the session as server and as client: the
// server picks the first protocol the client offered that it supports.
func TestSubprotocol(t *testing.T) {
	tests := []struct {
		name   string
		role   codec.Role // the session's
		ours   []string
		theirs []string
		want   string
	}{
		{
			name:   "server/client's first choice",
			role:   codec.Server,
			ours:   []string{"v1.chat", "v2.chat"},
			theirs: []string{"v2.chat", "v1.chat"},
			want:   "v2.chat",
		},
		{
			name:   "server/only common one",
			role:   codec.Server,
			ours:   []string{"v1.chat"},
			theirs: []string{"v3.chat", "v1.chat"},
			want:   "v1.chat",
		},
		{
			name:   "server/none in common",
			role:   codec.Server,
			ours:   []string{"v1.chat"},
			theirs: []string{"v2.chat"},
			want:   "",
		},
		{
			name:   "server/none offered",
			role:   codec.Server,
			ours:   []string{"v1.chat"},
			theirs: nil,
			want:   "",
		},
		{
			name:   "client/server picks",
			role:   codec.Client,
			ours:   []string{"v2.chat", "v1.chat"},
			theirs: []string{"v1.chat"},
			want:   "v1.chat",
		},
		{
			name:   "client/none in common",
			role:   codec.Client,
			ours:   []string{"v2.chat"},
			theirs: []string{"v1.chat"},
			want:   "",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions()
			opts.Subprotocols = tc.ours
			s, p := openRaw(t, tc.role, opts, rawConfig{protocols: tc.theirs})
			if s.Subprotocol() != tc.want || p.protocol != tc.want {
				t.Fatalf("session chose %q, raw peer %q; want %q", s.Subprotocol(), p.protocol, tc.want)
			}
		})
	}
}

// Both ends made by this package agree on the subprotocol.
func TestSubprotocolSessionToSession(t *testing.T) {
	srvOpts := testOptions()
	srvOpts.Subprotocols = []string{"b", "c"}
	protocols := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := Accept(w, r, srvOpts)
		if err != nil {
			t.Error(err)
			return
		}
		protocols <- s.Subprotocol()
		endSession(t, s)
	}))
	t.Cleanup(srv.Close)
	opts := testOptions()
	opts.Subprotocols = []string{"a", "c", "b"}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), opts)
	if err != nil {
		t.Fatal(err)
	}
	endSession(t, c)
	if got := <-protocols; got != "c" || c.Subprotocol() != "c" {
		t.Fatalf("server chose %q, client sees %q; want \"c\"", got, c.Subprotocol())
	}
}

// Dial reports a refused handshake with the server's status.
func TestDialRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Accept(w, r, testOptions())
	}))
	t.Cleanup(srv.Close)
	opts := testOptions()
	opts.Header = http.Header{"Origin": {"https://elsewhere.example"}}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	s, err := Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), opts)
	if err == nil {
		endSession(t, s)
		t.Fatal("Dial succeeded against a foreign origin")
	}
	if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "403") {
		t.Fatalf("Dial = %v, want ErrHandshake naming 403", err)
	}
}

// AcceptConn checks the Origin too.
func TestAcceptConnOrigin(t *testing.T) {
	tests := []struct {
		name     string
		origin   string
		patterns []string
		wantOK   bool
	}{
		{
			name:   "foreign",
			origin: "https://elsewhere.example",
			wantOK: false,
		},
		{
			name:     "allowed by a pattern",
			origin:   "https://elsewhere.example",
			patterns: []string{"elsewhere.example"},
			wantOK:   true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ln := listen(t, rawConfig{})
			opts := testOptions()
			opts.OriginPatterns = tc.patterns
			accepted := acceptOne(ln, opts)
			dopts := testOptions()
			dopts.Header = http.Header{"Origin": {tc.origin}}
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			c, err := Dial(ctx, "ws://"+ln.Addr().String()+"/", dopts)
			res := <-accepted
			if res.s != nil {
				endSession(t, res.s)
			}
			if c != nil {
				endSession(t, c)
			}
			if tc.wantOK {
				if err != nil || res.err != nil {
					t.Fatalf("Dial = %v, AcceptConn = %v", err, res.err)
				}
				return
			}
			if !errors.Is(res.err, ErrHandshake) || !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "403") {
				t.Fatalf("AcceptConn = %v, Dial = %v; want both ErrHandshake, with 403", res.err, err)
			}
		})
	}
}

// Frames a client sends right behind its handshake request, in the same
// packet, are not lost by AcceptConn: they are the session's first bytes.
// Bare-LF line ends and a request split over many reads too.
func TestAcceptConnKeepsPipelinedFrames(t *testing.T) {
	for _, tc := range []struct {
		name  string
		eol   string
		chunk int // write the bytes in pieces of this size (0: at once)
	}{
		{name: "CRLF, one write", eol: "\r\n"},
		{name: "LF, one write", eol: "\n"},
		{name: "CRLF, 7-byte writes", eol: "\r\n", chunk: 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions()
			opts.OnMessage = func(s *Session, m Message) { s.WriteMessage(&m, nil) }
			ln := listen(t, rawConfig{})
			accepted := acceptOne(ln, opts)
			conn, err := net.DialTimeout("tcp", ln.Addr().String(), testTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			req := strings.Join([]string{
				"GET / HTTP/1.1", "Host: " + ln.Addr().String(), "Upgrade: websocket", "Connection: Upgrade",
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13", "", "",
			}, tc.eol)
			b := []byte(req)
			for i := range 3 {
				b = append(b, encodeFrame(textFrame(fmt.Sprint("pipelined ", i)), true)...)
			}
			go func() {
				for len(b) > 0 {
					n := len(b)
					if tc.chunk > 0 {
						n = min(n, tc.chunk)
					}
					if _, err := conn.Write(b[:n]); err != nil {
						return
					}
					b = b[n:]
				}
			}()
			expectPipelinedEchoes(t, "AcceptConn", <-accepted, conn)
		})
	}
}

// AcceptConnBuffered reads what the caller read first, wherever it stops:
// within the request line, at the end of the headers, inside a frame.
func TestAcceptConnBuffered(t *testing.T) {
	req := "GET / HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	b := []byte(req)
	for i := range 3 {
		b = append(b, encodeFrame(textFrame(fmt.Sprint("pipelined ", i)), true)...)
	}
	for _, tc := range []struct {
		name     string
		buffered int // bytes of b the caller read before AcceptConnBuffered
	}{
		{
			name:     "none",
			buffered: 0,
		},
		{
			name:     "part of the request line",
			buffered: 7,
		},
		{
			name:     "the request",
			buffered: len(req),
		},
		{
			name:     "the request and a frame and a half",
			buffered: len(req) + len(encodeFrame(textFrame("pipelined 0"), true)) + 5,
		},
		{
			name:     "everything",
			buffered: len(b),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions()
			opts.OnMessage = func(s *Session, m Message) { s.WriteMessage(&m, nil) }
			ln := listen(t, rawConfig{})
			accepted := make(chan accepted1, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					accepted <- accepted1{err: err}
					return
				}
				buf := make([]byte, tc.buffered)
				if _, err := io.ReadFull(c, buf); err != nil {
					c.Close()
					accepted <- accepted1{err: err}
					return
				}
				s, err := AcceptConnBuffered(context.Background(), c, buf, opts)
				clear(buf) // the caller keeps buf: the session copied what it needs
				accepted <- accepted1{s, err}
			}()
			conn, err := net.DialTimeout("tcp", ln.Addr().String(), testTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write(b); err != nil {
				t.Fatal(err)
			}
			expectPipelinedEchoes(t, "AcceptConnBuffered", <-accepted, conn)
		})
	}
}

// expectPipelinedEchoes checks what a session accepted by how (res) did
// with the three frames the client pipelined behind its request on conn:
// the handshake's 101, then the three echoed in order.
func expectPipelinedEchoes(t *testing.T, how string, res accepted1, conn net.Conn) {
	t.Helper()
	if res.err != nil {
		t.Fatalf("%s: %v", how, res.err)
	}
	endSession(t, res.s)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v, %v", resp, err)
	}
	p := &rawPeer{conn: conn, src: br, client: true}
	for i := range 3 {
		if f := p.mustRead(t); string(f.payload) != fmt.Sprint("pipelined ", i) {
			t.Fatalf("echo %d: %v", i, f)
		}
	}
}

// A session accepted on a TCP socket with nothing to read yet starts
// parked: no reader goroutine until its peer sends, whatever ParkAfter.
func TestAcceptedSessionStartsParked(t *testing.T) {
	if !netpoll.Supported() {
		t.Skip("parking needs Linux")
	}
	opts := testOptions()
	opts.ParkAfter = time.Hour
	opts.OnMessage = func(s *Session, m Message) { s.WriteMessage(&m, nil) }
	ln := listen(t, rawConfig{})
	accepted := acceptOne(ln, opts)
	c, err := Dial(context.Background(), "ws://"+ln.Addr().String()+"/", &Options{ParkAfter: -1, HandshakeTimeout: testTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		c.Cancel(Terminal, nil)
		<-c.Done()
		for range c.Messages() {
		}
	}()
	res := <-accepted
	if res.err != nil {
		t.Fatal(res.err)
	}
	endSession(t, res.s)
	if n := netpoll.Shared().Parked(); n != 1 {
		t.Fatalf("%d sessions parked after the handshake, want 1", n)
	}
	for i := range 3 {
		if err := c.WriteContext(context.Background(), Text, []byte(fmt.Sprint("hello ", i))); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-c.Messages():
			if string(m.Payload) != fmt.Sprint("hello ", i) {
				t.Fatalf("echo %d: %q", i, m.Payload)
			}
			m.Release()
		case <-time.After(testTimeout):
			t.Fatalf("no echo %d from a session that started parked", i)
		}
	}
}

// A request head over 64 KiB gets 431 and an error, whether in many lines
// or in one (gobwas/ws would gather a line of any length).
func TestAcceptConnHeadTooLarge(t *testing.T) {
	for _, tc := range []struct {
		name string
		pad  string
	}{
		{
			name: "many header lines",
			pad:  strings.Repeat("X-Pad: "+strings.Repeat("p", 1000)+"\r\n", 2048),
		},
		{
			name: "one long header line",
			pad:  "X-Pad: " + strings.Repeat("p", 2<<20) + "\r\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln := listen(t, rawConfig{})
			accepted := acceptOne(ln, testOptions())
			conn, err := net.DialTimeout("tcp", ln.Addr().String(), testTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			req := "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + tc.pad + "\r\n"
			sent := make(chan int, 1)
			go func() {
				n := 0
				for n < len(req) {
					k, err := conn.Write([]byte(req[n:min(n+16<<10, len(req))]))
					n += k
					if err != nil {
						break
					}
				}
				sent <- n
			}()
			res := <-accepted
			if !errors.Is(res.err, ErrHandshake) {
				t.Fatalf("AcceptConn = %v, want ErrHandshake", res.err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("response %v, %v; want 431", resp, err)
			}
			conn.Close()
			<-sent
		})
	}
}
