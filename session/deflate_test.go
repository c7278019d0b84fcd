package session

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/internal/bufpool"
)

func compressedOptions() *Options {
	o := testOptions()
	o.Compression = &Compression{}
	return o
}

// Two wsactor sessions that both want compression negotiate it, and every
// message comes back whole: sizes around the threshold, compressible and
// not, text and binary, whole and fragmented.
func TestCompressionRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	random := make([]byte, 200_000)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	for _, fragment := range []int{0, 1000} {
		t.Run(fmt.Sprintf("fragment %d", fragment), func(t *testing.T) {
			srv := compressedOptions()
			srv.FragmentSize = fragment
			url := echoServer(t, srv)
			opts := compressedOptions()
			opts.FragmentSize = fragment
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			s := dialSession(t, url, opts)
			if !s.Compressed() {
				t.Fatal("permessage-deflate not negotiated")
			}
			msgs := [][]byte{
				nil,
				[]byte("short"),
				bytes.Repeat([]byte("a"), 127),
				bytes.Repeat([]byte("b"), 128),
				bytes.Repeat([]byte("compressible text, "), 5000),
				random[:1000],
				random,
				make([]byte, 1<<20),
			}
			for i, p := range msgs {
				typ := Binary
				if i%2 == 0 && i != 5 && i != 6 {
					typ = Text
				}
				if err := s.WriteContext(ctx, typ, p); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				select {
				case m := <-s.Messages():
					if m.Type != typ || !bytes.Equal(m.Payload, p) {
						t.Fatalf("message %d: %v of %d bytes back, want %v of %d", i, m.Type, len(m.Payload), typ, len(p))
					}
					m.Release()
				case <-ctx.Done():
					t.Fatalf("message %d: no echo", i)
				}
			}
		})
	}
}

// Compression is used only when both ends want it.
func TestCompressionNeedsBothEnds(t *testing.T) {
	for _, tc := range []struct {
		name           string
		server, client *Options
	}{
		{"server only", compressedOptions(), testOptions()},
		{"client only", testOptions(), compressedOptions()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := echoServer(t, tc.server)
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			s := dialSession(t, url, tc.client)
			if s.Compressed() {
				t.Fatal("permessage-deflate negotiated with one end not wanting it")
			}
			p := bytes.Repeat([]byte("x"), 10_000)
			if err := s.WriteContext(ctx, Binary, p); err != nil {
				t.Fatal(err)
			}
			m := <-s.Messages()
			if !bytes.Equal(m.Payload, p) {
				t.Fatal("echo differs")
			}
			m.Release()
		})
	}
}

// acceptCompressedRaw returns a server session with compression and a raw
// client that negotiated it.
func acceptCompressedRaw(t *testing.T, opts *Options) (*Session, *rawPeer) {
	t.Helper()
	accepted := make(chan accepted1, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := Accept(w, r, opts)
		accepted <- accepted1{s, err}
	}))
	t.Cleanup(srv.Close)
	resp, conn, br := rawHandshake(t, srv.Listener.Addr().String(), "permessage-deflate; client_max_window_bits")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %s", resp.Status)
	}
	if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != "permessage-deflate;server_no_context_takeover;client_no_context_takeover" {
		t.Fatalf("Sec-WebSocket-Extensions %q", got)
	}
	res := <-accepted
	if res.err != nil {
		t.Fatal(res.err)
	}
	endSession(t, res.s)
	return res.s, &rawPeer{conn: conn, src: br, client: true}
}

// rawHandshake sends an opening handshake offering extensions (if any) to
// addr and returns the response.
func rawHandshake(t *testing.T, addr, extensions string) (*http.Response, net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	if extensions != "" {
		req += "Sec-WebSocket-Extensions: " + extensions + "\r\n"
	}
	if _, err := conn.Write([]byte(req + "\r\n")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp, conn, br
}

// On the wire: a compressible message goes out with RSV1 and smaller, one
// under the threshold or one that does not shrink goes out as it is.
func TestCompressionOnTheWire(t *testing.T) {
	s, p := acceptCompressedRaw(t, compressedOptions())
	rng := rand.New(rand.NewPCG(1, 1))
	random := make([]byte, 4000)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	for _, tc := range []struct {
		name       string
		p          []byte
		compressed bool
	}{
		{"compressible", bytes.Repeat([]byte("abcd"), 1000), true},
		{"under the threshold", []byte("short message"), false},
		{"incompressible", random, false},
	} {
		reply := make(chan Completion, 1)
		id, _ := s.WriteBinary(tc.p, reply)
		check(t, await(t, reply), KindWrite, id, nil)
		h, err := p.readHeader()
		if err != nil {
			t.Fatal(err)
		}
		body, err := p.readPayload(h)
		if err != nil {
			t.Fatal(err)
		}
		if h.Rsv1() != tc.compressed {
			t.Fatalf("%s: RSV1 %v, want %v", tc.name, h.Rsv1(), tc.compressed)
		}
		if tc.compressed {
			if len(body) >= len(tc.p) {
				t.Fatalf("%s: %d bytes on the wire for %d", tc.name, len(body), len(tc.p))
			}
			out, err := codec.Inflate(body, -1)
			if err != nil || !bytes.Equal(out, tc.p) {
				t.Fatalf("%s: inflates to %d bytes, %v", tc.name, len(out), err)
			}
			bufpool.Put(out)
		} else if !bytes.Equal(body, tc.p) {
			t.Fatalf("%s: payload differs", tc.name)
		}
	}
}

// What a compressing peer sends is inflated; what breaks RFC 7692 closes
// the session with the code it calls for.
func TestCompressionInbound(t *testing.T) {
	z := func(p []byte) []byte { return append([]byte(nil), codec.Compress(p, flate.BestSpeed)...) }
	text := bytes.Repeat([]byte("héllo wörld "), 500)
	tests := []struct {
		name   string
		frames []frame
		max    int64
		want   []byte // the message, or nil when the session fails
		code   codec.CloseCode
	}{
		{name: "compressed text", frames: []frame{{fin: true, op: ws.OpText, rsv: codec.RSV1, payload: z(text)}}, want: text},
		{name: "compressed and fragmented", frames: func() []frame {
			c := z(text)
			return []frame{
				{op: ws.OpText, rsv: codec.RSV1, payload: c[:10]},
				{op: ws.OpContinuation, payload: c[10:20]},
				{fin: true, op: ws.OpContinuation, payload: c[20:]},
			}
		}(), want: text},
		{name: "RSV1 on a continuation", frames: []frame{
			{op: ws.OpText, payload: []byte("a")},
			{fin: true, op: ws.OpContinuation, rsv: codec.RSV1, payload: []byte("b")},
		}, code: codec.CloseProtocolError},
		{name: "RSV1 on a ping", frames: []frame{{fin: true, op: ws.OpPing, rsv: codec.RSV1}}, code: codec.CloseProtocolError},
		{name: "not DEFLATE", frames: []frame{{fin: true, op: ws.OpBinary, rsv: codec.RSV1, payload: []byte{0xff, 0xff, 0xff}}}, code: codec.CloseInvalidFramePayloadData},
		{name: "inflates to invalid UTF-8", frames: []frame{{fin: true, op: ws.OpText, rsv: codec.RSV1, payload: z([]byte{'a', 0xff, 'b'})}}, code: codec.CloseInvalidFramePayloadData},
		{name: "inflates past the message limit", max: 100_000, frames: []frame{{fin: true, op: ws.OpBinary, rsv: codec.RSV1, payload: z(make([]byte, 1<<20))}}, code: codec.CloseMessageTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := compressedOptions()
			if tt.max != 0 {
				opts.MaxMessageSize = tt.max
			}
			s, p := acceptCompressedRaw(t, opts)
			for _, f := range tt.frames {
				p.mustWrite(t, f)
			}
			if tt.want != nil {
				m := <-s.Messages()
				if !bytes.Equal(m.Payload, tt.want) {
					t.Fatalf("got %d bytes, want %d", len(m.Payload), len(tt.want))
				}
				m.Release()
				return
			}
			f := p.mustRead(t)
			if f.op != ws.OpClose || f.closeCode() != tt.code {
				t.Fatalf("got %v, want close %d", f, tt.code)
			}
			if code := CloseCode(awaitDone(t, s)); code != tt.code {
				t.Fatalf("CloseCode(Err()) = %d, want %d", code, tt.code)
			}
		})
	}
}

// The server declines offers it cannot honour or that are invalid, and
// takes the first one it can (RFC 7692 section 5); the handshake goes on.
func TestCompressionNegotiation(t *testing.T) {
	const accepted = "permessage-deflate;server_no_context_takeover;client_no_context_takeover"
	for _, tc := range []struct {
		offer, want string
	}{
		{"permessage-deflate", accepted},
		{"permessage-deflate; client_max_window_bits", accepted},
		{"permessage-deflate; client_no_context_takeover; server_no_context_takeover", accepted},
		{"permessage-deflate; server_max_window_bits=10", ""},
		{"permessage-deflate; unknown_parameter", ""},
		{"permessage-deflate; server_no_context_takeover=1", ""},
		{"permessage-deflate; server_max_window_bits=9, permessage-deflate", accepted},
		{"x-webkit-deflate-frame", ""},
	} {
		t.Run(tc.offer, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if s, err := Accept(w, r, compressedOptions()); err == nil {
					s.Cancel(Terminal, nil)
					<-s.Done()
				}
			}))
			defer srv.Close()
			resp, _, _ := rawHandshake(t, srv.Listener.Addr().String(), tc.offer)
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("status %s, want 101", resp.Status)
			}
			if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != tc.want {
				t.Fatalf("Sec-WebSocket-Extensions %q, want %q", got, tc.want)
			}
		})
	}
}

// A client fails a handshake whose permessage-deflate it cannot speak: a
// server that keeps its compression context though asked not to, or that
// limits the client's window.
func TestCompressionDialRejects(t *testing.T) {
	for _, resp := range []string{
		"permessage-deflate; client_no_context_takeover",
		"permessage-deflate; server_no_context_takeover; client_max_window_bits=10",
	} {
		t.Run(resp, func(t *testing.T) {
			ln := listen(t, rawConfig{})
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
				fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
					"Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Extensions: %s\r\n\r\n",
					base64.StdEncoding.EncodeToString(sum[:]), resp)
				c.Read(make([]byte, 1)) // until the client hangs up
			}()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			s, err := Dial(ctx, "ws://"+ln.Addr().String()+"/", compressedOptions())
			if err == nil {
				s.Cancel(Terminal, nil)
				<-s.Done()
				t.Fatal("Dial succeeded")
			}
			if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "permessage-deflate") {
				t.Fatalf("Dial: %v, want ErrHandshake about permessage-deflate", err)
			}
		})
	}
}

// AcceptConn negotiates compression as Accept does.
func TestCompressionAcceptConn(t *testing.T) {
	ln := listen(t, rawConfig{})
	accepted := acceptOne(ln, compressedOptions())
	resp, conn, br := rawHandshake(t, ln.Addr().String(), "permessage-deflate; unknown, permessage-deflate; client_max_window_bits")
	if got := resp.Header.Get("Sec-WebSocket-Extensions"); resp.StatusCode != http.StatusSwitchingProtocols ||
		got != "permessage-deflate;server_no_context_takeover;client_no_context_takeover" {
		t.Fatalf("%s, Sec-WebSocket-Extensions %q", resp.Status, got)
	}
	res := <-accepted
	if res.err != nil {
		t.Fatal(res.err)
	}
	endSession(t, res.s)
	if !res.s.Compressed() {
		t.Fatal("Compressed() = false")
	}
	p := &rawPeer{conn: conn, src: br, client: true}
	want := bytes.Repeat([]byte("zip "), 1000)
	p.mustWrite(t, frame{fin: true, op: ws.OpBinary, rsv: codec.RSV1, payload: append([]byte(nil), codec.Compress(want, 1)...)})
	m := <-res.s.Messages()
	if !bytes.Equal(m.Payload, want) {
		t.Fatalf("got %d bytes, want %d", len(m.Payload), len(want))
	}
	m.Release()
}

// With permessage-deflate, a MessageWriter compresses the message as it
// comes: RSV1 on the first frame only, frames of at most FragmentSize
// compressed bytes, and the frames together inflate to what was written.
func TestMessageWriterCompressed(t *testing.T) {
	opts := compressedOptions()
	opts.FragmentSize = 1000
	s, p := acceptCompressedRaw(t, opts)
	want := bytes.Repeat([]byte("streamed and compressed, "), 40_000) // 1 MB
	w := s.NewWriter(context.Background(), Text)
	for rest := want; len(rest) > 0; {
		k := min(len(rest), 7777)
		if _, err := w.Write(rest[:k]); err != nil {
			t.Fatal(err)
		}
		rest = rest[k:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var body []byte
	for i := 0; ; i++ {
		h, err := p.readHeader()
		if err != nil {
			t.Fatal(err)
		}
		f, err := p.readPayload(h)
		if err != nil {
			t.Fatal(err)
		}
		if h.Rsv1() != (i == 0) || len(f) > 1000 {
			t.Fatalf("frame %d: RSV1 %v, %d bytes", i, h.Rsv1(), len(f))
		}
		body = append(body, f...)
		if h.Fin {
			break
		}
	}
	if len(body) > len(want)/20 {
		t.Fatalf("%d compressed bytes for %d", len(body), len(want))
	}
	got, err := codec.Inflate(body, -1)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("inflates to %d bytes, %v; want the %d written", len(got), err, len(want))
	}
	bufpool.Put(got)
}

// A compressed streamed message goes whole through a wsactor peer, with
// io.Copy, and an empty one too.
func TestMessageWriterCompressedRoundTrip(t *testing.T) {
	srv := compressedOptions()
	url := echoServer(t, srv)
	opts := compressedOptions()
	opts.FragmentSize = 4096
	s := dialSession(t, url, opts)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for _, want := range [][]byte{bytes.Repeat([]byte("0123456789abcdef"), 100_000), nil} {
		w := s.NewWriter(ctx, Binary)
		if _, err := io.Copy(w, bytes.NewReader(want)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		m := <-s.Messages()
		if m.Type != Binary || !bytes.Equal(m.Payload, want) {
			t.Fatalf("%v of %d bytes back, want %d", m.Type, len(m.Payload), len(want))
		}
		m.Release()
	}
}
