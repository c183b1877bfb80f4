package persistence

import (
	"bytes"
	"hash/fnv"
	"math"
	"strings"
	"testing"
)

// TestPartitionGolden pins ids to their partitions (FNV-1a of "a" is the
// published 0xe40c292c; 0xe40c292c % 64 = 44). The cluster places
// identities with the same function and every stored key carries it, so a
// change here strands existing data: this test must never be "fixed" by
// updating the table.
func TestPartitionGolden(t *testing.T) {
	cases := []struct {
		id         string
		partitions int
		want       int
	}{
		{"", 64, 5},
		{"a", 64, 44},
		{"sku-1", 64, 44},
		{"sku-2", 64, 37},
		{"order-01J9Z3K8Q4", 64, 9},
		{"sku-1", 4096, 1580},
		{"sku-1", 1, 0},
		{"crash/3", 64, 18},
	}
	for _, c := range cases {
		if got := Partition(c.id, c.partitions); got != c.want {
			t.Errorf("Partition(%q, %d) = %d, want %d", c.id, c.partitions, got, c.want)
		}
	}
}

// TestPartitionIsFNV1a checks the hash against the standard library's.
func TestPartitionIsFNV1a(t *testing.T) {
	for _, id := range []string{"", "x", "sku-42", strings.Repeat("\xff", 300)} {
		h := fnv.New32a()
		h.Write([]byte(id))
		for _, n := range []int{1, 7, 64, partitionsMax} {
			if got, want := Partition(id, n), int(h.Sum32()%uint32(n)); got != want {
				t.Fatalf("Partition(%q, %d) = %d, want %d", id, n, got, want)
			}
		}
	}
}

func TestPartitionRefusesBadCounts(t *testing.T) {
	for _, n := range []int{0, -1, partitionsMax + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Partition with %d partitions did not panic", n)
				}
			}()
			Partition("x", n)
		}()
	}
}

func FuzzKeys(f *testing.F) {
	f.Add("sku-1", uint16(3), uint64(7), uint32(2), int64(1_700_000_000_000_000_000))
	f.Add("", uint16(0), uint64(0), uint32(0), int64(0))
	f.Add("a\x00b", uint16(partitionsMax-1), uint64(math.MaxUint64), uint32(math.MaxUint32), int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, id string, p uint16, seq uint64, chunk uint32, wake int64) {
		if len(id) > idBytesMax {
			id = id[:idBytesMax]
		}
		wake = max(wake, 0)
		if gp, gid, gseq, ok := parseEventKey(eventKey(p, id, seq)); !ok || gp != p || gid != id || gseq != seq {
			t.Fatalf("event key round trip: %d %q %d %v", gp, gid, gseq, ok)
		}
		r, ok := parseSnapshotKey(snapshotKey(p, id, seq))
		if !ok || r != (snapshotRef{p: p, id: id, seq: seq}) {
			t.Fatalf("snapshot key round trip: %+v %v", r, ok)
		}
		r, ok = parseSnapshotKey(snapshotChunkKey(p, id, seq, chunk))
		if !ok || r != (snapshotRef{p: p, id: id, seq: seq, chunk: chunk, chunked: true}) {
			t.Fatalf("chunk key round trip: %+v %v", r, ok)
		}
		if gp, gw, gid, ok := parseWakeKey(wakeKey(p, wake, id)); !ok || gp != p || gw != wake || gid != id {
			t.Fatalf("wake key round trip: %d %d %q %v", gp, gw, gid, ok)
		}
		if gp, gid, ok := parseWakeOfKey(wakeOfKey(p, id)); !ok || gp != p || gid != id {
			t.Fatalf("wake-of key round trip: %d %q %v", gp, gid, ok)
		}
		// No key of one kind parses as another kind.
		if _, _, _, ok := parseEventKey(snapshotKey(p, id, seq)); ok {
			t.Fatal("a snapshot key parsed as an event key")
		}
		if _, ok := parseSnapshotKey(eventKey(p, id, seq)); ok {
			t.Fatal("an event key parsed as a snapshot key")
		}
		// The latest-snapshot bound sorts after every snapshot key of id and
		// before the next id's.
		top := snapshotKeyMax(p, id)
		if bytes.Compare(snapshotChunkKey(p, id, seq, chunk), top) > 0 || bytes.Compare(snapshotKey(p, id, seq), top) > 0 {
			t.Fatal("a snapshot key sorts after snapshotKeyMax")
		}
		// Every key of id is in its partition and under its id prefix.
		for _, k := range [][]byte{eventKey(p, id, seq), snapshotChunkKey(p, id, seq, chunk), wakeOfKey(p, id)} {
			if !bytes.HasPrefix(k, []byte{byte(p >> 8), byte(p)}) {
				t.Fatalf("%x is outside partition %d", k, p)
			}
		}
		// Arbitrary bytes never panic a parser or describeKey.
		raw := []byte(id)
		parseEventKey(raw)
		parseSnapshotKey(raw)
		parseWakeKey(raw)
		parseWakeOfKey(raw)
		_ = describeKey(raw)
	})
}

func TestDescribeKey(t *testing.T) {
	cases := map[string][]byte{
		`event "o-1" #3 (partition 5)`:                           eventKey(5, "o-1", 3),
		`snapshot "s" @9 (partition 0)`:                          snapshotKey(0, "s", 9),
		`snapshot "s" @9 chunk 2 (partition 1)`:                  snapshotChunkKey(1, "s", 9, 2),
		`wake "o-1" at 42 (partition 63)`:                        wakeKey(63, 42, "o-1"),
		`wake time of "o-1" (partition 63)`:                      wakeOfKey(63, "o-1"),
		`key ffff6d666f726d6174`:                                 formatKey,
		`key 6d666f726d6174`:                                     formatV1Key,
		`event "a/b\x00" #18446744073709551615 (partition 4095)`: eventKey(4095, "a/b\x00", math.MaxUint64),
	}
	for want, k := range cases {
		if got := describeKey(k); got != want {
			t.Errorf("describeKey(%x) = %s, want %s", k, got, want)
		}
	}
}

// TestKeyOrder checks the orders the journal's seeks rely on.
func TestKeyOrder(t *testing.T) {
	ordered := [][]byte{
		eventKey(1, "x", 1),
		eventKey(1, "x", 2),
		eventKey(1, "x", 256),
		snapshotKey(1, "x", 5),
		snapshotChunkKey(1, "x", 5, 0),
		snapshotChunkKey(1, "x", 5, 1),
		snapshotKey(1, "x", 6),
		wakeKey(1, 10, "z"),
		wakeKey(1, 11, "a"),
		wakeKey(1, 1<<40, "a"),
		eventKey(2, "a", 1),
		formatKey,
	}
	for i := 1; i < len(ordered); i++ {
		if bytes.Compare(ordered[i-1], ordered[i]) >= 0 {
			t.Fatalf("%s sorts after %s", describeKey(ordered[i-1]), describeKey(ordered[i]))
		}
	}
}
