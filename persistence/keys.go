package persistence

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Key layout, format 2. Every key starts with a 2-byte big-endian
// partition, so that a partition's keys form one contiguous range that a
// cluster can stream, back up or hand off on its own:
//
//	event     p | 'e' | idlen u16 | id | seq u64
//	snapshot  p | 's' | idlen u16 | id | seq u64             one key
//	          p | 's' | idlen u16 | id | seq u64 | chunk u32 chunks 0..n-1
//	wake      p | 'w' | wake u64 | idlen u16 | id             empty value
//	wake of   p | 'k' | idlen u16 | id                       value: wake u64
//	meta      0xFFFF | 'm' | name
//
// The id is length-prefixed so that no id, whatever bytes it holds, can
// read as a prefix of another id's keys. Numbers are big-endian so Badger's
// byte order is numeric order: an identity's events sort by sequence, its
// latest snapshot is its last snapshot key, and a partition's wake keys sort
// by wake time. Keeping the snapshot's sequence in its key lets a reverse
// seek find an identity's sequences without reading any value.
const (
	kindEvent    byte = 'e'
	kindSnapshot byte = 's'
	kindWake     byte = 'w'
	kindWakeOf   byte = 'k'
	kindMeta     byte = 'm'

	keyPartitionBytes = 2
	keyIDLenBytes     = 2
	keySeqBytes       = 8
	keyWakeBytes      = 8
	keyChunkBytes     = 4
	wakeValueBytes    = 8

	// partitionsMax bounds Options.Partitions; partitions are numbered
	// 0..Partitions-1 and must stay below metaPartition.
	partitionsMax = 4096
	// metaPartition holds the database's own records, outside every
	// identity partition.
	metaPartition uint16 = 0xFFFF
)

// formatVersion 2 is the partitioned layout above. Format 1 had no
// partition prefix and marked itself with formatV1Key; it is refused, not
// migrated.
const formatVersion byte = 2

var (
	formatKey   = metaKey("format")
	formatV1Key = []byte{kindMeta, 'f', 'o', 'r', 'm', 'a', 't'}
)

// FNV-1a, 32 bits: a tiny, well-spread, dependency-free hash whose values
// other languages and tools can reproduce.
const (
	fnvOffset32 uint32 = 2166136261
	fnvPrime32  uint32 = 16777619
)

// Partition returns the partition of id among partitions: FNV-1a (32 bits)
// of the id's bytes modulo partitions. The journal keys every record of id
// under it, and the cluster places identities with the same function, so it
// must never change. It panics unless partitions is in 1..4096.
func Partition(id string, partitions int) int {
	if partitions < 1 || partitions > partitionsMax {
		panic(fmt.Sprintf("persistence.Partition: %d partitions, want 1..%d", partitions, partitionsMax))
	}
	h := fnvOffset32
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= fnvPrime32
	}
	return int(h % uint32(partitions))
}

// kindPrefix returns p | kind: the range of one kind of key in a partition.
func kindPrefix(p uint16, kind byte) []byte {
	return []byte{byte(p >> 8), byte(p), kind}
}

// idPrefix returns p | kind | len(id) | id, with room for the sequence and
// chunk that usually follow.
func idPrefix(p uint16, kind byte, id string) []byte {
	k := make([]byte, 0, keyPartitionBytes+1+keyIDLenBytes+len(id)+keySeqBytes+keyChunkBytes)
	k = append(k, byte(p>>8), byte(p), kind)
	k = binary.BigEndian.AppendUint16(k, uint16(len(id)))
	return append(k, id...)
}

// eventKey returns the key of event seq of id.
func eventKey(p uint16, id string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(idPrefix(p, kindEvent, id), seq)
}

// snapshotKey returns the key of id's snapshot at seq when it is stored as
// one value.
func snapshotKey(p uint16, id string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(idPrefix(p, kindSnapshot, id), seq)
}

// snapshotChunkKey returns the key of one chunk of id's snapshot at seq.
func snapshotChunkKey(p uint16, id string, seq uint64, chunk uint32) []byte {
	return binary.BigEndian.AppendUint32(snapshotKey(p, id, seq), chunk)
}

// snapshotKeyMax sorts after every snapshot key of id: a reverse seek to it
// lands on the id's latest snapshot.
func snapshotKeyMax(p uint16, id string) []byte {
	return snapshotChunkKey(p, id, math.MaxUint64, math.MaxUint32)
}

// wakeKey returns id's entry in the wake index of its partition.
func wakeKey(p uint16, wake int64, id string) []byte {
	k := make([]byte, 0, keyPartitionBytes+1+keyWakeBytes+keyIDLenBytes+len(id))
	k = append(k, byte(p>>8), byte(p), kindWake)
	k = binary.BigEndian.AppendUint64(k, uint64(wake))
	k = binary.BigEndian.AppendUint16(k, uint16(len(id)))
	return append(k, id...)
}

// wakeOfKey returns the key that holds id's current wake time, so that its
// wake-index entry can be found from the id alone.
func wakeOfKey(p uint16, id string) []byte {
	return idPrefix(p, kindWakeOf, id)
}

func metaKey(name string) []byte {
	return append([]byte{byte(metaPartition >> 8), byte(metaPartition & 0xFF), kindMeta}, name...)
}

// parseIDKey splits p | kind | len | id | rest.
func parseIDKey(kind byte, k []byte) (p uint16, id string, rest []byte, ok bool) {
	const head = keyPartitionBytes + 1 + keyIDLenBytes
	if len(k) < head || k[keyPartitionBytes] != kind {
		return 0, "", nil, false
	}
	n := int(binary.BigEndian.Uint16(k[keyPartitionBytes+1:]))
	if len(k) < head+n {
		return 0, "", nil, false
	}
	return binary.BigEndian.Uint16(k), string(k[head : head+n]), k[head+n:], true
}

// parseEventKey returns the partition, id and sequence of an event key.
func parseEventKey(k []byte) (p uint16, id string, seq uint64, ok bool) {
	p, id, rest, ok := parseIDKey(kindEvent, k)
	if !ok || len(rest) != keySeqBytes {
		return 0, "", 0, false
	}
	return p, id, binary.BigEndian.Uint64(rest), true
}

// snapshotRef is what a snapshot key says: whose snapshot, at which
// sequence, and which chunk (chunked false for a snapshot in one value).
type snapshotRef struct {
	p       uint16
	id      string
	seq     uint64
	chunk   uint32
	chunked bool
}

// parseSnapshotKey parses either form of snapshot key.
func parseSnapshotKey(k []byte) (snapshotRef, bool) {
	p, id, rest, ok := parseIDKey(kindSnapshot, k)
	if !ok {
		return snapshotRef{}, false
	}
	r := snapshotRef{p: p, id: id}
	switch len(rest) {
	case keySeqBytes:
	case keySeqBytes + keyChunkBytes:
		r.chunk, r.chunked = binary.BigEndian.Uint32(rest[keySeqBytes:]), true
	default:
		return snapshotRef{}, false
	}
	r.seq = binary.BigEndian.Uint64(rest)
	return r, true
}

// parseWakeKey returns the partition, wake time and id of a wake-index key.
func parseWakeKey(k []byte) (p uint16, wake int64, id string, ok bool) {
	const head = keyPartitionBytes + 1 + keyWakeBytes + keyIDLenBytes
	if len(k) < head || k[keyPartitionBytes] != kindWake {
		return 0, 0, "", false
	}
	n := int(binary.BigEndian.Uint16(k[head-keyIDLenBytes:]))
	w := binary.BigEndian.Uint64(k[keyPartitionBytes+1:])
	if len(k) != head+n || w > math.MaxInt64 {
		return 0, 0, "", false
	}
	return binary.BigEndian.Uint16(k), int64(w), string(k[head:]), true
}

// parseWakeOfKey returns the partition and id of a wake-of key.
func parseWakeOfKey(k []byte) (p uint16, id string, ok bool) {
	p, id, rest, ok := parseIDKey(kindWakeOf, k)
	return p, id, ok && len(rest) == 0
}

// describeKey renders a key for humans, in error messages.
func describeKey(k []byte) string {
	if p, id, seq, ok := parseEventKey(k); ok {
		return fmt.Sprintf("event %q #%d (partition %d)", id, seq, p)
	}
	if r, ok := parseSnapshotKey(k); ok {
		if r.chunked {
			return fmt.Sprintf("snapshot %q @%d chunk %d (partition %d)", r.id, r.seq, r.chunk, r.p)
		}
		return fmt.Sprintf("snapshot %q @%d (partition %d)", r.id, r.seq, r.p)
	}
	if p, wake, id, ok := parseWakeKey(k); ok {
		return fmt.Sprintf("wake %q at %d (partition %d)", id, wake, p)
	}
	if p, id, ok := parseWakeOfKey(k); ok {
		return fmt.Sprintf("wake time of %q (partition %d)", id, p)
	}
	return fmt.Sprintf("key %x", k)
}
