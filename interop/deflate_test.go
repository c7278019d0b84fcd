package interop

import (
	"bytes"
	"io"
	"strings"
	"testing"

	coder "github.com/coder/websocket"
	"github.com/gorilla/websocket"
	"github.com/wsactor/wsactor/session"
)

// TestCompressedEcho: a wsactor server with Options.Compression negotiates
// permessage-deflate with gorilla and coder clients that offer it (coder in
// both of its modes: its context-takeover offer gets no context takeover),
// and echoes messages both ways compressed, large and small, text and
// binary.
func TestCompressedEcho(t *testing.T) {
	msgs := []struct {
		typ session.MessageType
		p   []byte
	}{
		{session.Text, bytes.Repeat([]byte("compressible text "), 20_000)},
		{session.Binary, payload(session.Binary, 100_000, 7)},
		{session.Text, []byte("short")},
		{session.Binary, nil},
		{session.Text, bytes.Repeat([]byte("aé€😀"), 3000)},
	}
	type client struct {
		name string
		dial func(t *testing.T, url string) (peerConn, string)
	}
	clients := []client{
		{"gorilla", func(t *testing.T, url string) (peerConn, string) {
			d := websocket.Dialer{EnableCompression: true}
			c, resp, err := d.DialContext(testContext(t), url, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return &gorillaConn{c: c}, resp.Header.Get("Sec-WebSocket-Extensions")
		}},
	}
	for name, mode := range map[string]coder.CompressionMode{
		"no-context-takeover": coder.CompressionNoContextTakeover,
		"context-takeover":    coder.CompressionContextTakeover,
	} {
		clients = append(clients, client{"coder/" + name, func(t *testing.T, url string) (peerConn, string) {
			c, resp, err := coder.Dial(testContext(t), url, &coder.DialOptions{CompressionMode: mode, CompressionThreshold: 1})
			if err != nil {
				t.Fatal(err)
			}
			c.SetReadLimit(-1)
			t.Cleanup(func() { c.CloseNow() })
			return &coderConn{c: c}, resp.Header.Get("Sec-WebSocket-Extensions")
		}})
	}
	for _, cl := range clients {
		t.Run(cl.name, func(t *testing.T) {
			srv := startWsactorServerWith(t, session.Options{Compression: &session.Compression{}})
			c, ext := cl.dial(t, srv.URL)
			s := srv.next(t)
			if !s.Compressed() || !strings.Contains(ext, "permessage-deflate") {
				t.Fatalf("not negotiated: Compressed() %v, response %q", s.Compressed(), ext)
			}
			ctx := testContext(t)
			for i, m := range msgs {
				if err := c.write(ctx, m.typ, m.p); err != nil {
					t.Fatalf("message %d: write: %v", i, err)
				}
				typ, got, err := c.read(ctx)
				if err != nil {
					t.Fatalf("message %d: read: %v", i, err)
				}
				if typ != m.typ || !bytes.Equal(got, m.p) {
					t.Fatalf("message %d: %v of %d bytes back, want %v of %d", i, typ, len(got), m.typ, len(m.p))
				}
			}
			// A message the server streams with NewWriter, compressed as
			// it is written.
			want := bytes.Repeat([]byte("streamed, compressed "), 100_000)
			errc := make(chan error, 1)
			go func() {
				w := s.NewWriter(ctx, session.Text)
				_, err := io.Copy(w, bytes.NewReader(want))
				if cerr := w.Close(); err == nil {
					err = cerr
				}
				errc <- err
			}()
			typ, got, err := c.read(ctx)
			if err != nil || typ != session.Text || !bytes.Equal(got, want) {
				t.Fatalf("streamed message: %v of %d bytes, %v; want text of %d", typ, len(got), err, len(want))
			}
			if err := <-errc; err != nil {
				t.Fatalf("streaming: %v", err)
			}
			if code, err := c.closeHandshake(1000, "done"); err != nil || code != 1000 {
				t.Fatalf("close: %d, %v", code, err)
			}
		})
	}
}
