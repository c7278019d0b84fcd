package session

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/codec"
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

// FuzzSessionRead feeds arbitrary bytes, as a client sends them, to a
// server session over an in-memory connection whose reads cut the stream
// where cuts says (one byte per read: its size, 0 for all that is left, and
// one read for the rest when cuts runs out). What the session delivers (its
// messages and control frames, in order), the close code it sends and the
// error it ends with must be what a reference decode of the whole stream
// says; nothing may panic or hang; and the heap the session allocates stays
// within a constant plus a multiple of the bytes that arrived, whatever the
// frames declare. The seeds are in testdata/fuzz/FuzzSessionRead: valid
// frames of each kind, fragmented messages, unmasked and reserved frames,
// close frames good and bad, invalid UTF-8, lengths past the limit.
func FuzzSessionRead(f *testing.F) {
	f.Add([]byte{}, []byte{})
	race := raceBuild()
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		want := referenceRead(data, sessionReadLimit)
		var (
			got  []readEvent // appended on the reader's goroutine, read after Done
			held int         // payload bytes kept in got
		)
		opts := &Options{
			MaxMessageSize: sessionReadLimit,
			IdleTimeout:    -1,
			MessageTimeout: -1,
			CloseTimeout:   testTimeout,
			MailboxSize:    16,
			ReadBufferSize: 4 << 10,
			OnMessage: func(_ *Session, m Message) {
				got = append(got, readEvent{op: ws.OpCode(m.Type), payload: string(m.Payload)})
				held += len(m.Payload)
				m.Release()
			},
			OnControl: func(_ *Session, op ControlOp, p []byte) {
				got = append(got, readEvent{op: ws.OpCode(op), payload: string(p)})
				held += len(p)
			},
		}
		conn := &cutConn{data: data, cuts: cuts}
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		s := newSession(context.Background(), conn, codec.Server, opts, "", false, nil)
		select {
		case <-s.Done():
		case <-time.After(testTimeout):
			t.Fatalf("the session did not end within %v; %d of %d bytes read", testTimeout, conn.nread.Load(), len(data))
		}
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if grown, limit := after.TotalAlloc-before.TotalAlloc, uint64(sessionReadBase+8*len(data)+2*held); !race && grown > limit {
			t.Errorf("the session allocated %d bytes reading %d, want at most %d", grown, len(data), limit)
		}

		if fmt.Sprint(got) != fmt.Sprint(want.events) {
			t.Errorf("delivered %v\nwant      %v", got, want.events)
		}
		sent, err := closeSent(conn.written())
		if err != nil {
			t.Fatalf("what the session sent: %v", err)
		}
		if sent != want.sent {
			t.Errorf("close code sent: %d, want %d (0: none)", sent, want.sent)
		}
		end := s.Err()
		if code := CloseCode(end); code != want.end {
			t.Errorf("ended with %v (close code %d), want close code %d", end, code, want.end)
		}
		if want.sent != 0 && want.sent == want.end && want.err == nil && !errors.Is(end, ErrClosed) {
			t.Errorf("ended with %v after the peer's close frame, want ErrClosed", end)
		}
		if want.err != nil && !errors.Is(end, want.err) {
			t.Errorf("ended with %v, want %v", end, want.err)
		}
	})
}

// sessionReadLimit is FuzzSessionRead's message size limit, and
// sessionReadBase what a session may allocate whatever it reads: its state,
// mailbox and timers, and pooled read buffers that a collection emptied.
const (
	sessionReadLimit = 1 << 20
	sessionReadBase  = 64 << 10
)

// raceBuild reports whether the test runs under the race detector, which
// makes sync.Pool drop buffers at random: allocation bounds mean nothing
// then.
func raceBuild() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// readEvent is a message or control frame a session delivered, in the
// order of delivery.
type readEvent struct {
	op      ws.OpCode
	payload string
}

func (e readEvent) String() string {
	if len(e.payload) > 16 {
		return fmt.Sprintf("{op %d, %d bytes %q...}", e.op, len(e.payload), e.payload[:16])
	}
	return fmt.Sprintf("{op %d %q}", e.op, e.payload)
}

// readOutcome is what a server session must make of a stream.
type readOutcome struct {
	events []readEvent
	sent   codec.CloseCode // the code of the close frame sent (1005: one without a code), 0 for none
	end    codec.CloseCode // CloseCode of the session's error
	err    error           // the protocol error the session's error wraps, if any
}

// referenceRead decodes stream as a server session must, the simple way:
// whole frames from one buffer, each header parsed and checked once, each
// payload unmasked and checked in one piece. The frame cut short at the end
// of the stream is checked as far as it goes: a session fails fast on
// invalid UTF-8. A close frame ends the reading.
func referenceRead(stream []byte, limit int64) readOutcome {
	var out readOutcome
	fail := func(err error) readOutcome {
		var pe *codec.ProtocolError
		if !errors.As(err, &pe) {
			panic(fmt.Sprintf("reference decode: %v is not a protocol error", err))
		}
		out.sent, out.end, out.err = pe.Code, pe.Code, err
		return out
	}
	d := codec.Decoder{Role: codec.Server, MaxMessage: limit}
	var msg []byte
	for len(stream) > 0 {
		h, n, err := codec.ParseHeader(stream)
		if err != nil {
			return fail(err)
		}
		if n == 0 {
			break // the stream ends inside a header
		}
		stream = stream[n:]
		if err := d.Begin(h); err != nil {
			return fail(err)
		}
		p := bytes.Clone(stream[:min(int64(len(stream)), h.Length)])
		stream = stream[len(p):]
		ws.Cipher(p, h.Mask, 0)
		cut := int64(len(p)) < h.Length
		if h.OpCode.IsControl() {
			if cut {
				break
			}
			if h.OpCode == ws.OpClose {
				code, _, err := codec.ParseClosePayload(p)
				if err != nil {
					return fail(err)
				}
				out.events = append(out.events, readEvent{op: h.OpCode, payload: string(p)})
				out.sent, out.end = code, code
				return out
			}
			out.events = append(out.events, readEvent{op: h.OpCode, payload: string(p)})
			continue
		}
		if err := d.Data(p); err != nil {
			return fail(err)
		}
		if cut {
			break
		}
		msg = append(msg, p...)
		done, err := d.End()
		if err != nil {
			return fail(err)
		}
		if done {
			out.events = append(out.events, readEvent{op: d.Opcode(), payload: string(msg)})
			msg = msg[:0]
		}
	}
	out.end = codec.CloseAbnormalClosure // the stream ended without a close frame
	return out
}

// closeSent decodes what a server session wrote and returns the code of its
// close frame (1005 for one without a code), 0 when it sent none. Every
// frame must be valid, and nothing may follow the close frame.
func closeSent(wire []byte) (codec.CloseCode, error) {
	r := codec.NewReader(bytes.NewReader(wire), codec.Decoder{Role: codec.Client, MaxMessage: -1}, 0)
	defer r.Release()
	var code codec.CloseCode
	for {
		f, err := r.NextFrame()
		if err == io.EOF {
			return code, nil
		}
		if err != nil {
			return 0, err
		}
		if code != 0 {
			return 0, fmt.Errorf("a frame of opcode %d after the close frame", f.Header.OpCode)
		}
		if f.Header.OpCode == ws.OpClose {
			code, _, _ = codec.ParseClosePayload(f.Payload)
		}
	}
}

// cutConn is an in-memory net.Conn that serves data in reads of the sizes
// cuts gives (one byte per read: its size, 0 for as much as the reader
// takes), then io.EOF, and keeps what is written to it. Its reads never
// block.
type cutConn struct {
	data  []byte // what is left to read, on the reader's goroutine
	cuts  []byte
	nread atomic.Int64

	mu     sync.Mutex
	out    bytes.Buffer
	closed bool
}

func (c *cutConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if len(c.cuts) > 0 {
		if k := int(c.cuts[0]); k > 0 {
			n = min(n, k)
		}
		c.cuts = c.cuts[1:]
	}
	n = copy(p[:n], c.data)
	c.data = c.data[n:]
	c.nread.Add(int64(n))
	return n, nil
}

func (c *cutConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.out.Write(p)
}

func (c *cutConn) written() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out.Bytes())
}

func (c *cutConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

func (c *cutConn) LocalAddr() net.Addr                { return cutAddr{} }
func (c *cutConn) RemoteAddr() net.Addr               { return cutAddr{} }
func (c *cutConn) SetDeadline(t time.Time) error      { return nil }
func (c *cutConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *cutConn) SetWriteDeadline(t time.Time) error { return nil }

type cutAddr struct{}

func (cutAddr) Network() string { return "memory" }
func (cutAddr) String() string  { return "memory" }
