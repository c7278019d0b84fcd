package codec_test

import (
	"bufio"
	"bytes"
	"io"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/wsactor/wsactor/codec"
)

// Each wsactor benchmark has a gobwas/ws twin doing the same work the way a
// hand-written gobwas loop does it, so that one run gives the ratio.

type benchSize struct {
	name string
	n    int
}

var (
	headerSizes = []benchSize{{"64B", 64}, {"1KiB", 1 << 10}, {"64KiB", 64 << 10}}
	maskSizes   = []benchSize{{"64B", 64}, {"1KiB", 1 << 10}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}}
	workerSizes = []benchSize{{"1KiB", 1 << 10}, {"4KiB", 4 << 10}, {"16KiB", 16 << 10}, {"64KiB", 64 << 10}, {"256KiB", 256 << 10}, {"1MiB", 1 << 20}}
)

// BenchmarkEncodeServerHeader adds a server frame to a Batch (its header into
// the pooled arena, its payload referenced) and resets the batch.
func BenchmarkEncodeServerHeader(b *testing.B) {
	for _, s := range headerSizes {
		b.Run(s.name, func(b *testing.B) {
			p := make([]byte, s.n)
			batch := codec.Batch{Role: codec.Server}
			defer batch.Release()
			b.ReportAllocs()
			for b.Loop() {
				batch.Add(true, ws.OpBinary, 0, p)
				batch.Reset()
			}
		})
	}
}

// BenchmarkGobwasWriteHeader writes the same header with ws.WriteHeader.
func BenchmarkGobwasWriteHeader(b *testing.B) {
	for _, s := range headerSizes {
		b.Run(s.name, func(b *testing.B) {
			var buf bytes.Buffer
			h := ws.Header{Fin: true, OpCode: ws.OpBinary, Length: int64(s.n)}
			b.ReportAllocs()
			for b.Loop() {
				buf.Reset()
				if err := ws.WriteHeader(&buf, h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMaskClient adds a client frame to a Batch: header and payload
// masked with a fresh key into a pooled buffer, returned on Reset.
func BenchmarkMaskClient(b *testing.B) {
	for _, s := range maskSizes {
		b.Run(s.name, func(b *testing.B) {
			p := make([]byte, s.n)
			batch := codec.Batch{Role: codec.Client}
			defer batch.Release()
			b.SetBytes(int64(s.n))
			b.ReportAllocs()
			for b.Loop() {
				batch.Add(true, ws.OpBinary, 0, p)
				batch.Reset()
			}
		})
	}
}

// BenchmarkGobwasMask does the same with gobwas/ws into buffers it reuses:
// ws.NewMask, ws.WriteHeader, a copy of the payload and ws.Cipher.
func BenchmarkGobwasMask(b *testing.B) {
	for _, s := range maskSizes {
		b.Run(s.name, func(b *testing.B) {
			p := make([]byte, s.n)
			var buf bytes.Buffer
			dst := make([]byte, s.n)
			b.SetBytes(int64(s.n))
			b.ReportAllocs()
			for b.Loop() {
				h := ws.Header{Fin: true, OpCode: ws.OpBinary, Length: int64(s.n), Masked: true, Mask: ws.NewMask()}
				buf.Reset()
				if err := ws.WriteHeader(&buf, h); err != nil {
					b.Fatal(err)
				}
				copy(dst, p)
				ws.Cipher(dst, h.Mask, 0)
			}
		})
	}
}

// decodeStream returns masked binary frames of n bytes, as a client sends
// them, at least 16 and about 256 KiB in all, and their count.
func decodeStream(b *testing.B, n int) ([]byte, int) {
	count := max(16, (256<<10)/n)
	frames := make([]wireFrame, count)
	for i := range frames {
		frames[i] = binary(true, strings.Repeat("d", n))
	}
	return wire(b, codec.Server, frames...), count
}

// BenchmarkDecode reads, checks and unmasks frames with a server Reader over
// an in-memory stream that is rewound between passes.
func BenchmarkDecode(b *testing.B) {
	for _, s := range headerSizes {
		b.Run(s.name, func(b *testing.B) {
			data, count := decodeStream(b, s.n)
			src := bytes.NewReader(data)
			r := codec.NewReader(src, codec.Decoder{Role: codec.Server}, 0)
			defer r.Release()
			k := 0
			b.SetBytes(int64(s.n))
			b.ReportAllocs()
			for b.Loop() {
				if k == count {
					src.Reset(data)
					k = 0
				}
				if _, err := r.NextFrame(); err != nil {
					b.Fatal(err)
				}
				k++
			}
		})
	}
}

// BenchmarkGobwasReadFrame reads the same stream the way a gobwas loop does:
// ws.ReadHeader and io.ReadFull through a bufio.Reader, then ws.Cipher.
func BenchmarkGobwasReadFrame(b *testing.B) {
	for _, s := range headerSizes {
		b.Run(s.name, func(b *testing.B) {
			data, count := decodeStream(b, s.n)
			src := bytes.NewReader(data)
			br := bufio.NewReaderSize(src, codec.DefaultReadBuffer)
			payload := make([]byte, s.n)
			k := 0
			b.SetBytes(int64(s.n))
			b.ReportAllocs()
			for b.Loop() {
				if k == count {
					src.Reset(data)
					br.Reset(src)
					k = 0
				}
				h, err := ws.ReadHeader(br)
				if err != nil {
					b.Fatal(err)
				}
				p := payload[:h.Length]
				if _, err := io.ReadFull(br, p); err != nil {
					b.Fatal(err)
				}
				ws.Cipher(p, h.Mask, 0)
				k++
			}
		})
	}
}

// utf8Inputs are 4 KiB of ASCII and 4 KiB of text mixing every code point
// length.
var utf8Inputs = []struct {
	name string
	data []byte
}{
	{"ascii", []byte(strings.Repeat("The quick brown fox jumps over the lazy dog. ", 92)[:4096])},
	{"mixed", message(ws.OpText, 4096)},
}

// BenchmarkUTF8 validates a whole message with the streaming validator.
func BenchmarkUTF8(b *testing.B) {
	for _, in := range utf8Inputs {
		b.Run(in.name, func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			b.ReportAllocs()
			var v codec.UTF8
			for b.Loop() {
				v.Reset()
				if !v.Write(in.data) || !v.Done() {
					b.Fatal("invalid")
				}
			}
		})
	}
}

// BenchmarkUTF8Stdlib validates the same messages with utf8.Valid.
func BenchmarkUTF8Stdlib(b *testing.B) {
	for _, in := range utf8Inputs {
		b.Run(in.name, func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			b.ReportAllocs()
			for b.Loop() {
				if !utf8.Valid(in.data) {
					b.Fatal("invalid")
				}
			}
		})
	}
}

// BenchmarkMaskInline encodes a client frame on the caller's goroutine.
func BenchmarkMaskInline(b *testing.B) {
	for _, s := range workerSizes {
		b.Run(s.name, func(b *testing.B) {
			p := make([]byte, s.n)
			b.SetBytes(int64(s.n))
			b.ReportAllocs()
			for b.Loop() {
				codec.ReleaseFrame(codec.EncodeFrame(codec.Client, true, ws.OpBinary, 0, p))
			}
		})
	}
}

// BenchmarkMaskWorker hands the same frame to a codec worker and waits for
// it on a reply channel: the latency of one job, hop included.
func BenchmarkMaskWorker(b *testing.B) {
	for _, s := range workerSizes {
		b.Run(s.name, func(b *testing.B) {
			w := codec.NewWorkers(0, 0)
			defer w.Stop()
			reply := make(chan *codec.Job, 1)
			job := &codec.Job{Role: codec.Client, Fin: true, Op: ws.OpBinary, Payload: make([]byte, s.n), Reply: reply}
			b.SetBytes(int64(s.n))
			b.ReportAllocs()
			for b.Loop() {
				if !w.Submit(job) {
					b.Fatal("queue full")
				}
				job = <-reply
				job.ReleaseFrame()
			}
		})
	}
}

// BenchmarkMaskWorkerPipelined keeps one job per worker in flight, as an
// owner that goes on with its work while the workers mask: the throughput
// side of the hop.
func BenchmarkMaskWorkerPipelined(b *testing.B) {
	for _, s := range workerSizes {
		b.Run(s.name, func(b *testing.B) {
			w := codec.NewWorkers(0, 0)
			defer w.Stop()
			inFlight := runtime.GOMAXPROCS(0) // NewWorkers(0, 0) starts as many workers
			reply := make(chan *codec.Job, inFlight)
			payload := make([]byte, s.n)
			for range inFlight {
				if !w.Submit(&codec.Job{Role: codec.Client, Fin: true, Op: ws.OpBinary, Payload: payload, Reply: reply}) {
					b.Fatal("queue full")
				}
			}
			b.SetBytes(int64(s.n))
			b.ReportAllocs()
			for b.Loop() {
				job := <-reply
				job.ReleaseFrame()
				if !w.Submit(job) {
					b.Fatal("queue full")
				}
			}
			for range inFlight {
				(<-reply).ReleaseFrame()
			}
		})
	}
}
