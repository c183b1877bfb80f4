package persistence

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// fold is the "state" of the property test: an event count and a hash chain
// over every event, so that a lost, repeated or reordered event changes it.
// wake is the identity's wake time, which is not part of snapshots.
type fold struct {
	n    uint64
	hash [32]byte
	wake int64
}

func (f fold) apply(event []byte) fold {
	f.n++
	f.hash = sha256.Sum256(append(f.hash[:], event...))
	return f
}

func (f fold) encode() []byte {
	return append(binary.BigEndian.AppendUint64(nil, f.n), f.hash[:]...)
}

func decodeFold(b []byte) (fold, error) {
	var f fold
	if len(b) != 8+32 {
		return f, fmt.Errorf("fold of %d bytes", len(b))
	}
	f.n = binary.BigEndian.Uint64(b)
	copy(f.hash[:], b[8:])
	return f, nil
}

// TestRecoveryEqualsFullHistory appends (with wake times), snapshots and
// deletes at random, reopening now and then with compaction running, and
// checks that every identity's snapshot plus tail folds to the same state
// as all its events since its last Delete, and that its wake time is the
// last one appended.
func TestRecoveryEqualsFullHistory(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	dir := t.TempDir()
	o := testOptions(t)
	o.CompactInterval = 5 * time.Millisecond
	o.CompactKeys = 13
	o.ValueLogGCInterval = 20 * time.Millisecond // GC runs alongside, under -race
	j := openTest(t, dir, o)
	const ids, steps = 12, 1500
	model := make([]fold, ids)
	for step := range steps {
		k := rng.IntN(ids)
		id := fmt.Sprintf("p/%d", k)
		switch r := rng.IntN(100); {
		case r < 73:
			events := make([][]byte, rng.IntN(8)) // sometimes none: a wake-only append
			for i := range events {
				events[i] = fmt.Appendf(nil, "%d:%d:%x", k, step, rng.Uint64())
			}
			wake := int64(0)
			if rng.IntN(3) > 0 {
				wake = 1 + rng.Int64N(1000)
			}
			if err := appendWake(t, j, id, model[k].n+1, wake, events...); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			for _, e := range events {
				model[k] = model[k].apply(e)
			}
			model[k].wake = wake
		case r < 75:
			if err := deleteSync(t, j, id); err != nil {
				t.Fatalf("step %d: delete: %v", step, err)
			}
			model[k] = fold{}
		case r < 90:
			if model[k].n == 0 {
				continue
			}
			if err := snapshotSync(t, j, id, model[k].n, model[k].encode()); err != nil {
				t.Fatalf("step %d: snapshot: %v", step, err)
			}
		case r < 97:
			err := appendSync(t, j, id, model[k].n+2+uint64(rng.IntN(3)), []byte("stray"))
			var se *SequenceError
			if !errors.As(err, &se) {
				t.Fatalf("step %d: out-of-sequence append: %v", step, err)
			}
		default:
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			j = openTest(t, dir, o)
			checkFolds(t, j, model)
		}
	}
	// Leave events for the compactor in the final state, so that it must
	// run before the last check.
	tail := [][]byte{[]byte("tail-1"), []byte("tail-2"), []byte("tail-3")}
	if err := appendWake(t, j, "p/0", model[0].n+1, model[0].wake, tail...); err != nil {
		t.Fatal(err)
	}
	for _, e := range tail {
		model[0] = model[0].apply(e)
	}
	if err := snapshotSync(t, j, "p/0", model[0].n, model[0].encode()); err != nil {
		t.Fatal(err)
	}
	awaitCompaction(t, j, ids)
	checkFolds(t, j, model)
}

// awaitCompaction waits, within waitMax, until no identity p/0..p/ids-1
// stores an event that its snapshot covers, and checks that the compactor's
// counter moved by at least the covered events it found.
func awaitCompaction(t *testing.T, j *Journal, ids int) {
	t.Helper()
	before := j.Stats().Compacted
	covered0 := coveredEvents(t, j, ids)
	if covered0 == 0 {
		t.Fatal("no covered events to compact")
	}
	deadline := time.Now().Add(waitMax)
	for coveredEvents(t, j, ids) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("covered events still stored; stats %+v", j.Stats())
		}
		time.Sleep(j.opts.CompactInterval)
	}
	for j.Stats().Compacted-before < uint64(covered0) {
		if time.Now().After(deadline) {
			t.Fatalf("compacted counter moved by %d, want at least %d", j.Stats().Compacted-before, covered0)
		}
		time.Sleep(j.opts.CompactInterval)
	}
}

// coveredEvents counts the stored events that their identity's snapshot
// covers.
func coveredEvents(t *testing.T, j *Journal, ids int) int {
	covered := 0
	for k := range ids {
		id := fmt.Sprintf("p/%d", k)
		snap, _, err := j.LoadSnapshot(id)
		if err != nil {
			t.Fatal(err)
		}
		if n, first := storedEvents(t, j, id); n > 0 && first <= snap {
			covered += int(min(snap, first+uint64(n)-1) - first + 1)
		}
	}
	return covered
}

func checkFolds(t *testing.T, j *Journal, model []fold) {
	t.Helper()
	for k, want := range model {
		id := fmt.Sprintf("p/%d", k)
		seq, state, err := j.LoadSnapshot(id)
		if err != nil {
			t.Fatal(err)
		}
		var got fold
		if seq > 0 {
			if got, err = decodeFold(state); err != nil || got.n != seq {
				t.Fatalf("%s: snapshot at %d holds %d events, %v", id, seq, got.n, err)
			}
		}
		if err := j.Replay(id, seq, func(s uint64, e []byte) error {
			if s != got.n+1 {
				return fmt.Errorf("event %d after %d", s, got.n)
			}
			got = got.apply(e)
			return nil
		}); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if got.n != want.n || !bytes.Equal(got.hash[:], want.hash[:]) {
			t.Fatalf("%s: recovered %d events (snapshot at %d), want %d, or the hashes differ",
				id, got.n, seq, want.n)
		}
		if last, err := j.LastSequence(id); last != want.n || err != nil {
			t.Fatalf("%s: last sequence %d, %v; want %d", id, last, err, want.n)
		}
		checkWake(t, j, id, want.wake)
	}
}
