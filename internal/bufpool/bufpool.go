// Package bufpool is wsactor's pool of byte slices, in gobwas/pool's
// power-of-two size classes from 8 B to 16 MiB.
//
// gobwas/pool's pbytes hands the slice itself to a sync.Pool, and turning a
// slice into an interface allocates its header: one allocation per Put, on
// every frame of the read and write paths. Here the slices travel boxed as
// *[]byte, a pointer goes into an interface for free, and the boxes
// circulate through their own sync.Pool, so that Get and Put allocate
// nothing in steady state. pbytes also pools only 128 B to 64 KiB, which
// would allocate every small message and every large one.
package bufpool

import (
	"sync"

	"github.com/gobwas/pool"
)

// Size classes: powers of two from MinSize to MaxSize.
const (
	MinSize = 8
	MaxSize = 16 << 20
)

var (
	buffers = pool.New(MinSize, MaxSize)
	boxes   = sync.Pool{New: func() any { return new([]byte) }}
)

// Get returns a slice of length n whose capacity is n rounded up to a power
// of two, at least MinSize (exactly n above MaxSize, unpooled).
func Get(n int) []byte {
	if n > MaxSize {
		return make([]byte, n)
	}
	x, c := buffers.Get(max(n, MinSize))
	if x == nil {
		return make([]byte, n, c)
	}
	box := x.(*[]byte)
	b := *box
	*box = nil
	boxes.Put(box)
	return b[:n]
}

// Put returns b to the pool when its capacity is one of the size classes;
// other slices are left to the garbage collector. b must not be used
// afterwards.
func Put(b []byte) {
	c := cap(b)
	if c < MinSize || c > MaxSize || c&(c-1) != 0 {
		return
	}
	box := boxes.Get().(*[]byte)
	*box = b[:0]
	buffers.Put(box, c)
}
