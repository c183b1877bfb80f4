package persistence

import (
	"encoding/binary"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Snapshots up to snapshotChunkBytes (record included) are one value under
// the key without a chunk suffix. Larger ones, up to snapshotBytesMax, are
// cut into chunk values of at most snapshotChunkBytes each, written in one
// transaction with the chunk number as a key suffix. Every chunk is its own
// checksummed record whose payload starts with
//
//	chunk u32 | chunks u32 | state length u64
//
// so a chunk stored under another chunk's key, a missing chunk and a
// truncated snapshot are all caught. Chunk values stay far above the value
// threshold, so Badger keeps them in its value log and only a pointer per
// chunk counts against its transaction size; and at 1 MiB none exceeds the
// smallest value-log file (valueLogBytesMin), which bounds a single value.
const (
	snapshotChunkBytes = 1 << 20
	chunkHeaderBytes   = 4 + 4 + 8
	chunkDataBytes     = snapshotChunkBytes - recordHeaderBytes - recordCRCBytes - chunkHeaderBytes
	snapshotChunksMax  = (snapshotBytesMax + chunkDataBytes - 1) / chunkDataBytes
)

// A chunk can never be larger than the value log accepts.
var _ = [valueLogBytesMin - snapshotChunkBytes]struct{}{}

// snapshotChunks returns how many chunk keys a state of n bytes needs, or 0
// when it is stored as one value.
func snapshotChunks(n int) int {
	if recordHeaderBytes+n+recordCRCBytes <= snapshotChunkBytes {
		return 0
	}
	return (n + chunkDataBytes - 1) / chunkDataBytes
}

// snapshotKeys returns the keys a snapshot of id at seq takes with chunks
// chunk keys (0: one key).
func snapshotKeys(p uint16, id string, seq uint64, chunks int) [][]byte {
	if chunks == 0 {
		return [][]byte{snapshotKey(p, id, seq)}
	}
	keys := make([][]byte, chunks)
	for i := range keys {
		keys[i] = snapshotChunkKey(p, id, seq, uint32(i))
	}
	return keys
}

// encodeSnapshot returns the values of a snapshot of state at seq, in the
// order of snapshotKeys.
func encodeSnapshot(seq uint64, state []byte) [][]byte {
	chunks := snapshotChunks(len(state))
	if chunks == 0 {
		return [][]byte{encodeRecord(nil, recordKindSnap, seq, state)}
	}
	values := make([][]byte, chunks)
	for i := range values {
		data := state[i*chunkDataBytes : min(len(state), (i+1)*chunkDataBytes)]
		head := make([]byte, 0, chunkHeaderBytes+len(data))
		head = binary.BigEndian.AppendUint32(head, uint32(i))
		head = binary.BigEndian.AppendUint32(head, uint32(chunks))
		head = binary.BigEndian.AppendUint64(head, uint64(len(state)))
		values[i] = encodeRecord(nil, recordKindChunk, seq, append(head, data...))
	}
	return values
}

// latestSnapshot finds id's latest snapshot key with a reverse seek of it,
// an iterator in reverse over at least id's partition. It reads no value.
func latestSnapshot(it *badger.Iterator, p uint16, id string) (ref snapshotRef, found bool, err error) {
	prefix := idPrefix(p, kindSnapshot, id)
	it.Seek(snapshotKeyMax(p, id))
	if !it.ValidForPrefix(prefix) {
		return snapshotRef{}, false, nil
	}
	key := it.Item().Key()
	ref, ok := parseSnapshotKey(key)
	if !ok || ref.seq == 0 {
		return snapshotRef{}, false, &CorruptRecordError{Key: clone(key), Reason: "malformed snapshot key"}
	}
	return ref, true, nil
}

// readSnapshot returns id's latest snapshot, or 0 and nil when it has none.
func readSnapshot(txn *badger.Txn, p uint16, id string) (seq uint64, state []byte, err error) {
	it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: idPrefix(p, kindSnapshot, id)})
	ref, found, err := latestSnapshot(it, p, id)
	it.Close()
	if err != nil || !found {
		return 0, nil, err
	}
	if ref.chunked {
		state, err = readChunks(txn, p, id, ref.seq)
		return ref.seq, state, err
	}
	key := snapshotKey(p, id, ref.seq)
	item, err := txn.Get(key)
	if err != nil {
		return 0, nil, err
	}
	err = item.Value(func(v []byte) error {
		seq, state, err = decodeSnapshot(key, v)
		return err
	})
	if err == nil && seq != ref.seq {
		return 0, nil, &CorruptRecordError{Key: key,
			Reason: fmt.Sprintf("record sequence %d under key sequence %d", seq, ref.seq)}
	}
	return seq, state, err
}

// readChunks reassembles a chunked snapshot, checking every chunk and that
// none is missing.
func readChunks(txn *badger.Txn, p uint16, id string, seq uint64) ([]byte, error) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: snapshotKey(p, id, seq)})
	defer it.Close()
	var c chunkReader
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		key := item.KeyCopy(nil)
		if err := item.Value(func(v []byte) error { return c.add(key, v, seq) }); err != nil {
			return nil, err
		}
	}
	if c.next == 0 || c.next != c.count {
		return nil, &CorruptRecordError{Key: snapshotChunkKey(p, id, seq, c.next),
			Reason: fmt.Sprintf("snapshot chunk missing: %d of %d chunks stored", c.next, c.count)}
	}
	return c.state, nil
}

// chunkReader checks chunks arriving in key order and copies their data.
type chunkReader struct {
	next  uint32 // the chunk expected next
	count uint32 // chunks in the snapshot, from chunk 0
	total uint64 // state length, from chunk 0
	state []byte
}

func (c *chunkReader) add(key, value []byte, seq uint64) error {
	fail := func(format string, args ...any) error {
		return &CorruptRecordError{Key: key, Reason: fmt.Sprintf(format, args...)}
	}
	ref, ok := parseSnapshotKey(key)
	if !ok || !ref.chunked {
		return fail("a single-value snapshot key among chunks")
	}
	if ref.chunk != c.next { // name the missing chunk's key
		missing := binary.BigEndian.AppendUint32(clone(key[:len(key)-keyChunkBytes]), c.next)
		return &CorruptRecordError{Key: missing,
			Reason: fmt.Sprintf("snapshot chunk missing: chunk %d follows chunk %d", ref.chunk, int64(c.next)-1)}
	}
	recSeq, payload, err := decodeRecord(value, recordKindChunk)
	switch {
	case err != nil:
		return fail("%s", err.Error())
	case recSeq != seq:
		return fail("record sequence %d under key sequence %d", recSeq, seq)
	case len(payload) < chunkHeaderBytes:
		return fail("chunk shorter than its header")
	}
	index := binary.BigEndian.Uint32(payload)
	count := binary.BigEndian.Uint32(payload[4:])
	total := binary.BigEndian.Uint64(payload[8:])
	data := payload[chunkHeaderBytes:]
	if c.next == 0 {
		if count < 2 || count > snapshotChunksMax || total > snapshotBytesMax ||
			uint64(snapshotChunks(int(total))) != uint64(count) {
			return fail("chunk header says %d chunks of a %d-byte state", count, total)
		}
		c.count, c.total = count, total
		c.state = make([]byte, 0, total)
	}
	wantData := uint64(chunkDataBytes)
	if index == c.count-1 {
		wantData = c.total - uint64(c.count-1)*chunkDataBytes
	}
	if index != ref.chunk || count != c.count || total != c.total || uint64(len(data)) != wantData {
		return fail("chunk header %d/%d of %d bytes with %d data bytes disagrees with chunk %d/%d of %d bytes",
			index, count, total, len(data), ref.chunk, c.count, c.total)
	}
	c.state = append(c.state, data...)
	c.next++
	return nil
}

// isSnapshotKeyOf reports whether key is one of the keys a snapshot of id at
// seq with chunks chunk keys takes.
func isSnapshotKeyOf(key []byte, p uint16, id string, seq uint64, chunks int) bool {
	ref, ok := parseSnapshotKey(key)
	if !ok || ref.p != p || ref.id != id || ref.seq != seq {
		return false
	}
	if chunks == 0 {
		return !ref.chunked
	}
	return ref.chunked && int64(ref.chunk) < int64(chunks)
}
