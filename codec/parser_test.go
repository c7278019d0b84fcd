package codec_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"

	"github.com/gobwas/ws"

	"github.com/wsactor/wsactor/codec"
)

// parseCuts feeds input to p in reads of the sizes in cuts (the rest in one
// read when they run out; a 0 is skipped), as a connection would deliver it,
// and gathers the frames it yields as a caller does: payload chunks joined,
// close payloads checked. The end of the input is io.EOF between frames and
// io.ErrUnexpectedEOF inside one. It checks the promises of every chunk:
// First once per frame, Payload in place in the read, no spare capacity,
// nothing yielded and all consumed when ok is false.
func parseCuts(t testing.TB, p *codec.Parser, input []byte, cuts []int) ([]decoded, error) {
	t.Helper()
	buf := bytes.Clone(input)
	var (
		frames  []decoded
		payload []byte
		inFrame bool
	)
	for len(buf) > 0 {
		size := len(buf)
		if len(cuts) > 0 {
			size = min(max(cuts[0], 1), len(buf))
			cuts = cuts[1:]
		}
		read := buf[:size]
		buf = buf[size:]
		for b := read; len(b) > 0; {
			c, n, ok, err := p.Next(b)
			if n < 0 || n > len(b) {
				t.Fatalf("Next consumed %d bytes of %d", n, len(b))
			}
			if err != nil {
				return frames, err
			}
			if !ok {
				if n != len(b) {
					t.Fatalf("Next yielded nothing and consumed %d bytes of %d", n, len(b))
				}
				b = b[n:]
				continue
			}
			if n == 0 && !c.First {
				t.Fatalf("Next yielded an empty chunk inside a frame")
			}
			if c.First == inFrame {
				t.Fatalf("chunk First = %v inside a frame = %v", c.First, inFrame)
			}
			if len(c.Payload) > 0 {
				start := int(uintptr(unsafe.Pointer(unsafe.SliceData(c.Payload))) - uintptr(unsafe.Pointer(unsafe.SliceData(b))))
				if start < 0 || start+len(c.Payload) != n {
					t.Fatalf("chunk payload is not the end of the %d bytes consumed in place (offset %d, %d bytes)", n, start, len(c.Payload))
				}
			}
			if cap(c.Payload) != len(c.Payload) {
				t.Fatalf("chunk payload has capacity %d beyond its length %d", cap(c.Payload), len(c.Payload))
			}
			b = b[n:]
			inFrame = !c.Last
			payload = append(payload, c.Payload...)
			if !c.Last {
				continue
			}
			h := p.Header()
			if h.OpCode != c.Op || h.Fin != c.Fin {
				t.Fatalf("chunk of op %d fin %v for a header of op %d fin %v", c.Op, c.Fin, h.OpCode, h.Fin)
			}
			if int64(len(payload)) != h.Length {
				t.Fatalf("frame of %d bytes for a header of %d", len(payload), h.Length)
			}
			if c.Op == ws.OpClose {
				if _, _, err := codec.ParseClosePayload(payload); err != nil {
					return frames, err
				}
			}
			frames = append(frames, decoded{fin: c.Fin, op: c.Op, payload: string(payload)})
			payload = payload[:0]
		}
	}
	if p.InFrame() {
		return frames, io.ErrUnexpectedEOF
	}
	return frames, io.EOF
}

// cutPatterns returns ways to cut n bytes into reads: whole, a byte at a
// time, two reads at every point (for short inputs), and a few random ones.
func cutPatterns(n int, seed uint64) map[string][]int {
	pats := map[string][]int{
		"whole":   nil,
		"onebyte": slicesRepeat(1, n),
		"threes":  slicesRepeat(3, n),
	}
	if n <= 64 {
		for k := 1; k < n; k++ {
			pats[fmt.Sprintf("at%d", k)] = []int{k}
		}
	}
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	for i := range 4 {
		var cuts []int
		for sum := 0; sum < n; {
			c := 1 + rng.IntN(max(2, n/3))
			cuts = append(cuts, c)
			sum += c
		}
		pats[fmt.Sprintf("random%d", i)] = cuts
	}
	return pats
}

func slicesRepeat(v, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// TestParserRules runs every decoding case through a Parser, its input cut
// into reads in many ways: each cut must give the same frames and the same
// error as the others and as the case says.
func TestParserRules(t *testing.T) {
	for _, tc := range decodeCases() {
		roles := tc.roles
		if roles == nil {
			roles = bothRoles
		}
		for _, role := range roles {
			input := tc.raw
			if input == nil {
				input = wire(t, role, tc.frames...)
			}
			for name, cuts := range cutPatterns(len(input), 1) {
				t.Run(fmt.Sprintf("%s/%s/%s", tc.name, role, name), func(t *testing.T) {
					d := tc.decoder
					d.Role = role
					p := codec.Parser{Decoder: d}
					frames, err := parseCuts(t, &p, input, cuts)
					if len(frames) != tc.good {
						t.Errorf("decoded %d frames before the error, want %d", len(frames), tc.good)
					}
					checkErr(t, err, tc.err, tc.code)
					for i, f := range frames {
						if want := tc.frames[i]; f.payload != want.payload || f.op != want.op || f.fin != want.fin {
							t.Errorf("frame %d = %+v, want op %d fin %v payload %q", i, f, want.op, want.fin, want.payload)
						}
					}
				})
			}
		}
	}
}

// TestParserState follows InFrame, Remaining and InMessage through a header
// split across reads, a payload in pieces and a fragmented message.
func TestParserState(t *testing.T) {
	input := wire(t, codec.Server, text(false, strings.Repeat("a", 300)), control(ws.OpPing, "p"), cont(true, "b"))
	// The first frame's header is 8 bytes: 2, a 16-bit length, the mask.
	steps := []struct {
		name      string
		feed      int // bytes to feed this step
		inFrame   bool
		remaining int64
		inMessage bool
	}{
		{
			name:    "first header byte",
			feed:    1,
			inFrame: true,
		},
		{
			name:    "header up to its mask",
			feed:    5,
			inFrame: true,
		},
		{
			name:      "header done, payload to come",
			feed:      2,
			inFrame:   true,
			remaining: 300,
			inMessage: true,
		},
		{
			name:      "some of the payload",
			feed:      100,
			inFrame:   true,
			remaining: 200,
			inMessage: true,
		},
		{
			name:      "the rest of the first fragment",
			feed:      200,
			inMessage: true,
		},
		{
			name:      "a ping between fragments",
			feed:      2 + 4 + 1,
			inMessage: true,
		},
		{
			name: "the last fragment",
			feed: 2 + 4 + 1,
		},
	}
	p := codec.Parser{Decoder: codec.Decoder{Role: codec.Server}}
	b := input
	for _, st := range steps {
		chunk := b[:st.feed]
		b = b[st.feed:]
		for len(chunk) > 0 {
			_, n, _, err := p.Next(chunk)
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			chunk = chunk[n:]
		}
		if got := p.InFrame(); got != st.inFrame {
			t.Errorf("%s: InFrame = %v, want %v", st.name, got, st.inFrame)
		}
		if got := p.Remaining(); got != st.remaining {
			t.Errorf("%s: Remaining = %d, want %d", st.name, got, st.remaining)
		}
		if got := p.InMessage(); got != st.inMessage {
			t.Errorf("%s: InMessage = %v, want %v", st.name, got, st.inMessage)
		}
	}
	if len(b) != 0 {
		t.Fatalf("%d bytes left over", len(b))
	}
}

// TestParserChunks checks what each call yields for one read holding a
// header, a whole frame and the start of another.
func TestParserChunks(t *testing.T) {
	input := wire(t, codec.Client, binary(true, "whole"), text(true, "split in two"))
	type yield struct {
		payload     string
		first, last bool
	}
	tests := []struct {
		name string
		cut  int // the first read's size; 0 means one read
		want []yield
	}{
		{
			name: "one read",
			want: []yield{
				{payload: "whole", first: true, last: true},
				{payload: "split in two", first: true, last: true},
			},
		},
		{
			name: "the second header at the end of the first read",
			cut:  2 + 5 + 2,
			want: []yield{
				{payload: "whole", first: true, last: true},
				{payload: "", first: true},
				{payload: "split in two", last: true},
			},
		},
		{
			name: "the second payload across reads",
			cut:  2 + 5 + 2 + 5,
			want: []yield{
				{payload: "whole", first: true, last: true},
				{payload: "split", first: true},
				{payload: " in two", last: true},
			},
		},
		{
			name: "the second header across reads",
			cut:  2 + 5 + 1,
			want: []yield{
				{payload: "whole", first: true, last: true},
				{payload: "split in two", first: true, last: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := codec.Parser{Decoder: codec.Decoder{Role: codec.Client}}
			buf := bytes.Clone(input)
			var got []yield
			cut := tt.cut
			if cut == 0 {
				cut = len(buf)
			}
			for _, read := range [][]byte{buf[:cut], buf[cut:]} {
				for len(read) > 0 {
					c, n, ok, err := p.Next(read)
					if err != nil {
						t.Fatal(err)
					}
					read = read[n:]
					if ok {
						got = append(got, yield{payload: string(c.Payload), first: c.First, last: c.Last})
					}
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("chunks %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestParserReset checks that Reset forgets a partial header, frame and
// message and keeps the settings.
func TestParserReset(t *testing.T) {
	d := codec.Decoder{Role: codec.Client, MaxMessage: 10}
	p := codec.Parser{Decoder: d}
	input := wire(t, codec.Client, text(false, "abc"), cont(false, "de"))
	if _, _, _, err := p.Next(input[:len(input)-1]); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := p.Next(input[5 : len(input)-1]); err != nil {
		t.Fatal(err)
	}
	if !p.InFrame() || !p.InMessage() {
		t.Fatalf("InFrame %v, InMessage %v before Reset: want both", p.InFrame(), p.InMessage())
	}
	p.Reset()
	if p.InFrame() || p.InMessage() || p.Remaining() != 0 {
		t.Fatalf("InFrame %v, InMessage %v, Remaining %d after Reset: want none", p.InFrame(), p.InMessage(), p.Remaining())
	}
	frames, err := parseCuts(t, &p, wire(t, codec.Client, text(true, "0123456789"), text(true, "0123456789x")), nil)
	if len(frames) != 1 {
		t.Errorf("decoded %d frames after Reset, want 1", len(frames))
	}
	checkErr(t, err, codec.ErrMessageTooBig, codec.CloseMessageTooBig)
}

func TestParserAllocs(t *testing.T) {
	input := wire(t, codec.Server,
		text(false, strings.Repeat("é", 100)), control(ws.OpPing, "p"), cont(true, strings.Repeat("a", 5000)),
		binary(true, strings.Repeat("b", 70000)))
	p := codec.Parser{Decoder: codec.Decoder{Role: codec.Server, MaxMessage: -1}}
	// The parser unmasks in place: each run starts from a fresh copy. Reads
	// of 7 bytes split headers and code points.
	buf := make([]byte, len(input))
	allocs := testing.AllocsPerRun(10, func() {
		copy(buf, input)
		for b := buf; len(b) > 0; {
			read := b[:min(7, len(b))]
			b = b[len(read):]
			for len(read) > 0 {
				_, n, _, err := p.Next(read)
				if err != nil {
					t.Fatal(err)
				}
				read = read[n:]
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per run, want 0", allocs)
	}
}

// BenchmarkParser parses a stream of masked binary frames of one size, as a
// server receives them, fed in reads of 32 KiB (the session's read buffer).
// The parser unmasks in place: the stream alternates between masked and
// plain payloads from one pass to the next, which costs the same.
func BenchmarkParser(b *testing.B) {
	const readSize = 32 << 10
	for _, s := range headerSizes {
		b.Run(s.name, func(b *testing.B) {
			data, _ := decodeStream(b, s.n)
			p := codec.Parser{Decoder: codec.Decoder{Role: codec.Server}}
			off, end := 0, 0 // the read in progress is data[off:end]
			b.SetBytes(int64(s.n))
			b.ReportAllocs()
			for b.Loop() {
				for {
					if off == end {
						if end == len(data) {
							off, end = 0, 0
						}
						end = min(end+readSize, len(data))
					}
					c, n, ok, err := p.Next(data[off:end])
					if err != nil {
						b.Fatal(err)
					}
					off += n
					if ok && c.Last {
						break
					}
				}
			}
		})
	}
}
