package codec_test

import (
	"bytes"
	"errors"
	"io"
	"math/bits"
	"runtime/metrics"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/gobwas/ws"

	"github.com/wsactor/wsactor/codec"
)

var errStall = errors.New("test source: no more bytes for now")

// stalled returns a source that yields p and then fails with errStall, as a
// connection whose peer stopped sending would time out.
func stalled(p []byte) io.Reader {
	return io.MultiReader(bytes.NewReader(p), iotest.ErrReader(errStall))
}

// TestReaderFailsFastAcrossReads checks that invalid UTF-8 is reported as soon
// as its bytes arrive, before the rest of the frame: the source stalls right
// after the bad byte, and the Reader must report 1007, not the stall.
func TestReaderFailsFastAcrossReads(t *testing.T) {
	tests := []struct {
		name   string
		frames []wireFrame
		cut    int // bytes of the encoded stream the source delivers; -n means all but n
		err    error
		code   codec.CloseCode
	}{
		{
			name:   "bad byte early in a small frame",
			frames: []wireFrame{text(true, "ab\xffcdefgh")},
			cut:    -6,
			err:    codec.ErrInvalidUTF8,
			code:   codec.CloseInvalidFramePayloadData,
		},
		{
			name:   "impossible second byte in a small frame",
			frames: []wireFrame{text(true, "ab\xf4\x90\x80\x80cd")},
			cut:    -4,
			err:    codec.ErrInvalidUTF8,
			code:   codec.CloseInvalidFramePayloadData,
		},
		{
			name:   "bad byte early in a frame larger than the read buffer",
			frames: []wireFrame{text(true, "abc\xc0"+strings.Repeat("x", 10000))},
			cut:    -9000,
			err:    codec.ErrInvalidUTF8,
			code:   codec.CloseInvalidFramePayloadData,
		},
		{
			name:   "bad byte beyond the read buffer in a large frame",
			frames: []wireFrame{text(true, strings.Repeat("é", 3000)+"\xed\xa0"+strings.Repeat("x", 10000))},
			cut:    -9000,
			err:    codec.ErrInvalidUTF8,
			code:   codec.CloseInvalidFramePayloadData,
		},
		{
			name:   "bad continuation of a code point split across fragments",
			frames: []wireFrame{text(false, "ab\xe2"), cont(true, "\x82\x41"+strings.Repeat("x", 100))},
			cut:    -90,
			err:    codec.ErrInvalidUTF8,
			code:   codec.CloseInvalidFramePayloadData,
		},
		{
			name:   "valid prefix waits for more bytes",
			frames: []wireFrame{text(true, "ab\xe2\x82\xac"+strings.Repeat("x", 100))},
			cut:    -100,
			err:    errStall,
		},
		{
			name:   "valid prefix of a large frame waits for more bytes",
			frames: []wireFrame{text(true, strings.Repeat("€", 5000))},
			cut:    -1,
			err:    errStall,
		},
	}
	for _, tt := range tests {
		for _, role := range bothRoles {
			t.Run(tt.name+"/"+role.String(), func(t *testing.T) {
				input := wire(t, role, tt.frames...)
				cut := tt.cut
				if cut < 0 {
					cut += len(input)
				}
				r := codec.NewReader(stalled(input[:cut]), codec.Decoder{Role: role}, 0)
				t.Cleanup(r.Release)
				_, err := readAll(t, r)
				checkErr(t, err, tt.err, tt.code)
			})
		}
	}
}

// TestReaderFrameSizes decodes payloads around the read buffer's size, in
// place and gathered, mixed with small frames, for both roles and feeds.
func TestReaderFrameSizes(t *testing.T) {
	const bufSize = 64
	sizes := []int{0, 1, 50, 63, 64, 65, 127, 128, 129, 200, 1000, 5000, 70000}
	var frames []wireFrame
	for i, n := range sizes {
		p := make([]byte, n)
		for j := range p {
			p[j] = byte(i + j)
		}
		frames = append(frames, binary(true, string(p)), control(ws.OpPing, "between"))
	}
	for _, role := range bothRoles {
		input := wire(t, role, frames...)
		for _, feed := range feeds {
			t.Run(role.String()+"/"+feed.name, func(t *testing.T) {
				r := codec.NewReader(feed.open(input), codec.Decoder{Role: role}, bufSize)
				t.Cleanup(r.Release)
				got, err := readAll(t, r)
				checkErr(t, err, io.EOF, 0)
				if len(got) != len(frames) {
					t.Fatalf("decoded %d frames, want %d", len(got), len(frames))
				}
				for i, f := range got {
					if f.payload != frames[i].payload || f.op != frames[i].op {
						t.Fatalf("frame %d: op %v, %d bytes; want op %v, %d bytes",
							i, f.op, len(f.payload), frames[i].op, len(frames[i].payload))
					}
				}
				buf, big := r.BufferCaps()
				if buf != bufSize {
					t.Errorf("read buffer capacity = %d, want %d", buf, bufSize)
				}
				if limit := 2 * 70000; big > limit {
					t.Errorf("payload buffer capacity = %d, want at most %d", big, limit)
				}
			})
		}
	}
}

// TestReaderGrowsOnlyWithArrivedBytes declares the largest frame the default
// limit allows and sends a little of it: the payload buffer must stay within
// twice what arrived (or twice the read buffer), never near the declared
// 16 MiB.
func TestReaderGrowsOnlyWithArrivedBytes(t *testing.T) {
	tests := []struct {
		name    string
		bufSize int
		sent    int
	}{
		{
			name:    "nothing sent",
			bufSize: 0,
			sent:    0,
		},
		{
			name:    "less than the read buffer",
			bufSize: 0,
			sent:    100,
		},
		{
			name:    "a little more than the read buffer",
			bufSize: 0,
			sent:    5000,
		},
		{
			name:    "many buffers",
			bufSize: 0,
			sent:    300000,
		},
		{
			name:    "smallest read buffer",
			bufSize: 1,
			sent:    1000,
		},
	}
	for _, tt := range tests {
		for _, role := range bothRoles {
			t.Run(tt.name+"/"+role.String(), func(t *testing.T) {
				f := binary(true, strings.Repeat("z", tt.sent)).declaring(codec.DefaultMaxMessage)
				input := wire(t, role, f)
				r := codec.NewReader(bytes.NewReader(input), codec.Decoder{Role: role}, tt.bufSize)
				t.Cleanup(r.Release)
				_, err := readAll(t, r)
				checkErr(t, err, io.ErrUnexpectedEOF, 0)
				buf, big := r.BufferCaps()
				if limit := max(2*len(input), 2*ceilPow2(buf)); big > limit {
					t.Errorf("payload buffer capacity = %d after %d bytes, want at most %d", big, len(input), limit)
				}
			})
		}
	}
}

func ceilPow2(n int) int {
	if n <= 1 {
		return n
	}
	return 1 << bits.Len(uint(n-1))
}

// emptyReader returns no bytes and no error, which io.Reader discourages.
type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

func TestReaderSourceErrors(t *testing.T) {
	errBoom := errors.New("boom")
	one := wire(t, codec.Client, text(true, "one"))
	tests := []struct {
		name string
		src  io.Reader
		good int
		err  error
	}{
		{
			name: "source that never makes progress",
			src:  emptyReader{},
			err:  io.ErrNoProgress,
		},
		{
			name: "source that makes no progress inside a frame",
			src:  io.MultiReader(bytes.NewReader(one[:3]), emptyReader{}),
			err:  io.ErrNoProgress,
		},
		{
			name: "last bytes come with io.EOF",
			src:  iotest.DataErrReader(bytes.NewReader(bytes.Repeat(one, 3))),
			good: 3,
			err:  io.EOF,
		},
		{
			name: "source error after a frame is returned as it is",
			src:  io.MultiReader(bytes.NewReader(one), iotest.ErrReader(errBoom)),
			good: 1,
			err:  errBoom,
		},
		{
			name: "source error inside a frame is returned as it is",
			src:  io.MultiReader(bytes.NewReader(one[:4]), iotest.ErrReader(errBoom)),
			err:  errBoom,
		},
		{
			name: "timeout from the source passes through",
			src:  iotest.TimeoutReader(bytes.NewReader(one)),
			good: 1,
			err:  iotest.ErrTimeout,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := codec.NewReader(tt.src, codec.Decoder{Role: codec.Client}, 0)
			t.Cleanup(r.Release)
			got, err := readAll(t, r)
			if len(got) != tt.good {
				t.Errorf("decoded %d frames, want %d", len(got), tt.good)
			}
			checkErr(t, err, tt.err, 0)
			if _, again := r.NextFrame(); again != err {
				t.Errorf("NextFrame after %v = %v, want the same error", err, again)
			}
		})
	}
}

// TestReaderPayloadCannotGrowIntoNextFrame checks that a payload returned in
// place has no spare capacity: appending to it must not overwrite bytes the
// Reader has buffered.
func TestReaderPayloadCannotGrowIntoNextFrame(t *testing.T) {
	input := wire(t, codec.Client, binary(true, "first"), binary(true, "second"), binary(true, strings.Repeat("L", 9000)), binary(true, "third"))
	r := codec.NewReader(bytes.NewReader(input), codec.Decoder{Role: codec.Client}, 0)
	t.Cleanup(r.Release)
	var got []string
	for {
		f, err := r.NextFrame()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if cap(f.Payload) != len(f.Payload) {
			t.Errorf("payload %q has capacity %d beyond its length %d", f.Payload[:min(len(f.Payload), 8)], cap(f.Payload), len(f.Payload))
		}
		_ = append(f.Payload, "XXXX"...)
		got = append(got, string(f.Payload[:min(len(f.Payload), 6)]))
	}
	if want := []string{"first", "second", "LLLLLL", "third"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("payloads %q, want %q", got, want)
	}
}

func TestReaderReleaseTwice(t *testing.T) {
	r := codec.NewReader(bytes.NewReader(nil), codec.Decoder{Role: codec.Client}, 0)
	r.Release()
	r.Release()
}

// loopSource replays the same bytes forever without allocating: the Reader
// under test never sees an end.
type loopSource struct {
	data []byte
	off  int
}

func (s *loopSource) Read(p []byte) (int, error) {
	if s.off == len(s.data) {
		s.off = 0
	}
	n := copy(p, s.data[s.off:])
	s.off += n
	return n, nil
}

func TestReaderSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops buffers at random under the race detector")
	}
	for _, size := range []int{10, 1000, 5000, 70000} {
		for _, role := range bothRoles {
			input := wire(t, role, text(false, strings.Repeat("é", size/2)), control(ws.OpPing, "p"), cont(true, strings.Repeat("a", size)))
			r := codec.NewReader(&loopSource{data: input}, codec.Decoder{Role: role}, 0)
			t.Cleanup(r.Release)
			for range 10 { // warm up: the payload buffer reaches its size
				if _, err := r.NextFrame(); err != nil {
					t.Fatal(err)
				}
			}
			allocs := testing.AllocsPerRun(300, func() {
				if _, err := r.NextFrame(); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("%s, %d-byte frames: %.2f allocations per frame, want 0", role, size, allocs)
			}
		}
	}
}

// countingReader counts the bytes it has handed out.
type countingReader struct {
	src io.Reader
	n   int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.src.Read(p)
	c.n += n
	return n, err
}

var heapAllocs = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}

func heapAllocated() uint64 {
	metrics.Read(heapAllocs)
	return heapAllocs[0].Value.Uint64()
}

// fuzzReaderConfig picks a Reader's settings from one byte of fuzz input.
func fuzzReaderConfig(cfg byte) (d codec.Decoder, bufSize int, oneByte bool) {
	bufSize = []int{0, 1, 64, 200}[cfg&3]
	if cfg&4 != 0 {
		d.Rsv = 4
	}
	if cfg&8 != 0 {
		d.MaxFrame = 1 << 12
	}
	if cfg&16 != 0 {
		d.MaxMessage = 1 << 16
	}
	return d, bufSize, cfg&32 != 0
}

// FuzzReadFrame decodes arbitrary bytes as both roles until an error,
// through Reader and so through Parser, which Reader feeds each read (whole,
// or one byte at a time, which cuts every header and payload). No input may
// panic or hang, every error must be a protocol error or an end of stream,
// and the decoder must not allocate on a length it was only told: its
// payload buffer stays within twice the bytes it read (or twice its read
// buffer), and the heap grows by at most a small constant plus four times the
// input (a buffer that doubles as bytes arrive costs twice its final size in
// all).
func FuzzReadFrame(f *testing.F) {
	f.Add(byte(0), []byte{})
	f.Add(byte(0), wire(f, codec.Client, text(true, "Hello")))
	f.Add(byte(0), wire(f, codec.Server, text(true, "Hello")))
	f.Add(byte(1), wire(f, codec.Server, text(false, "he\xe2"), control(ws.OpPing, "x"), cont(true, "\x82\xacllo")))
	f.Add(byte(2), wire(f, codec.Client, binary(true, strings.Repeat("b", 300)), control(ws.OpClose, closeBody(1000, "bye"))))
	f.Add(byte(4), wire(f, codec.Server, binary(true, "z").withRsv(4), control(ws.OpPong, "")))
	f.Add(byte(8), wire(f, codec.Client, binary(true, "").declaring(codec.DefaultMaxMessage)))
	f.Add(byte(16), wire(f, codec.Server, binary(false, "abc"), cont(true, "").declaring(1<<62)))
	f.Add(byte(35), wire(f, codec.Server, text(true, strings.Repeat("€", 100)+"\xff")))
	f.Fuzz(func(t *testing.T, cfg byte, data []byte) {
		d, bufSize, oneByte := fuzzReaderConfig(cfg)
		before := heapAllocated()
		for _, role := range bothRoles {
			src := &countingReader{src: bytes.NewReader(data)}
			var in io.Reader = src
			if oneByte {
				in = iotest.OneByteReader(src)
			}
			d.Role = role
			r := codec.NewReader(in, d, bufSize)
			for {
				fr, err := r.NextFrame()
				if err != nil {
					var pe *codec.ProtocolError
					if !errors.As(err, &pe) && err != io.EOF && err != io.ErrUnexpectedEOF {
						t.Fatalf("%s: unexpected error %v", role, err)
					}
					break
				}
				if int64(len(fr.Payload)) != fr.Header.Length {
					t.Fatalf("%s: payload of %d bytes for a header of %d", role, len(fr.Payload), fr.Header.Length)
				}
				if fr.Header.OpCode == ws.OpClose {
					if _, _, err := codec.ParseClosePayload(fr.Payload); err != nil {
						t.Fatalf("%s: close payload passed the Reader but not ParseClosePayload: %v", role, err)
					}
				}
			}
			buf, big := r.BufferCaps()
			if limit := max(2*src.n, 2*ceilPow2(buf)); big > limit {
				t.Fatalf("%s: payload buffer capacity %d after reading %d bytes, want at most %d", role, big, src.n, limit)
			}
			if src.n > len(data) {
				t.Fatalf("%s: read %d bytes of %d", role, src.n, len(data))
			}
			r.Release()
		}
		if grown, limit := heapAllocated()-before, uint64(1<<20+4*len(data)); grown > limit {
			t.Fatalf("heap grew by %d bytes decoding %d bytes twice, want at most %d", grown, len(data), limit)
		}
	})
}
