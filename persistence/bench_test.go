package persistence

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Append benchmarks. Every request carries one event of benchPayloadBytes
// and is measured from submission to its acknowledgement; a request is
// acknowledged only once it is fsync'd.
//
// Two workloads, each with 1, 16 and 256 concurrent closed-loop clients:
//
//   - hot-sku: every client talks to one identity, as in a flash sale. An
//     identity's appends are sequential, so the clients go through one
//     actor, modelled as DESIGN.md describes the SKU actor: it keeps one
//     append in flight and sends everything that arrived meanwhile as the
//     next (multi-event) append. The baseline actor writes each request in
//     its own synced Badger transaction, one after another, which is what
//     an actor without group commit would do.
//   - ids-10000: each client appends to its own share of 10 000 identities,
//     one append in flight per client. The baseline does one synced
//     transaction per append from the same number of goroutines (Badger
//     itself coalesces concurrent commits, so this is its best case).
//
// Reported: appends/s (acknowledged requests per second), p50-µs, p99-µs.
const (
	benchPayloadBytes = 100
	benchIdentities   = 10000
)

var benchAppenders = []int{1, 16, 256}

// appender is what a benchmark client calls: submit one event, wait.
type appender interface {
	append(client int) error
	close() error
}

func BenchmarkAppend(b *testing.B) {
	kinds := []struct {
		name string
		open func(b *testing.B, clients int) appender
	}{
		{"journal/hot-sku", openHotJournal},
		{"baseline/hot-sku", openHotBaseline},
		{"journal/ids-10000", openIdsJournal},
		{"baseline/ids-10000", openIdsBaseline},
	}
	for _, k := range kinds {
		for _, clients := range benchAppenders {
			b.Run(fmt.Sprintf("%s/appenders=%d", k.name, clients), func(b *testing.B) {
				a := k.open(b, clients)
				runClients(b, a, clients)
				if err := a.close(); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

// runClients shares b.N requests among clients and reports throughput and
// latency percentiles.
func runClients(b *testing.B, a appender, clients int) {
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t0 := time.Now()
				if err := a.append(c); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
	b.ReportMetric(float64(lat[b.N/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[min(b.N-1, b.N*99/100)].Microseconds()), "p99-µs")
}

func benchOptions(b *testing.B) Options {
	o := testOptions(b)
	o.RetainEvents = true
	return o
}

func payload() []byte {
	p := make([]byte, benchPayloadBytes)
	for i := range p {
		p[i] = byte('a' + i%26)
	}
	return p
}

// hotActor is the single-identity actor of the hot-sku workload.
type hotActor struct {
	j     *Journal
	inbox chan chan error
	stop  chan struct{}
	done  sync.WaitGroup
}

func openHotJournal(b *testing.B, _ int) appender {
	a := &hotActor{
		j:     openBenchJournal(b),
		inbox: make(chan chan error, 1024),
		stop:  make(chan struct{}),
	}
	a.done.Go(a.run)
	return a
}

func (a *hotActor) append(int) error {
	reply := make(chan error, 1)
	a.inbox <- reply
	return <-reply
}

// run keeps one append in flight and batches what arrives meanwhile.
func (a *hotActor) run() {
	var next uint64 = 1
	var waiting []chan error
	inFlight := false
	flushed := make(chan error, 1)
	var sent []chan error
	for {
		if !inFlight && len(waiting) > 0 {
			n := min(len(waiting), a.j.opts.BatchEntries)
			sent, waiting = waiting[:n:n], waiting[n:]
			events := make([][]byte, n)
			for i := range events {
				events[i] = payload()
			}
			a.j.Append("hot", next, events, 0, func(err error) { flushed <- err })
			next += uint64(n)
			inFlight = true
		}
		select {
		case r := <-a.inbox:
			waiting = append(waiting, r)
		case err := <-flushed:
			for _, r := range sent {
				r <- err
			}
			inFlight = false
		case <-a.stop:
			return
		}
	}
}

func (a *hotActor) close() error {
	close(a.stop)
	a.done.Wait()
	return a.j.Close()
}

func openBenchJournal(b *testing.B) *Journal {
	j, err := Open(b.TempDir(), benchOptions(b))
	if err != nil {
		b.Fatal(err)
	}
	return j
}

// idsJournal gives each client its own identities, round robin.
type idsJournal struct {
	j    *Journal
	seqs []uint64 // next sequence per identity
	turn []int    // per client: how many appends it has made
	n    int      // clients
}

func openIdsJournal(b *testing.B, clients int) appender {
	return &idsJournal{j: openBenchJournal(b), seqs: make([]uint64, benchIdentities),
		turn: make([]int, clients), n: clients}
}

// identity picks client c's next identity: c, c+n, c+2n, ... so no two
// clients share one and each keeps at most one append in flight.
func identityFor(turn []int, c, n int) int {
	share := (benchIdentities - c + n - 1) / n
	k := c + (turn[c]%share)*n
	turn[c]++
	return k
}

func (a *idsJournal) append(c int) error {
	k := identityFor(a.turn, c, a.n)
	a.seqs[k]++
	done, ch := result()
	a.j.Append(fmt.Sprintf("sku-%d", k), a.seqs[k], [][]byte{payload()}, 0, done)
	return <-ch
}

func (a *idsJournal) close() error { return a.j.Close() }

// baseline writes every append in its own synced Badger transaction, with
// the journal's key and record format and Badger options.
type baseline struct {
	db   *badger.DB
	mu   sync.Mutex // hot-sku: the one actor handles one request at a time
	hot  bool
	seqs []uint64
	turn []int
	n    int
}

func openBaseline(b *testing.B, clients int, hot bool) *baseline {
	db, err := badger.Open(benchOptions(b).withDefaults().badgerOptions(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	return &baseline{db: db, hot: hot, seqs: make([]uint64, benchIdentities),
		turn: make([]int, clients), n: clients}
}

func openHotBaseline(b *testing.B, clients int) appender { return openBaseline(b, clients, true) }
func openIdsBaseline(b *testing.B, clients int) appender { return openBaseline(b, clients, false) }

func (a *baseline) append(c int) error {
	k := 0
	if a.hot {
		a.mu.Lock()
		defer a.mu.Unlock()
	} else {
		k = identityFor(a.turn, c, a.n)
	}
	a.seqs[k]++
	seq := a.seqs[k]
	id := fmt.Sprintf("sku-%d", k)
	p := uint16(Partition(id, DefaultOptions().Partitions))
	return a.db.Update(func(txn *badger.Txn) error {
		return txn.Set(eventKey(p, id, seq), encodeRecord(nil, recordKindEvent, seq, payload()))
	})
}

func (a *baseline) close() error { return a.db.Close() }

// BenchmarkRecovery measures LoadSnapshot plus Replay of one identity with
// 100 000 events: all of them, or a snapshot at 99 000 and a 1 000-event
// tail (the covered events compacted away).
func BenchmarkRecovery(b *testing.B) {
	const events, snapAt = 100_000, 99_000
	for _, withSnap := range []bool{false, true} {
		b.Run(fmt.Sprintf("events=%d/snapshot=%v", events, withSnap), func(b *testing.B) {
			o := benchOptions(b)
			o.RetainEvents = !withSnap
			o.CompactInterval = 10 * time.Millisecond
			o.CompactKeys = events
			dir := b.TempDir()
			fillForRecovery(b, dir, o, events, snapAt, withSnap)
			j, err := Open(dir, o)
			if err != nil {
				b.Fatal(err)
			}
			defer j.Close()
			b.ResetTimer()
			for range b.N {
				seq, state, err := j.LoadSnapshot("big")
				if err != nil {
					b.Fatal(err)
				}
				folded := len(state)
				if err := j.Replay("big", seq, func(s uint64, e []byte) error {
					folded += len(e)
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func fillForRecovery(b *testing.B, dir string, o Options, events, snapAt int, withSnap bool) {
	j, err := Open(dir, o)
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	const per = 1000
	for first := 1; first <= events; first += per {
		batch := make([][]byte, per)
		for i := range batch {
			batch[i] = payload()
		}
		if err := appendSync(b, j, "big", uint64(first), batch...); err != nil {
			b.Fatal(err)
		}
	}
	if !withSnap {
		return
	}
	if err := snapshotSync(b, j, "big", uint64(snapAt), make([]byte, 4096)); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(waitMax)
	for j.Stats().Compacted < uint64(snapAt) {
		if time.Now().After(deadline) {
			b.Fatalf("compaction did not finish: %+v", j.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkAppendEvicted measures identities whose tracking was evicted
// from the bounded cache, so that each request first loads the identity
// from Badger: "load" is that load alone, "append" a whole synced append
// with it. The load reads keys and the 8-byte wake time only, so neither
// may depend on the size of the identity's snapshot.
func BenchmarkAppendEvicted(b *testing.B) {
	const ids = 16
	for _, size := range []int{1 << 10, 4 << 20} {
		b.Run(fmt.Sprintf("snapshot=%dKiB", size>>10), func(b *testing.B) {
			j := openBenchJournal(b)
			defer j.Close()
			j.mu.Lock()
			j.idsMax = 0 // every identity is dropped once its request completes
			j.mu.Unlock()
			state := bigState(size)
			seqs := make([]uint64, ids)
			for k := range ids {
				id := fmt.Sprintf("sku-%d", k)
				if err := appendWake(b, j, id, 1, 1e18, payload()); err != nil {
					b.Fatal(err)
				}
				if err := snapshotSync(b, j, id, 1, state); err != nil {
					b.Fatal(err)
				}
				seqs[k] = 1
			}
			b.Run("load", func(b *testing.B) {
				for i := range b.N {
					if _, err := j.loadStored(fmt.Sprintf("sku-%d", i%ids)); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("append", func(b *testing.B) {
				for i := range b.N {
					k := i % ids
					seqs[k]++
					if err := appendWake(b, j, fmt.Sprintf("sku-%d", k), seqs[k], 1e18, payload()); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkDueIdle measures Due when nothing is due among 10 000 future
// wake times: the cost of the node's periodic poll.
func BenchmarkDueIdle(b *testing.B) {
	j := openBenchJournal(b)
	defer j.Close()
	var wg sync.WaitGroup
	wg.Add(benchIdentities)
	for i := range benchIdentities {
		j.Append(fmt.Sprintf("o-%d", i), 1, [][]byte{payload()}, int64(2e18)+int64(i), func(err error) {
			if err != nil {
				b.Error(err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	b.ResetTimer()
	for range b.N {
		if err := j.Due(1e18, 100, func(string, int64) bool { return true }); err != nil {
			b.Fatal(err)
		}
	}
}
