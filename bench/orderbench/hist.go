package main

import (
	"math/bits"
	"time"
)

// A log-linear histogram (the HdrHistogram layout, simplified): values below
// 2*histSubBuckets nanoseconds get one bucket each, and every further power of
// two is split into histSubBuckets equal buckets. That keeps the relative
// error of any percentile under 1/histSubBuckets (< 1 %) in a fixed amount of
// memory, whatever the run length, so per-worker copies can be merged at the end.
const (
	histSubBits    = 7
	histSubBuckets = 1 << histSubBits
	// histValueMaxNanos caps recorded values (about 137 s); anything slower is
	// counted in the last bucket. Request timeouts are far below it.
	histValueMaxNanos = 1<<37 - 1
	histBucketCount   = (37 - histSubBits + 1) * histSubBuckets
)

// Histogram counts latencies. The zero value is not usable: call newHistogram.
type Histogram struct {
	counts []uint64
	total  uint64
	sum    uint64 // nanoseconds, for the mean
	max    uint64
}

func newHistogram() *Histogram {
	return &Histogram{counts: make([]uint64, histBucketCount)}
}

func histIndex(v uint64) int {
	if v > histValueMaxNanos {
		v = histValueMaxNanos
	}
	shift := bits.Len64(v) - (histSubBits + 1)
	if shift < 0 {
		shift = 0
	}
	return shift*histSubBuckets + int(v>>uint(shift))
}

// histUpper is the largest value that lands in bucket i: reporting it makes
// percentiles err on the slow side, never flatter the server.
func histUpper(i int) uint64 {
	shift := i/histSubBuckets - 1
	if shift < 0 {
		shift = 0
	}
	lower := uint64(i-shift*histSubBuckets) << uint(shift)
	return lower + (1 << uint(shift)) - 1
}

// Record adds one latency; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	h.counts[histIndex(v)]++
	h.total++
	h.sum += v
	if v > h.max {
		h.max = v
	}
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	if o.max > h.max {
		h.max = o.max
	}
}

// Reset empties h without giving its buckets back, so that one histogram can
// serve window after window without allocating.
func (h *Histogram) Reset() {
	clear(h.counts)
	h.total, h.sum, h.max = 0, 0, 0
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total }

// Max is the largest recorded value, exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean is the exact mean of the recorded values.
func (h *Histogram) Mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sum / h.total)
}

// Quantile returns the value at quantile q in [0, 1]: the upper bound of the
// bucket holding the ceil(q*n)-th smallest value, never above the true max.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q*float64(h.total) + 0.999999999)
	if rank < 1 {
		rank = 1
	}
	if rank > h.total {
		rank = h.total
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := histUpper(i)
			if v > h.max {
				v = h.max
			}
			return time.Duration(v)
		}
	}
	return time.Duration(h.max)
}
