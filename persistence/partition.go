package persistence

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// Handing a partition to another node moves its key range: the old holder
// releases it (Release), exports it (ExportPartition) and, once the new
// holder has it, drops it (DropPartition); the new holder imports it
// (BeginImport, Add, Finish) and then holds it. Each step refuses a
// partition the journal holds, so nothing writes the range while it moves,
// and marks the partition busy while it works, so that Hold waits for it to
// end and two of them do not overlap.
//
// Every step leaves the journal's memory coherent with the range: cached
// identities of the partition are forgotten after it changes (their
// sequences, snapshots and wake times are read again on their next
// request), compaction does not run on an unheld partition and is waited
// for before the range changes, and Due reads the wake index from Badger
// and lists held partitions only.

// exportPrefetchEntries is how many values Badger reads ahead in an export.
const exportPrefetchEntries = 256

// PartitionInfo describes a partition stream that was exported or
// imported.
type PartitionInfo struct {
	Partition int
	Keys      int64 // keys in the stream
	Bytes     int64 // bytes of those keys and their values
	Chunks    int
	// Digest is the SHA-256 of every entry in key order (partition_chunk.go),
	// independent of the chunk size.
	Digest [sha256.Size]byte
}

func partitionPrefix(p uint16) []byte { return []byte{byte(p >> 8), byte(p)} }

// ExportPartition reads partition p's whole key range in one Badger read
// transaction, so at one consistent version, and calls emit with it cut
// into chunks (partition_chunk.go) of at most chunkBytes (1 MiB when 0 or
// less; 1 KiB..64 MiB), except that an entry too large for one gets a
// chunk of its own. The last chunk carries the stream's totals and digest,
// which it also returns. An empty partition is one empty last chunk.
//
// The chunk passed to emit is valid only during the call; emit runs
// inside the read, which pins that version in Badger, so it should hand
// the chunk on rather than wait long, and an error it returns ends the
// export, wrapped. p must not be held (ErrHeld): the export belongs after
// Release, when nothing writes the range. Hold waits for it to end.
func (j *Journal) ExportPartition(p int, chunkBytes int, emit func(chunk []byte) error) (PartitionInfo, error) {
	if chunkBytes <= 0 {
		chunkBytes = chunkBytesDefault
	}
	if chunkBytes < chunkBytesMin || chunkBytes > chunkBytesMax {
		return PartitionInfo{}, fmt.Errorf("%w: chunk of %d bytes, want %d..%d",
			ErrInvalidRequest, chunkBytes, chunkBytesMin, chunkBytesMax)
	}
	if err := j.markBusy(p, "export"); err != nil {
		return PartitionInfo{}, err
	}
	defer j.unmarkBusy(p)
	if err := j.beginRead(); err != nil {
		return PartitionInfo{}, err
	}
	defer j.reads.Done()
	e := newChunkEncoder(uint16(j.partitions), uint16(p), chunkBytes, emit)
	var emitErr error
	e.emit = func(c []byte) error {
		if err := emit(c); err != nil {
			emitErr = err
			return err
		}
		return nil
	}
	err := j.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: exportPrefetchEntries,
			Prefix: partitionPrefix(uint16(p))})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			if err := item.Value(func(v []byte) error { return e.add(item.Key(), v) }); err != nil {
				return err
			}
		}
		return e.flush(true)
	})
	if emitErr != nil {
		return PartitionInfo{}, fmt.Errorf("export partition %d: emit: %w", p, emitErr)
	}
	if err != nil {
		return PartitionInfo{}, fmt.Errorf("export partition %d: %w", p, err)
	}
	return PartitionInfo{Partition: p, Keys: int64(e.digest.keys), Bytes: int64(e.digest.bytes),
		Chunks: int(e.seq), Digest: e.digest.sum()}, nil
}

// PartitionImport receives one partition stream into an empty partition:
// BeginImport, then Add for each chunk in order, then Finish, which checks
// that what is stored is exactly the stream the exporter sent. Its methods
// are safe for concurrent use, but chunks must come in order.
type PartitionImport struct {
	j *Journal
	p int

	mu      sync.Mutex
	crcs    []uint32 // the CRC of each chunk added, for repeats
	lastKey []byte   // the stream's last key so far
	digest  *streamDigest
	last    *partitionChunk // the last chunk, once added
	ended   bool            // Finish or Abort ran
}

// BeginImport starts an import into partition p, which must not be held
// (ErrHeld) and must hold no key (ErrPartitionNotEmpty: a stream cut
// short, by a crash on either side, is dropped with DropPartition and
// sent again). The partition stays busy, so Hold refuses it, until Finish
// or Abort.
func (j *Journal) BeginImport(p int) (*PartitionImport, error) {
	if err := j.markBusy(p, "import"); err != nil {
		return nil, err
	}
	imp, err := j.beginImport(p)
	if err != nil {
		j.unmarkBusy(p)
		return nil, err
	}
	return imp, nil
}

func (j *Journal) beginImport(p int) (*PartitionImport, error) {
	if err := j.beginRead(); err != nil {
		return nil, err
	}
	defer j.reads.Done()
	j.awaitPartitionCompaction(uint16(p))
	var first []byte
	err := j.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: partitionPrefix(uint16(p))})
		defer it.Close()
		if it.Rewind(); it.Valid() {
			first = it.Item().KeyCopy(nil)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("import partition %d: %w", p, err)
	}
	if first != nil {
		return nil, fmt.Errorf("%w: import partition %d: it holds %s; drop it first", ErrPartitionNotEmpty, p, describeKey(first))
	}
	j.forgetPartition(uint16(p))
	return &PartitionImport{j: j, p: p, digest: newStreamDigest()}, nil
}

// Add checks chunk and writes its keys durably (synced) before it
// returns. It refuses, writing nothing, a chunk that is damaged, of
// another partition or partition count, out of order, or holding a key
// that is not a journal key of this partition whose value checks
// (ErrImportMismatch). A chunk added again, as a sender's retry sends it,
// is accepted and changes nothing; a different chunk at a place already
// taken is refused. A refusal of the volume's storage reserve
// (ErrStorageFull) writes nothing either and the same chunk may be added
// again; a failed synced write stops the journal (ErrJournalFailed).
func (imp *PartitionImport) Add(chunk []byte) error {
	imp.mu.Lock()
	defer imp.mu.Unlock()
	j, p := imp.j, imp.p
	if imp.ended {
		return fmt.Errorf("%w: import of partition %d has ended", ErrInvalidRequest, p)
	}
	c, err := decodeChunk(chunk)
	if err != nil {
		return fmt.Errorf("%w: partition %d: %w", ErrImportMismatch, p, err)
	}
	switch next := uint32(len(imp.crcs)); {
	case int(c.partition) != p || int(c.partitions) != j.partitions:
		return fmt.Errorf("%w: chunk of partition %d of %d, importing %d of %d",
			ErrImportMismatch, c.partition, c.partitions, p, j.partitions)
	case c.seq < next && imp.crcs[c.seq] == c.crc:
		return nil // a repeat of a chunk already written
	case c.seq < next:
		return fmt.Errorf("%w: partition %d: chunk %d differs from the chunk %d added before",
			ErrImportMismatch, p, c.seq, c.seq)
	case imp.last != nil:
		return fmt.Errorf("%w: partition %d: chunk %d after the last chunk %d", ErrImportMismatch, p, c.seq, imp.last.seq)
	case c.seq > next:
		return fmt.Errorf("%w: partition %d: chunk %d, want chunk %d", ErrImportMismatch, p, c.seq, next)
	}
	if err := imp.check(&c); err != nil {
		return err
	}
	if err := imp.write(&c, len(chunk)); err != nil {
		return err
	}
	imp.crcs = append(imp.crcs, c.crc)
	_ = c.each(func(key, value []byte) error {
		imp.lastKey = append(imp.lastKey[:0], key...)
		imp.digest.add(key, value)
		return nil
	})
	if c.last {
		c.body = nil // the caller's bytes; only the totals are kept
		imp.last = &c
	}
	return nil
}

// check refuses a chunk with a key that is not a journal key of the
// partition, a value that fails its record checks, a key not after the
// stream's previous one, or, on the last chunk, totals that differ from
// what the stream carried.
func (imp *PartitionImport) check(c *partitionChunk) error {
	prev := imp.lastKey
	d := *imp.digest
	d.h = nil // counted here, hashed once written
	err := c.each(func(key, value []byte) error {
		if len(prev) > 0 && bytes.Compare(key, prev) <= 0 {
			return fmt.Errorf("key %x out of order after %x", key, prev)
		}
		prev = key
		d.keys, d.bytes = d.keys+1, d.bytes+uint64(len(key)+len(value))
		return checkImportKey(uint16(imp.p), imp.j.partitions, key, value)
	})
	if err != nil {
		return fmt.Errorf("%w: partition %d chunk %d: %w", ErrImportMismatch, imp.p, c.seq, err)
	}
	if c.last && (c.keys != d.keys || c.bytes != d.bytes) {
		return fmt.Errorf("%w: partition %d: the stream carried %d keys of %d bytes, its last chunk says %d of %d",
			ErrImportMismatch, imp.p, d.keys, d.bytes, c.keys, c.bytes)
	}
	return nil
}

// checkImportKey refuses a key that is not one the journal writes in
// partition p, of an identity whose partition is p, or whose value fails
// its checks.
func checkImportKey(p uint16, partitions int, key, value []byte) error {
	if len(key) < keyPartitionBytes+1 || uint16(key[0])<<8|uint16(key[1]) != p {
		return fmt.Errorf("key %x outside partition %d", key, p)
	}
	var id string
	ok := false
	switch key[keyPartitionBytes] {
	case kindEvent:
		_, id, _, ok = parseEventKey(key)
	case kindSnapshot:
		var ref snapshotRef
		ref, ok = parseSnapshotKey(key)
		id = ref.id
	case kindWake:
		_, _, id, ok = parseWakeKey(key)
		if ok && len(value) != 0 {
			return fmt.Errorf("%s: value of %d bytes, want none", describeKey(key), len(value))
		}
	case kindWakeOf:
		_, id, ok = parseWakeOfKey(key)
	}
	if !ok || id == "" || len(id) > idBytesMax {
		return fmt.Errorf("key %x is not a journal key", key)
	}
	if Partition(id, partitions) != int(p) {
		return fmt.Errorf("%s: the identity belongs to partition %d", describeKey(key), Partition(id, partitions))
	}
	return checkValue(key, value)
}

// write stores the chunk's entries in synced Badger writes, after the
// storage reserve admits them. Badger's WriteBatch splits them into
// transactions as its limits need; a crash between those leaves part of a
// chunk, which Finish would not accept and a new import (after a drop)
// replaces.
func (imp *PartitionImport) write(c *partitionChunk, size int) error {
	j := imp.j
	if c.entries == 0 {
		return nil
	}
	if err := j.beginRead(); err != nil {
		return err
	}
	defer j.reads.Done()
	if err := j.admitBatch(size); err != nil {
		return fmt.Errorf("import partition %d chunk %d: %w", imp.p, c.seq, err)
	}
	wb := j.db.NewWriteBatch()
	defer wb.Cancel()
	err := c.each(func(key, value []byte) error { return wb.Set(key, value) })
	if err == nil {
		err = wb.Flush()
	}
	if err != nil {
		return j.failStop(fmt.Errorf("import partition %d chunk %d: %w", imp.p, c.seq, err))
	}
	return nil
}

// Finish ends the import: it refuses unless the last chunk was added and
// the partition's stored range, read again, has exactly the stream's keys,
// bytes and digest (ErrImportMismatch), and returns the stream's info.
// Either way the import has ended and the partition may be held or
// dropped; after a refusal, drop it and import again.
func (imp *PartitionImport) Finish() (PartitionInfo, error) {
	imp.mu.Lock()
	defer imp.mu.Unlock()
	j, p := imp.j, imp.p
	if imp.ended {
		return PartitionInfo{}, fmt.Errorf("%w: import of partition %d has ended", ErrInvalidRequest, p)
	}
	imp.ended = true
	defer j.unmarkBusy(p)
	if imp.last == nil {
		return PartitionInfo{}, fmt.Errorf("%w: partition %d: %d chunks added, the last one is missing",
			ErrImportMismatch, p, len(imp.crcs))
	}
	want := PartitionInfo{Partition: p, Keys: int64(imp.last.keys), Bytes: int64(imp.last.bytes),
		Chunks: len(imp.crcs), Digest: imp.last.digest}
	if got := imp.digest.sum(); got != want.Digest {
		return PartitionInfo{}, fmt.Errorf("%w: partition %d: the chunks received digest to %x, the stream says %x",
			ErrImportMismatch, p, got, want.Digest)
	}
	stored, snaps, err := j.digestPartition(uint16(p))
	j.forgetPartition(uint16(p))
	if err != nil {
		return PartitionInfo{}, err
	}
	if stored.keys != imp.last.keys || stored.bytes != imp.last.bytes || stored.sum() != want.Digest {
		return PartitionInfo{}, fmt.Errorf("%w: partition %d stores %d keys of %d bytes, the stream %d of %d, "+
			"or their digests differ", ErrImportMismatch, p, stored.keys, stored.bytes, want.Keys, want.Bytes)
	}
	if !j.opts.RetainEvents {
		// The exporter may not have compacted everything its snapshots
		// cover; once the partition is held, compaction does.
		j.compactMu.Lock()
		for id, seq := range snaps {
			j.compactDue[id] = max(j.compactDue[id], seq)
		}
		j.compactMu.Unlock()
	}
	return want, nil
}

// Abort ends an import without checking it, leaving what it wrote: drop
// the partition before importing it again.
func (imp *PartitionImport) Abort() {
	imp.mu.Lock()
	defer imp.mu.Unlock()
	if !imp.ended {
		imp.ended = true
		imp.j.forgetPartition(uint16(imp.p))
		imp.j.unmarkBusy(imp.p)
	}
}

// digestPartition reads partition p's range as an export would and
// returns its totals, and the latest snapshot sequence of each identity
// with one.
func (j *Journal) digestPartition(p uint16) (*streamDigest, map[string]uint64, error) {
	if err := j.beginRead(); err != nil {
		return nil, nil, err
	}
	defer j.reads.Done()
	d := newStreamDigest()
	snaps := make(map[string]uint64)
	err := j.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: exportPrefetchEntries,
			Prefix: partitionPrefix(p)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			if ref, ok := parseSnapshotKey(item.Key()); ok {
				snaps[ref.id] = max(snaps[ref.id], ref.seq)
			}
			if err := item.Value(func(v []byte) error { d.add(item.Key(), v); return nil }); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read partition %d back: %w", p, err)
	}
	return d, snaps, nil
}

// dropKeysMax bounds the keys one DropPartition deletes per pass: each
// pass reads them, checks the storage reserve for their tombstones and
// deletes them in synced writes.
const dropKeysMax = 100_000

// DropPartition deletes every key of partition p, in synced writes, and
// forgets what the journal's memory held of it. p must not be held
// (ErrHeld). It writes tombstones, a bounded number per pass, rather than
// calling Badger's DropPrefix, because DropPrefix refuses every concurrent
// write (ErrBlockedWrites) while it runs, which would fail the writer's
// commits for the partitions this node still holds and stop the journal.
// A crash part way leaves part of the range; dropping again finishes it.
// It is refused with ErrStorageFull, having deleted what it had room for,
// below the storage reserve.
func (j *Journal) DropPartition(p int) error {
	if err := j.markBusy(p, "drop"); err != nil {
		return err
	}
	defer j.unmarkBusy(p)
	if err := j.beginRead(); err != nil {
		return err
	}
	defer j.reads.Done()
	j.awaitPartitionCompaction(uint16(p))
	defer j.forgetPartition(uint16(p))
	for {
		n, err := j.dropPass(uint16(p))
		if err != nil || n < dropKeysMax {
			return err
		}
	}
}

// dropPass deletes up to dropKeysMax keys of p and returns how many.
func (j *Journal) dropPass(p uint16) (int, error) {
	var keys [][]byte
	var size uint64
	err := j.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: partitionPrefix(p)})
		defer it.Close()
		for it.Rewind(); it.Valid() && len(keys) < dropKeysMax; it.Next() {
			k := it.Item().KeyCopy(nil)
			keys = append(keys, k)
			size += uint64(len(k) + entryOverheadBytes)
		}
		return nil
	})
	if err != nil || len(keys) == 0 {
		if err != nil {
			err = fmt.Errorf("drop partition %d: %w", p, err)
		}
		return 0, err
	}
	if err := j.admitBatch(int(size)); err != nil {
		return 0, fmt.Errorf("drop partition %d: %w", p, err)
	}
	wb := j.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range keys {
		if err = wb.Delete(k); err != nil {
			break
		}
	}
	if err == nil {
		err = wb.Flush()
	}
	if err != nil {
		return 0, j.failStop(fmt.Errorf("drop partition %d: %w", p, err))
	}
	return len(keys), nil
}
