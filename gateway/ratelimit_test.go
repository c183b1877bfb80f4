package gateway

import (
	"math"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func TestLimiterTableBurstAndRate(t *testing.T) {
	tab := newLimiterTable[string](RateLimit{PerSecond: 2, Burst: 3}, 64, 1)
	for i := range 3 {
		if w := tab.take("c", t0); w != 0 {
			t.Fatalf("take %d within the burst waits %v", i, w)
		}
	}
	if w := tab.take("c", t0); w != 500*time.Millisecond {
		t.Fatalf("empty bucket at 2/s: wait %v, want 500ms", w)
	}
	if w := tab.take("c", t0.Add(250*time.Millisecond)); w != 250*time.Millisecond {
		t.Fatalf("a refusal must spend nothing: wait %v, want 250ms", w)
	}
	if w := tab.take("c", t0.Add(500*time.Millisecond)); w != 0 {
		t.Fatalf("a token is back after 500ms: wait %v", w)
	}
	if w := tab.take("d", t0); w != 0 {
		t.Fatalf("another key: wait %v", w)
	}
}

func TestLimiterTableEviction(t *testing.T) {
	tab := newLimiterTable[string](RateLimit{PerSecond: 1, Burst: 1}, 2, 1)
	t1 := t0.Add(time.Second)
	tab.take("idle", t0)   // full again at t1
	tab.take("active", t1) // empty at t1
	// A new key replaces the one whose bucket refilled, though both were
	// used since the hand last passed: forgetting it loses nothing.
	tab.take("new", t1)
	if w := tab.take("active", t1); w == 0 {
		t.Fatal("the active key was evicted instead of the refilled one")
	}
	if st := tab.stats(); st.entries != 2 || st.evicted != 0 {
		t.Fatalf("stats %+v, want 2 entries and no lossy eviction", st)
	}
	// With every bucket in use, the key the CLOCK hand finds idle for a
	// turn goes, and comes back with a full bucket: the documented cost
	// of the bound.
	tab.take("third", t1)
	if st := tab.stats(); st.entries != 2 || st.evicted != 1 {
		t.Fatalf("stats %+v, want 2 entries and one lossy eviction", st)
	}
	evicted := "active"
	if _, ok := tab.shards[0].index["active"]; ok {
		evicted = "new"
	}
	if w := tab.take(evicted, t1); w != 0 {
		t.Fatalf("an evicted key comes back with a full bucket: wait %v", w)
	}
}

// 100 000 distinct client addresses: the table stays at its bound, and so
// does the memory it holds.
func TestLimiterTableMemoryIsBounded(t *testing.T) {
	const keys = 100_000
	tab := newLimiterTable[netip.Addr](RateLimit{PerSecond: 1, Burst: 5}, DefaultRateLimitEntriesMax, limiterShards)
	bound := int64(DefaultRateLimitEntriesMax)
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	var full uint64
	for i := range keys {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		tab.take(a, t0) // no time passes: every bucket stays in use
		if i == int(bound) {
			full = heap()
		}
		if i%1000 == 0 && tab.stats().entries > bound {
			t.Fatalf("after %d keys the table holds %d, over its bound %d", i+1, tab.stats().entries, bound)
		}
	}
	st := tab.stats()
	if st.entries != bound || st.entriesMax != bound || st.evicted != keys-bound {
		t.Fatalf("stats %+v after %d keys, want %d entries and %d evictions", st, keys, bound, keys-bound)
	}
	// An unbounded table would keep the 34 464 keys over the bound too,
	// at about 200 bytes each (over 6 MiB).
	if grown := int64(heap()) - int64(full); grown > 1<<20 {
		t.Fatalf("the heap grew by %d bytes after the table was full", grown)
	}
	runtime.KeepAlive(tab)
}

// Concurrent workers over shared keys: with no time passing, exactly the
// burst of each key is let through, whoever asks.
func TestLimiterTableConcurrent(t *testing.T) {
	const keys, burst, workers, rounds = 32, 5, 8, 100 // 25 takes of each key
	tab := newLimiterTable[string](RateLimit{PerSecond: 1, Burst: burst}, 64*limiterShards, limiterShards)
	var allowed [keys]atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				k := (w + r) % keys
				if tab.take("c-"+strconv.Itoa(k), t0) == 0 {
					allowed[k].Add(1)
				}
			}
		})
	}
	wg.Wait()
	for k := range allowed {
		if n := allowed[k].Load(); n != burst {
			t.Errorf("key %d let %d through, want its burst %d", k, n, burst)
		}
	}
	// A table smaller than the keys in use stays within its bound.
	small := newLimiterTable[string](RateLimit{PerSecond: 1, Burst: 1}, limiterShards, limiterShards)
	for w := range workers {
		wg.Go(func() {
			for r := range 2000 {
				small.take(strconv.Itoa(w*2000+r), t0.Add(time.Duration(r)*time.Millisecond))
			}
		})
	}
	wg.Wait()
	if st := small.stats(); st.entries > limiterShards {
		t.Fatalf("small table: %+v", st)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for in, want := range map[time.Duration]int{
		time.Nanosecond: 1, time.Second: 1, time.Second + 1: 2, 9500 * time.Millisecond: 10, time.Hour: 3600,
	} {
		if got := retryAfterSecondsFor(in); got != want {
			t.Errorf("retryAfterSecondsFor(%v) = %d, want %d", in, got, want)
		}
	}
}

func TestRateLimitConfig(t *testing.T) {
	for _, tc := range []struct {
		give      RateLimit
		wantBurst int
		wantErr   bool
	}{
		{give: RateLimit{}, wantBurst: 0},
		{give: RateLimit{PerSecond: 5}, wantBurst: 5},
		{give: RateLimit{PerSecond: 0.2}, wantBurst: 1},
		{give: RateLimit{PerSecond: 2.5, Burst: 10}, wantBurst: 10},
		{give: RateLimit{PerSecond: 1e300}, wantBurst: rateBurstMax},
		{give: RateLimit{PerSecond: -1}, wantErr: true},
		{give: RateLimit{PerSecond: math.NaN()}, wantErr: true},
		{give: RateLimit{PerSecond: math.Inf(1)}, wantErr: true},
		{give: RateLimit{PerSecond: 1, Burst: -1}, wantErr: true},
	} {
		l := tc.give
		err := l.setDefaults("ClientRate")
		if (err != nil) != tc.wantErr || (err == nil && l.Burst != tc.wantBurst) {
			t.Errorf("%+v: burst %d, err %v", tc.give, l.Burst, err)
		}
	}
}
