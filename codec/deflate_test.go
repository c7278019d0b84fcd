package codec_test

import (
	"bytes"
	"compress/flate"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"

	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/internal/bufpool"
)

func deflateInputs() map[string][]byte {
	rng := rand.New(rand.NewPCG(3, 4))
	random := make([]byte, 100_000)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	return map[string][]byte{
		"empty":          nil,
		"one byte":       {'x'},
		"text":           bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog. "), 40),
		"zeros 1 MiB":    make([]byte, 1<<20),
		"random 100 KB":  random,
		"utf8 multibyte": bytes.Repeat([]byte("aé€😀"), 5000),
	}
}

// Compress and Inflate are inverses, at every level.
func TestDeflateRoundTrip(t *testing.T) {
	for name, p := range deflateInputs() {
		for _, level := range []int{flate.HuffmanOnly, flate.BestSpeed, flate.DefaultCompression, flate.BestCompression, 42} {
			z := codec.Compress(p, level)
			got, err := codec.Inflate(z, int64(len(p)))
			if err != nil {
				t.Fatalf("%s, level %d: Inflate: %v", name, level, err)
			}
			if !bytes.Equal(got, p) {
				t.Fatalf("%s, level %d: %d bytes back, want the %d compressed", name, level, len(got), len(p))
			}
			bufpool.Put(z)
			bufpool.Put(got)
		}
	}
}

// What Compress makes, gobwas/ws/wsflate inflates, and the other way
// round: the tail handling is RFC 7692's (section 7.2).
func TestDeflateAgainstWsflate(t *testing.T) {
	for name, p := range deflateInputs() {
		z := codec.Compress(p, flate.BestSpeed)
		in := ws.NewBinaryFrame(append([]byte(nil), z...))
		in.Header.Rsv = ws.Rsv(true, false, false)
		got, err := wsflate.DecompressFrame(in)
		if err != nil || !bytes.Equal(got.Payload, p) {
			t.Fatalf("%s: wsflate inflates ours to %d bytes, %v; want the %d sent", name, len(got.Payload), err, len(p))
		}
		theirs, err := wsflate.CompressFrame(ws.NewBinaryFrame(p))
		if err != nil {
			t.Fatal(err)
		}
		back, err := codec.Inflate(theirs.Payload, -1)
		if err != nil || !bytes.Equal(back, p) {
			t.Fatalf("%s: wsflate's compression inflates to %d bytes, %v; want %d", name, len(back), err, len(p))
		}
	}
}

// Inflate stops at the limit: a small message that inflates to far more
// (a "zip bomb") is ErrMessageTooBig, whose code is 1009.
func TestInflateLimit(t *testing.T) {
	p := make([]byte, 10<<20)
	z := codec.Compress(p, flate.BestCompression)
	if len(z) > 64<<10 {
		t.Fatalf("10 MiB of zeros compressed to %d bytes", len(z))
	}
	for _, tc := range []struct {
		limit int64
		err   error
	}{
		{limit: int64(len(p)), err: nil},
		{limit: int64(len(p)) - 1, err: codec.ErrMessageTooBig},
		{limit: 1 << 20, err: codec.ErrMessageTooBig},
		{limit: 0, err: codec.ErrMessageTooBig},
		{limit: -1, err: nil},
	} {
		got, err := codec.Inflate(z, tc.limit)
		if !errors.Is(err, tc.err) {
			t.Fatalf("limit %d: %v, want %v", tc.limit, err, tc.err)
		}
		if err == nil && len(got) != len(p) {
			t.Fatalf("limit %d: %d bytes", tc.limit, len(got))
		}
		var pe *codec.ProtocolError
		if err != nil && (!errors.As(err, &pe) || pe.Code != codec.CloseMessageTooBig) {
			t.Fatalf("limit %d: %v, want close code 1009", tc.limit, err)
		}
	}
}

// Bytes that are not DEFLATE are ErrInvalidCompressed, 1007.
func TestInflateInvalid(t *testing.T) {
	for _, p := range [][]byte{
		{0xff, 0xff, 0xff, 0xff},
		{0x07}, // reserved block type
		bytes.Repeat([]byte{0xfe}, 100),
	} {
		if _, err := codec.Inflate(p, 1<<20); !errors.Is(err, codec.ErrInvalidCompressed) {
			t.Fatalf("Inflate(%x): %v, want ErrInvalidCompressed", p, err)
		}
	}
}

// AddCompressed sets RSV1 on the first frame only.
func TestAddCompressedRSV1(t *testing.T) {
	z := codec.Compress(bytes.Repeat([]byte("abc"), 1000), flate.BestSpeed)
	for _, fragment := range []int{0, 10} {
		var b codec.Batch
		b.Role = codec.Server
		b.AddCompressed(ws.OpText, z, fragment)
		var out bytes.Buffer
		if _, err := b.WriteTo(&out); err != nil {
			t.Fatal(err)
		}
		b.Release()
		var payload []byte
		for i := 0; out.Len() > 0; i++ {
			f, err := ws.ReadFrame(&out)
			if err != nil {
				t.Fatal(err)
			}
			if f.Header.Rsv1() != (i == 0) {
				t.Fatalf("fragment %d, frame %d: RSV1 %v", fragment, i, f.Header.Rsv1())
			}
			payload = append(payload, f.Payload...)
		}
		if !bytes.Equal(payload, z) {
			t.Fatalf("fragment %d: payload differs", fragment)
		}
	}
}

// With Deflate, RSV1 marks the first frame of a data message compressed,
// and is a protocol error on a continuation or control frame; without it,
// RSV1 is a reserved bit like the others.
func TestDecoderDeflate(t *testing.T) {
	rsv1 := codec.RSV1
	tests := []struct {
		name       string
		deflate    bool
		headers    []ws.Header
		err        error
		compressed bool
	}{
		{name: "compressed text", deflate: true, headers: []ws.Header{{Fin: true, OpCode: ws.OpText, Rsv: rsv1}}, compressed: true},
		{name: "uncompressed binary", deflate: true, headers: []ws.Header{{Fin: true, OpCode: ws.OpBinary}}},
		{name: "compressed fragmented", deflate: true, headers: []ws.Header{{OpCode: ws.OpBinary, Rsv: rsv1}, {Fin: true, OpCode: ws.OpContinuation}}, compressed: true},
		{name: "RSV1 on a continuation", deflate: true, headers: []ws.Header{{OpCode: ws.OpBinary}, {Fin: true, OpCode: ws.OpContinuation, Rsv: rsv1}}, err: codec.ErrCompressedContinuation},
		{name: "RSV1 on a ping", deflate: true, headers: []ws.Header{{Fin: true, OpCode: ws.OpPing, Rsv: rsv1}}, err: codec.ErrCompressedControl},
		{name: "RSV2 with deflate", deflate: true, headers: []ws.Header{{Fin: true, OpCode: ws.OpText, Rsv: 0x02}}, err: codec.ErrReservedBits},
		{name: "RSV1 without deflate", headers: []ws.Header{{Fin: true, OpCode: ws.OpText, Rsv: rsv1}}, err: codec.ErrReservedBits},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := codec.Decoder{Role: codec.Client, Deflate: tt.deflate}
			var err error
			for _, h := range tt.headers {
				if err = d.Begin(h); err != nil {
					break
				}
				// Compressed bytes are not UTF-8: not checked until inflated.
				if err = d.Data([]byte{0xff, 0xfe}); err != nil {
					break
				}
				if _, err = d.End(); err != nil {
					break
				}
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			if err == nil && d.Compressed() != tt.compressed {
				t.Fatalf("Compressed() = %v, want %v", d.Compressed(), tt.compressed)
			}
		})
	}
}

// FuzzInflate: no input makes Inflate panic or hold more than the limit,
// and what it inflates compresses and inflates back the same.
func FuzzInflate(f *testing.F) {
	for _, p := range deflateInputs() {
		if len(p) < 10_000 {
			f.Add(codec.Compress(p, flate.BestSpeed), int64(len(p)))
		}
	}
	f.Add([]byte{0x07}, int64(100))
	f.Add(codec.Compress(make([]byte, 100_000), flate.BestCompression), int64(1000))
	f.Fuzz(func(t *testing.T, z []byte, limit int64) {
		limit = limit % (1 << 20)
		got, err := codec.Inflate(z, limit)
		if err != nil {
			if !errors.Is(err, codec.ErrInvalidCompressed) && !errors.Is(err, codec.ErrMessageTooBig) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if limit >= 0 && int64(len(got)) > limit {
			t.Fatalf("%d bytes inflated past the limit %d", len(got), limit)
		}
		back, err := codec.Inflate(codec.Compress(got, flate.BestSpeed), -1)
		if err != nil || !bytes.Equal(back, got) {
			t.Fatalf("round trip of %d inflated bytes: %v", len(got), err)
		}
	})
}

// A DeflateStream fed in pieces and emptied with Take at any sizes gives,
// with Finish, one body that inflates to what was written, and never hands
// out the tail that Finish removes.
func TestDeflateStream(t *testing.T) {
	for name, p := range deflateInputs() {
		for _, take := range []int{1, 5, 100, 4096, 1 << 20} {
			rng := rand.New(rand.NewPCG(uint64(len(p)), uint64(take)))
			d := codec.NewDeflateStream(flate.BestSpeed)
			var body []byte
			for rest := p; len(rest) > 0; {
				k := min(len(rest), 1+rng.IntN(10_000))
				d.Write(rest[:k])
				rest = rest[k:]
				for d.Buffered()-4 >= take {
					b := d.Take(take)
					if len(b) != take {
						t.Fatalf("%s: Take(%d) gave %d bytes", name, take, len(b))
					}
					body = append(body, b...)
					bufpool.Put(b)
				}
			}
			if b := d.Take(take); b != nil {
				body = append(body, b...)
				bufpool.Put(b)
			}
			if b := d.Finish(); b != nil {
				body = append(body, b...)
				bufpool.Put(b)
			}
			got, err := codec.Inflate(body, -1)
			if err != nil || !bytes.Equal(got, p) {
				t.Fatalf("%s, Take(%d): inflates to %d bytes, %v; want %d", name, take, len(got), err, len(p))
			}
		}
	}
	d := codec.NewDeflateStream(flate.BestSpeed)
	d.Write([]byte("abandoned"))
	d.Release()
}
