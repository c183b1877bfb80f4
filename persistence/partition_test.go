package persistence

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// identityState is everything the journal answers about one identity.
type identityState struct {
	last   uint64
	snap   uint64
	state  []byte
	events []event
}

func readIdentity(t testing.TB, j *Journal, id string) identityState {
	t.Helper()
	var s identityState
	var err error
	if s.last, err = j.LastSequence(id); err != nil {
		t.Fatal(err)
	}
	if s.snap, s.state, err = j.LoadSnapshot(id); err != nil {
		t.Fatal(err)
	}
	// Events a snapshot covers may be compacted at any time; recovery
	// reads the snapshot and what follows it.
	s.events = replayAll(t, j, id, s.snap)
	return s
}

func dueOf(t testing.TB, j *Journal) []dueEntry {
	t.Helper()
	var got []dueEntry
	if err := j.Due(1<<62, 1000, func(id string, wake int64) bool {
		got = append(got, dueEntry{wake: wake, id: id})
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// fillPartition gives ids (all of one partition) histories of every
// shape: events only with a wake time, a small snapshot and events after
// it, a chunked snapshot, and a deleted identity.
func fillPartition(t testing.TB, j *Journal, ids []string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(appendWake(t, j, ids[0], 1, 1000, []byte("a1"), []byte("a2"), []byte("a3"), []byte("a4"), []byte("a5")))
	must(appendWake(t, j, ids[1], 1, 2000, []byte("b1"), []byte("b2"), []byte("b3")))
	must(snapshotSync(t, j, ids[1], 3, bytes.Repeat([]byte("s"), 1024)))
	must(appendWake(t, j, ids[1], 4, 2000, []byte("b4"), []byte("b5")))
	must(appendSync(t, j, ids[2], 1, []byte("c1"), []byte("c2")))
	must(snapshotSync(t, j, ids[2], 2, bytes.Repeat([]byte("big "), (5<<20)/8))) // 2.5 MiB: chunked
	must(appendSync(t, j, ids[3], 1, []byte("d1")))
	must(deleteSync(t, j, ids[3]))
}

// exportAll exports partition p and returns copies of its chunks.
func exportAll(t testing.TB, j *Journal, p, chunkBytes int) ([][]byte, PartitionInfo) {
	t.Helper()
	var chunks [][]byte
	info, err := j.ExportPartition(p, chunkBytes, func(c []byte) error {
		chunks = append(chunks, bytes.Clone(c))
		return nil
	})
	if err != nil {
		t.Fatalf("export %d: %v", p, err)
	}
	if info.Chunks != len(chunks) {
		t.Fatalf("export says %d chunks, emitted %d", info.Chunks, len(chunks))
	}
	return chunks, info
}

func importAll(t testing.TB, j *Journal, p int, chunks [][]byte) PartitionInfo {
	t.Helper()
	imp, err := j.BeginImport(p)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range chunks {
		if err := imp.Add(c); err != nil {
			t.Fatalf("add chunk %d: %v", i, err)
		}
	}
	info, err := imp.Finish()
	if err != nil {
		t.Fatalf("finish: %v", err)
	}
	return info
}

func TestExportImportHandsAPartitionOver(t *testing.T) {
	const p = 9
	src := openTest(t, t.TempDir(), testOptions(t))
	ids := idsIn(p, src.Partitions(), 4, "h")
	fillPartition(t, src, ids)
	other := idsIn(p+1, src.Partitions(), 1, "o")[0]
	if err := appendWake(t, src, other, 1, 500, []byte("o1")); err != nil {
		t.Fatal(err)
	}
	if _, err := src.ExportPartition(p, 0, func([]byte) error { return nil }); !errors.Is(err, ErrHeld) {
		t.Fatalf("export of a held partition: %v, want ErrHeld", err)
	}
	if err := src.Release(p); err != nil {
		t.Fatal(err)
	}
	want := make(map[string]identityState)
	for _, id := range ids {
		want[id] = readIdentity(t, src, id)
	}
	chunks, info := exportAll(t, src, p, 64<<10)
	if info.Chunks < 3 || info.Keys == 0 {
		t.Fatalf("export info %+v: want several chunks", info)
	}
	// The digest does not depend on the chunk size.
	if _, again := exportAll(t, src, p, 0); again.Digest != info.Digest || again.Keys != info.Keys {
		t.Fatalf("exports with other chunk sizes differ: %+v and %+v", info, again)
	}

	// The new holder has cached an older history of ids[0] in the same
	// partition, which it drops before the import.
	dst := openTest(t, t.TempDir(), fencedOptions(t))
	if err := dst.Hold(p, 1); err != nil {
		t.Fatal(err)
	}
	if err := appendSync(t, dst, ids[0], 1, []byte("old")); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.BeginImport(p); !errors.Is(err, ErrHeld) {
		t.Fatalf("import into a held partition: %v, want ErrHeld", err)
	}
	if err := dst.Release(p); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.BeginImport(p); !errors.Is(err, ErrPartitionNotEmpty) {
		t.Fatalf("import into a partition with keys: %v, want ErrPartitionNotEmpty", err)
	}
	if err := dst.DropPartition(p); err != nil {
		t.Fatal(err)
	}

	imp, err := dst.BeginImport(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.Hold(p, 2); !errors.Is(err, ErrPartitionBusy) {
		t.Fatalf("hold during an import: %v, want ErrPartitionBusy", err)
	}
	for i, c := range chunks {
		if err := imp.Add(c); err != nil {
			t.Fatalf("add chunk %d: %v", i, err)
		}
		if err := imp.Add(c); err != nil { // a sender's retry
			t.Fatalf("add chunk %d again: %v", i, err)
		}
		if i > 0 {
			if err := imp.Add(chunks[0]); err != nil {
				t.Fatalf("add chunk 0 again after %d: %v", i, err)
			}
		}
	}
	got, err := imp.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if got != info {
		t.Fatalf("import info %+v, export info %+v", got, info)
	}
	if d := dueOf(t, dst); len(d) != 0 {
		t.Fatalf("due before hold: %v", d)
	}
	if err := dst.Hold(p, 2); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if g, w := readIdentity(t, dst, id), want[id]; g.last != w.last || g.snap != w.snap ||
			!bytes.Equal(g.state, w.state) || fmt.Sprint(g.events) != fmt.Sprint(w.events) {
			t.Fatalf("%s: imported last %d snap %d (%d bytes) events %v; exported last %d snap %d (%d bytes) events %v",
				id, g.last, g.snap, len(g.state), g.events, w.last, w.snap, len(w.state), w.events)
		}
	}
	wantDue := []dueEntry{{1000, ids[0]}, {2000, ids[1]}}
	if d := dueOf(t, dst); fmt.Sprint(d) != fmt.Sprint(wantDue) {
		t.Fatalf("due %v, want %v", d, wantDue)
	}
	// The imported sequences are what writes continue from.
	if err := appendSync(t, dst, ids[0], 1, []byte("x")); !isSequenceError(err, 6) {
		t.Fatalf("append at 1 after import: %v, want a sequence conflict wanting 6", err)
	}
	if err := appendWake(t, dst, ids[0], 6, 3000, []byte("a6")); err != nil {
		t.Fatalf("append at 6 after import: %v", err)
	}
	if err := snapshotSync(t, dst, ids[2], 2, []byte("older")); err != nil {
		t.Fatalf("snapshot at the imported snapshot's sequence: %v", err)
	}
	if err := appendSync(t, dst, ids[3], 1, []byte("d1")); err != nil {
		t.Fatalf("deleted identity starts again: %v", err)
	}
	checkWake(t, dst, ids[0], 3000)
	if seq, _ := dst.LastSequence(other); seq != 0 {
		t.Fatalf("identity of another partition came along: last %d", seq)
	}
}

func isSequenceError(err error, want uint64) bool {
	var se *SequenceError
	return errors.As(err, &se) && se.Want == want
}

func TestImportRefusesBadChunks(t *testing.T) {
	const p = 4
	src := openTest(t, t.TempDir(), testOptions(t))
	ids := idsIn(p, src.Partitions(), 4, "r")
	fillPartition(t, src, ids)
	if err := src.Release(p); err != nil {
		t.Fatal(err)
	}
	chunks, _ := exportAll(t, src, p, 8<<10)
	dst := openTest(t, t.TempDir(), fencedOptions(t))

	flipped := bytes.Clone(chunks[0])
	flipped[len(flipped)/2] ^= 1
	foreign := idsIn(p+1, src.Partitions(), 1, "x")[0]
	enc := func(keys ...[]byte) []byte {
		var out []byte
		e := newChunkEncoder(uint16(src.Partitions()), p, chunkBytesDefault, func(c []byte) error {
			out = bytes.Clone(c)
			return nil
		})
		for _, k := range keys {
			v := encodeRecord(nil, recordKindEvent, 1, []byte("e"))
			if err := e.add(k, v); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.flush(true); err != nil {
			t.Fatal(err)
		}
		return out
	}
	bad := map[string][]byte{
		"flipped bit":          flipped,
		"truncated":            chunks[0][:len(chunks[0])-1],
		"out of order":         chunks[1],
		"foreign identity":     enc(eventKey(p, foreign, 1)),
		"meta key":             enc(metaKey("format")),
		"other partition key":  enc(eventKey(p+1, foreign, 1)),
		"wrong record for key": enc(eventKey(p, ids[0], 2)),
		"empty":                nil,
	}
	imp, err := dst.BeginImport(p)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range bad {
		if err := imp.Add(c); !errors.Is(err, ErrImportMismatch) {
			t.Fatalf("%s: %v, want ErrImportMismatch", name, err)
		}
	}
	if _, err := imp.Finish(); !errors.Is(err, ErrImportMismatch) {
		t.Fatalf("finish without the last chunk: %v", err)
	}
	if d, _, err := dst.digestPartition(p); err != nil || d.keys != 0 {
		t.Fatalf("refused chunks wrote %d keys (%v)", d.keys, err)
	}
	// A chunk of partition p refused by an import of another partition.
	imp, err = dst.BeginImport(p + 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := imp.Add(chunks[0]); !errors.Is(err, ErrImportMismatch) {
		t.Fatalf("chunk of another partition: %v", err)
	}
	imp.Abort()

	// A stream cut short is refused at Finish; a drop and a new import
	// then succeed.
	imp, err = dst.BeginImport(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chunks[:len(chunks)-1] {
		if err := imp.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := imp.Finish(); !errors.Is(err, ErrImportMismatch) {
		t.Fatalf("finish of a stream cut short: %v", err)
	}
	if err := dst.DropPartition(p); err != nil {
		t.Fatal(err)
	}
	importAll(t, dst, p, chunks)
}

// TestImportChecksWhatIsStored: a key written into the range behind the
// importer's back makes Finish refuse.
func TestImportChecksWhatIsStored(t *testing.T) {
	const p = 6
	src := openTest(t, t.TempDir(), testOptions(t))
	ids := idsIn(p, src.Partitions(), 4, "s")
	fillPartition(t, src, ids)
	if err := src.Release(p); err != nil {
		t.Fatal(err)
	}
	chunks, _ := exportAll(t, src, p, 0)
	dst := openTest(t, t.TempDir(), fencedOptions(t))
	imp, err := dst.BeginImport(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chunks {
		if err := imp.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := dst.db.Update(func(txn *badger.Txn) error {
		return txn.Set(wakeOfKey(p, idsIn(p, dst.Partitions(), 5, "s")[4]), make([]byte, 8))
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := imp.Finish(); !errors.Is(err, ErrImportMismatch) {
		t.Fatalf("finish over a stray key: %v, want ErrImportMismatch", err)
	}
}

func TestDropThenReuse(t *testing.T) {
	const p = 11
	j := openTest(t, t.TempDir(), testOptions(t))
	ids := idsIn(p, j.Partitions(), 4, "d")
	fillPartition(t, j, ids)
	keep := idsIn(p+1, j.Partitions(), 1, "k")[0]
	if err := appendWake(t, j, keep, 1, 10, []byte("k1")); err != nil {
		t.Fatal(err)
	}
	if err := j.DropPartition(p); !errors.Is(err, ErrHeld) {
		t.Fatalf("drop of a held partition: %v, want ErrHeld", err)
	}
	if err := j.Release(p); err != nil {
		t.Fatal(err)
	}
	if err := j.DropPartition(p); err != nil {
		t.Fatal(err)
	}
	if err := j.DropPartition(p); err != nil { // dropping again is harmless
		t.Fatal(err)
	}
	if err := appendSync(t, j, ids[0], 1, []byte("x")); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("append to a dropped, unheld partition: %v", err)
	}
	if err := j.Hold(p, 3); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if s := readIdentity(t, j, id); s.last != 0 || s.snap != 0 || len(s.events) != 0 {
			t.Fatalf("%s after drop: %+v", id, s)
		}
	}
	if d := dueOf(t, j); len(d) != 1 || d[0].id != keep {
		t.Fatalf("due after drop %v, want only %s", d, keep)
	}
	if err := appendSync(t, j, ids[0], 6, []byte("x")); !isSequenceError(err, 1) {
		t.Fatalf("append at 6 after drop: %v, want a conflict wanting 1", err)
	}
	if err := appendSync(t, j, ids[0], 1, []byte("new")); err != nil {
		t.Fatalf("append at 1 after drop: %v", err)
	}
	if got := replayAll(t, j, ids[0], 0); len(got) != 1 || got[0].data != "new" {
		t.Fatalf("replay after drop and reuse: %v", got)
	}
	if s := readIdentity(t, j, keep); s.last != 1 {
		t.Fatalf("other partition after drop: %+v", s)
	}
}

func TestExportOfEmptyPartition(t *testing.T) {
	src := openTest(t, t.TempDir(), fencedOptions(t))
	chunks, info := exportAll(t, src, 0, 0)
	if len(chunks) != 1 || info.Keys != 0 {
		t.Fatalf("empty partition: %d chunks, %+v", len(chunks), info)
	}
	dst := openTest(t, t.TempDir(), fencedOptions(t))
	if got := importAll(t, dst, 0, chunks); got != info {
		t.Fatalf("import %+v, export %+v", got, info)
	}
}
