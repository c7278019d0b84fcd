package wsload

import (
	"bytes"
	"errors"
	"testing"

	"github.com/gobwas/ws"
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

// parsed is a frame put back together from its chunks.
type parsed struct {
	Header
	payload []byte
}

// parseAll feeds stream to a Parser in pieces of the given size (0: whole)
// and reassembles the frames.
func parseAll(t *testing.T, stream []byte, piece int, tcp bool) ([]parsed, error) {
	t.Helper()
	ps := Parser{TCP: tcp}
	var out []parsed
	var cur *parsed
	for len(stream) > 0 {
		k := len(stream)
		if piece > 0 {
			k = min(k, piece)
		}
		p := stream[:k]
		stream = stream[k:]
		for len(p) > 0 {
			c, n, ok, err := ps.Next(p)
			if err != nil {
				return out, err
			}
			if n <= 0 {
				t.Fatalf(
					"Next consumed %d bytes of %d",
					n, len(p),
				)
			}
			p = p[n:]
			if !ok {
				continue
			}
			if c.Offset == 0 {
				out = append(out, parsed{Header: c.Header})
				cur = &out[len(out)-1]
			}
			if int64(len(cur.payload)) != c.Offset {
				t.Fatalf(
					"chunk at offset %d, want %d",
					c.Offset, len(cur.payload),
				)
			}
			cur.payload = append(cur.payload, c.Payload...)
			if c.Last != (int64(len(cur.payload)) == c.Length) {
				t.Fatalf(
					"Last %v with %d of %d bytes",
					c.Last, len(cur.payload), c.Length,
				)
			}
		}
	}
	return out, nil
}

func TestParser(t *testing.T) {
	closeBody := ws.NewCloseFrameBody(ws.StatusGoingAway, "bye")
	cases := []struct {
		name    string
		fin     bool
		op      ws.OpCode
		payload []byte
	}{
		{
			name:    "empty binary",
			fin:     true,
			op:      ws.OpBinary,
			payload: nil,
		},
		{
			name:    "7-bit length",
			fin:     true,
			op:      ws.OpText,
			payload: pattern(125),
		},
		{
			name:    "16-bit length, smallest",
			fin:     true,
			op:      ws.OpBinary,
			payload: pattern(126),
		},
		{
			name:    "16-bit length, largest",
			fin:     true,
			op:      ws.OpBinary,
			payload: pattern(65535),
		},
		{
			name:    "64-bit length",
			fin:     true,
			op:      ws.OpBinary,
			payload: pattern(70000),
		},
		{
			name:    "first fragment",
			fin:     false,
			op:      ws.OpText,
			payload: pattern(10),
		},
		{
			name:    "ping",
			fin:     true,
			op:      ws.OpPing,
			payload: []byte("are you there"),
		},
		{
			name:    "close with code",
			fin:     true,
			op:      ws.OpClose,
			payload: closeBody,
		},
	}
	for _, tc := range cases {
		frame := serverFrame(t, tc.fin, tc.op, tc.payload)
		// Two copies back to back, so that each split point also
		// separates one frame from the next.
		stream := append(append([]byte(nil), frame...), frame...)
		for _, piece := range []int{0, 1, 2, 3, 5, 11, 4096} {
			got, err := parseAll(t, stream, piece, false)
			if err != nil {
				t.Fatalf(
					"%s, pieces of %d: %v",
					tc.name, piece, err,
				)
			}
			if len(got) != 2 {
				t.Fatalf(
					"%s, pieces of %d: %d frames, want 2",
					tc.name, piece, len(got),
				)
			}
			for _, f := range got {
				if f.Fin != tc.fin || f.Op != Op(tc.op) || f.Masked || f.Length != int64(len(tc.payload)) {
					t.Fatalf(
						"%s, pieces of %d: header %+v",
						tc.name, piece, f.Header,
					)
				}
				if !bytes.Equal(f.payload, tc.payload) {
					t.Fatalf(
						"%s, pieces of %d: payload differs",
						tc.name, piece,
					)
				}
			}
		}
	}
	if got := closeCode(closeBody); got != 1001 {
		t.Errorf(
			"closeCode = %d, want 1001",
			got,
		)
	}
	if got := closeCode(nil); got != closeNoStatus {
		t.Errorf(
			"closeCode(empty) = %d, want %d",
			got, closeNoStatus,
		)
	}
}

// TestParserSplitHeader splits a 64-bit-length header at every byte.
func TestParserSplitHeader(t *testing.T) {
	frame := serverFrame(t, true, ws.OpBinary, pattern(70000))
	for cut := 1; cut < 10; cut++ {
		ps := Parser{}
		_, n, ok, err := ps.Next(frame[:cut])
		if err != nil || ok || n != cut {
			t.Fatalf(
				"cut %d: n %d ok %v err %v, want the %d bytes gathered",
				cut, n, ok, err, cut,
			)
		}
		c, n, ok, err := ps.Next(frame[cut:])
		if err != nil || !ok || !c.Last || c.Length != 70000 || n != len(frame)-cut {
			t.Fatalf(
				"cut %d: n %d ok %v err %v chunk %+v",
				cut, n, ok, err, c.Header,
			)
		}
	}
}

func TestParserMasked(t *testing.T) {
	payload := pattern(300)
	mask := [4]byte{1, 2, 3, 4}
	frame := appendClientFrame(nil, OpBinary, payload, mask)
	got, err := parseAll(t, frame, 7, false)
	if err != nil || len(got) != 1 {
		t.Fatalf(
			"got %d frames, err %v",
			len(got), err,
		)
	}
	f := got[0]
	if !f.Masked || f.Mask != mask {
		t.Fatalf(
			"header %+v, want masked with %v",
			f.Header, mask,
		)
	}
	ws.Cipher(f.payload, f.Mask, 0)
	if !bytes.Equal(f.payload, payload) {
		t.Fatal("unmasked payload differs")
	}
}

func TestParserErrors(t *testing.T) {
	huge := []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}
	cases := []struct {
		name  string
		frame []byte
		want  error
	}{
		{
			name:  "64-bit length with the top bit set",
			frame: huge,
			want:  ErrFrameLength,
		},
		{
			name:  "ping longer than 125 bytes",
			frame: append([]byte{0x89, 126, 0, 126}, pattern(126)...),
			want:  ErrControlFrame,
		},
		{
			name:  "fragmented ping",
			frame: []byte{0x09, 0},
			want:  ErrControlFrame,
		},
	}
	for _, tc := range cases {
		_, err := parseAll(t, tc.frame, 0, false)
		if !errors.Is(err, tc.want) {
			t.Errorf(
				"%s: err %v, want %v",
				tc.name, err, tc.want,
			)
		}
	}
}

func TestParserTCP(t *testing.T) {
	var stream []byte
	sizes := []int{0, 64, 70000, 1}
	for _, n := range sizes {
		stream = appendTCPFrame(stream, pattern(n))
	}
	for _, piece := range []int{0, 1, 3, 4096} {
		got, err := parseAll(t, stream, piece, true)
		if err != nil || len(got) != len(sizes) {
			t.Fatalf(
				"pieces of %d: %d frames, err %v",
				piece, len(got), err,
			)
		}
		for i, f := range got {
			if !f.Fin || f.Op != OpBinary || !bytes.Equal(f.payload, pattern(sizes[i])) {
				t.Fatalf(
					"pieces of %d: frame %d: %+v",
					piece, i, f.Header,
				)
			}
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
