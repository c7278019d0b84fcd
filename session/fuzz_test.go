package session

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzHandshake feeds arbitrary bytes to AcceptConn as an opening handshake
// request, with every negotiation turned on (subprotocols, origins,
// permessage-deflate). Nothing may panic or hang, and the answer is either
// 101 with a session, or an HTTP error status with ErrHandshake and no
// session.
func FuzzHandshake(f *testing.F) {
	const valid = "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	for _, seed := range []string{
		valid + "\r\n",
		valid + "Sec-WebSocket-Protocol: chat, superchat\r\n\r\n",
		valid + "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
		valid + "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10, permessage-deflate\r\n\r\n",
		valid + "Sec-WebSocket-Extensions: permessage-deflate; bogus=\"x\"\r\n\r\n",
		valid + "Origin: http://example.com\r\n\r\n",
		valid + "Origin: http://evil.example\r\n\r\n",
		strings.Replace(valid, "13", "8", 1) + "\r\n",
		strings.Replace(valid, "dGhlIHNhbXBsZSBub25jZQ==", "short", 1) + "\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\n\r\n",
		valid + "X-Long: " + strings.Repeat("a", 5000) + "\r\n\r\n",
		valid + "\r\n\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58",
		"",
	} {
		f.Add([]byte(seed))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ln.Close() })
	opts := &Options{
		HandshakeTimeout: 5 * time.Second, // reached only by a broken test: the client half-closes
		CloseTimeout:     time.Second,
		IdleTimeout:      -1,
		Subprotocols:     []string{"chat"},
		OriginPatterns:   []string{"*.example.org"},
		Compression:      &Compression{},
	}
	f.Fuzz(func(t *testing.T, req []byte) {
		accepted := acceptOne(ln, opts)
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		// Write and half-close on the side: the server may answer (and stop
		// reading) before the request is all in.
		go func() {
			conn.Write(req)
			conn.(*net.TCPConn).CloseWrite()
		}()
		resp, rerr := http.ReadResponse(bufio.NewReader(conn), nil)
		res := <-accepted
		if res.s != nil {
			defer func() {
				res.s.Cancel(Terminal, nil)
				<-res.s.Done()
			}()
		}
		switch {
		case res.err == nil:
			if rerr != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("a session, and the response %v, %v; want 101", resp, rerr)
			}
			if resp.Header.Get("Sec-WebSocket-Accept") == "" {
				t.Fatalf("101 without Sec-WebSocket-Accept")
			}
			if res.s.Compressed() != (resp.Header.Get("Sec-WebSocket-Extensions") != "") {
				t.Fatalf("Compressed() %v, response extensions %q", res.s.Compressed(), resp.Header.Get("Sec-WebSocket-Extensions"))
			}
		case !errors.Is(res.err, ErrHandshake):
			t.Fatalf("AcceptConn: %v, want an error wrapping ErrHandshake", res.err)
		case rerr == nil && (resp.StatusCode < 400 || resp.StatusCode > 599):
			t.Fatalf("handshake refused (%v) with status %d", res.err, resp.StatusCode)
		case rerr != nil && !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) && !isReset(rerr):
			// No answer at all is fine for a request that never ended.
			t.Fatalf("reading the refusal: %v", rerr)
		}
		if resp != nil {
			resp.Body.Close()
		}
	})
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && bytes.Contains([]byte(ne.Err.Error()), []byte("reset"))
}
