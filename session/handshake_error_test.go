package session

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// shortTimeout is the handshake timeout or ctx deadline of the tests that
// wait for one to run out.
const shortTimeout = 100 * time.Millisecond

// bigBody is a 2 MiB response body whose bytes tell their offset apart.
var bigBody = bytes.Repeat([]byte("0123456789abcdef"), (2<<20)/16)

// httpServer serves h on loopback and returns its ws:// URL.
func httpServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/"
}

// rawServer accepts one connection on loopback, reads the handshake
// request, writes answer (nothing if it is empty), and then closes the
// connection, or with hold keeps it open until the test ends. It returns
// the server's ws:// URL.
func rawServer(t *testing.T, answer string, hold bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		if _, err := http.ReadRequest(bufio.NewReader(conn)); err != nil {
			return
		}
		if answer != "" {
			if _, err := io.WriteString(conn, answer); err != nil {
				return
			}
		}
		if hold {
			<-stop
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		close(stop)
		<-done
	})
	return "ws://" + ln.Addr().String() + "/"
}

// closedPort returns a ws:// URL on a loopback port nobody listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "ws://" + ln.Addr().String() + "/"
	ln.Close()
	return url
}

// dialFail dials url, which must fail, and returns its *HandshakeError
// after checking that it matches ErrHandshake and names the URL.
func dialFail(t *testing.T, ctx context.Context, url string, opts *Options) *HandshakeError {
	t.Helper()
	s, err := Dial(ctx, url, opts)
	if err == nil {
		endSession(t, s)
		t.Fatalf("Dial(%s) succeeded", url)
	}
	var he *HandshakeError
	if !errors.As(err, &he) {
		t.Fatalf("Dial = %v (%T), want a *HandshakeError", err, err)
	}
	if !errors.Is(err, ErrHandshake) {
		t.Errorf("Dial = %v, does not match ErrHandshake", err)
	}
	if he.URL != url || !strings.HasPrefix(err.Error(), "session: handshake failed: "+url+": ") {
		t.Errorf("Dial = %q (URL %q), want it to name %s", err, he.URL, url)
	}
	return he
}

// A server's answer other than 101 reaches the caller: status, headers,
// and at most 1 KiB of the body, whatever the body's length or framing.
func TestDialHandshakeErrorResponse(t *testing.T) {
	tests := []struct {
		name             string
		serve            func(t *testing.T) string
		handshakeTimeout time.Duration
		wantStatus       string
		wantHeader       http.Header
		wantBody         string
	}{
		{
			name: "403 with a header and a body",
			serve: func(t *testing.T) string {
				return httpServer(t, func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("X-Why", "no")
					w.WriteHeader(http.StatusForbidden)
					io.WriteString(w, "go away")
				})
			},
			wantStatus: "403 Forbidden",
			wantHeader: http.Header{"X-Why": {"no"}, "Content-Length": {"7"}},
			wantBody:   "go away",
		},
		{
			name: "2 MiB body with Content-Length",
			serve: func(t *testing.T) string {
				return httpServer(t, func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Length", strconv.Itoa(len(bigBody)))
					w.WriteHeader(http.StatusServiceUnavailable)
					w.Write(bigBody)
				})
			},
			wantStatus: "503 Service Unavailable",
			wantHeader: http.Header{"Content-Length": {strconv.Itoa(len(bigBody))}},
			wantBody:   string(bigBody[:maxResponseBody]),
		},
		{
			name: "2 MiB body chunked",
			serve: func(t *testing.T) string {
				return httpServer(t, func(w http.ResponseWriter, r *http.Request) {
					w.WriteHeader(http.StatusNotFound)
					w.Write(bigBody)
				})
			},
			wantStatus: "404 Not Found",
			wantHeader: http.Header{"Transfer-Encoding": nil},
			wantBody:   string(bigBody[:maxResponseBody]),
		},
		{
			name: "1 TiB declared, 5 bytes sent",
			serve: func(t *testing.T) string {
				return rawServer(t, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 1099511627776\r\nWWW-Authenticate: Basic\r\n\r\nshort", false)
			},
			wantStatus: "401 Unauthorized",
			wantHeader: http.Header{"Www-Authenticate": {"Basic"}},
			wantBody:   "short",
		},
		{
			name: "no length, connection held: what arrived within the handshake timeout",
			serve: func(t *testing.T) string {
				return rawServer(t, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n\r\npartial", true)
			},
			handshakeTimeout: shortTimeout,
			wantStatus:       "429 Too Many Requests",
			wantHeader:       http.Header{"Retry-After": {"7"}},
			wantBody:         "partial",
		},
		{
			name: "own reason phrase, no body",
			serve: func(t *testing.T) string {
				return rawServer(t, "HTTP/1.1 403 Go Away\r\nContent-Length: 0\r\nX-Why: no\r\nX-Why: really\r\n\r\n", true)
			},
			wantStatus: "403 Go Away",
			wantHeader: http.Header{"X-Why": {"no", "really"}},
			wantBody:   "",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.serve(t)
			opts := testOptions()
			if tc.handshakeTimeout > 0 {
				opts.HandshakeTimeout = tc.handshakeTimeout
			}
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			he := dialFail(t, ctx, url, opts)
			if want := "session: handshake failed: " + url + ": server answered " + tc.wantStatus; he.Error() != want {
				t.Errorf("Error() = %q, want %q", he.Error(), want)
			}
			if errors.Unwrap(he) != ErrHandshake {
				t.Errorf("Unwrap = %v, want ErrHandshake", errors.Unwrap(he))
			}
			resp := he.Response
			if resp == nil {
				t.Fatal("Response is nil")
			}
			code, _, _ := strings.Cut(tc.wantStatus, " ")
			if resp.Status != tc.wantStatus || strconv.Itoa(resp.StatusCode) != code || resp.Proto != "HTTP/1.1" {
				t.Errorf("Response: %s %q (%d), want HTTP/1.1 %q", resp.Proto, resp.Status, resp.StatusCode, tc.wantStatus)
			}
			for k, want := range tc.wantHeader {
				if got := resp.Header.Values(k); want == nil && len(got) != 0 || want != nil && !equalStrings(got, want) {
					t.Errorf("Header[%s] = %q, want %q", k, got, want)
				}
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("reading Body: %v", err)
			}
			if len(body) > maxResponseBody || string(body) != tc.wantBody {
				t.Errorf("Body: %d bytes %.40q..., want %d bytes %.40q...", len(body), body, len(tc.wantBody), tc.wantBody)
			}
			if err := resp.Body.Close(); err != nil {
				t.Errorf("Body.Close: %v", err)
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00") && len(a) == len(b)
}

// Every other failure is a *HandshakeError too, which wraps its cause.
func TestDialHandshakeErrorCause(t *testing.T) {
	tests := []struct {
		name             string
		serve            func(t *testing.T) string
		ctxTimeout       time.Duration // 0: no deadline
		handshakeTimeout time.Duration
		wantIs           []error
		wantStatus       int // 0: no Response
		wantHeader       http.Header
	}{
		{
			name:   "connection refused",
			serve:  closedPort,
			wantIs: []error{syscall.ECONNREFUSED},
		},
		{
			name: "ctx deadline, server silent",
			serve: func(t *testing.T) string {
				return rawServer(t, "", true)
			},
			ctxTimeout: shortTimeout,
			wantIs:     []error{context.DeadlineExceeded},
		},
		{
			name: "handshake timeout, ctx without deadline, server silent",
			serve: func(t *testing.T) string {
				return rawServer(t, "", true)
			},
			handshakeTimeout: shortTimeout,
			wantIs:           []error{context.DeadlineExceeded},
		},
		{
			name: "101 with a bad Sec-WebSocket-Accept",
			serve: func(t *testing.T) string {
				return rawServer(t, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Why: no\r\nSec-WebSocket-Accept: wrong\r\n\r\n", true)
			},
			wantIs:     []error{ws.ErrHandshakeBadSecAccept},
			wantStatus: http.StatusSwitchingProtocols,
			wantHeader: http.Header{"X-Why": {"no"}},
		},
		{
			name: "101 without Upgrade",
			serve: func(t *testing.T) string {
				return rawServer(t, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n", true)
			},
			wantIs:     []error{ws.ErrHandshakeBadUpgrade},
			wantStatus: http.StatusSwitchingProtocols,
			wantHeader: http.Header{},
		},
		{
			name: "connection closed before any answer",
			serve: func(t *testing.T) string {
				return rawServer(t, "", false)
			},
			wantIs: []error{io.EOF},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.serve(t)
			opts := testOptions()
			if tc.handshakeTimeout > 0 {
				opts.HandshakeTimeout = tc.handshakeTimeout
			}
			ctx := context.Background()
			if tc.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctxTimeout)
				defer cancel()
			}
			he := dialFail(t, ctx, url, opts)
			for _, target := range tc.wantIs {
				if !errors.Is(he, target) {
					t.Errorf("Dial = %v, does not match %v", he, target)
				}
			}
			if errors.Unwrap(he) == ErrHandshake {
				t.Errorf("Unwrap = ErrHandshake, want the cause")
			}
			resp := he.Response
			switch {
			case tc.wantStatus == 0 && resp != nil:
				t.Errorf("Response = %s, want none", resp.Status)
			case tc.wantStatus != 0 && resp == nil:
				t.Errorf("Response = nil, want %d", tc.wantStatus)
			case resp != nil:
				if resp.StatusCode != tc.wantStatus {
					t.Errorf("StatusCode = %d, want %d", resp.StatusCode, tc.wantStatus)
				}
				if len(resp.Header) != len(tc.wantHeader) {
					t.Errorf("Header = %q, want %q", resp.Header, tc.wantHeader)
				}
				for k, want := range tc.wantHeader {
					if got := resp.Header.Values(k); !equalStrings(got, want) {
						t.Errorf("Header[%s] = %q, want %q", k, got, want)
					}
				}
				if n, err := resp.Body.Read(make([]byte, 1)); n != 0 || err != io.EOF {
					t.Errorf("Body.Read = %d, %v; want an empty body", n, err)
				}
			}
		})
	}
}

// AcceptConn's handshake errors wrap their cause along with ErrHandshake.
func TestAcceptConnHandshakeErrorCause(t *testing.T) {
	tests := []struct {
		name    string
		request string
		wantIs  error
	}{
		{
			name:    "client silent",
			request: "",
			wantIs:  os.ErrDeadlineExceeded,
		},
		{
			name:    "POST",
			request: "POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
			wantIs:  ws.ErrHandshakeBadMethod,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			client, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { client.Close() })
			if _, err := io.WriteString(client, tc.request); err != nil {
				t.Fatal(err)
			}
			conn, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			opts := testOptions()
			opts.HandshakeTimeout = shortTimeout
			s, err := AcceptConn(conn, opts)
			if err == nil {
				endSession(t, s)
				t.Fatal("AcceptConn succeeded")
			}
			if !errors.Is(err, ErrHandshake) || !errors.Is(err, tc.wantIs) {
				t.Fatalf("AcceptConn = %v, want ErrHandshake wrapping %v", err, tc.wantIs)
			}
		})
	}
}
