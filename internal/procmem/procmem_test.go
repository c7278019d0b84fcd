package procmem

import (
	"runtime"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Touching 64 MiB raises both figures by about as much, and the peak stays
// at least the current RSS.
func TestRSSAndPeak(t *testing.T) {
	if runtime.GOOS != "linux" {
		if RSS() != -1 || Peak() != -1 {
			t.Fatal("want -1 without /proc")
		}
		t.Skip("needs /proc")
	}
	rss0, peak0 := RSS(), Peak()
	if rss0 <= 0 || peak0 < rss0 {
		t.Fatalf("RSS %d, peak %d", rss0, peak0)
	}
	const size = 64 << 20
	b := make([]byte, size)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	rss1, peak1 := RSS(), Peak()
	runtime.KeepAlive(b)
	if rss1-rss0 < size/2 || peak1-peak0 < size/2 || peak1 < rss1 {
		t.Fatalf("after touching %d MiB: RSS %d -> %d, peak %d -> %d", size>>20, rss0, rss1, peak0, peak1)
	}
}
