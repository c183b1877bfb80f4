package persistence

import (
	"fmt"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// storedEvents counts id's event keys straight from Badger.
func storedEvents(t *testing.T, j *Journal, id string) (n int, first uint64) {
	t.Helper()
	err := j.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: idPrefix(j.partition(id), kindEvent, id)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if n == 0 {
				_, _, first, _ = parseEventKey(it.Item().Key())
			}
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, first
}

func fillEvents(t *testing.T, j *Journal, id string, n int) {
	t.Helper()
	for i := 1; i <= n; i += 10 {
		events := make([][]byte, 10)
		for k := range events {
			events[k] = fmt.Appendf(nil, "%s-%d", id, i+k)
		}
		if err := appendSync(t, j, id, uint64(i), events...); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCompactionDeletesCoveredEvents(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t)
	o.CompactInterval = 10 * time.Millisecond
	o.CompactKeys = 7 // several passes
	j := openTest(t, dir, o)
	fillEvents(t, j, "c", 100)
	if err := snapshotSync(t, j, "c", 60, []byte("sixty")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitMax)
	for {
		n, first := storedEvents(t, j, "c")
		if n == 40 && first == 61 {
			break
		}
		if n < 40 {
			t.Fatalf("compaction deleted events newer than the snapshot: %d left", n)
		}
		if time.Now().After(deadline) {
			t.Fatalf("events not compacted in time: %d left, first %d", n, first)
		}
		time.Sleep(10 * time.Millisecond)
	}
	checkRecovery(t, j, "c", 60, "sixty", 100)
	if s := j.Stats(); s.Compacted != 60 {
		t.Fatalf("stats: compacted %d, want 60", s.Compacted)
	}
	// The sequence carries on after compaction and a restart.
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j2 := openTest(t, dir, o)
	if last, err := j2.LastSequence("c"); last != 100 || err != nil {
		t.Fatalf("last %d, %v", last, err)
	}
	if err := appendSync(t, j2, "c", 101, []byte("c-101")); err != nil {
		t.Fatal(err)
	}
	checkRecovery(t, j2, "c", 60, "sixty", 101)
}

func TestCompactionAfterRestartFindsOldSnapshots(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t)
	o.RetainEvents = true
	j := openTest(t, dir, o)
	fillEvents(t, j, "r", 30)
	if err := snapshotSync(t, j, "r", 30, []byte("all")); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	o.RetainEvents = false
	o.CompactInterval = 10 * time.Millisecond
	j2 := openTest(t, dir, o)
	deadline := time.Now().Add(waitMax)
	for n, _ := storedEvents(t, j2, "r"); n != 0; n, _ = storedEvents(t, j2, "r") {
		if time.Now().After(deadline) {
			t.Fatalf("%d events left", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if last, _ := j2.LastSequence("r"); last != 30 {
		t.Fatalf("last sequence %d after compacting everything, want 30", last)
	}
	if err := appendSync(t, j2, "r", 31, []byte("r-31")); err != nil {
		t.Fatal(err)
	}
}

// TestRetentionKeepsEvents runs the same history through a journal that
// retains events and one that does not, and checks the retaining one once
// the other has compacted, and again after as long once more: a journal
// that ignored RetainEvents would have compacted by then too.
func TestRetentionKeepsEvents(t *testing.T) {
	o := testOptions(t)
	o.CompactInterval = 5 * time.Millisecond
	kept := o
	kept.RetainEvents = true
	journals := []*Journal{openTest(t, t.TempDir(), kept), openTest(t, t.TempDir(), o)}
	start := time.Now()
	for _, j := range journals {
		fillEvents(t, j, "k", 50)
		if err := snapshotSync(t, j, "k", 50, []byte("s")); err != nil {
			t.Fatal(err)
		}
	}
	retaining, compacting := journals[0], journals[1]
	deadline := time.Now().Add(waitMax)
	for compacting.Stats().Compacted != 50 {
		if time.Now().After(deadline) {
			t.Fatalf("the journal without retention did not compact: %+v", compacting.Stats())
		}
		time.Sleep(o.CompactInterval)
	}
	time.Sleep(time.Since(start)) // as long again: the retaining journal had its chance
	if n, _ := storedEvents(t, compacting, "k"); n != 0 {
		t.Fatalf("the journal without retention kept %d events", n)
	}
	if n, _ := storedEvents(t, retaining, "k"); n != 50 || retaining.Stats().Compacted != 0 {
		t.Fatalf("retention lost events: %d left, stats %+v", n, retaining.Stats())
	}
	if got := replayAll(t, retaining, "k", 0); len(got) != 50 {
		t.Fatalf("replayed %d", len(got))
	}
}

// checkRecovery checks snapshot plus tail: the snapshot, then events
// snap+1..last with the bytes fillEvents writes.
func checkRecovery(t *testing.T, j *Journal, id string, snap uint64, state string, last uint64) {
	t.Helper()
	seq, st, err := j.LoadSnapshot(id)
	if err != nil || seq != snap || string(st) != state {
		t.Fatalf("snapshot: %d %q %v", seq, st, err)
	}
	got := replayAll(t, j, id, seq)
	if uint64(len(got)) != last-snap {
		t.Fatalf("tail of %d events, want %d", len(got), last-snap)
	}
	for i, e := range got {
		want := event{snap + uint64(i) + 1, fmt.Sprintf("%s-%d", id, snap+uint64(i)+1)}
		if e != want {
			t.Fatalf("tail event %d: %v, want %v", i, e, want)
		}
	}
}
