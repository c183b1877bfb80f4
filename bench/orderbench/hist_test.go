package main

import (
	"math/rand"
	"sort"
	"testing"
	"time"
)

func TestHistogramQuantilesWithinOnePercent(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	h := newHistogram()
	vals := make([]time.Duration, 100_000)
	for i := range vals {
		// Log-uniform from 1 µs to 1 s, like real latencies.
		vals[i] = time.Duration(1000 * pow10(r.Float64()*6))
		h.Record(vals[i])
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := h.Quantile(q)
		if got < exact || float64(got-exact) > 0.01*float64(exact) {
			t.Errorf("q%.3f = %s, exact %s: want within +1%%", q, got, exact)
		}
	}
	if h.Count() != uint64(len(vals)) || h.Max() != vals[len(vals)-1] {
		t.Errorf("count %d max %s, want %d and %s", h.Count(), h.Max(), len(vals), vals[len(vals)-1])
	}
}

func pow10(x float64) float64 {
	v := 1.0
	for ; x >= 1; x-- {
		v *= 10
	}
	return v * (1 + x*9) // rough, monotonic: enough for a spread of values
}

func TestHistogramSmallValuesExact(t *testing.T) {
	h := newHistogram()
	for v := 1; v <= 100; v++ {
		h.Record(time.Duration(v))
	}
	if got := h.Quantile(0.5); got != 50 {
		t.Errorf("median of 1..100 ns = %d, want 50", got)
	}
	if got := h.Quantile(0); got != 1 {
		t.Errorf("q0 = %d, want 1", got)
	}
}

func TestHistogramBucketsAreContiguous(t *testing.T) {
	prev := -1
	for v := uint64(0); v < 1<<20; v += 7 {
		i := histIndex(v)
		if i < prev || i >= histBucketCount {
			t.Fatalf("index(%d) = %d after %d (buckets %d)", v, i, prev, histBucketCount)
		}
		if up := histUpper(i); up < v {
			t.Fatalf("upper(%d) = %d below value %d", i, up, v)
		}
		prev = i
	}
	if i := histIndex(1 << 62); i != histBucketCount-1 {
		t.Errorf("huge value lands in %d, want the last bucket %d", i, histBucketCount-1)
	}
}

func TestHistogramMergeAndEmpty(t *testing.T) {
	a, b := newHistogram(), newHistogram()
	if a.Quantile(0.99) != 0 || a.Mean() != 0 {
		t.Fatal("empty histogram must report zeros")
	}
	a.Record(time.Millisecond)
	b.Record(3 * time.Millisecond)
	b.Record(-time.Second)
	a.Merge(b)
	if a.Count() != 3 || a.Max() != 3*time.Millisecond || a.Mean() != 4*time.Millisecond/3 {
		t.Errorf("merged: count %d max %s mean %s", a.Count(), a.Max(), a.Mean())
	}
}
