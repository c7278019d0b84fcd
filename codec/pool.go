package codec

import (
	"sync"

	"github.com/gobwas/pool"
)

// Pooled buffer sizes: powers of two from 8 B to 16 MiB. pbytes pools only
// 128 B to 64 KiB, so it would allocate every small client frame (an empty
// one is 6 bytes) and every large one.
const (
	minPooled = 8
	maxPooled = 16 << 20
)

// buffers holds the codec's byte slices in gobwas/pool's size classes, boxed
// as *[]byte. pbytes.Put hands the slice itself to a sync.Pool, and turning a
// slice into an interface allocates its header: one allocation per frame on
// the encode and decode paths. A pointer goes into an interface for free, and
// the boxes circulate through their own sync.Pool, so that getting and
// putting a buffer allocates nothing in steady state.
var (
	buffers = pool.New(minPooled, maxPooled)
	boxes   = sync.Pool{New: func() any { return new([]byte) }}
)

// getBuf returns a slice of length n whose capacity is n rounded up to a power
// of two, at least minPooled (exactly n above maxPooled).
func getBuf(n int) []byte {
	if n > maxPooled {
		return make([]byte, n)
	}
	x, c := buffers.Get(max(n, minPooled))
	if x == nil {
		return make([]byte, n, c)
	}
	box := x.(*[]byte)
	b := *box
	*box = nil
	boxes.Put(box)
	return b[:n]
}

// putBuf returns b to the pool when its capacity is one of the pool's size
// classes; other slices are left to the garbage collector.
func putBuf(b []byte) {
	c := cap(b)
	if c < minPooled || c > maxPooled || c&(c-1) != 0 {
		return
	}
	box := boxes.Get().(*[]byte)
	*box = b[:0]
	buffers.Put(box, c)
}

// ReleaseFrame returns a buffer from EncodeFrame (or a Job's Frame) to the
// codec's pool. The buffer must not be used afterwards. Releasing a slice that
// did not come from the codec is harmless: it joins the pool if its capacity
// fits a size class.
func ReleaseFrame(frame []byte) { putBuf(frame) }
