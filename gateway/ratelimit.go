package gateway

import (
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// RateLimit is a token bucket: PerSecond tokens are added every second, up
// to Burst. A request takes one token; with none left it is answered 429
// rate-limited. The zero value is no limit.
type RateLimit struct {
	PerSecond float64
	// Burst is the most requests allowed at once after an idle spell. Zero
	// takes PerSecond rounded up (at least 1).
	Burst int
}

func (l RateLimit) on() bool { return l.PerSecond > 0 }

func (l *RateLimit) setDefaults(name string) error {
	switch {
	case math.IsNaN(l.PerSecond) || math.IsInf(l.PerSecond, 0) || l.PerSecond < 0:
		return fmt.Errorf("gateway: config: %s.PerSecond %v: want a finite rate, 0 for none", name, l.PerSecond)
	case l.Burst < 0:
		return fmt.Errorf("gateway: config: %s.Burst %d: must not be negative", name, l.Burst)
	case l.on() && l.Burst == 0:
		l.Burst = int(min(math.Ceil(l.PerSecond), rateBurstMax))
	}
	return nil
}

// rateBurstMax caps a default burst taken from a very high rate.
const rateBurstMax = 1 << 30

// Shards of a limiter table: each has its own lock and its own share of the
// table's bound, so concurrent requests of different clients rarely meet.
const limiterShards = 64

// limiterTable holds one token bucket per key (a client address or a
// customer) in a fixed number of slots. Its memory is bounded: when a
// shard's slots are all taken, a new key replaces an old one, chosen by the
// CLOCK algorithm (an approximation of least recently used); the hand stops
// early at a key whose bucket has refilled, since forgetting it loses
// nothing.
//
// The trade-off of the bound: when more keys are active at once than the
// table holds, an evicted key comes back with a full bucket, so a client
// that spreads its requests over more addresses or customers than the
// table's size can get more than its rate. The size and eviction count are
// exported so that an operator can see it happen and raise the bound.
type limiterTable[K comparable] struct {
	limit   rate.Limit
	burst   int
	seed    maphash.Seed
	shards  []limiterShard[K]
	size    atomic.Int64 // keys held, over all shards
	evicted atomic.Int64 // keys replaced whose bucket was not full
}

type limiterShard[K comparable] struct {
	mu       sync.Mutex
	index    map[K]int32 // key -> slot
	slots    []limiterSlot[K]
	slotsMax int
	hand     int      // the CLOCK hand: the next slot to consider
	_        [64]byte // keep shards' locks on separate cache lines
}

type limiterSlot[K comparable] struct {
	key K
	lim *rate.Limiter
	// used is the CLOCK reference bit: set on every take, cleared as the
	// hand passes. A slot the hand finds clear was idle for a whole turn.
	used bool
}

// newLimiterTable returns a table of at most entriesMax keys (rounded down
// to a multiple of shards, at least one per shard).
func newLimiterTable[K comparable](l RateLimit, entriesMax, shards int) *limiterTable[K] {
	t := &limiterTable[K]{
		limit:  rate.Limit(l.PerSecond),
		burst:  l.Burst,
		seed:   maphash.MakeSeed(),
		shards: make([]limiterShard[K], shards),
	}
	perShard := max(entriesMax/shards, 1)
	for i := range t.shards {
		t.shards[i].index = make(map[K]int32)
		t.shards[i].slotsMax = perShard
	}
	return t
}

// limiterStats are a table's counts for the metrics.
type limiterStats struct{ entries, entriesMax, evicted int64 }

// stats reads the counts; a nil table (a limit that is off) has none.
func (t *limiterTable[K]) stats() limiterStats {
	if t == nil {
		return limiterStats{}
	}
	return limiterStats{
		entries:    t.size.Load(),
		entriesMax: int64(len(t.shards) * t.shards[0].slotsMax),
		evicted:    t.evicted.Load(),
	}
}

// take spends one token of key's bucket at now. When the bucket has none it
// spends nothing and returns how long until it has one (at least 1 ns).
func (t *limiterTable[K]) take(key K, now time.Time) time.Duration {
	s := &t.shards[maphash.Comparable(t.seed, key)%uint64(len(t.shards))]
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.index[key]
	if !ok {
		i = s.insert(t, key, now)
	}
	slot := &s.slots[i]
	slot.used = true
	r := slot.lim.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	if wait > 0 {
		// A refused request changes nothing: its token goes back.
		r.CancelAt(now)
	}
	return wait
}

// insert gives key a slot with a full bucket, replacing another key when
// the shard is full. It returns the slot's index.
func (s *limiterShard[K]) insert(t *limiterTable[K], key K, now time.Time) int32 {
	lim := rate.NewLimiter(t.limit, t.burst)
	if len(s.slots) < s.slotsMax {
		s.slots = append(s.slots, limiterSlot[K]{key: key, lim: lim})
		i := int32(len(s.slots) - 1)
		s.index[key] = i
		t.size.Add(1)
		return i
	}
	i := s.victim(t, now)
	delete(s.index, s.slots[i].key)
	s.slots[i] = limiterSlot[K]{key: key, lim: lim}
	s.index[key] = int32(i)
	return int32(i)
}

// victim runs the CLOCK hand to the slot to replace: the first whose bucket
// is full, or else the first not used since the hand last passed. It stops
// within one turn and a slot, since the first turn clears every bit.
func (s *limiterShard[K]) victim(t *limiterTable[K], now time.Time) int {
	full := float64(t.burst)
	for {
		i := s.hand
		s.hand = (s.hand + 1) % len(s.slots)
		slot := &s.slots[i]
		if slot.lim.TokensAt(now) >= full {
			return i
		}
		if !slot.used {
			t.evicted.Add(1)
			return i
		}
		slot.used = false
	}
}

// retryAfterSecondsFor rounds a wait up to the whole seconds of a
// Retry-After header, at least 1.
func retryAfterSecondsFor(wait time.Duration) int {
	s := (wait + time.Second - 1) / time.Second
	return int(max(s, 1))
}
