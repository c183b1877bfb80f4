package persistence

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestAppendsCompleteInSubmissionOrder(t *testing.T) {
	for _, wait := range []time.Duration{0, 2 * time.Millisecond} {
		t.Run(fmt.Sprintf("flush-wait=%v", wait), func(t *testing.T) {
			o := testOptions(t)
			o.FlushWait = wait
			testSubmissionOrder(t, openTest(t, t.TempDir(), o))
		})
	}
}

func testSubmissionOrder(t *testing.T, j *Journal) {
	const n = 2000
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	wg.Add(n)
	for i := range n {
		j.Append("hot", uint64(i+1), [][]byte{fmt.Appendf(nil, "e%d", i+1)}, 0, func(err error) {
			if err != nil {
				t.Errorf("append %d: %v", i+1, err)
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			wg.Done()
		})
	}
	wg.Wait()
	if !slices.IsSorted(order) {
		t.Fatal("completions out of submission order")
	}
	got := replayAll(t, j, "hot", 0)
	if len(got) != n || got[n-1] != (event{n, fmt.Sprintf("e%d", n)}) {
		t.Fatalf("replayed %d events, last %v", len(got), got[len(got)-1])
	}
	if s := j.Stats(); s.Flushes >= n || s.Entries != n {
		t.Fatalf("no group commit: %+v", s)
	}
}

func TestCloseFlushesQueueAndRefusesLater(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	errs := make(chan error, n)
	for i := range n {
		j.Append("x", uint64(i+1), [][]byte{{byte(i)}}, 0, func(err error) { errs <- err })
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("append queued before Close: %v", err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := appendSync(t, j, "x", n+1, []byte("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: got %v", err)
	}
	if err := snapshotSync(t, j, "x", 1, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("snapshot after close: got %v", err)
	}
	if err := j.Replay("x", 0, func(uint64, []byte) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("replay after close: got %v", err)
	}
	j2 := openTest(t, dir, testOptions(t))
	if last, err := j2.LastSequence("x"); last != n || err != nil {
		t.Fatalf("after reopen: last %d, %v; want %d", last, err, n)
	}
}

func TestFullQueueBlocksSubmitterUntilSpace(t *testing.T) {
	o := testOptions(t)
	o.QueueEntries = 1
	j := openTest(t, t.TempDir(), o)
	entered, release := holdFirstCommit(j, nil)
	d1, c1 := result()
	j.Append("a", 1, [][]byte{{1}}, 0, d1)
	<-entered
	d2, c2 := result()
	j.Append("b", 1, [][]byte{{1}}, 0, d2) // fills the queue
	blocked := notifyBlocked(j)
	returned := make(chan struct{})
	d3, c3 := result()
	go func() {
		j.Append("c", 1, [][]byte{{1}}, 0, d3)
		close(returned)
	}()
	awaitBlocked(t, blocked)
	select {
	case <-returned:
		t.Fatal("Append returned while the queue was full")
	default:
	}
	close(release)
	for _, c := range []chan error{c1, c2, c3} {
		if err := wait(t, c); err != nil {
			t.Fatal(err)
		}
	}
	<-returned
}

// notifyBlocked reports on the returned channel when a submitter starts
// waiting for queue space. The hook runs under the journal's lock, so it
// must not block.
func notifyBlocked(j *Journal) chan struct{} {
	blocked := make(chan struct{}, 1)
	j.mu.Lock()
	j.onBlocked = func() {
		select {
		case blocked <- struct{}{}:
		default:
		}
	}
	j.mu.Unlock()
	return blocked
}

func awaitBlocked(t *testing.T, blocked chan struct{}) {
	t.Helper()
	select {
	case <-blocked:
	case <-time.After(waitMax):
		t.Fatal("the submitter never blocked on the full queue")
	}
}

func TestCloseReleasesBlockedSubmitter(t *testing.T) {
	o := testOptions(t)
	o.QueueEntries = 1
	j, err := Open(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	entered, release := holdFirstCommit(j, nil)
	blocked := notifyBlocked(j)
	d1, c1 := result()
	j.Append("a", 1, [][]byte{{1}}, 0, d1)
	<-entered
	d2, c2 := result()
	j.Append("b", 1, [][]byte{{1}}, 0, d2) // fills the queue
	d3, c3 := result()
	go j.Append("c", 1, [][]byte{{1}}, 0, d3)
	awaitBlocked(t, blocked)
	select {
	case err := <-c3:
		t.Fatalf("the blocked submitter finished before Close: %v", err)
	default:
	}
	closed := make(chan error, 1)
	go func() { closed <- j.Close() }()
	if err := wait(t, c3); !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked submitter: got %v, want ErrClosed", err)
	}
	close(release)
	for _, c := range []chan error{c1, c2, closed} {
		if err := wait(t, c); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOversizedBatchIsSplitAcrossTransactions(t *testing.T) {
	o := testOptions(t)
	o.BatchEntries = batchEntriesMax
	o.BatchBytes = int(o.MemTableBytes * txnSharePercentMax / 100)
	j := openTest(t, t.TempDir(), o)
	entered, release := holdFirstCommit(j, nil)
	d0, c0 := result()
	j.Append("warm", 1, [][]byte{{1}}, 0, d0)
	<-entered // the writer is held: what follows lands in one batch
	// 16 x 1024 tiny events exceed Badger's entry count per transaction
	// (15% of the memtable / skiplist node size, about 13 k for 8 MiB).
	const appends, per = 16, 1024
	chans := make([]chan error, appends)
	for a := range appends {
		events := make([][]byte, per)
		for i := range events {
			events[i] = []byte{byte(a), byte(i)}
		}
		var done func(error)
		done, chans[a] = result()
		j.Append("big", uint64(a*per+1), events, 0, done)
	}
	before := j.Stats().Flushes
	close(release)
	for _, c := range append([]chan error{c0}, chans...) {
		if err := wait(t, c); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(replayAll(t, j, "big", 0)); got != appends*per {
		t.Fatalf("replayed %d events, want %d", got, appends*per)
	}
	if s := j.Stats(); s.Flushes-before < 3 || s.FlushFailures != 0 {
		t.Fatalf("want the held batch split into at least two transactions: %+v", s)
	}
}

// A batch too big for one transaction is split between requests, never
// inside one: when the second transaction fails, every append in it is
// absent and every append of the first is whole.
func TestSplitBatchNeverSplitsARequest(t *testing.T) {
	o := testOptions(t)
	o.BatchEntries = batchEntriesMax
	o.BatchBytes = int(o.MemTableBytes * txnSharePercentMax / 100)
	j := openTest(t, t.TempDir(), o)
	entered, release := make(chan struct{}), make(chan struct{})
	boom := errors.New("disk on fire")
	commits := 0 // only the writer goroutine touches it
	j.beforeCommit = func() error {
		commits++
		switch commits {
		case 1:
			close(entered)
			<-release
		case 3:
			return boom
		}
		return nil
	}
	d0, c0 := result()
	j.Append("warm", 1, [][]byte{{1}}, 0, d0)
	<-entered
	const appends, per = 16, 1000 // several 1000-event appends per transaction
	chans := make([]chan error, appends)
	for a := range appends {
		events := make([][]byte, per)
		for i := range events {
			events[i] = []byte{byte(a), byte(i)}
		}
		var done func(error)
		done, chans[a] = result()
		j.Append(fmt.Sprintf("big-%d", a), 1, events, 0, done)
	}
	close(release)
	if err := wait(t, c0); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for a, c := range chans {
		err := wait(t, c)
		stored, _ := storedEvents(t, j, fmt.Sprintf("big-%d", a))
		switch {
		case err == nil && stored == per:
		case errors.Is(err, boom) && stored == 0:
			failed++
		default:
			t.Fatalf("append %d: %v with %d of %d events stored", a, err, stored, per)
		}
	}
	if failed == 0 || failed == appends {
		t.Fatalf("%d of %d appends failed: the batch was not split where the test needs it", failed, appends)
	}
}

// Close racing with appends and reads must fail them cleanly, never let a
// read touch a closed Badger.
func TestCloseDuringLoad(t *testing.T) {
	j, err := Open(t.TempDir(), testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			id := fmt.Sprintf("load-%d", w)
			for seq := uint64(1); ; seq++ {
				err := appendSync(t, j, id, seq, []byte("x"))
				if err == nil {
					err = j.Replay(id, seq-1, func(uint64, []byte) error { return nil })
				}
				if err == nil {
					_, err = j.LastSequence(fmt.Sprintf("new-%d-%d", w, seq))
				}
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("%s: %v", id, err)
					return
				}
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

func TestOnFlushSeesEveryCommit(t *testing.T) {
	o := testOptions(t)
	var mu sync.Mutex
	var flushes, requests, entries int
	o.OnFlush = func(r, e, _ int, d time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err == nil && d > 0 {
			flushes, requests, entries = flushes+1, requests+r, entries+e
		}
	}
	j := openTest(t, t.TempDir(), o)
	for i := uint64(1); i <= 20; i++ {
		if err := appendSync(t, j, "f", 2*i-1, []byte("a"), []byte("b")); err != nil {
			t.Fatal(err)
		}
	}
	if err := snapshotSync(t, j, "f", 40, []byte("s")); err != nil {
		t.Fatal(err)
	}
	s := j.Stats()
	mu.Lock()
	defer mu.Unlock()
	if uint64(flushes) != s.Flushes || requests != 21 || entries != 41 || s.Entries != 41 {
		t.Fatalf("hook saw %d flushes, %d requests, %d entries; stats %+v", flushes, requests, entries, s)
	}
}
