package persistence

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func appendWithSync(t testing.TB, j *Journal, id string, first uint64, events [][]byte, born ...NewIdentity) error {
	t.Helper()
	done, ch := result()
	j.AppendWith(id, first, events, 0, born, done)
	return wait(t, ch)
}

func bytesOf(ss ...string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

// An append and the identities it brings to life are written together:
// each replays its events, the new ones from sequence 1, with their wake
// times listed by Due, and the new identities go on like any other.
func TestAppendWithWritesNewIdentitiesTogether(t *testing.T) {
	j := openTest(t, t.TempDir(), testOptions(t))
	if err := appendSync(t, j, "sku", 1, []byte("s1")); err != nil {
		t.Fatal(err)
	}
	err := appendWithSync(t, j, "sku", 2, bytesOf("s2"),
		NewIdentity{ID: "order-a", Events: bytesOf("a1", "a2", "a3"), Wake: 500},
		NewIdentity{ID: "order-b", Events: bytesOf("b1")})
	if err != nil {
		t.Fatal(err)
	}
	if got := replayAll(t, j, "sku", 0); !slices.Equal(got, []event{{1, "s1"}, {2, "s2"}}) {
		t.Fatalf("sku: %v", got)
	}
	if got := replayAll(t, j, "order-a", 0); !slices.Equal(got, []event{{1, "a1"}, {2, "a2"}, {3, "a3"}}) {
		t.Fatalf("order-a: %v", got)
	}
	if got := dueOf(t, j); !slices.Equal(got, []dueEntry{{wake: 500, id: "order-a"}}) {
		t.Fatalf("due: %v", got)
	}
	// The journal tracks what it wrote: the next append continues at 4
	// (and 2 for b), and starting again at 1 is refused.
	if err := appendSync(t, j, "order-a", 4, []byte("a4")); err != nil {
		t.Fatal(err)
	}
	var seqErr *SequenceError
	if err := appendSync(t, j, "order-b", 1, []byte("again")); !errors.As(err, &seqErr) {
		t.Fatalf("append at 1 over a new identity's events: %v, want a SequenceError", err)
	}
	if got, _ := j.LastSequence("order-b"); got != 1 {
		t.Fatalf("order-b last sequence %d, want 1", got)
	}
}

// A new identity the journal knows to have events, one named twice or
// after the appending identity, too many events altogether, and one of a
// partition not held: the whole append is refused and nothing is written.
func TestAppendWithRefusesWhatIsNotNew(t *testing.T) {
	j := openTest(t, t.TempDir(), testOptions(t))
	if err := appendSync(t, j, "known", 1, []byte("k1")); err != nil {
		t.Fatal(err)
	}
	many := make([][]byte, j.AppendEventsMax())
	for i := range many {
		many[i] = []byte("x")
	}
	for name, born := range map[string][]NewIdentity{
		"known identity":  {{ID: "known", Events: bytesOf("k2")}},
		"named twice":     {{ID: "n", Events: bytesOf("1")}, {ID: "n", Events: bytesOf("2")}},
		"the appender":    {{ID: "sku", Events: bytesOf("1")}},
		"no events":       {{ID: "empty"}},
		"too many events": {{ID: "big", Events: many}},
		"empty id":        {{ID: "", Events: bytesOf("1")}},
	} {
		if err := appendWithSync(t, j, "sku", 1, bytesOf("s1"), born...); !errors.Is(err, ErrInvalidRequest) {
			t.Fatalf("%s: got %v, want ErrInvalidRequest", name, err)
		}
		for _, id := range []string{"sku", "n", "empty", "big"} {
			if last, err := j.LastSequence(id); err != nil || last != 0 {
				t.Fatalf("%s: %q has last sequence %d (%v) after a refused append", name, id, last, err)
			}
		}
	}
	if err := appendSync(t, j, "sku", 1, []byte("s1")); err != nil {
		t.Fatalf("sku after the refusals: %v", err)
	}

	f := openTest(t, t.TempDir(), fencedOptions(t))
	parts := f.Partitions()
	held, unheld := idsIn(5, parts, 1, "sku")[0], idsIn(6, parts, 1, "order")[0]
	if err := f.Hold(5, 1); err != nil {
		t.Fatal(err)
	}
	err := appendWithSync(t, f, held, 1, bytesOf("s1"), NewIdentity{ID: unheld, Events: bytesOf("o1")})
	if !errors.Is(err, ErrNotHeld) {
		t.Fatalf("new identity in an unheld partition: %v, want ErrNotHeld", err)
	}
	if last, _ := f.LastSequence(held); last != 0 {
		t.Fatalf("appender written (last %d) although its new identity was refused", last)
	}
}

// A batch refused before anything is staged fails the append and its new
// identities alike: neither is written, and both start again from what is
// durable.
func TestAppendWithFailsWhole(t *testing.T) {
	j := openTest(t, t.TempDir(), testOptions(t))
	entered, release := holdFirstRefusal(j)
	d1, c1 := result()
	j.AppendWith("sku", 1, bytesOf("s1"), 0, []NewIdentity{{ID: "order", Events: bytesOf("o1", "o2"), Wake: 9}}, d1)
	<-entered
	close(release)
	if err := wait(t, c1); !errors.Is(err, ErrStorageFull) {
		t.Fatalf("refused batch: %v, want ErrStorageFull", err)
	}
	for _, id := range []string{"sku", "order"} {
		if last, _ := j.LastSequence(id); last != 0 {
			t.Fatalf("%s: last sequence %d after the refusal, want 0", id, last)
		}
	}
	if got := dueOf(t, j); len(got) != 0 {
		t.Fatalf("due after the refusal: %v", got)
	}
	// Both identities are empty again: the order may be born again, and
	// may as well be appended to from 1 directly.
	if err := appendWithSync(t, j, "sku", 1, bytesOf("s1"), NewIdentity{ID: "order", Events: bytesOf("o1")}); err != nil {
		t.Fatal(err)
	}
	if got := replayAll(t, j, "order", 0); !slices.Equal(got, []event{{1, "o1"}}) {
		t.Fatalf("order: %v", got)
	}
}

// Release of a partition refuses a queued append that brings an identity
// of that partition to life, even when the appender's partition stays.
func TestReleaseRefusesQueuedBirthsOfItsPartition(t *testing.T) {
	j := openTest(t, t.TempDir(), fencedOptions(t))
	parts := j.Partitions()
	sku, order := idsIn(1, parts, 1, "sku")[0], idsIn(2, parts, 1, "order")[0]
	for _, p := range []int{1, 2} {
		if err := j.Hold(p, 1); err != nil {
			t.Fatal(err)
		}
	}
	entered, release := holdFirstRefusal(j)
	d0, c0 := result()
	j.Append(sku, 1, bytesOf("s1"), 0, d0) // the writer holds this one
	<-entered
	d1, c1 := result()
	j.AppendWith(sku, 2, bytesOf("s2"), 0, []NewIdentity{{ID: order, Events: bytesOf("o1")}}, d1)
	released := make(chan error, 1)
	go func() { released <- j.Release(2) }()
	// Release takes the queued append out before it waits for the writer.
	deadline := time.Now().Add(waitMax)
	for queued := 1; queued > 0; {
		if time.Now().After(deadline) {
			t.Fatal("Release did not take the queued append")
		}
		time.Sleep(time.Millisecond)
		j.mu.Lock()
		queued = len(j.queue)
		j.mu.Unlock()
	}
	close(release)
	if err := wait(t, c1); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("queued birth in a released partition: %v, want ErrNotHeld", err)
	}
	if err := wait(t, c0); !errors.Is(err, ErrStorageFull) {
		t.Fatalf("held write: %v", err)
	}
	if err := wait(t, released); err != nil {
		t.Fatal(err)
	}
}
