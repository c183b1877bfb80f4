package persistence

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// idsIn returns n ids of partition p among partitions, named prefix-k.
func idsIn(p, partitions, n int, prefix string) []string {
	var ids []string
	for k := 0; len(ids) < n; k++ {
		if id := fmt.Sprintf("%s-%d", prefix, k); Partition(id, partitions) == p {
			ids = append(ids, id)
		}
	}
	return ids
}

func fencedOptions(t testing.TB) Options {
	o := testOptions(t)
	o.Fenced = true
	return o
}

func TestUnfencedJournalHoldsEveryPartition(t *testing.T) {
	j := openTest(t, t.TempDir(), testOptions(t))
	for p := range j.Partitions() {
		if epoch, ok := j.Held(p); !ok || epoch != 0 {
			t.Fatalf("partition %d: held %v at %d, want held at 0", p, ok, epoch)
		}
	}
	if err := appendSync(t, j, "a", 1, []byte("x")); err != nil {
		t.Fatal(err)
	}
}

func TestFencedJournalRefusesWritesOfUnheldPartitions(t *testing.T) {
	j := openTest(t, t.TempDir(), fencedOptions(t))
	parts := j.Partitions()
	a, b := idsIn(3, parts, 1, "a")[0], idsIn(5, parts, 1, "b")[0]
	if _, ok := j.Held(3); ok {
		t.Fatal("a fenced journal holds partition 3 at open")
	}
	if err := j.Hold(5, 7); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		appendSync(t, j, a, 1, []byte("x")),
		snapshotSync(t, j, a, 1, []byte("s")),
		deleteSync(t, j, a),
	} {
		if !errors.Is(err, ErrNotHeld) {
			t.Fatalf("write of an unheld partition: %v, want ErrNotHeld", err)
		}
	}
	// Refusals stop nothing: the held partition writes, reads go on.
	if err := appendSync(t, j, b, 1, []byte("y")); err != nil {
		t.Fatalf("append to a held partition: %v", err)
	}
	if j.failure() != nil {
		t.Fatalf("journal failed: %v", j.failure())
	}
	if seq, err := j.LastSequence(a); err != nil || seq != 0 {
		t.Fatalf("refused identity: last %d, %v", seq, err)
	}
	if got := replayAll(t, j, a, 0); len(got) != 0 {
		t.Fatalf("refused identity replays %v", got)
	}
	if err := j.Hold(3, 1); err != nil {
		t.Fatal(err)
	}
	// The refusal left no pending sequence behind.
	if err := appendSync(t, j, a, 1, []byte("x")); err != nil {
		t.Fatalf("append once held: %v", err)
	}
	if got := replayAll(t, j, a, 0); len(got) != 1 || got[0].data != "x" {
		t.Fatalf("replay %v", got)
	}
}

func TestHoldEpochsAndRelease(t *testing.T) {
	j := openTest(t, t.TempDir(), fencedOptions(t))
	if err := j.Hold(2, 5); err != nil {
		t.Fatal(err)
	}
	if err := j.Hold(2, 4); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("hold at a lower epoch: %v", err)
	}
	if err := j.Hold(2, 6); err != nil {
		t.Fatal(err)
	}
	if epoch, ok := j.Held(2); !ok || epoch != 6 {
		t.Fatalf("held %v at %d, want 6", ok, epoch)
	}
	if err := j.Release(2); err != nil {
		t.Fatal(err)
	}
	if _, ok := j.Held(2); ok {
		t.Fatal("held after release")
	}
	if err := j.Hold(2, 1); err != nil { // the cluster's table orders epochs, not the journal
		t.Fatal(err)
	}
	for _, p := range []int{-1, j.Partitions()} {
		if err := j.Hold(p, 1); !errors.Is(err, ErrInvalidRequest) {
			t.Fatalf("hold %d: %v", p, err)
		}
		if err := j.Release(p); !errors.Is(err, ErrInvalidRequest) {
			t.Fatalf("release %d: %v", p, err)
		}
	}
}

// TestReleaseIsAFence appends to a partition from many goroutines, with
// commits slowed so that batches are in flight, and releases it: no append
// may be acknowledged after Release returned, and the partition's stored
// range must not change after it either. Other partitions keep writing.
func TestReleaseIsAFence(t *testing.T) {
	for round := range 5 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			j := openTest(t, t.TempDir(), testOptions(t))
			j.beforeCommit = func() error { time.Sleep(200 * time.Microsecond); return nil }
			const p, other = 7, 8
			ids := idsIn(p, j.Partitions(), 16, "f")
			others := idsIn(other, j.Partitions(), 4, "o")
			var released atomic.Bool
			var late, acked, refused atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			appender := func(id string, fenced bool) {
				defer wg.Done()
				for seq := uint64(1); ; seq++ {
					select {
					case <-stop:
						return
					default:
					}
					done, ch := result()
					j.Append(id, seq, [][]byte{[]byte("e")}, 0, func(err error) {
						if err == nil && fenced && released.Load() {
							late.Add(1)
						}
						done(err)
					})
					switch err := wait(t, ch); {
					case err == nil:
						acked.Add(1)
					case fenced && errors.Is(err, ErrNotHeld):
						refused.Add(1)
						return
					default:
						t.Errorf("append %s #%d: %v", id, seq, err)
						return
					}
				}
			}
			for _, id := range ids {
				wg.Add(1)
				go appender(id, true)
			}
			for _, id := range others {
				wg.Add(1)
				go appender(id, false)
			}
			time.Sleep(30 * time.Millisecond)
			if err := j.Release(p); err != nil {
				t.Fatal(err)
			}
			released.Store(true)
			before, _, err := j.digestPartition(p)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond) // the others go on; nothing of p may land
			close(stop)
			wg.Wait()
			after, _, err := j.digestPartition(p)
			if err != nil {
				t.Fatal(err)
			}
			if late.Load() != 0 {
				t.Fatalf("%d appends of the released partition acknowledged after Release returned", late.Load())
			}
			if before.sum() != after.sum() || before.keys != after.keys {
				t.Fatalf("partition changed after Release: %d keys, then %d", before.keys, after.keys)
			}
			if refused.Load() != int64(len(ids)) || acked.Load() == 0 {
				t.Fatalf("%d acked, %d refused of %d appenders", acked.Load(), refused.Load(), len(ids))
			}
			// Every acknowledged append of p is stored: the sequences the
			// cache has are what Badger has.
			for _, id := range ids {
				last, err := j.LastSequence(id)
				if err != nil {
					t.Fatal(err)
				}
				if got := replayAll(t, j, id, 0); uint64(len(got)) != last {
					t.Fatalf("%s: %d events stored, last sequence %d", id, len(got), last)
				}
			}
		})
	}
}

func TestDueListsOnlyHeldPartitions(t *testing.T) {
	j := openTest(t, t.TempDir(), testOptions(t))
	a, b := idsIn(1, j.Partitions(), 1, "a")[0], idsIn(2, j.Partitions(), 1, "b")[0]
	if err := appendWake(t, j, a, 1, 100, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := appendWake(t, j, b, 1, 200, []byte("x")); err != nil {
		t.Fatal(err)
	}
	due := func() []string {
		var got []string
		if err := j.Due(1000, 10, func(id string, _ int64) bool { got = append(got, id); return true }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := due(); len(got) != 2 {
		t.Fatalf("due %v", got)
	}
	if err := j.Release(1); err != nil {
		t.Fatal(err)
	}
	if got := due(); len(got) != 1 || got[0] != b {
		t.Fatalf("due after release %v, want [%s]", got, b)
	}
	if err := j.Hold(1, 1); err != nil {
		t.Fatal(err)
	}
	if got := due(); len(got) != 2 {
		t.Fatalf("due after hold %v", got)
	}
}

// Writes submitted before Drain commit, so a Release that follows refuses
// nothing that was already on its way (a stopping actor's last snapshot).
func TestDrainLetsQueuedWritesCommit(t *testing.T) {
	j := openTest(t, t.TempDir(), fencedOptions(t))
	const p = 3
	if err := j.Hold(p, 1); err != nil {
		t.Fatal(err)
	}
	ids := idsIn(p, j.Partitions(), 50, "drain")
	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, id := range ids {
		wg.Add(1)
		j.Append(id, 1, [][]byte{[]byte("e")}, 0, func(err error) {
			if err != nil {
				failed.Add(1)
			}
			wg.Done()
		})
	}
	if err := j.Drain(p); err != nil {
		t.Fatal(err)
	}
	if err := j.Release(p); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d appends submitted before Drain failed", n)
	}
	for _, id := range ids {
		if seq, err := j.LastSequence(id); err != nil || seq != 1 {
			t.Fatalf("%s: last sequence %d, %v; want 1", id, seq, err)
		}
	}
}
