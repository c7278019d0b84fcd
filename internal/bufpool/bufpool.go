// Package bufpool is wsactor's pool of byte slices, in power-of-two size
// classes from 8 B to 16 MiB (gobwas/pool's classes).
//
// gobwas/pool's pbytes hands the slice itself to a sync.Pool, and turning a
// slice into an interface allocates its header: one allocation per Put, on
// every frame of the read and write paths; its generic pool also looks the
// class up in a map on every call. Here each class is a sync.Pool indexed by
// the size's bit length, and a buffer travels through it as the pointer to
// its first byte, which an interface holds without allocating: Get and Put
// cost one sync.Pool operation each and allocate nothing in steady state.
// pbytes also pools only 128 B to 64 KiB, which would allocate every small
// message and every large one.
package bufpool

import (
	"math/bits"
	"sync"
	"unsafe"
)

// Size classes: powers of two from MinSize to MaxSize.
const (
	MinSize = 8
	MaxSize = 16 << 20

	minShift = 3  // log2(MinSize)
	maxShift = 24 // log2(MaxSize)
)

var classes [maxShift + 1]sync.Pool

// class returns the shift of the smallest class that holds n bytes.
func class(n int) int {
	if n <= MinSize {
		return minShift
	}
	return bits.Len(uint(n - 1))
}

// Get returns a slice of length n whose capacity is n rounded up to a power
// of two, at least MinSize (exactly n above MaxSize, unpooled).
func Get(n int) []byte {
	if n > MaxSize {
		return make([]byte, n)
	}
	c := class(n)
	if p, _ := classes[c].Get().(unsafe.Pointer); p != nil {
		return unsafe.Slice((*byte)(p), 1<<c)[:n]
	}
	return make([]byte, n, 1<<c)
}

// Put returns b to the pool when its capacity is one of the size classes;
// other slices are left to the garbage collector. b must not be used
// afterwards.
func Put(b []byte) {
	c := cap(b)
	if c < MinSize || c > MaxSize || c&(c-1) != 0 {
		return
	}
	classes[bits.Len(uint(c))-1].Put(unsafe.Pointer(unsafe.SliceData(b[:1])))
}
