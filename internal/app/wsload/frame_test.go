package wsload

import (
	"bytes"
	"errors"
	"testing"

	"github.com/gobwas/ws"

	"github.com/wsactor/wsactor/codec"
)

// serverFrame encodes a frame with gobwas/ws, the reference encoder.
func serverFrame(t *testing.T, fin bool, op ws.OpCode, payload []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := ws.WriteFrame(&b, ws.NewFrame(op, fin, payload)); err != nil {
		t.Fatalf(
			"WriteFrame: %v",
			err,
		)
	}
	return b.Bytes()
}

func pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + 3)
	}
	return p
}

// recvConn returns a connection that receives messages of size bytes and
// opcode op, as one that does not send counts them.
func recvConn(op Op, size int) *conn {
	c := &conn{r: &runner{cfg: Config{Size: size, Inflight: 4}, op: op}}
	c.ps.Decoder = codec.Decoder{Role: codec.Client, MaxMessage: -1}
	return c
}

// feed gives stream to c.parse in pieces of the given size (0: whole). It
// returns what the last call returned.
func feed(c *conn, stream []byte, piece int) bool {
	stream = bytes.Clone(stream) // the parser unmasks in place
	for len(stream) > 0 {
		k := len(stream)
		if piece > 0 {
			k = min(k, piece)
		}
		if !c.parse(stream[:k], 0) {
			return false
		}
		stream = stream[k:]
	}
	return true
}

// TestParse feeds what a server sends to a connection's read path, cut into
// pieces of many sizes: every message is counted whole, a ping between the
// fragments of a message is answered, and the frames are told apart at
// every split point.
func TestParse(t *testing.T) {
	const size = 70000
	msg := pattern64(size)
	var stream []byte
	stream = append(stream, serverFrame(t, true, ws.OpText, msg)...)
	stream = append(stream, serverFrame(t, false, ws.OpText, msg[:100])...)
	stream = append(stream, serverFrame(t, true, ws.OpPing, []byte("are you there"))...)
	stream = append(stream, serverFrame(t, false, ws.OpContinuation, msg[100:300])...)
	stream = append(stream, serverFrame(t, true, ws.OpContinuation, msg[300:])...)
	stream = append(stream, serverFrame(t, true, ws.OpText, msg)...)
	for _, piece := range []int{0, 1, 2, 3, 5, 11, 4096} {
		c := recvConn(OpText, size)
		c.verify = true
		c.plain = bytes.Repeat(msg, 4)
		if !feed(c, stream, piece) {
			t.Fatalf("pieces of %d: the connection failed: %v", piece, c.r.firstErr)
		}
		if c.recvN != 3 || c.errs.Load() != 0 {
			t.Fatalf("pieces of %d: %d messages, %d errors (%v); want 3 and none", piece, c.recvN, c.errs.Load(), c.r.firstErr)
		}
		if want := appendClientFrame(nil, OpPong, []byte("are you there"), c.mask); !bytes.Equal(c.out, want) {
			t.Fatalf("pieces of %d: owes %x, want the pong %x", piece, c.out, want)
		}
	}
}

// TestParseErrors checks that a frame no conforming server sends fails the
// connection with the close code that names the violation.
func TestParseErrors(t *testing.T) {
	cases := []struct {
		name  string
		frame []byte
		want  error
		code  int
	}{
		{
			name:  "64-bit length with the top bit set",
			frame: []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0},
			want:  codec.ErrLengthMSB,
			code:  1002,
		},
		{
			name:  "ping longer than 125 bytes",
			frame: append([]byte{0x89, 126, 0, 126}, pattern(126)...),
			want:  codec.ErrControlTooLong,
			code:  1002,
		},
		{
			name:  "fragmented ping",
			frame: []byte{0x09, 0},
			want:  codec.ErrControlFragmented,
			code:  1002,
		},
		{
			name:  "masked frame",
			frame: appendClientFrame(nil, OpText, []byte("hi"), [4]byte{1, 2, 3, 4}),
			want:  codec.ErrMaskUnexpected,
			code:  1002,
		},
		{
			name:  "reserved bits",
			frame: []byte{0x80 | 0x40 | 0x2, 0},
			want:  codec.ErrReservedBits,
			code:  1002,
		},
		{
			name:  "reserved opcode",
			frame: []byte{0x83, 0},
			want:  codec.ErrReservedOpcode,
			code:  1002,
		},
		{
			name:  "continuation without a message",
			frame: []byte{0x80, 0},
			want:  codec.ErrContinuationUnexpected,
			code:  1002,
		},
		{
			name:  "text that is not UTF-8",
			frame: []byte{0x81, 2, 'a', 0xff},
			want:  codec.ErrInvalidUTF8,
			code:  1007,
		},
	}
	for _, tc := range cases {
		for _, piece := range []int{0, 1} {
			c := recvConn(OpBinary, 64)
			if feed(c, tc.frame, piece) {
				t.Fatalf("%s, pieces of %d: the connection goes on", tc.name, piece)
			}
			if !errors.Is(c.r.firstErr, tc.want) || c.closeWith != tc.code || c.errs.Load() != 1 {
				t.Errorf("%s, pieces of %d: error %v, close %d, %d errors; want %v, %d, 1",
					tc.name, piece, c.r.firstErr, c.closeWith, c.errs.Load(), tc.want, tc.code)
			}
		}
	}
}

func TestParseTCP(t *testing.T) {
	var stream []byte
	sizes := []int{0, 64, 70000, 1}
	for _, n := range sizes {
		stream = appendTCPFrame(stream, pattern(n))
	}
	for _, piece := range []int{0, 1, 3, 4096} {
		var got [][]byte
		var f tcpFramer
		for b := stream; len(b) > 0; {
			k := len(b)
			if piece > 0 {
				k = min(k, piece)
			}
			p := b[:k]
			b = b[k:]
			for len(p) > 0 {
				payload, n, first, last, ok := f.next(p)
				if n <= 0 {
					t.Fatalf("pieces of %d: next consumed %d bytes of %d", piece, n, len(p))
				}
				p = p[n:]
				if !ok {
					continue
				}
				if first {
					got = append(got, nil)
				}
				got[len(got)-1] = append(got[len(got)-1], payload...)
				if last != (len(got[len(got)-1]) == sizes[len(got)-1]) {
					t.Fatalf("pieces of %d: message %d: last %v at %d bytes", piece, len(got)-1, last, len(got[len(got)-1]))
				}
			}
		}
		if len(got) != len(sizes) {
			t.Fatalf("pieces of %d: %d messages, want %d", piece, len(got), len(sizes))
		}
		for i, p := range got {
			if !bytes.Equal(p, pattern(sizes[i])) {
				t.Fatalf("pieces of %d: message %d differs", piece, i)
			}
		}
		c := recvConn(OpBinary, 0)
		c.r.tcp = true
		if !feed(c, appendTCPFrame(nil, nil), piece) || c.recvN != 1 || c.errs.Load() != 0 {
			t.Fatalf("pieces of %d: an empty tcp message: %d received, %d errors", piece, c.recvN, c.errs.Load())
		}
	}
}

// TestAppendClientFrame checks the encoder against gobwas/ws's decoder.
func TestAppendClientFrame(t *testing.T) {
	mask := [4]byte{0xde, 0xad, 0xbe, 0xef}
	for _, n := range []int{0, 1, 125, 126, 65535, 65536} {
		payload := pattern(n)
		keep := bytes.Clone(payload)
		frame := appendClientFrame(nil, OpText, payload, mask)
		if !bytes.Equal(payload, keep) {
			t.Fatalf(
				"size %d: the caller's payload was modified",
				n,
			)
		}
		f, err := ws.ReadFrame(bytes.NewReader(frame))
		if err != nil {
			t.Fatalf(
				"size %d: ReadFrame: %v",
				n, err,
			)
		}
		if !f.Header.Fin || f.Header.OpCode != ws.OpText || !f.Header.Masked || f.Header.Mask != mask {
			t.Fatalf(
				"size %d: header %+v",
				n, f.Header,
			)
		}
		ws.Cipher(f.Payload, f.Header.Mask, 0)
		if !bytes.Equal(f.Payload, payload) {
			t.Fatalf(
				"size %d: payload differs",
				n,
			)
		}
	}
}

func TestCloseCode(t *testing.T) {
	if got := closeCode(ws.NewCloseFrameBody(ws.StatusGoingAway, "bye")); got != 1001 {
		t.Errorf("closeCode = %d, want 1001", got)
	}
	if got := closeCode(nil); got != closeNoStatus {
		t.Errorf("closeCode(empty) = %d, want %d", got, closeNoStatus)
	}
}

func TestAppendClientClose(t *testing.T) {
	cases := []struct {
		name string
		code int
		want []byte
	}{
		{
			name: "normal closure",
			code: 1000,
			want: []byte{0x03, 0xe8},
		},
		{
			name: "no status is sent as an empty body",
			code: closeNoStatus,
			want: nil,
		},
		{
			name: "abnormal closure is never sent",
			code: closeAbnormal,
			want: nil,
		},
	}
	for _, tc := range cases {
		frame := appendClientClose(nil, tc.code, [4]byte{9, 8, 7, 6})
		f, err := ws.ReadFrame(bytes.NewReader(frame))
		if err != nil {
			t.Fatalf(
				"%s: %v",
				tc.name, err,
			)
		}
		ws.Cipher(f.Payload, f.Header.Mask, 0)
		if f.Header.OpCode != ws.OpClose || !bytes.Equal(f.Payload, tc.want) {
			t.Errorf(
				"%s: op %v payload %x, want close %x",
				tc.name, f.Header.OpCode, f.Payload, tc.want,
			)
		}
	}
}
