package session

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/codec"
)

// Every violation of RFC 6455 that a client commits gets the close code
// that names it, and the session's error says which it was.
func TestProtocolViolations(t *testing.T) {
	masked := func(fs ...frame) []byte {
		var b []byte
		for _, f := range fs {
			b = append(b, encodeFrame(f, true)...)
		}
		return b
	}
	tests := []struct {
		name     string
		maxMsg   int64
		send     []byte
		wantCode codec.CloseCode
		wantErr  error
	}{
		{
			name:     "reserved bits",
			send:     masked(frame{fin: true, rsv: 4, op: ws.OpText, payload: []byte("rsv1")}),
			wantCode: codec.CloseProtocolError,
			wantErr:  codec.ErrReservedBits,
		},
		{
			name:     "reserved data opcode",
			send:     masked(frame{fin: true, op: 3, payload: []byte("op 3")}),
			wantCode: codec.CloseProtocolError,
			wantErr:  codec.ErrReservedOpcode,
		},
		{
			name:     "reserved control opcode",
			send:     masked(frame{fin: true, op: 0xB}),
			wantCode: codec.CloseProtocolError,
			wantErr:  codec.ErrReservedOpcode,
		},
		{
			name:     "unmasked client frame",
			send:     encodeFrame(textFrame("unmasked"), false),
			wantCode: codec.CloseProtocolError,
			wantErr:  codec.ErrMaskRequired,
		},
		{
			name:     "control frame too long",
			send:     masked(frame{fin: true, op: ws.OpPing, payload: make([]byte, 126)}),
			wantCode: codec.CloseProtocolError,
			wantErr:  codec.ErrControlTooLong,
		},
		{
			name:     "fragmented control frame",
			send:     masked(frame{fin: false, op: ws.OpPing, payload: []byte("half")}),
			wantCode: codec.CloseProtocolError,
			wantErr:  codec.ErrControlFragmented,
		},
		{
			name:     "continuation without start",
			send:     masked(frame{fin: true, op: ws.OpContinuation, payload: []byte("orphan")}),
			wantCode: codec.CloseProtocolError,
			wantErr:  codec.ErrContinuationUnexpected,
		},
		{
			name: "new data frame inside a fragmented message",
			send: masked(
				frame{fin: false, op: ws.OpText, payload: []byte("first ")},
				frame{fin: true, op: ws.OpBinary, payload: []byte("second")},
			),
			wantCode: codec.CloseProtocolError,
			wantErr:  codec.ErrContinuationExpected,
		},
		{
			name:     "top bit of 64-bit length",
			send:     []byte{0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4},
			wantCode: codec.CloseProtocolError,
			wantErr:  codec.ErrLengthMSB,
		},
		{
			name:     "length not minimal",
			send:     []byte{0x82, 0x80 | 126, 0, 5, 1, 2, 3, 4, 'h', 'e', 'l', 'l', 'o'},
			wantCode: codec.CloseProtocolError,
			wantErr:  codec.ErrLengthNotMinimal,
		},
		{
			name:     "text not UTF-8",
			send:     masked(frame{fin: true, op: ws.OpText, payload: []byte("bad \xff byte")}),
			wantCode: codec.CloseInvalidFramePayloadData,
			wantErr:  codec.ErrInvalidUTF8,
		},
		{
			name: "invalid code point split across fragments",
			send: masked(
				frame{fin: false, op: ws.OpText, payload: []byte("euro \xe2\x82")},
				frame{fin: true, op: ws.OpContinuation, payload: []byte("\x28 sign")},
			),
			wantCode: codec.CloseInvalidFramePayloadData,
			wantErr:  codec.ErrInvalidUTF8,
		},
		{
			name:     "text ends inside a code point",
			send:     masked(frame{fin: true, op: ws.OpText, payload: []byte("euro \xe2\x82")}),
			wantCode: codec.CloseInvalidFramePayloadData,
			wantErr:  codec.ErrInvalidUTF8,
		},
		{
			name:     "close with a 1-byte payload",
			send:     masked(frame{fin: true, op: ws.OpClose, payload: []byte{3}}),
			wantCode: codec.CloseProtocolError,
			wantErr:  codec.ErrClosePayload1Byte,
		},
		{
			name:     "close code 1005 on the wire",
			send:     masked(closeFrame(codec.CloseNoStatusReceived, "")),
			wantCode: codec.CloseProtocolError,
			wantErr:  codec.ErrCloseCodeInvalid,
		},
		{
			name:     "close code 999",
			send:     masked(closeFrame(999, "")),
			wantCode: codec.CloseProtocolError,
			wantErr:  codec.ErrCloseCodeInvalid,
		},
		{
			name:     "close reason not UTF-8",
			send:     masked(closeFrame(codec.CloseNormalClosure, "bad \xc3\x28")),
			wantCode: codec.CloseInvalidFramePayloadData,
			wantErr:  codec.ErrCloseInvalidUTF8,
		},
		{
			name:     "message over MaxMessageSize",
			maxMsg:   1024,
			send:     masked(frame{fin: true, op: ws.OpBinary, payload: make([]byte, 2000)}),
			wantCode: codec.CloseMessageTooBig,
			wantErr:  codec.ErrMessageTooBig,
		},
		{
			name:   "fragmented message over MaxMessageSize",
			maxMsg: 1024,
			send: masked(
				frame{fin: false, op: ws.OpBinary, payload: make([]byte, 1000)},
				frame{fin: true, op: ws.OpContinuation, payload: make([]byte, 1000)},
			),
			wantCode: codec.CloseMessageTooBig,
			wantErr:  codec.ErrMessageTooBig,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions()
			opts.MaxMessageSize = tc.maxMsg
			s, p := openRaw(t, codec.Server, opts, rawConfig{})
			if err := p.writeRaw(tc.send); err != nil {
				t.Fatal(err)
			}
			f := p.mustRead(t)
			if f.op != ws.OpClose || f.closeCode() != tc.wantCode {
				t.Fatalf("answer %v, want close %d", f, tc.wantCode)
			}
			if err := p.expectEOF(); err != nil {
				t.Fatal(err)
			}
			err := awaitDone(t, s)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Err() = %v, want %v", err, tc.wantErr)
			}
			if CloseCode(err) != tc.wantCode {
				t.Fatalf("CloseCode(Err()) = %d, want %d", CloseCode(err), tc.wantCode)
			}
			for m := range s.Messages() {
				t.Errorf("message delivered: %q", m.Payload)
				m.Release()
			}
		})
	}
}

// A client fails a server that masks its frames with 1002.
func TestProtocolViolationMaskedServerFrame(t *testing.T) {
	s, p := openRaw(t, codec.Client, testOptions(), rawConfig{})
	if err := p.writeRaw(encodeFrame(textFrame("masked by the server"), true)); err != nil {
		t.Fatal(err)
	}
	f := p.mustRead(t)
	if f.op != ws.OpClose || f.closeCode() != codec.CloseProtocolError {
		t.Fatalf("answer %v, want close 1002", f)
	}
	err := awaitDone(t, s)
	if !errors.Is(err, codec.ErrMaskUnexpected) || CloseCode(err) != codec.CloseProtocolError {
		t.Fatalf("Err() = %v (code %d), want ErrMaskUnexpected with 1002", err, CloseCode(err))
	}
}

type controlEvent struct {
	op      ControlOp
	payload string
}

// A ping is answered with a pong that carries its payload; OnControl sees
// every ping, pong and close frame received.
func TestPingPongAndOnControl(t *testing.T) {
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			events := make(chan controlEvent, 16)
			opts := testOptions()
			opts.OnControl = func(s *Session, op ControlOp, payload []byte) {
				events <- controlEvent{op: op, payload: string(payload)}
			}
			s, p := openRaw(t, r.role, opts, rawConfig{})

			p.mustWrite(t, frame{fin: true, op: ws.OpPing, payload: []byte("are you there?")})
			if f := p.mustRead(t); f.op != ws.OpPong || string(f.payload) != "are you there?" {
				t.Fatalf("answer %v, want a pong with the ping's payload", f)
			}
			p.mustWrite(t, frame{fin: true, op: ws.OpPing})
			if f := p.mustRead(t); f.op != ws.OpPong || len(f.payload) != 0 {
				t.Fatalf("answer %v, want an empty pong", f)
			}
			// A ping between the fragments of a message is answered at once,
			// and the message arrives whole.
			p.mustWrite(t, frame{fin: false, op: ws.OpText, payload: []byte("frag")})
			p.mustWrite(t, frame{fin: true, op: ws.OpPing, payload: []byte("between")})
			if f := p.mustRead(t); f.op != ws.OpPong || string(f.payload) != "between" {
				t.Fatalf("answer %v, want pong \"between\"", f)
			}
			p.mustWrite(t, frame{fin: true, op: ws.OpContinuation, payload: []byte("ments")})
			select {
			case m := <-s.Messages():
				if m.Type != Text || string(m.Payload) != "fragments" {
					t.Fatalf("message %v %q, want text \"fragments\"", m.Type, m.Payload)
				}
				m.Release()
			case <-time.After(testTimeout):
				t.Fatal("no message")
			}
			// An unsolicited pong gets no answer.
			p.mustWrite(t, frame{fin: true, op: ws.OpPong, payload: []byte("unsolicited")})
			// Our own ping, and the peer's pong.
			reply := make(chan Completion, 1)
			pingID, _ := s.Ping([]byte("session ping"), reply)
			check(t, await(t, reply), KindPing, pingID, nil)
			if f := p.mustRead(t); f.op != ws.OpPing || string(f.payload) != "session ping" {
				t.Fatalf("got %v, want the session's ping", f)
			}
			p.mustWrite(t, frame{fin: true, op: ws.OpPong, payload: []byte("session ping")})

			p.mustWrite(t, closeFrame(codec.CloseNormalClosure, "bye"))
			if f := p.mustRead(t); f.op != ws.OpClose || f.closeCode() != codec.CloseNormalClosure {
				t.Fatalf("got %v, want the echoed close", f)
			}
			if r.role == codec.Client {
				p.conn.(interface{ CloseWrite() error }).CloseWrite()
			}
			if err := p.expectEOF(); err != nil {
				t.Fatal(err)
			}
			awaitDone(t, s)
			want := []controlEvent{
				{op: ControlPing, payload: "are you there?"},
				{op: ControlPing, payload: ""},
				{op: ControlPing, payload: "between"},
				{op: ControlPong, payload: "unsolicited"},
				{op: ControlPong, payload: "session ping"},
				{op: ControlClose, payload: "\x03\xe8bye"},
			}
			for i, w := range want {
				select {
				case e := <-events:
					if e != w {
						t.Fatalf("OnControl event %d: %+v, want %+v", i, e, w)
					}
				default:
					t.Fatalf("OnControl event %d missing, want %+v", i, w)
				}
			}
			select {
			case e := <-events:
				t.Fatalf("extra OnControl event %+v", e)
			default:
			}
		})
	}
}

// A panic in OnMessage ends that session with an error, and the peer sees
// 1011; the process goes on.
func TestPanicInOnMessage(t *testing.T) {
	opts := testOptions()
	opts.OnMessage = func(s *Session, m Message) {
		defer m.Release()
		if bytes.Equal(m.Payload, []byte("boom")) {
			panic("handler exploded")
		}
		s.WriteText([]byte("ok"), nil)
	}
	s, p := openRaw(t, codec.Server, opts, rawConfig{})
	p.mustWrite(t, textFrame("fine"))
	if f := p.mustRead(t); string(f.payload) != "ok" {
		t.Fatalf("got %v, want \"ok\"", f)
	}
	p.mustWrite(t, textFrame("boom"))
	f := p.mustRead(t)
	if f.op != ws.OpClose || f.closeCode() != codec.CloseInternalError {
		t.Fatalf("got %v, want close 1011", f)
	}
	if err := p.expectEOF(); err != nil {
		t.Fatal(err)
	}
	err := awaitDone(t, s)
	if err == nil || !strings.Contains(err.Error(), "handler exploded") {
		t.Fatalf("Err() = %v, want the panic", err)
	}
	if code := CloseCode(err); code != codec.CloseInternalError {
		t.Fatalf("CloseCode(Err()) = %d, want 1011, the code sent", code)
	}
}

// Messages are delivered whole, in order, of both types and many sizes.
func TestMessagesDelivered(t *testing.T) {
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			s, p := openRaw(t, r.role, testOptions(), rawConfig{})
			sizes := []int{0, 1, 125, 126, 4095, 4096, 65535, 65536, 1 << 20}
			go func() {
				for i, n := range sizes {
					op := ws.OpBinary
					if i%2 == 0 {
						op = ws.OpText
					}
					if p.write(frame{fin: true, op: op, payload: bytes.Repeat([]byte{'a' + byte(i)}, n)}) != nil {
						return
					}
				}
			}()
			for i, n := range sizes {
				select {
				case m := <-s.Messages():
					want := Binary
					if i%2 == 0 {
						want = Text
					}
					if m.Type != want || !bytes.Equal(m.Payload, bytes.Repeat([]byte{'a' + byte(i)}, n)) {
						t.Fatalf("message %d: %v of %d bytes, want %v of %d", i, m.Type, len(m.Payload), want, n)
					}
					m.Release()
				case <-time.After(testTimeout):
					t.Fatalf("message %d missing", i)
				}
			}
		})
	}
}

// When Messages is closed, Err already says why: a caller can range over
// the channel and then ask.
func TestMessagesClosedAfterErr(t *testing.T) {
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			for range 10 {
				s, p := openRaw(t, r.role, testOptions(), rawConfig{})
				p.mustWrite(t, textFrame("last words"))
				p.mustWrite(t, closeFrame(codec.CloseGoingAway, "bye"))
				if r.role == codec.Client {
					p.conn.(interface{ CloseWrite() error }).CloseWrite()
				}
				n := 0
				for m := range s.Messages() {
					n++
					m.Release()
				}
				if err := s.Err(); n != 1 || !errors.Is(err, ErrClosed) {
					t.Fatalf("Messages closed after %d messages with Err() = %v; want 1 and ErrClosed", n, err)
				}
			}
		})
	}
}

// A caller that does not read Messages stops the reader, and the peer's
// writes block (TCP backpressure): nothing is queued without bound, and
// nothing is lost once the caller reads again.
func TestInboundBackpressure(t *testing.T) {
	const (
		size = 64 << 10
		most = 1000 // 64 MiB: far more than every buffer on the way
	)
	opts := testOptions()
	opts.InboundSize = 1
	s, p := openRaw(t, codec.Server, opts, rawConfig{})
	msg := encodeFrame(frame{fin: true, op: ws.OpBinary, payload: make([]byte, size)}, true)
	sent := 0
	var rest []byte
	for ; sent < most; sent++ {
		p.conn.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := p.conn.Write(msg)
		if err != nil {
			rest = msg[n:]
			break
		}
	}
	p.conn.SetWriteDeadline(time.Time{})
	if sent == most {
		t.Fatalf("the peer wrote %d MiB without blocking", most*size>>20)
	}
	total := sent
	if len(rest) > 0 {
		total++ // the message cut by the deadline, whose rest goes now
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.conn.Write(rest)
		done <- err
	}()
	for i := range total {
		select {
		case m := <-s.Messages():
			if len(m.Payload) != size {
				t.Fatalf("message %d: %d bytes", i, len(m.Payload))
			}
			m.Release()
		case <-time.After(testTimeout):
			t.Fatalf("message %d of %d missing", i, total)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("the peer blocked after %d messages of %d KiB", sent, size>>10)
}
