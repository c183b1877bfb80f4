package persistence

import (
	"bytes"
	"errors"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

func fuzzDecode(f *testing.F, kind byte) {
	f.Add([]byte{}, uint64(1), []byte("payload"))
	f.Add(encodeRecord(nil, kind, 7, []byte("x")), uint64(0), []byte{})
	f.Add(encodeRecord(nil, kind, 1<<63, bytes.Repeat([]byte{0xff}, 300)), uint64(42), []byte{0})
	f.Fuzz(func(t *testing.T, raw []byte, seq uint64, payload []byte) {
		// Outside bytes: any result but a panic is fine, and a record that
		// passes its checks re-encodes to the same bytes.
		if s, p, err := decodeRecord(raw, kind); err == nil {
			if !bytes.Equal(encodeRecord(nil, kind, s, p), raw) {
				t.Fatalf("accepted %x, which does not re-encode to itself", raw)
			}
		}
		enc := encodeRecord(nil, kind, seq, payload)
		s, p, err := decodeRecord(enc, kind)
		if err != nil || s != seq || !bytes.Equal(p, payload) {
			t.Fatalf("round trip of %d/%x: got %d/%x, %v", seq, payload, s, p, err)
		}
		// Any single flipped byte is caught.
		if len(raw) > 0 {
			i := int(raw[0]) % len(enc)
			bad := bytes.Clone(enc)
			bad[i] ^= 0x5a
			if _, _, err := decodeRecord(bad, kind); err == nil {
				t.Fatalf("flip at %d of %x went unnoticed", i, enc)
			}
		}
	})
}

func FuzzDecodeRecord(f *testing.F)   { fuzzDecode(f, recordKindEvent) }
func FuzzDecodeSnapshot(f *testing.F) { fuzzDecode(f, recordKindSnap) }

func TestRecordKindsAreNotInterchangeable(t *testing.T) {
	enc := encodeRecord(nil, recordKindSnap, 3, []byte("s"))
	if _, _, err := decodeEvent(eventKey(0, "x", 3), enc); err == nil {
		t.Fatal("a snapshot record decoded as an event")
	}
	enc = encodeRecord(nil, recordKindEvent, 3, []byte("e"))
	if _, _, err := decodeEvent(eventKey(0, "x", 4), enc); err == nil {
		t.Fatal("an event record decoded under another sequence's key")
	}
}

// corrupt flips one byte of the value stored under key, going around the
// journal as a failing disk would.
func corrupt(t *testing.T, j *Journal, key []byte, at int) {
	t.Helper()
	err := j.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		v[at%len(v)] ^= 0x01
		return txn.Set(key, v)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCorruptEventIsReportedWithItsKey(t *testing.T) {
	for _, at := range []int{0, 3, recordHeaderBytes, recordHeaderBytes + 5} {
		o := testOptions(t)
		o.RetainEvents = true
		j := openTest(t, t.TempDir(), o)
		if err := appendSync(t, j, "id/1", 1, []byte("one"), []byte("two-two"), []byte("three")); err != nil {
			t.Fatal(err)
		}
		corrupt(t, j, eventKey(j.partition("id/1"), "id/1", 2), at)
		var seen []uint64
		err := j.Replay("id/1", 0, func(seq uint64, _ []byte) error {
			seen = append(seen, seq)
			return nil
		})
		c, ok := asCorrupt(err)
		if !ok || !bytes.Equal(c.Key, eventKey(j.partition("id/1"), "id/1", 2)) {
			t.Fatalf("flip at %d: got %v, want a CorruptRecordError for event 2", at, err)
		}
		if len(seen) != 1 {
			t.Fatalf("flip at %d: applied %v, want only event 1", at, seen)
		}
		t.Logf("flip at %d: %v", at, err)
	}
}

func TestCorruptSnapshotIsReportedWithItsKey(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir, testOptions(t))
	if err := appendSync(t, j, "s", 1, []byte("e")); err != nil {
		t.Fatal(err)
	}
	if err := snapshotSync(t, j, "s", 1, []byte("state")); err != nil {
		t.Fatal(err)
	}
	corrupt(t, j, snapshotKey(j.partition("s"), "s", 1), recordHeaderBytes+1)
	_, state, err := j.LoadSnapshot("s")
	c, ok := asCorrupt(err)
	if !ok || !bytes.Equal(c.Key, snapshotKey(j.partition("s"), "s", 1)) || state != nil {
		t.Fatalf("got %q, %v; want a CorruptRecordError for the snapshot", state, err)
	}
	t.Log(err)
}

func TestSequenceGapIsCorruption(t *testing.T) {
	o := testOptions(t)
	o.RetainEvents = true
	j := openTest(t, t.TempDir(), o)
	if err := appendSync(t, j, "g", 1, []byte("1"), []byte("2"), []byte("3")); err != nil {
		t.Fatal(err)
	}
	if err := j.db.Update(func(txn *badger.Txn) error { return txn.Delete(eventKey(j.partition("g"), "g", 2)) }); err != nil {
		t.Fatal(err)
	}
	c, ok := asCorrupt(j.Replay("g", 0, func(uint64, []byte) error { return nil }))
	if !ok || !bytes.Equal(c.Key, eventKey(j.partition("g"), "g", 3)) {
		t.Fatalf("got %v, want a gap reported at event 3", c)
	}
}

// FuzzChunkReader feeds a chunked snapshot's reader arbitrary values under
// chunk keys, as a damaged volume could hold: it never panics and refuses
// anything but well-formed chunks with a *CorruptRecordError.
func FuzzChunkReader(f *testing.F) {
	state := bytes.Repeat([]byte("s"), 2*chunkDataBytes+17)
	good := encodeSnapshot(9, state)
	f.Add(good[0], good[1], uint64(9))
	f.Add(good[1], good[0], uint64(9))
	f.Add([]byte{}, []byte{1}, uint64(0))
	f.Fuzz(func(t *testing.T, first, second []byte, seq uint64) {
		var c chunkReader
		for i, v := range [][]byte{first, second} {
			err := c.add(snapshotChunkKey(3, "sku", seq, uint32(i)), v, seq)
			var bad *CorruptRecordError
			if err != nil {
				if !errors.As(err, &bad) {
					t.Fatalf("chunk %d: error %T %v", i, err, err)
				}
				return
			}
		}
		if c.next != 2 || uint64(len(c.state)) > c.total {
			t.Fatalf("accepted two chunks into %d of %d bytes, next %d", len(c.state), c.total, c.next)
		}
	})
}
