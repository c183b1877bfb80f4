package persistence

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// bigState returns n pseudo-random bytes, so that a chunk out of place
// changes the state.
func bigState(n int) []byte {
	rng := rand.New(rand.NewPCG(uint64(n), 4))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// snapshotKeysOf returns id's snapshot keys as parsed refs.
func snapshotKeysOf(t *testing.T, j *Journal, id string) []snapshotRef {
	t.Helper()
	var refs []snapshotRef
	for _, k := range keysOf(t, j, id) {
		if r, ok := parseSnapshotKey(k); ok {
			refs = append(refs, r)
		}
	}
	return refs
}

func TestSnapshotChunkBoundaries(t *testing.T) {
	single := snapshotChunkBytes - recordHeaderBytes - recordCRCBytes
	cases := map[int]int{0: 0, 1: 0, single: 0, single + 1: 2, 2 * chunkDataBytes: 2,
		2*chunkDataBytes + 1: 3, snapshotBytesMax: snapshotChunksMax}
	for n, want := range cases {
		if got := snapshotChunks(n); got != want {
			t.Errorf("snapshotChunks(%d) = %d, want %d", n, got, want)
		}
	}
	for _, n := range []int{single, single + 1, 3*chunkDataBytes - 1} {
		for i, v := range encodeSnapshot(9, make([]byte, n)) {
			if len(v) > snapshotChunkBytes {
				t.Fatalf("state of %d bytes: value %d has %d bytes", n, i, len(v))
			}
		}
	}
}

func TestChunkedSnapshotRoundTrip(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t)
	o.RetainEvents = true
	j := openTest(t, dir, o)
	fillEvents(t, j, "sku", 10)
	// Chunked, then single at the same sequence, then chunked again, then
	// fewer chunks at the same sequence, then more at a new one: each leaves
	// only its own keys.
	cases := []struct {
		n   int
		seq uint64
	}{{3*chunkDataBytes + 5, 5}, {100, 5}, {2*chunkDataBytes + 1, 7}, {2 * chunkDataBytes, 7}, {2*chunkDataBytes + 1, 9}}
	for _, c := range cases {
		n, seq := c.n, c.seq
		state := bigState(n)
		if err := snapshotSync(t, j, "sku", seq, state); err != nil {
			t.Fatalf("snapshot of %d bytes: %v", n, err)
		}
		got, gotState, err := j.LoadSnapshot("sku")
		if err != nil || got != seq || !bytes.Equal(gotState, state) {
			t.Fatalf("snapshot of %d bytes at %d: got %d bytes at %d, %v", n, seq, len(gotState), got, err)
		}
		refs := snapshotKeysOf(t, j, "sku")
		if want := max(1, snapshotChunks(n)); len(refs) != want {
			t.Fatalf("snapshot of %d bytes: %d snapshot keys, want %d: %+v", n, len(refs), want, refs)
		}
		for _, r := range refs {
			if r.seq != seq {
				t.Fatalf("an older snapshot's key is left: %+v", r)
			}
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	// After a reopen the journal learns the chunk count from the keys, and
	// the next snapshot replaces every chunk.
	j = openTest(t, dir, o)
	if err := snapshotSync(t, j, "sku", 10, []byte("small")); err != nil {
		t.Fatal(err)
	}
	if refs := snapshotKeysOf(t, j, "sku"); len(refs) != 1 || refs[0].chunked {
		t.Fatalf("keys after replacing a chunked snapshot: %+v", refs)
	}
}

// chunkedFixture stores a 3-chunk snapshot of "c" at 1 and returns the
// journal and the chunk keys.
func chunkedFixture(t *testing.T) (*Journal, [][]byte) {
	j := openTest(t, t.TempDir(), testOptions(t))
	if err := appendSync(t, j, "c", 1, []byte("e")); err != nil {
		t.Fatal(err)
	}
	if err := snapshotSync(t, j, "c", 1, bigState(2*chunkDataBytes+10)); err != nil {
		t.Fatal(err)
	}
	return j, snapshotKeys(j.partition("c"), "c", 1, 3)
}

func TestMissingChunkIsCorrupt(t *testing.T) {
	for missing := range 3 {
		j, keys := chunkedFixture(t)
		if err := j.db.Update(func(txn *badger.Txn) error { return txn.Delete(keys[missing]) }); err != nil {
			t.Fatal(err)
		}
		_, state, err := j.LoadSnapshot("c")
		c, ok := asCorrupt(err)
		if !ok || state != nil || !strings.Contains(c.Reason, "missing") || !bytes.Equal(c.Key, keys[missing]) {
			t.Fatalf("chunk %d missing: got %d bytes, %v", missing, len(state), err)
		}
		t.Logf("chunk %d missing: %v", missing, err)
	}
}

func TestCorruptOrMisplacedChunkIsCorrupt(t *testing.T) {
	j, keys := chunkedFixture(t)
	corrupt(t, j, keys[1], recordHeaderBytes+chunkHeaderBytes+100)
	if _, _, err := j.LoadSnapshot("c"); !isCorruptAt(err, keys[1]) {
		t.Fatalf("flipped byte in chunk 1: %v", err)
	}
	j, keys = chunkedFixture(t)
	err := j.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(keys[0])
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		return txn.Set(keys[1], v) // chunk 0's record under chunk 1's key
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := j.LoadSnapshot("c"); !isCorruptAt(err, keys[1]) {
		t.Fatalf("chunk 0 under chunk 1's key: %v", err)
	}
}

func isCorruptAt(err error, key []byte) bool {
	c, ok := asCorrupt(err)
	return ok && bytes.Equal(c.Key, key)
}

// raceEnabled is set by race_test.go under the race detector.
var raceEnabled bool

// TestLargestSnapshot stores a snapshot of snapshotBytesMax, or, under
// -short or the race detector (where it costs gigabytes), one of
// snapshotScaledBytes, still many chunks and far beyond a batch.
func TestLargestSnapshot(t *testing.T) {
	const snapshotScaledBytes = 24 << 20
	size := snapshotBytesMax
	if testing.Short() || raceEnabled {
		size = snapshotScaledBytes
	}
	j := openTest(t, t.TempDir(), testOptions(t))
	if err := appendSync(t, j, "huge", 1, []byte("e")); err != nil {
		t.Fatal(err)
	}
	state := make([]byte, size)
	for i := range state {
		state[i] = byte(i / chunkDataBytes)
	}
	if err := snapshotSync(t, j, "huge", 1, state); err != nil {
		t.Fatal(err)
	}
	_, got, err := j.LoadSnapshot("huge")
	if err != nil || !bytes.Equal(got, state) {
		t.Fatalf("got %d bytes, %v", len(got), err)
	}
	if n, want := len(snapshotKeysOf(t, j, "huge")), snapshotChunks(size); n != want {
		t.Fatalf("%d chunk keys, want %d", n, want)
	}
	if err := snapshotSync(t, j, "huge", 1, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(snapshotKeysOf(t, j, "huge")); n != 1 {
		t.Fatalf("%d snapshot keys after replacing the largest, want 1", n)
	}
}
