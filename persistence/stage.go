package persistence

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Badger refuses a transaction once its entries reach MaxBatchCount or
// their estimated size reaches MaxBatchSize, and it checks again at commit
// with one more entry, its commit mark, which the per-write check does not
// count. The writer measures each request with Badger's own estimate and
// keeps this much in reserve for the mark, so that Badger never refuses
// part of a request.
const (
	txnReserveEntries = 2
	txnReserveBytes   = 64
	// Badger's estimate of one write: the key with its 8-byte version plus 2
	// (counted as 10), 2 bytes of meta, and the value, or a 12-byte pointer
	// when the value goes to the value log.
	entryOverheadBytes = 10 + 2
	valuePointerBytes  = 12
	// opsKeptMax bounds the writer's reused list of writes: a list grown by
	// a rare large request is dropped rather than kept.
	opsKeptMax = 4096
)

// op is one write of a request: a set, or a delete when del is true.
type op struct {
	key   []byte
	value []byte
	del   bool
}

// txnBudget mirrors Badger's transaction size accounting.
type txnBudget struct {
	entries, bytes       int64 // staged so far
	entriesMax, bytesMax int64
	threshold            int64 // values this large go to the value log
}

func (j *Journal) newTxnBudget() txnBudget {
	return txnBudget{
		entriesMax: j.db.MaxBatchCount() - txnReserveEntries,
		bytesMax:   j.db.MaxBatchSize() - txnReserveBytes,
		threshold:  j.opts.ValueThresholdBytes,
	}
}

func (b *txnBudget) cost(ops []op) (entries, bytes int64) {
	for _, o := range ops {
		v := int64(len(o.value))
		if v >= b.threshold {
			v = valuePointerBytes
		}
		bytes += int64(len(o.key)) + v + entryOverheadBytes
	}
	return int64(len(ops)), bytes
}

// fits reports whether ops can join what is staged.
func (b *txnBudget) fits(ops []op) bool {
	n, size := b.cost(ops)
	return b.entries+n <= b.entriesMax && b.bytes+size < b.bytesMax
}

func (b *txnBudget) add(ops []op) {
	n, size := b.cost(ops)
	b.entries, b.bytes = b.entries+n, b.bytes+size
}

// recycle keeps ops for the writer's next request, without the keys and
// values it references.
func (j *Journal) recycle(ops []op) {
	clear(ops)
	if cap(ops) <= opsKeptMax {
		j.opsBuf = ops[:0]
	}
}

func stageOps(txn *badger.Txn, ops []op) error {
	for _, o := range ops {
		var err error
		if o.del {
			err = txn.Delete(o.key)
		} else {
			err = txn.Set(o.key, o.value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// requestOps appends r's writes to ops. A Delete reads its identity's keys
// from what is committed.
func (j *Journal) requestOps(ops []op, r *request) ([]op, error) {
	switch r.kind {
	case kindAppendRequest:
		for i, e := range r.events {
			seq := r.seq + uint64(i)
			ops = append(ops, op{key: eventKey(r.p, r.id, seq), value: encodeRecord(nil, recordKindEvent, seq, e)})
		}
		switch {
		case r.seq == 1:
			// The identity's first append (its history starts at 1 only
			// when nothing of it is stored): write its wake-time key even
			// for no wake time, so that the key's presence tells whether
			// the identity exists (see loadStored).
			ops = wakeOps(ops, r.p, r.id, r.prevWake, r.wake)
			if r.wake == 0 && r.prevWake == 0 {
				ops = append(ops, op{key: wakeOfKey(r.p, r.id), value: make([]byte, wakeValueBytes)})
			}
		case r.wake != r.prevWake:
			ops = wakeOps(ops, r.p, r.id, r.prevWake, r.wake)
		}
	case kindSnapshotRequest:
		chunks := snapshotChunks(len(r.state))
		if r.prevSnap != 0 {
			for _, k := range snapshotKeys(r.p, r.id, r.prevSnap, r.prevChunks) {
				if !isSnapshotKeyOf(k, r.p, r.id, r.seq, chunks) { // else overwritten below
					ops = append(ops, op{key: k, del: true})
				}
			}
		}
		values := encodeSnapshot(r.seq, r.state)
		for i, k := range snapshotKeys(r.p, r.id, r.seq, chunks) {
			ops = append(ops, op{key: k, value: values[i]})
		}
	case kindDeleteRequest:
		j.awaitCompaction(r)
		var err error
		if ops, err = j.deleteOps(ops, r.p, r.id); err != nil {
			return nil, err
		}
	}
	return ops, nil
}

// wakeOps appends the writes that move id's wake time from prev to next
// (either may be 0, for none). The identity's wake-time key stays, with 0
// for none: it marks the identity as stored until Delete removes it.
func wakeOps(ops []op, p uint16, id string, prev, next int64) []op {
	if prev != 0 {
		ops = append(ops, op{key: wakeKey(p, prev, id), del: true})
	}
	if next == 0 {
		return append(ops, op{key: wakeOfKey(p, id), value: make([]byte, wakeValueBytes)})
	}
	return append(ops,
		op{key: wakeKey(p, next, id), value: []byte{}},
		op{key: wakeOfKey(p, id), value: binary.BigEndian.AppendUint64(nil, uint64(next))})
}

// deleteOps appends deletes of every key of id: its events in ascending
// order first, then its snapshot keys and its wake keys.
func (j *Journal) deleteOps(ops []op, p uint16, id string) ([]op, error) {
	err := j.db.View(func(txn *badger.Txn) error {
		for _, kind := range []byte{kindEvent, kindSnapshot} {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: idPrefix(p, kind, id)})
			for it.Rewind(); it.Valid(); it.Next() {
				ops = append(ops, op{key: it.Item().KeyCopy(nil), del: true})
			}
			it.Close()
		}
		wake, found, err := readWake(txn, p, id)
		if err != nil {
			return err
		}
		if wake != 0 {
			ops = append(ops, op{key: wakeKey(p, wake, id), del: true})
		}
		if found {
			ops = append(ops, op{key: wakeOfKey(p, id), del: true})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read keys of %q to delete: %w", id, err)
	}
	return ops, nil
}

// readWake returns id's stored wake time, 0 for none, and whether its
// wake-time key exists, which it does for every identity with anything
// stored.
func readWake(txn *badger.Txn, p uint16, id string) (wake int64, found bool, err error) {
	key := wakeOfKey(p, id)
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	err = item.Value(func(v []byte) error {
		if len(v) != wakeValueBytes || binary.BigEndian.Uint64(v) > 1<<63-1 {
			return &CorruptRecordError{Key: clone(key), Reason: fmt.Sprintf("wake time of %d bytes: %x", len(v), v)}
		}
		wake = int64(binary.BigEndian.Uint64(v))
		return nil
	})
	return wake, true, err
}

// shrinkDelete makes a Delete fit in one transaction by deleting its
// identity's oldest events in transactions of their own, never its newest
// event: what is left is a history with a late start, which Replay refuses
// as a gap, not a shorter history that would look whole.
func (j *Journal) shrinkDelete(r *request, ops []op) ([]op, error) {
	for {
		budget := j.newTxnBudget()
		if budget.fits(ops) {
			return ops, nil
		}
		events := 0
		for events < len(ops) && isEventKey(ops[events].key) {
			events++
		}
		if events <= 1 {
			return nil, fmt.Errorf("delete of %q: %d writes exceed one badger transaction", r.id, len(ops))
		}
		take := 0
		for take < events-1 && budget.fits(ops[take:take+1]) {
			budget.add(ops[take : take+1])
			take++
		}
		if take == 0 {
			return nil, fmt.Errorf("delete of %q: a key exceeds one badger transaction", r.id)
		}
		if err := j.db.Update(func(txn *badger.Txn) error { return stageOps(txn, ops[:take]) }); err != nil {
			return nil, &commitError{fmt.Errorf("delete oldest events of %q: %w", r.id, err)}
		}
		j.log.Info("journal deleted the oldest events of a large identity first", "id", r.id, "events", take)
		var err error
		if ops, err = j.deleteOps(ops[:0], r.p, r.id); err != nil {
			return nil, err
		}
	}
}

func isEventKey(k []byte) bool {
	_, _, _, ok := parseEventKey(k)
	return ok
}

// describeRequest names a request in error messages.
func describeRequest(r *request) string {
	switch r.kind {
	case kindSnapshotRequest:
		return fmt.Sprintf("snapshot of %q at %d", r.id, r.seq)
	case kindDeleteRequest:
		return fmt.Sprintf("delete of %q", r.id)
	default:
		return fmt.Sprintf("append to %q at %d", r.id, r.seq)
	}
}
