package codec_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/gobwas/ws"

	"github.com/wsactor/wsactor/codec"
)

// headerCases are headers of every length encoding, masked and not, with and
// without reserved bits.
func headerCases() []ws.Header {
	var hs []ws.Header
	for _, n := range []int64{0, 1, 125, 126, 127, 0xFFFF, 0x10000, 1 << 32, 1<<63 - 1} {
		for _, masked := range []bool{false, true} {
			h := ws.Header{Fin: n%2 == 0, Rsv: byte(n % 8), OpCode: ws.OpCode(n % 16), Length: n, Masked: masked}
			if masked {
				h.Mask = [4]byte{1, 2, 3, byte(n)}
			}
			hs = append(hs, h)
		}
	}
	return hs
}

// TestHeaderMatchesGobwas encodes headers with PutHeader and AppendHeader and
// compares with ws.WriteHeader, then parses them back with ParseHeader, also
// from every shorter prefix, which must ask for more bytes.
func TestHeaderMatchesGobwas(t *testing.T) {
	for _, h := range headerCases() {
		t.Run(fmt.Sprintf("len=%d/masked=%v", h.Length, h.Masked), func(t *testing.T) {
			var want bytes.Buffer
			if err := ws.WriteHeader(&want, h); err != nil {
				t.Fatal(err)
			}
			var b [codec.MaxHeaderLen]byte
			n := codec.PutHeader(b[:], h)
			if !bytes.Equal(b[:n], want.Bytes()) {
				t.Fatalf("PutHeader = %x, ws.WriteHeader = %x", b[:n], want.Bytes())
			}
			if got := codec.AppendHeader([]byte("prefix"), h); string(got) != "prefix"+want.String() {
				t.Fatalf("AppendHeader = %x, want prefix and %x", got, want.Bytes())
			}
			if hl := codec.HeaderLen(h.Length, h.Masked); hl != n || hl != ws.HeaderSize(h) {
				t.Fatalf("HeaderLen = %d, encoded %d, ws.HeaderSize %d", hl, n, ws.HeaderSize(h))
			}
			got, m, err := codec.ParseHeader(append(b[:n:n], "payload"...))
			if err != nil || m != n || got != h {
				t.Fatalf("ParseHeader = %+v, %d, %v; want %+v, %d", got, m, err, h, n)
			}
			for k := range n {
				if _, m, err := codec.ParseHeader(b[:k]); m != 0 || err != nil {
					t.Fatalf("ParseHeader of %d of %d bytes = %d, %v; want 0, nil", k, n, m, err)
				}
			}
		})
	}
}

func TestParseHeaderLengths(t *testing.T) {
	tests := []struct {
		name   string
		header []byte
		length int64
		err    error
	}{
		{
			name:   "7-bit length 125",
			header: []byte{0x82, 125},
			length: 125,
		},
		{
			name:   "16-bit length 126 is minimal",
			header: []byte{0x82, 126, 0, 126},
			length: 126,
		},
		{
			name:   "16-bit length 125 is not minimal",
			header: []byte{0x82, 126, 0, 125},
			err:    codec.ErrLengthNotMinimal,
		},
		{
			name:   "64-bit length 65536 is minimal",
			header: []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0},
			length: 65536,
		},
		{
			name:   "64-bit length 65535 is not minimal",
			header: []byte{0x82, 127, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF},
			err:    codec.ErrLengthNotMinimal,
		},
		{
			name:   "64-bit length 2^63-1 is the largest",
			header: []byte{0x82, 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},
			length: 1<<63 - 1,
		},
		{
			name:   "64-bit length with the top bit set",
			header: []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0},
			err:    codec.ErrLengthMSB,
		},
		{
			name:   "length errors come before the mask bytes arrive",
			header: []byte{0x82, 0xFE, 0, 1},
			err:    codec.ErrLengthNotMinimal,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, n, err := codec.ParseHeader(tt.header)
			if tt.err != nil {
				checkErr(t, err, tt.err, codec.CloseProtocolError)
				return
			}
			if err != nil || n != len(tt.header) || h.Length != tt.length {
				t.Fatalf("ParseHeader = length %d, %d bytes, %v; want %d, %d bytes", h.Length, n, err, tt.length, len(tt.header))
			}
		})
	}
}

// goldenFrame and goldenStream are the records of ../testdata/frames.json.
type goldenFrame struct {
	Op         ws.OpCode `json:"op"`
	Fin        bool      `json:"fin"`
	Payload    string    `json:"payload"`
	PayloadHex string    `json:"payloadHex"`
}

type goldenStream struct {
	Name     string        `json:"name"`
	Receiver string        `json:"receiver"`
	Wire     string        `json:"wire"`
	Frames   []goldenFrame `json:"frames"`
	Error    string        `json:"error"`
}

var sentinels = map[string]error{
	"ErrReservedBits":           codec.ErrReservedBits,
	"ErrReservedOpcode":         codec.ErrReservedOpcode,
	"ErrMaskRequired":           codec.ErrMaskRequired,
	"ErrMaskUnexpected":         codec.ErrMaskUnexpected,
	"ErrControlTooLong":         codec.ErrControlTooLong,
	"ErrControlFragmented":      codec.ErrControlFragmented,
	"ErrContinuationUnexpected": codec.ErrContinuationUnexpected,
	"ErrContinuationExpected":   codec.ErrContinuationExpected,
	"ErrLengthMSB":              codec.ErrLengthMSB,
	"ErrLengthNotMinimal":       codec.ErrLengthNotMinimal,
	"ErrFrameTooBig":            codec.ErrFrameTooBig,
	"ErrMessageTooBig":          codec.ErrMessageTooBig,
	"ErrInvalidUTF8":            codec.ErrInvalidUTF8,
	"ErrCloseInvalidUTF8":       codec.ErrCloseInvalidUTF8,
	"ErrClosePayload1Byte":      codec.ErrClosePayload1Byte,
	"ErrCloseCodeInvalid":       codec.ErrCloseCodeInvalid,
}

func loadGolden(t *testing.T) []goldenStream {
	t.Helper()
	data, err := os.ReadFile("../testdata/frames.json")
	if err != nil {
		t.Fatal(err)
	}
	var streams []goldenStream
	if err := json.Unmarshal(data, &streams); err != nil {
		t.Fatalf("frames.json: %v", err)
	}
	return streams
}

// TestGoldenFrames decodes the streams of testdata/frames.json (the examples
// of RFC 6455 section 5.7 among them) and, for unmasked streams, encodes
// their frames with a server Batch and compares the bytes.
func TestGoldenFrames(t *testing.T) {
	for _, g := range loadGolden(t) {
		t.Run(g.Name, func(t *testing.T) {
			role := map[string]codec.Role{"server": codec.Server, "client": codec.Client}[g.Receiver]
			if role == 0 {
				t.Fatalf("receiver %q is neither server nor client", g.Receiver)
			}
			wire, err := hex.DecodeString(g.Wire)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]decoded, len(g.Frames))
			for i, f := range g.Frames {
				p := []byte(f.Payload)
				if f.PayloadHex != "" {
					if p, err = hex.DecodeString(f.PayloadHex); err != nil {
						t.Fatal(err)
					}
				}
				want[i] = decoded{fin: f.Fin, op: f.Op, payload: string(p)}
			}
			r := codec.NewReader(bytes.NewReader(wire), codec.Decoder{Role: role}, 0)
			t.Cleanup(r.Release)
			got, err := readAll(t, r)
			if g.Error != "" {
				sentinel, ok := sentinels[g.Error]
				if !ok {
					t.Fatalf("unknown error name %q", g.Error)
				}
				var pe *codec.ProtocolError
				if !errors.Is(err, sentinel) || !errors.As(err, &pe) || pe.Code != sentinel.(*codec.ProtocolError).Code {
					t.Fatalf("error = %v, want %v", err, sentinel)
				}
				return
			}
			if err != io.EOF {
				t.Fatalf("error = %v, want io.EOF", err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("frames %+v, want %+v", got, want)
			}
			if role != codec.Client {
				return
			}
			b := codec.Batch{Role: codec.Server}
			t.Cleanup(b.Release)
			for _, f := range want {
				b.Add(f.fin, f.op, 0, []byte(f.payload))
			}
			var out bytes.Buffer
			if _, err := b.WriteTo(&out); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), wire) {
				t.Fatalf("server Batch encodes %x, want %x", out.Bytes(), wire)
			}
		})
	}
}
