package wsload

import (
	"testing"
	"time"
)

func TestHistQuantiles(t *testing.T) {
	var h Hist
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	cases := []struct {
		q    float64
		want time.Duration
	}{
		{
			q:    0.5,
			want: 500 * time.Microsecond,
		},
		{
			q:    0.9,
			want: 900 * time.Microsecond,
		},
		{
			q:    0.99,
			want: 990 * time.Microsecond,
		},
		{
			q:    0.999,
			want: 999 * time.Microsecond,
		},
		{
			q:    1,
			want: 1000 * time.Microsecond,
		},
	}
	for _, tc := range cases {
		if got := h.Quantile(tc.q); got != tc.want {
			t.Errorf(
				"Quantile(%v) = %v, want %v",
				tc.q, got, tc.want,
			)
		}
	}
	if h.Count() != 1000 || h.Max() != time.Millisecond {
		t.Errorf(
			"Count %d Max %v, want 1000 and 1ms",
			h.Count(), h.Max(),
		)
	}
}

// TestHistPrecision checks the relative error above the 1 µs buckets.
func TestHistPrecision(t *testing.T) {
	for _, v := range []time.Duration{
		1024 * time.Microsecond,
		1500 * time.Microsecond,
		37 * time.Millisecond,
		999 * time.Millisecond,
		12 * time.Second,
		59 * time.Second,
	} {
		var h Hist
		h.Record(v)
		h.Record(2 * time.Minute) // keeps Max from hiding the bucket value
		got := h.Quantile(0.5)
		if err := float64(got-v) / float64(v); err < -0.01 || err > 0.01 {
			t.Errorf(
				"Quantile of %v = %v: %.2f%% off",
				v, got, 100*err,
			)
		}
	}
}

func TestHistMerge(t *testing.T) {
	var a, b, all Hist
	for i := range 5000 {
		d := time.Duration(i*i) * time.Nanosecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf(
				"merged Quantile(%v) = %v, want %v",
				q, a.Quantile(q), all.Quantile(q),
			)
		}
	}
	if a.Count() != all.Count() || a.Max() != all.Max() {
		t.Errorf(
			"merged Count %d Max %v, want %d and %v",
			a.Count(), a.Max(), all.Count(), all.Max(),
		)
	}
}

func TestHistEdges(t *testing.T) {
	var h Hist
	if h.Quantile(0.5) != 0 {
		t.Error("an empty histogram should report 0")
	}
	h.Record(-time.Second)
	h.Record(time.Hour)
	if h.Quantile(0.5) != 0 || h.Max() != time.Hour || h.Quantile(1) != time.Hour {
		t.Errorf(
			"p50 %v max %v p100 %v",
			h.Quantile(0.5), h.Max(), h.Quantile(1),
		)
	}
	if allocs := testing.AllocsPerRun(100, func() { h.Record(3 * time.Millisecond) }); allocs != 0 {
		t.Errorf(
			"Record allocates %v times",
			allocs,
		)
	}
}
