package bufpool

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestGetSizes(t *testing.T) {
	tests := []struct {
		name string
		n    int
		cap  int
	}{
		{
			name: "zero gets the smallest class",
			n:    0,
			cap:  MinSize,
		},
		{
			name: "power of two is exact",
			n:    64,
			cap:  64,
		},
		{
			name: "one more rounds up",
			n:    65,
			cap:  128,
		},
		{
			name: "over the largest class is unpooled and exact",
			n:    MaxSize + 1,
			cap:  MaxSize + 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Get(tt.n)
			if len(b) != tt.n || cap(b) != tt.cap {
				t.Fatalf("Get(%d): len %d cap %d, want len %d cap %d", tt.n, len(b), cap(b), tt.n, tt.cap)
			}
			Put(b)
		})
	}
}

func TestPutIgnoresForeignSizes(t *testing.T) {
	Put(make([]byte, 0, 100)) // not a size class: left to the collector
	Put(nil)
	b := Get(100)
	if cap(b) != 128 {
		t.Fatalf("cap %d, want 128", cap(b))
	}
}

func BenchmarkGetPut(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		Put(Get(64))
	}
}
