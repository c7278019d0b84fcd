package codec_test

import (
	"testing"

	"github.com/wsactor/wsactor/codec"
)

func TestPooledBufferSizes(t *testing.T) {
	tests := []struct {
		name string
		n    int
		cap  int
	}{
		{
			name: "empty request gets the smallest class",
			n:    0,
			cap:  8,
		},
		{
			name: "empty client frame",
			n:    6,
			cap:  8,
		},
		{
			name: "power of two is exact",
			n:    4096,
			cap:  4096,
		},
		{
			name: "one more rounds up",
			n:    4097,
			cap:  8192,
		},
		{
			name: "largest class",
			n:    16 << 20,
			cap:  16 << 20,
		},
		{
			name: "above the largest class is exact",
			n:    16<<20 + 1,
			cap:  16<<20 + 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := codec.GetBuf(tt.n)
			if len(b) != tt.n || cap(b) != tt.cap {
				t.Fatalf("GetBuf(%d): len %d, cap %d; want %d, %d", tt.n, len(b), cap(b), tt.n, tt.cap)
			}
			codec.PutBuf(b)
		})
	}
}

func TestPutForeignSlices(t *testing.T) {
	codec.PutBuf(nil)
	codec.PutBuf(make([]byte, 10, 12)) // not a size class: dropped
	codec.ReleaseFrame(make([]byte, 0, 64))
	if b := codec.GetBuf(64); len(b) != 64 || cap(b) != 64 {
		t.Fatalf("GetBuf(64) after foreign puts: len %d, cap %d", len(b), cap(b))
	}
}

func TestPoolSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops buffers at random under the race detector")
	}
	for _, n := range []int{6, 100, 5000, 1 << 20} {
		codec.PutBuf(codec.GetBuf(n))
		if allocs := testing.AllocsPerRun(100, func() { codec.PutBuf(codec.GetBuf(n)) }); allocs != 0 {
			t.Errorf("GetBuf(%d) and PutBuf: %.2f allocations, want 0", n, allocs)
		}
	}
}
