package persistence

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAppendReplayRoundTrip(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir, testOptions(t))
	if err := appendSync(t, j, "sku-1", 1, []byte("a"), []byte{}, []byte("c")); err != nil {
		t.Fatal(err)
	}
	if err := appendSync(t, j, "sku-1", 4, []byte("d")); err != nil {
		t.Fatal(err)
	}
	want := []event{{1, "a"}, {2, ""}, {3, "c"}, {4, "d"}}
	if got := replayAll(t, j, "sku-1", 0); !slices.Equal(got, want) {
		t.Fatalf("replay: got %v, want %v", got, want)
	}
	if got := replayAll(t, j, "sku-1", 2); !slices.Equal(got, want[2:]) {
		t.Fatalf("replay after 2: got %v, want %v", got, want[2:])
	}
	if got := replayAll(t, j, "other", 0); len(got) != 0 {
		t.Fatalf("unknown id replayed %v", got)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j2 := openTest(t, dir, testOptions(t))
	if got := replayAll(t, j2, "sku-1", 0); !slices.Equal(got, want) {
		t.Fatalf("after reopen: got %v, want %v", got, want)
	}
	if last, err := j2.LastSequence("sku-1"); err != nil || last != 4 {
		t.Fatalf("last sequence: %d, %v; want 4", last, err)
	}
}

func TestReplayStopsAtCallbackError(t *testing.T) {
	j := openTest(t, t.TempDir(), testOptions(t))
	if err := appendSync(t, j, "x", 1, []byte("1"), []byte("2"), []byte("3")); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	calls := 0
	err := j.Replay("x", 0, func(uint64, []byte) error {
		calls++
		return stop
	})
	if err != stop || calls != 1 {
		t.Fatalf("got %v after %d calls, want the callback's error after 1", err, calls)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t)
	o.RetainEvents = true
	j := openTest(t, dir, o)
	if seq, state, err := j.LoadSnapshot("s"); seq != 0 || state != nil || err != nil {
		t.Fatalf("no snapshot: got %d %q %v", seq, state, err)
	}
	for i := uint64(1); i <= 5; i++ {
		if err := appendSync(t, j, "s", i, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := snapshotSync(t, j, "s", 3, []byte("three")); err != nil {
		t.Fatal(err)
	}
	if err := snapshotSync(t, j, "s", 5, []byte("five")); err != nil {
		t.Fatal(err)
	}
	if err := snapshotSync(t, j, "s", 4, []byte("older")); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("older snapshot: got %v, want ErrInvalidRequest", err)
	}
	if err := snapshotSync(t, j, "s", 6, []byte("future")); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("snapshot beyond durable: got %v, want ErrInvalidRequest", err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j2 := openTest(t, dir, o)
	if seq, state, err := j2.LoadSnapshot("s"); seq != 5 || string(state) != "five" || err != nil {
		t.Fatalf("got %d %q %v, want 5 five", seq, state, err)
	}
}

func TestManyIdentitiesConcurrently(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir, testOptions(t))
	const workers, idsPer, appends = 8, 10, 30
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for a := range appends {
				for k := range idsPer {
					id := fmt.Sprintf("w%d/id%d", w, k) // '/' in ids on purpose
					events := [][]byte{fmt.Appendf(nil, "%s:%d", id, 2*a+1), fmt.Appendf(nil, "%s:%d", id, 2*a+2)}
					if err := appendSync(t, j, id, uint64(2*a+1), events...); err != nil {
						t.Errorf("append %s: %v", id, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j2 := openTest(t, dir, testOptions(t))
	for w := range workers {
		for k := range idsPer {
			id := fmt.Sprintf("w%d/id%d", w, k)
			got := replayAll(t, j2, id, 0)
			if len(got) != 2*appends {
				t.Fatalf("%s: %d events, want %d", id, len(got), 2*appends)
			}
			for i, e := range got {
				if e.seq != uint64(i+1) || e.data != fmt.Sprintf("%s:%d", id, i+1) {
					t.Fatalf("%s: event %d is %v", id, i, e)
				}
			}
		}
	}
}

func TestIDsCannotBeConfused(t *testing.T) {
	j := openTest(t, t.TempDir(), testOptions(t))
	ids := []string{"a", "a/b", "a/", "a\x00", "ab", strings.Repeat("z", idBytesMax)}
	for _, id := range ids {
		if err := appendSync(t, j, id, 1, []byte(id)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		if got := replayAll(t, j, id, 0); !slices.Equal(got, []event{{1, id}}) {
			t.Fatalf("%q: got %v", id, got)
		}
	}
}

func TestSequenceConflictIsRefused(t *testing.T) {
	j := openTest(t, t.TempDir(), testOptions(t))
	if err := appendSync(t, j, "x", 1, []byte("1")); err != nil {
		t.Fatal(err)
	}
	for _, first := range []uint64{1, 3} {
		err := appendSync(t, j, "x", first, []byte("dup"))
		var se *SequenceError
		if !errors.As(err, &se) || se.Want != 2 || se.Got != first {
			t.Fatalf("append at %d: got %v, want a SequenceError wanting 2", first, err)
		}
	}
	if got := replayAll(t, j, "x", 0); !slices.Equal(got, []event{{1, "1"}}) {
		t.Fatalf("a refused append wrote something: %v", got)
	}
	// A second activation racing the first: the pending append counts.
	done, ch := result()
	j.Append("x", 2, [][]byte{[]byte("2")}, 0, done)
	if err := appendSync(t, j, "x", 2, []byte("2'")); err == nil {
		t.Fatal("second append at a pending sequence was accepted")
	}
	if err := wait(t, ch); err != nil {
		t.Fatal(err)
	}
}

func TestInvalidRequestsAreRefused(t *testing.T) {
	j := openTest(t, t.TempDir(), testOptions(t))
	cases := map[string]func(func(error)){
		"empty id":    func(d func(error)) { j.Append("", 1, [][]byte{{1}}, 0, d) },
		"long id":     func(d func(error)) { j.Append(strings.Repeat("x", idBytesMax+1), 1, [][]byte{{1}}, 0, d) },
		"many events": func(d func(error)) { j.Append("x", 1, make([][]byte, j.AppendEventsMax()+1), 0, d) },
		"past wake":   func(d func(error)) { j.Append("x", 1, [][]byte{{1}}, -1, d) },
		"sequence 0":  func(d func(error)) { j.Append("x", 0, [][]byte{{1}}, 0, d) },
		"big event":   func(d func(error)) { j.Append("x", 1, [][]byte{make([]byte, eventBytesMax+1)}, 0, d) },
		"snapshot 0":  func(d func(error)) { j.SaveSnapshot("x", 0, nil, d) },
		"big state":   func(d func(error)) { j.SaveSnapshot("x", 1, make([]byte, snapshotBytesMax+1), d) },
		"not durable": func(d func(error)) { j.SaveSnapshot("x", 1, nil, d) },
	}
	for name, submit := range cases {
		done, ch := result()
		submit(done)
		if err := wait(t, ch); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: got %v, want ErrInvalidRequest", name, err)
		}
	}
}

// A batch refused before anything was staged (here: the volume below its
// reserve) sets the identity back to what is durable and fails what was
// queued behind it, without stopping the journal.
func TestRefusedBatchRollsBackPendingSequences(t *testing.T) {
	j := openTest(t, t.TempDir(), testOptions(t))
	if err := appendSync(t, j, "x", 1, []byte("1")); err != nil {
		t.Fatal(err)
	}
	entered, release := holdFirstRefusal(j)
	d1, c1 := result()
	j.Append("x", 2, [][]byte{[]byte("2"), []byte("3")}, 0, d1)
	<-entered // the writer is checking 2..3; queue more behind it
	d2, c2 := result()
	j.Append("x", 4, [][]byte{[]byte("4")}, 0, d2)
	d3, c3 := result()
	j.Append("y", 1, [][]byte{[]byte("y1")}, 0, d3)
	close(release)
	if err := wait(t, c1); !errors.Is(err, ErrStorageFull) {
		t.Fatalf("refused batch: got %v, want ErrStorageFull", err)
	}
	if err := wait(t, c2); !errors.Is(err, ErrEarlierAppendFailed) {
		t.Fatalf("append queued behind the refusal: got %v", err)
	}
	if err := wait(t, c3); err != nil {
		t.Fatalf("other identity: %v", err)
	}
	if last, _ := j.LastSequence("x"); last != 1 {
		t.Fatalf("last sequence %d after the refusal, want 1", last)
	}
	// The actor reloads and continues from what is durable.
	if err := appendSync(t, j, "x", 2, []byte("2b")); err != nil {
		t.Fatal(err)
	}
	if got := replayAll(t, j, "x", 0); !slices.Equal(got, []event{{1, "1"}, {2, "2b"}}) {
		t.Fatalf("got %v", got)
	}
}

func TestSecondOpenerGetsClearError(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir, testOptions(t))
	_, err := Open(dir, testOptions(t))
	if !errors.Is(err, ErrDirectoryLocked) {
		t.Fatalf("got %v, want ErrDirectoryLocked", err)
	}
	if !strings.Contains(err.Error(), "another orderd is using this data directory") {
		t.Fatalf("unclear error: %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := (Options{}).Validate(); err != nil {
		t.Fatalf("zero options (defaults): %v", err)
	}
	if err := DefaultOptions().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	bad := map[string]func(*Options){
		"batch entries":  func(o *Options) { o.BatchEntries = batchEntriesMax + 1 },
		"batch bytes":    func(o *Options) { o.BatchBytes = 8 << 20 },
		"queue":          func(o *Options) { o.QueueEntries = -1 },
		"flush wait":     func(o *Options) { o.FlushWait = time.Second },
		"memtable":       func(o *Options) { o.MemTableBytes = 4 << 20 },
		"block cache":    func(o *Options) { o.BlockCacheBytes = -1 },
		"value log":      func(o *Options) { o.ValueLogFileBytes = 1 << 10 },
		"threshold":      func(o *Options) { o.ValueThresholdBytes = 2 << 20 },
		"compact keys":   func(o *Options) { o.CompactKeys = -5 },
		"gc interval":    func(o *Options) { o.ValueLogGCInterval = -time.Second },
		"index cache":    func(o *Options) { o.IndexCacheBytes = -1 },
		"compact period": func(o *Options) { o.CompactInterval = -time.Second },
	}
	for name, mutate := range bad {
		o := DefaultOptions()
		mutate(&o)
		err := o.Validate()
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if _, err := Open(t.TempDir(), o); err == nil {
			t.Errorf("%s: Open accepted it", name)
		}
	}
}

// A kill right after Badger creates a memtable file leaves it empty; the
// crash test found that the next Open then fails (badger issue 2207).
func TestOpenSurvivesEmptyMemtableFile(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir, testOptions(t))
	if err := appendSync(t, j, "x", 1, []byte("kept")); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "00099.mem"), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	j2 := openTest(t, dir, testOptions(t))
	if got := replayAll(t, j2, "x", 0); !slices.Equal(got, []event{{1, "kept"}}) {
		t.Fatalf("got %v", got)
	}
}

func TestEvictedIdentitiesReloadTheirSequences(t *testing.T) {
	j := openTest(t, t.TempDir(), testOptions(t))
	j.mu.Lock()
	j.idsMax = 2
	j.mu.Unlock()
	const ids = 10
	for round := range 3 {
		for k := range ids {
			id := fmt.Sprintf("order-%d", k)
			if err := appendSync(t, j, id, uint64(round+1), fmt.Appendf(nil, "%d", round)); err != nil {
				t.Fatalf("%s round %d: %v", id, round, err)
			}
		}
	}
	j.mu.Lock()
	tracked := len(j.ids)
	j.mu.Unlock()
	if tracked > 3 {
		t.Fatalf("%d identities tracked, want at most 3", tracked)
	}
	var se *SequenceError
	if err := appendSync(t, j, "order-0", 2, []byte("dup")); !errors.As(err, &se) || se.Want != 4 {
		t.Fatalf("stale append to an evicted identity: got %v", err)
	}
	if last, err := j.LastSequence("order-5"); last != 3 || err != nil {
		t.Fatalf("last %d, %v", last, err)
	}
}

// The identities dropped beyond the cache's bound are the least recently
// used ones, not the one that just wrote: an order's second append follows
// its first by milliseconds, and must not pay a read of Badger for it.
func TestEvictionDropsLeastRecentlyUsed(t *testing.T) {
	j := openTest(t, t.TempDir(), testOptions(t))
	j.idsMax = 2
	for _, id := range []string{"a", "b", "c"} {
		if err := appendSync(t, j, id, 1, []byte("1")); err != nil {
			t.Fatal(err)
		}
	}
	j.mu.Lock()
	_, a := j.ids["a"]
	_, c := j.ids["c"]
	evicted := j.evictions
	j.mu.Unlock()
	if a || !c || evicted != 1 {
		t.Fatalf("after three identities with room for two: a tracked %v, c tracked %v, %d evictions; want a dropped, c kept, 1", a, c, evicted)
	}
	for _, id := range []string{"c", "b", "c"} {
		j.mu.Lock()
		seq := j.ids[id].pending + 1
		j.mu.Unlock()
		if err := appendSync(t, j, id, seq, []byte("more")); err != nil {
			t.Fatal(err)
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.evictions != 1 {
		t.Fatalf("appends of tracked identities evicted: %d evictions", j.evictions)
	}
}
