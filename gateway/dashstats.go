package gateway

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
	"unsafe"
)

// The dashboard's counters. They are written on the request path, so they
// are atomic adds only: no lock, no allocation, no label lookup. A sampler
// (dashboard.go) reads them once a second.

// statusClass groups answers the way the dashboard shows them.
type statusClass uint8

const (
	class2xx         statusClass = iota
	class409                     // out of stock, limit, invalid transition
	class429                     // overloaded or rate-limited
	class503                     // unavailable: partition moving, storage full, draining
	classOther                   // any other 4xx or 5xx
	statusClassCount             // count, keep last
)

func classOf(status int) statusClass {
	switch {
	case status >= 200 && status < 300:
		return class2xx
	case status == 409:
		return class409
	case status == 429:
		return class429
	case status == 503:
		return class503
	}
	return classOther
}

// Latency buckets: log-linear, latencySub buckets per doubling of
// microseconds, so a quantile read from them is within 25% of the truth;
// the last bucket takes everything from about 12 s on.
const (
	latencySub     = 4
	latencyBuckets = 96
)

// latencyBucket is the bucket of d.
func latencyBucket(d time.Duration) int {
	us := uint64(max(d, 0) / time.Microsecond)
	if us < latencySub {
		return int(us)
	}
	e := bits.Len64(us) - 1 // us is in [2^e, 2^(e+1)), e >= 2
	sub := int(us>>(e-2)) & (latencySub - 1)
	return min((e-1)*latencySub+sub, latencyBuckets-1)
}

// latencyBounds are bucket i's lower and upper bounds in microseconds.
func latencyBounds(i int) (lo, hi float64) {
	if i < latencySub {
		return float64(i), float64(i + 1)
	}
	e, sub := i/latencySub+1, i%latencySub
	unit := float64(uint64(1) << (e - 2))
	return float64(latencySub+sub) * unit, float64(latencySub+sub+1) * unit
}

// latencyQuantile is the q quantile, in milliseconds, of the latencies
// counted in counts (one second's worth), interpolated within its bucket;
// NaN when there are none.
func latencyQuantile(counts *[latencyBuckets]uint64, q float64) float64 {
	var n uint64
	for _, c := range counts {
		n += c
	}
	if n == 0 {
		return math.NaN()
	}
	rank := q * float64(n)
	var seen float64
	for i, c := range counts {
		if c == 0 {
			continue
		}
		if seen+float64(c) >= rank {
			lo, hi := latencyBounds(i)
			return (lo + (hi-lo)*(rank-seen)/float64(c)) / 1000
		}
		seen += float64(c)
	}
	lo, _ := latencyBounds(latencyBuckets - 1)
	return lo / 1000
}

// Hot SKUs are found by sampling: one checkout in hotSampleEvery leaves
// one of its SKUs in a ring of hotRingSlots, which the sampler counts
// once a second. The ring holds the last samples whatever the rate, so
// a second with more samples than slots counts only its latest ones.
const (
	hotSampleBits  = 4
	hotSampleEvery = 1 << hotSampleBits
	hotRingSlots   = 1024
)

// skuSlot holds one sampled SKU name without copying it: the string's
// bytes (immutable; the gateway copied them out of fasthttp's buffers)
// and length, published under a sequence number that is odd while a
// writer owns the slot. A writer that finds the slot owned skips its
// sample, so a reader never sees a pointer and length that do not match.
type skuSlot struct {
	seq  atomic.Uint64
	data atomic.Pointer[byte]
	n    atomic.Uint32
}

func (s *skuSlot) store(sku string) {
	v := s.seq.Load()
	if v&1 == 1 || !s.seq.CompareAndSwap(v, v+1) {
		return // another writer has it; this sample is dropped
	}
	s.data.Store(unsafe.StringData(sku))
	s.n.Store(uint32(len(sku)))
	s.seq.Store(v + 2)
}

// load returns the slot's SKU, or ok false while it is being written or
// was never written.
func (s *skuSlot) load() (sku string, ok bool) {
	v := s.seq.Load()
	if v == 0 || v&1 == 1 {
		return "", false
	}
	p, n := s.data.Load(), s.n.Load()
	if s.seq.Load() != v || p == nil {
		return "", false
	}
	return unsafe.String(p, n), true
}

// dashCounters are the request path's side of the dashboard.
type dashCounters struct {
	requests  [statusClassCount]atomic.Uint64 // API routes (SKUs, orders, admin)
	checkouts [statusClassCount]atomic.Uint64 // POST /v1/orders
	latency   [latencyBuckets]atomic.Uint64   // of checkouts
	sampled   atomic.Uint64                   // checkouts seen by sampleSKUs
	hotPos    atomic.Uint64                   // slots written, ever
	hot       [hotRingSlots]skuSlot
}

// dashboardRoute reports whether the dashboard counts the route's
// requests: the API's, not probes, scrapes or the dashboard's own polls.
func dashboardRoute(id routeID) bool {
	return id >= routeSKURestock // the routes after it are the API's (routes.go)
}

// record counts one answered request.
func (c *dashCounters) record(id routeID, status int, d time.Duration) {
	if !dashboardRoute(id) {
		return
	}
	cl := classOf(status)
	c.requests[cl].Add(1)
	if id == routeOrderPlace {
		c.checkouts[cl].Add(1)
		c.latency[latencyBucket(d)].Add(1)
	}
}

// sampleSKUs leaves one SKU of one checkout in hotSampleEvery in the
// ring. Which ones is decided by the fractional part of n times the golden
// ratio (a Weyl sequence): one in hotSampleEvery falls below
// 1/hotSampleEvery, evenly spread and in no period, so a client repeating
// a pattern of requests (every tenth for another SKU) is not missed, as it
// could be by taking every hotSampleEvery-th. A multi-line order gives one
// of its lines, in turn.
func (c *dashCounters) sampleSKUs(items []Item) {
	n := c.sampled.Add(1)
	if (n*weylStep)>>(64-hotSampleBits) != 0 || len(items) == 0 {
		return
	}
	sku := items[n%uint64(len(items))].SKU
	c.hot[(c.hotPos.Add(1)-1)%hotRingSlots].store(sku)
}

// weylStep is 2^64 divided by the golden ratio.
const weylStep = 0x9E3779B97F4A7C15
