package wsload

import (
	"math"
	"math/bits"
	"time"
)

// The histogram's buckets: 1 µs wide up to linearMax µs, then each power of
// two is split into 2^subBits buckets, which bounds the relative error by
// 1/2^subBits (0.8%), up to 2^maxExp µs (67 s). Larger values share the
// last bucket; Max stays exact.
const (
	linearBits = 10
	linearMax  = 1 << linearBits // µs
	subBits    = 7
	subCount   = 1 << subBits
	maxExp     = 26
	numBuckets = linearMax + (maxExp-linearBits)*subCount
)

// Hist is a latency histogram with log-linear buckets, in the manner of HDR
// histograms. Record does not allocate; histograms of different connections
// merge by adding. The zero Hist is empty and ready to use. A Hist is not
// safe for concurrent use.
type Hist struct {
	counts [numBuckets]uint64
	n      uint64
	max    time.Duration
}

// bucket returns the index of the bucket that holds us microseconds.
func bucket(us uint64) int {
	if us < linearMax {
		return int(us)
	}
	e := bits.Len64(us) - 1
	if e >= maxExp {
		return numBuckets - 1
	}
	sub := int(us>>(e-subBits)) & (subCount - 1)
	return linearMax + (e-linearBits)*subCount + sub
}

// bucketValue returns the value that stands for bucket i: its lower bound in
// the 1 µs buckets (values are truncated to the microsecond), its midpoint in
// the wider ones.
func bucketValue(i int) time.Duration {
	if i < linearMax {
		return time.Duration(i) * time.Microsecond
	}
	i -= linearMax
	e := i/subCount + linearBits
	sub := uint64(i % subCount)
	shift := e - subBits
	lower := (subCount + sub) << shift
	width := uint64(1) << shift
	return time.Duration(lower+width/2) * time.Microsecond
}

// Record adds one value; negative values count as zero.
func (h *Hist) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucket(uint64(d/time.Microsecond))]++
	h.n++
	if d > h.max {
		h.max = d
	}
}

// Count returns the number of recorded values.
func (h *Hist) Count() uint64 { return h.n }

// Max returns the largest recorded value, exactly.
func (h *Hist) Max() time.Duration { return h.max }

// Merge adds the values recorded in o to h.
func (h *Hist) Merge(o *Hist) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Quantile returns the value below or at which a fraction q (0 < q <= 1) of
// the recorded values lie, within the bucket precision and never above Max;
// values beyond the last bucket are reported as Max.
// It returns 0 for an empty histogram.
func (h *Hist) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(1, min(rank, h.n))
	if rank == h.n {
		return h.max
	}
	var seen uint64
	for i, c := range h.counts[:numBuckets-1] {
		seen += c
		if seen >= rank {
			return min(bucketValue(i), h.max)
		}
	}
	return h.max
}
