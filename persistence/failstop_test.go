package persistence

import (
	"errors"
	"slices"
	"sync"
	"testing"
)

// fatalRecorder is an Options.OnFatal that remembers every call.
type fatalRecorder struct {
	mu    sync.Mutex
	calls []error
}

func (f *fatalRecorder) onFatal(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, err)
}

func (f *fatalRecorder) get() []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// After a synced commit fails, the state on disk is unknown: every request
// in flight, queued or submitted later fails with ErrJournalFailed, reads
// are refused, OnFatal is told once, and the reopened directory holds
// exactly what was acknowledged.
func TestFailedCommitStopsTheJournal(t *testing.T) {
	dir := t.TempDir()
	var fatal fatalRecorder
	o := testOptions(t)
	o.OnFatal = fatal.onFatal
	j := openTest(t, dir, o)
	if err := appendSync(t, j, "x", 1, []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := appendWake(t, j, "y", 1, 7, []byte("y1")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("fsync: input/output error")
	entered, release := holdFirstCommit(j, boom)
	d1, c1 := result()
	j.Append("x", 2, [][]byte{[]byte("2")}, 0, d1)
	<-entered // the writer is committing x@2; queue more behind it
	d2, c2 := result()
	j.Append("x", 3, [][]byte{[]byte("3")}, 0, d2)
	d3, c3 := result()
	j.Append("z", 1, [][]byte{[]byte("z1")}, 0, d3)
	close(release)
	for name, c := range map[string]chan error{"x@2": c1, "x@3": c2, "z@1": c3} {
		if err := wait(t, c); !errors.Is(err, ErrJournalFailed) || !errors.Is(err, boom) {
			t.Errorf("%s: got %v, want ErrJournalFailed wrapping the cause", name, err)
		}
	}

	// Nothing later succeeds, whatever its identity or kind.
	if err := appendSync(t, j, "x", 2, []byte("again")); !errors.Is(err, ErrJournalFailed) {
		t.Errorf("append after the failure: %v", err)
	}
	if err := appendSync(t, j, "fresh", 1, []byte("f")); !errors.Is(err, ErrJournalFailed) {
		t.Errorf("append of a new identity: %v", err)
	}
	if err := snapshotSync(t, j, "y", 1, []byte("state")); !errors.Is(err, ErrJournalFailed) {
		t.Errorf("snapshot: %v", err)
	}
	if err := deleteSync(t, j, "y"); !errors.Is(err, ErrJournalFailed) {
		t.Errorf("delete: %v", err)
	}
	if err := j.Replay("x", 0, func(uint64, []byte) error { return nil }); !errors.Is(err, ErrJournalFailed) {
		t.Errorf("replay: %v", err)
	}
	if _, _, err := j.LoadSnapshot("x"); !errors.Is(err, ErrJournalFailed) {
		t.Errorf("load snapshot: %v", err)
	}
	if calls := fatal.get(); len(calls) != 1 || !errors.Is(calls[0], ErrJournalFailed) || !errors.Is(calls[0], boom) {
		t.Fatalf("OnFatal calls: %v, want one with the cause", calls)
	}
	if s := j.Stats(); s.FlushFailures != 1 {
		t.Errorf("flush failures %d, want 1", s.FlushFailures)
	}
	if err := j.Close(); err != nil {
		t.Fatalf("close after the failure: %v", err)
	}
	if calls := fatal.get(); len(calls) != 1 {
		t.Fatalf("OnFatal called %d times, want once", len(calls))
	}

	j = openTest(t, dir, testOptions(t))
	if got := replayAll(t, j, "x", 0); !slices.Equal(got, []event{{1, "1"}}) {
		t.Fatalf("x after reopening: %v, want only the acknowledged event", got)
	}
	if got := replayAll(t, j, "z", 0); len(got) != 0 {
		t.Fatalf("z after reopening: %v, want nothing", got)
	}
	checkWake(t, j, "y", 7)
	if err := appendSync(t, j, "x", 2, []byte("2")); err != nil {
		t.Fatalf("the reopened journal continues x: %v", err)
	}
}

// A submitter blocked on a full queue is released by the failure, not left
// waiting for a writer that will write nothing more.
func TestFailedCommitReleasesBlockedSubmitters(t *testing.T) {
	o := testOptions(t)
	o.QueueEntries = 1
	j := openTest(t, t.TempDir(), o)
	boom := errors.New("disk on fire")
	entered, release := holdFirstCommit(j, boom)
	blocked := make(chan struct{})
	j.onBlocked = func() { close(blocked) }
	d1, c1 := result()
	j.Append("a", 1, [][]byte{[]byte("1")}, 0, d1)
	<-entered
	d2, c2 := result()
	j.Append("b", 1, [][]byte{[]byte("1")}, 0, d2) // fills the queue
	d3, c3 := result()
	go j.Append("c", 1, [][]byte{[]byte("1")}, 0, d3)
	<-blocked
	close(release)
	for _, c := range []chan error{c1, c2, c3} {
		if err := wait(t, c); !errors.Is(err, ErrJournalFailed) {
			t.Errorf("got %v, want ErrJournalFailed", err)
		}
	}
}

// Refusals that come before anything is staged are not commit failures:
// the journal goes on and OnFatal is never called.
func TestRefusalsDoNotStopTheJournal(t *testing.T) {
	var fatal fatalRecorder
	o := testOptions(t)
	o.OnFatal = fatal.onFatal
	j := openTest(t, t.TempDir(), o)
	if err := appendSync(t, j, "x", 1, []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := appendSync(t, j, "", 1, []byte("1")); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("empty id: %v", err)
	}
	var seqErr *SequenceError
	if err := appendSync(t, j, "x", 5, []byte("5")); !errors.As(err, &seqErr) {
		t.Fatalf("sequence gap: %v", err)
	}
	entered, release := holdFirstRefusal(j)
	done, c := result()
	j.Append("x", 2, [][]byte{[]byte("2")}, 0, done)
	<-entered
	close(release)
	if err := wait(t, c); !errors.Is(err, ErrStorageFull) {
		t.Fatalf("full volume: %v", err)
	}
	if err := appendSync(t, j, "x", 2, []byte("2")); err != nil {
		t.Fatalf("after the refusals: %v", err)
	}
	if calls := fatal.get(); len(calls) != 0 {
		t.Fatalf("OnFatal called for a refusal: %v", calls)
	}
}
