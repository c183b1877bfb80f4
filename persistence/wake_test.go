package persistence

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// wakeKeysOf returns id's wake-index keys and its wake-of value, from
// Badger.
func wakeKeysOf(t *testing.T, j *Journal, id string) (index []int64, stored int64) {
	t.Helper()
	for _, k := range keysOf(t, j, id) {
		if _, wake, _, ok := parseWakeKey(k); ok {
			index = append(index, wake)
		}
	}
	err := j.db.View(func(txn *badger.Txn) (err error) {
		stored, _, err = readWake(txn, j.partition(id), id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return index, stored
}

func checkWake(t *testing.T, j *Journal, id string, want int64) {
	t.Helper()
	index, stored := wakeKeysOf(t, j, id)
	switch {
	case want == 0 && (len(index) != 0 || stored != 0):
		t.Fatalf("%s: wake keys %v and wake-of %d, want none", id, index, stored)
	case want != 0 && (!slices.Equal(index, []int64{want}) || stored != want):
		t.Fatalf("%s: wake keys %v and wake-of %d, want only %d", id, index, stored, want)
	}
}

func TestWakeIsSetReplacedAndClearedWithEvents(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir, testOptions(t))
	if err := appendWake(t, j, "o", 1, 100, []byte("placed")); err != nil {
		t.Fatal(err)
	}
	checkWake(t, j, "o", 100)
	if got := due(t, j, 99, 10); len(got) != 0 {
		t.Fatalf("due before its time: %v", got)
	}
	if got := due(t, j, 100, 10); !slices.Equal(got, []string{"o@100"}) {
		t.Fatalf("due: %v", got)
	}
	if err := appendWake(t, j, "o", 2, 50, []byte("moved")); err != nil {
		t.Fatal(err)
	}
	checkWake(t, j, "o", 50)
	if got := due(t, j, 1000, 10); !slices.Equal(got, []string{"o@50"}) {
		t.Fatalf("due after the move: %v", got)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = openTest(t, dir, testOptions(t))
	if got := due(t, j, 1000, 10); !slices.Equal(got, []string{"o@50"}) {
		t.Fatalf("due after reopen: %v", got)
	}
	if err := appendWake(t, j, "o", 3, 0, []byte("settled")); err != nil {
		t.Fatal(err)
	}
	checkWake(t, j, "o", 0)
	if got := due(t, j, 1<<62, 10); len(got) != 0 {
		t.Fatalf("cleared wake still due: %v", got)
	}
	if got := replayAll(t, j, "o", 0); len(got) != 3 {
		t.Fatalf("events: %v", got)
	}
}

// An append that leaves the wake time as it was writes no wake key: the
// key's Badger version does not move.
func TestUnchangedWakeIsNotRewritten(t *testing.T) {
	j := openTest(t, t.TempDir(), testOptions(t))
	version := func() uint64 {
		var v uint64
		err := j.db.View(func(txn *badger.Txn) error {
			item, err := txn.Get(wakeKey(j.partition("o"), 7, "o"))
			if err == nil {
				v = item.Version()
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if err := appendWake(t, j, "o", 1, 7, []byte("a")); err != nil {
		t.Fatal(err)
	}
	first := version()
	for seq := uint64(2); seq < 5; seq++ {
		if err := appendWake(t, j, "o", seq, 7, []byte("b")); err != nil {
			t.Fatal(err)
		}
	}
	if v := version(); v != first {
		t.Fatalf("wake key rewritten: version %d, then %d", first, v)
	}
}

// A refused append leaves the durable wake time, and the next append
// replaces that one, not the wake time of the refused append.
func TestRefusedAppendLeavesWakeUnchanged(t *testing.T) {
	j := openTest(t, t.TempDir(), testOptions(t))
	if err := appendWake(t, j, "o", 1, 10, []byte("1")); err != nil {
		t.Fatal(err)
	}
	var free atomic.Uint64 // the writer reads it
	j.opts.FreeSpace = func(string) (uint64, error) { return free.Load(), nil }
	if err := appendWake(t, j, "o", 2, 20, []byte("2")); !errors.Is(err, ErrStorageFull) {
		t.Fatalf("got %v, want ErrStorageFull", err)
	}
	if err := appendWake(t, j, "o", 2, 0); !errors.Is(err, ErrStorageFull) { // wake-only
		t.Fatalf("got %v, want ErrStorageFull", err)
	}
	checkWake(t, j, "o", 10)
	if got := due(t, j, 100, 10); !slices.Equal(got, []string{"o@10"}) {
		t.Fatalf("due after failures: %v", got)
	}
	free.Store(plentyFree)
	if err := appendWake(t, j, "o", 2, 30, []byte("2b")); err != nil {
		t.Fatal(err)
	}
	checkWake(t, j, "o", 30)
	if got := replayAll(t, j, "o", 0); !slices.Equal(got, []event{{1, "1"}, {2, "2b"}}) {
		t.Fatalf("events: %v", got)
	}
}

func TestWakeOnlyAppend(t *testing.T) {
	j := openTest(t, t.TempDir(), testOptions(t))
	if err := appendWake(t, j, "o", 1, 0); err != nil { // nothing at all
		t.Fatal(err)
	}
	if err := appendWake(t, j, "o", 1, 5, []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := appendWake(t, j, "o", 2, 9); err != nil {
		t.Fatal(err)
	}
	checkWake(t, j, "o", 9)
	if got := replayAll(t, j, "o", 0); !slices.Equal(got, []event{{1, "1"}}) {
		t.Fatalf("a wake-only append wrote events: %v", got)
	}
	if last, _ := j.LastSequence("o"); last != 1 {
		t.Fatalf("last sequence %d, want 1", last)
	}
	var se *SequenceError
	if err := appendWake(t, j, "o", 3, 1); !errors.As(err, &se) || se.Want != 2 {
		t.Fatalf("wake-only append out of sequence: got %v", err)
	}
	checkWake(t, j, "o", 9)
	if err := appendWake(t, j, "o", 2, 0, []byte("2")); err != nil {
		t.Fatal(err)
	}
	checkWake(t, j, "o", 0)
}

// An identity whose tracking was evicted reads its wake time back, so that
// its next append deletes the right index entry.
func TestWakeSurvivesEviction(t *testing.T) {
	j := openTest(t, t.TempDir(), testOptions(t))
	j.mu.Lock()
	j.idsMax = 1
	j.mu.Unlock()
	const ids = 20
	for k := range ids {
		if err := appendWake(t, j, fmt.Sprintf("o-%d", k), 1, int64(100+k), []byte("1")); err != nil {
			t.Fatal(err)
		}
	}
	for k := range ids {
		if err := appendWake(t, j, fmt.Sprintf("o-%d", k), 2, int64(1000+k), []byte("2")); err != nil {
			t.Fatal(err)
		}
		checkWake(t, j, fmt.Sprintf("o-%d", k), int64(1000+k))
	}
	if got := due(t, j, 999, 100); len(got) != 0 {
		t.Fatalf("stale index entries: %v", got)
	}
}

// Several appends of one identity in one batch chain their wake times: each
// replaces the one before it, so only the last is left.
func TestWakeChainsWithinABatch(t *testing.T) {
	j := openTest(t, t.TempDir(), testOptions(t))
	entered, release := holdFirstCommit(j, nil)
	d0, c0 := result()
	j.Append("warm", 1, [][]byte{{1}}, 0, d0)
	<-entered
	var chans []chan error
	for i, wake := range []int64{5, 6, 0, 8, 8, 3} {
		done, ch := result()
		j.Append("o", uint64(i+1), [][]byte{{byte(i)}}, wake, done)
		chans = append(chans, ch)
	}
	close(release)
	for _, c := range append(chans, c0) {
		if err := wait(t, c); err != nil {
			t.Fatal(err)
		}
	}
	checkWake(t, j, "o", 3)
}

func TestDueOrderLimitAndBefore(t *testing.T) {
	o := testOptions(t)
	o.Partitions = 16
	j := openTest(t, t.TempDir(), o)
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 3))
	var model []dueEntry
	parts := map[int]bool{}
	for k := range 300 {
		id := fmt.Sprintf("o-%d", k)
		wake := 1 + rng.Int64N(50) // many ties across partitions
		if err := appendWake(t, j, id, 1, wake, []byte("e")); err != nil {
			t.Fatal(err)
		}
		model = append(model, dueEntry{wake: wake, id: id})
		parts[Partition(id, o.Partitions)] = true
	}
	if len(parts) != o.Partitions {
		t.Fatalf("ids cover %d of %d partitions", len(parts), o.Partitions)
	}
	slices.SortFunc(model, compareDue)
	for _, c := range []struct {
		before int64
		limit  int
	}{{50, 1000}, {50, 7}, {25, 1000}, {25, 40}, {1, 1000}, {0, 10}, {50, 0}, {1 << 62, 1}} {
		want := duePrefix(model, c.before, c.limit)
		if got := due(t, j, c.before, c.limit); !slices.Equal(got, want) {
			t.Fatalf("Due(%d, %d):\n got %v\nwant %v", c.before, c.limit, got, want)
		}
	}
	for limit := 1; limit <= 20; limit++ { // cuts through runs of equal wake times
		if got := due(t, j, 10, limit); !slices.Equal(got, duePrefix(model, 10, limit)) {
			t.Fatalf("Due(10, %d): got %v, want %v", limit, got, duePrefix(model, 10, limit))
		}
	}
	calls := 0
	if err := j.Due(50, 100, func(string, int64) bool { calls++; return calls < 3 }); err != nil || calls != 3 {
		t.Fatalf("fn returning false: %d calls, %v", calls, err)
	}
	if err := j.Due(50, dueListMax+1, func(string, int64) bool { return true }); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("limit beyond dueListMax: %v", err)
	}
}

// duePrefix is what Due(before, limit) must list, from a sorted model.
func duePrefix(sorted []dueEntry, before int64, limit int) []string {
	var want []string
	for _, e := range sorted {
		if e.wake <= before && len(want) < limit {
			want = append(want, fmt.Sprintf("%s@%d", e.id, e.wake))
		}
	}
	return want
}

func TestDueAfterClose(t *testing.T) {
	j, err := Open(t.TempDir(), testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Due(1, 1, func(string, int64) bool { return true }); !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v, want ErrClosed", err)
	}
}

// Every stored identity keeps its wake-time key, also with no wake time,
// because a cache miss reads that one key to learn whether the identity
// exists at all (a new order's first append, the common case, then reads
// nothing else). So an identity without a wake time is still known after
// its tracking was evicted, and only Delete makes it new again.
func TestIdentityWithoutWakeIsKnownAfterEviction(t *testing.T) {
	j := openTest(t, t.TempDir(), testOptions(t))
	j.idsMax = 0 // every request misses the cache
	if err := appendWake(t, j, "quiet", 1, 0, []byte("one")); err != nil {
		t.Fatal(err)
	}
	var seqErr *SequenceError
	if err := appendWake(t, j, "quiet", 1, 0, []byte("again")); !errors.As(err, &seqErr) || seqErr.Want != 2 {
		t.Fatalf("a second history at 1 of a stored identity: %v, want a SequenceError wanting 2", err)
	}
	if err := appendWake(t, j, "quiet", 2, 7, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if err := appendWake(t, j, "quiet", 3, 0, []byte("three")); err != nil {
		t.Fatal(err)
	}
	checkWake(t, j, "quiet", 0)
	if err := appendWake(t, j, "quiet", 1, 0, []byte("again")); !errors.As(err, &seqErr) || seqErr.Want != 4 {
		t.Fatalf("after its wake time was cleared: %v, want a SequenceError wanting 4", err)
	}
	if err := deleteSync(t, j, "quiet"); err != nil {
		t.Fatal(err)
	}
	if keys := keysOf(t, j, "quiet"); len(keys) != 0 {
		t.Fatalf("keys left after Delete: %d", len(keys))
	}
	if err := appendWake(t, j, "quiet", 1, 0, []byte("new life")); err != nil {
		t.Fatalf("append at 1 after Delete: %v", err)
	}
}
