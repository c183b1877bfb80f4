package main

import (
	"math"
	"testing"
)

func TestBucketQuantile(t *testing.T) {
	bounds := []float64{0.001, 0.002, 0.004}
	for _, c := range []struct {
		name       string
		cumulative []uint64
		total      uint64
		q, wantMs  float64
	}{
		{"all in the first bucket", []uint64{10, 10, 10}, 10, 0.5, 0.5},
		{"interpolated in the second", []uint64{0, 10, 10}, 10, 0.5, 1.5},
		{"p99 in the last", []uint64{50, 90, 100}, 100, 0.99, 3.8},
		{"above the last bound", []uint64{0, 0, 0}, 5, 0.5, 4},
	} {
		if got := bucketQuantile(bounds, c.cumulative, c.total, c.q); math.Abs(got-c.wantMs) > 1e-9 {
			t.Errorf("%s: %v ms, want %v", c.name, got, c.wantMs)
		}
	}
	if got := bucketQuantile(bounds, []uint64{0, 0, 0}, 0, 0.5); !math.IsNaN(got) {
		t.Errorf("no flushes: %v, want NaN", got)
	}
}
