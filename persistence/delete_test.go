package persistence

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func TestDeleteThenAppendAtOne(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t)
	o.RetainEvents = true
	j := openTest(t, dir, o)
	if err := appendWake(t, j, "o", 1, 70, []byte("1"), []byte("2"), []byte("3")); err != nil {
		t.Fatal(err)
	}
	if err := snapshotSync(t, j, "o", 2, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if err := appendSync(t, j, "neighbour", 1, []byte("n")); err != nil {
		t.Fatal(err)
	}
	if err := deleteSync(t, j, "o"); err != nil {
		t.Fatal(err)
	}
	if keys := keysOf(t, j, "o"); len(keys) != 0 {
		t.Fatalf("keys left after delete: %d, first %s", len(keys), describeKey(keys[0]))
	}
	if seq, state, err := j.LoadSnapshot("o"); seq != 0 || state != nil || err != nil {
		t.Fatalf("snapshot after delete: %d %q %v", seq, state, err)
	}
	if got := due(t, j, 1000, 10); len(got) != 0 {
		t.Fatalf("due after delete: %v", got)
	}
	if last, err := j.LastSequence("o"); last != 0 || err != nil {
		t.Fatalf("last sequence after delete: %d, %v", last, err)
	}
	if err := appendWake(t, j, "o", 1, 80, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if got := replayAll(t, j, "o", 0); !slices.Equal(got, []event{{1, "new"}}) {
		t.Fatalf("replay after delete and append: %v", got)
	}
	if err := snapshotSync(t, j, "o", 1, []byte("one")); err != nil {
		t.Fatalf("a snapshot of the new history: %v", err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = openTest(t, dir, o)
	checkWake(t, j, "o", 80)
	if got := replayAll(t, j, "neighbour", 0); !slices.Equal(got, []event{{1, "n"}}) {
		t.Fatalf("the delete touched another identity: %v", got)
	}
	if seq, state, _ := j.LoadSnapshot("o"); seq != 1 || string(state) != "one" {
		t.Fatalf("snapshot of the new history: %d %q", seq, state)
	}
}

// Requests submitted around a Delete complete in order: those before it on
// the old history, those after it on a new one, all without waiting.
func TestDeleteBetweenQueuedAppends(t *testing.T) {
	j := openTest(t, t.TempDir(), testOptions(t))
	if err := appendWake(t, j, "o", 1, 5, []byte("1")); err != nil {
		t.Fatal(err)
	}
	var chans []chan error
	submit := func(f func(func(error))) {
		done, ch := result()
		f(done)
		chans = append(chans, ch)
	}
	submit(func(d func(error)) { j.Append("o", 2, [][]byte{[]byte("2")}, 6, d) })
	submit(func(d func(error)) { j.Delete("o", d) })
	submit(func(d func(error)) { j.Append("o", 1, [][]byte{[]byte("again")}, 0, d) })
	submit(func(d func(error)) { j.Delete("o", d) })
	submit(func(d func(error)) { j.Append("o", 1, [][]byte{[]byte("third")}, 9, d) })
	for i, c := range chans {
		if err := wait(t, c); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if got := replayAll(t, j, "o", 0); !slices.Equal(got, []event{{1, "third"}}) {
		t.Fatalf("replay: %v", got)
	}
	checkWake(t, j, "o", 9)
}

func TestDeleteOfEvictedIdentityWithChunkedSnapshot(t *testing.T) {
	j := openTest(t, t.TempDir(), testOptions(t))
	j.mu.Lock()
	j.idsMax = 0
	j.mu.Unlock()
	if err := appendWake(t, j, "sku", 1, 42, []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := snapshotSync(t, j, "sku", 1, bigState(3*chunkDataBytes+17)); err != nil {
		t.Fatal(err)
	}
	if n := len(keysOf(t, j, "sku")); n != 1+4+2 {
		t.Fatalf("%d keys before the delete, want an event, 4 chunks and 2 wake keys", n)
	}
	if err := deleteSync(t, j, "sku"); err != nil {
		t.Fatal(err)
	}
	if keys := keysOf(t, j, "sku"); len(keys) != 0 {
		t.Fatalf("keys left after delete: %d, first %s", len(keys), describeKey(keys[0]))
	}
	if err := appendSync(t, j, "sku", 1, []byte("again")); err != nil {
		t.Fatal(err)
	}
}

func TestRefusedDeleteFailsTheAppendsAfterIt(t *testing.T) {
	j := openTest(t, t.TempDir(), testOptions(t))
	if err := appendWake(t, j, "o", 1, 5, []byte("1"), []byte("2")); err != nil {
		t.Fatal(err)
	}
	entered, release := holdFirstRefusal(j)
	dDel, cDel := result()
	j.Delete("o", dDel)
	<-entered // the writer is checking the Delete's batch
	d1, c1 := result()
	j.Append("o", 1, [][]byte{[]byte("new")}, 0, d1)
	dSnap, cSnap := result()
	j.SaveSnapshot("o", 2, []byte("old"), dSnap)
	if err := wait(t, cSnap); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("snapshot while a delete is pending: got %v, want ErrInvalidRequest", err)
	}
	close(release)
	if err := wait(t, cDel); !errors.Is(err, ErrStorageFull) {
		t.Fatalf("delete: got %v, want ErrStorageFull", err)
	}
	if err := wait(t, c1); !errors.Is(err, ErrEarlierAppendFailed) {
		t.Fatalf("append after the refused delete: got %v", err)
	}
	if got := replayAll(t, j, "o", 0); len(got) != 2 {
		t.Fatalf("the refused delete lost events: %v", got)
	}
	checkWake(t, j, "o", 5)
	if err := appendSync(t, j, "o", 3, []byte("3")); err != nil {
		t.Fatalf("the old history continues: %v", err)
	}
}

// An identity with more keys than one Badger transaction holds is still
// deleted whole.
func TestDeleteOfLargeIdentity(t *testing.T) {
	o := testOptions(t)
	o.RetainEvents = true
	j := openTest(t, t.TempDir(), o)
	events := int(j.db.MaxBatchCount()) + 1000
	fillEvents(t, j, "big", events)
	if err := snapshotSync(t, j, "big", uint64(events/2), []byte("half")); err != nil {
		t.Fatal(err)
	}
	if err := deleteSync(t, j, "big"); err != nil {
		t.Fatal(err)
	}
	if keys := keysOf(t, j, "big"); len(keys) != 0 {
		t.Fatalf("%d keys left", len(keys))
	}
	if err := appendSync(t, j, "big", 1, []byte("again")); err != nil {
		t.Fatal(err)
	}
}

// A large Delete cut short leaves the newest events without the oldest;
// Replay must refuse that history rather than replay it as if it were whole.
func TestHistoryWithALateStartIsCorrupt(t *testing.T) {
	o := testOptions(t)
	o.RetainEvents = true
	j := openTest(t, t.TempDir(), o)
	fillEvents(t, j, "h", 30)
	if err := snapshotSync(t, j, "h", 10, []byte("ten")); err != nil {
		t.Fatal(err)
	}
	p := j.partition("h")
	err := j.db.Update(func(txn *badger.Txn) error {
		for seq := uint64(1); seq <= 15; seq++ {
			if err := txn.Delete(eventKey(p, "h", seq)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, after := range []uint64{0, 10, 12} {
		err := j.Replay("h", after, func(uint64, []byte) error { return nil })
		if c, ok := asCorrupt(err); !ok || !slices.Equal(c.Key, eventKey(p, "h", 16)) {
			t.Fatalf("replay after %d: got %v, want a gap at event 16", after, err)
		}
	}
	if got := replayAll(t, j, "h", 15); len(got) != 15 {
		t.Fatalf("replay after 15: %d events", len(got))
	}
}

// Deletes racing the compactor never lose events of the history that
// follows them: compaction must not delete, by a stale snapshot sequence,
// events that a Delete started again.
func TestDeleteRacingCompaction(t *testing.T) {
	o := testOptions(t)
	o.CompactInterval = time.Millisecond
	j := openTest(t, t.TempDir(), o)
	const ids, rounds = 4, 40
	var wg sync.WaitGroup
	for k := range ids {
		wg.Go(func() {
			id := fmt.Sprintf("r/%d", k)
			for round := range rounds {
				events := make([][]byte, 20)
				for i := range events {
					events[i] = fmt.Appendf(nil, "%d-%d", round, i+1)
				}
				if err := appendSync(t, j, id, 1, events...); err != nil {
					t.Errorf("%s round %d: %v", id, round, err)
					return
				}
				if err := snapshotSync(t, j, id, 15, []byte("fifteen")); err != nil {
					t.Errorf("%s round %d: %v", id, round, err)
					return
				}
				if err := deleteSync(t, j, id); err != nil {
					t.Errorf("%s round %d: %v", id, round, err)
					return
				}
				tail := [][]byte{[]byte("a"), []byte("b"), []byte("c")}
				if err := appendSync(t, j, id, 1, tail...); err != nil {
					t.Errorf("%s round %d: %v", id, round, err)
					return
				}
				if got := replayAll(t, j, id, 0); !slices.Equal(got, []event{{1, "a"}, {2, "b"}, {3, "c"}}) {
					t.Errorf("%s round %d: the new history reads %v", id, round, got)
					return
				}
				if err := deleteSync(t, j, id); err != nil {
					t.Errorf("%s round %d: %v", id, round, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// A snapshot that is refused just before a Delete must not hold the new
// history's snapshots to the old history's sequences.
func TestSnapshotRefusedBeforeDelete(t *testing.T) {
	o := testOptions(t)
	o.RetainEvents = true
	j := openTest(t, t.TempDir(), o)
	fillEvents(t, j, "o", 10)
	if err := snapshotSync(t, j, "o", 5, []byte("five")); err != nil {
		t.Fatal(err)
	}
	entered, release := holdFirstRefusal(j)
	dSnap, cSnap := result()
	j.SaveSnapshot("o", 10, []byte("ten"), dSnap)
	<-entered
	dDel, cDel := result()
	j.Delete("o", dDel)
	close(release)
	if err := wait(t, cSnap); !errors.Is(err, ErrStorageFull) {
		t.Fatalf("snapshot: got %v, want ErrStorageFull", err)
	}
	if err := wait(t, cDel); err != nil {
		t.Fatal(err)
	}
	if err := appendSync(t, j, "o", 1, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := snapshotSync(t, j, "o", 1, []byte("one")); err != nil {
		t.Fatalf("snapshot of the new history: %v", err)
	}
}
