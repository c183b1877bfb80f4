package gateway

import (
	"sync"
	"sync/atomic"
)

// admission bounds the work the gateway hands to the engine: at most
// inFlightMax engine calls on the node and at most skuMax requests per SKU.
// It counts and refuses; it never queues, so a refused request is answered
// 429 at once and the engine's mailboxes are not the overload valve.
type admission struct {
	inFlight    atomic.Int64
	inFlightMax int64
	skuMax      int32
	shards      [admissionShards]skuShard
}

// admissionShards spreads the per-SKU counters over independent locks.
const admissionShards = 64

type skuShard struct {
	mu sync.Mutex
	n  map[string]int32 // entries are deleted at zero: size <= admitted requests
	_  [40]byte         // keep shards on separate cache lines
}

func newAdmission(inFlightMax, skuMax int) *admission {
	a := &admission{inFlightMax: int64(inFlightMax), skuMax: int32(skuMax)}
	for i := range a.shards {
		a.shards[i].n = make(map[string]int32)
	}
	return a
}

// shedReason says why a request was refused, for the metrics.
type shedReason uint8

const (
	admitted shedReason = iota
	shedInFlight
	shedSKUQueue
)

// acquire admits a request touching skus (none for order operations). On
// success the caller must call release with the same skus.
func (a *admission) acquire(skus []Item) shedReason {
	if a.inFlight.Add(1) > a.inFlightMax {
		a.inFlight.Add(-1)
		return shedInFlight
	}
	for i := range skus {
		if !a.acquireSKU(skus[i].SKU) {
			for j := 0; j < i; j++ {
				a.releaseSKU(skus[j].SKU)
			}
			a.inFlight.Add(-1)
			return shedSKUQueue
		}
	}
	return admitted
}

func (a *admission) release(skus []Item) {
	for i := range skus {
		a.releaseSKU(skus[i].SKU)
	}
	a.inFlight.Add(-1)
}

func (a *admission) shard(sku string) *skuShard {
	// FNV-1a: cheap and good enough to spread SKUs over the shards.
	h := uint32(2166136261)
	for i := 0; i < len(sku); i++ {
		h ^= uint32(sku[i])
		h *= 16777619
	}
	return &a.shards[h%admissionShards]
}

func (a *admission) acquireSKU(sku string) bool {
	s := a.shard(sku)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.n[sku]
	if n >= a.skuMax {
		return false
	}
	s.n[sku] = n + 1
	return true
}

func (a *admission) releaseSKU(sku string) {
	s := a.shard(sku)
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.n[sku]; n > 1 {
		s.n[sku] = n - 1
	} else {
		delete(s.n, sku)
	}
}
