package persistence

import (
	"fmt"
	"math"

	"github.com/dgraph-io/badger/v4"
)

// replayPrefetchEntries is how many values Badger reads ahead during Replay.
const replayPrefetchEntries = 256

// LoadSnapshot returns id's latest snapshot, or 0 and nil when it has none.
// A snapshot that fails its checks, or a chunked one missing a chunk, is a
// *CorruptRecordError.
func (j *Journal) LoadSnapshot(id string) (seq uint64, state []byte, err error) {
	if err := checkID(id); err != nil {
		return 0, nil, err
	}
	if err := j.beginRead(); err != nil {
		return 0, nil, err
	}
	defer j.reads.Done()
	return loadSnapshot(j.db, j.partition(id), id)
}

func loadSnapshot(db *badger.DB, p uint16, id string) (seq uint64, state []byte, err error) {
	err = db.View(func(txn *badger.Txn) error {
		seq, state, err = readSnapshot(txn, p, id)
		return err
	})
	if err != nil {
		return 0, nil, fmt.Errorf("load snapshot of %q: %w", id, err)
	}
	return seq, state, nil
}

// Replay calls fn with each durable event of id after sequence after, in
// order, and returns the first error fn returns, unwrapped. The events it
// reads must be contiguous and must start no later than one past the larger
// of after and the latest snapshot: a gap, or a record that fails its
// checks, is a *CorruptRecordError and fn sees nothing past it. event is
// fn's to keep.
//
// Events that a snapshot covers may have been compacted away, so recovery
// is LoadSnapshot followed by Replay(id, snapshotSeq, fn).
func (j *Journal) Replay(id string, after uint64, fn func(seq uint64, event []byte) error) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := j.beginRead(); err != nil {
		return err
	}
	defer j.reads.Done()
	return replay(j.db, j.partition(id), id, after, fn)
}

func replay(db *badger.DB, p uint16, id string, after uint64, fn func(seq uint64, event []byte) error) error {
	if after == math.MaxUint64 {
		return nil
	}
	var fnErr error
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{
			PrefetchValues: true,
			PrefetchSize:   replayPrefetchEntries,
			Prefix:         idPrefix(p, kindEvent, id),
		})
		defer it.Close()
		prev := uint64(0)
		for it.Seek(eventKey(p, id, after+1)); it.Valid(); it.Next() {
			item := it.Item()
			var seq uint64
			var event []byte
			if err := item.Value(func(v []byte) (err error) {
				seq, event, err = decodeEvent(item.Key(), v)
				return err
			}); err != nil {
				return err
			}
			if prev == 0 && seq != after+1 {
				if err := checkHistoryStart(txn, p, id, after, seq, item.KeyCopy(nil)); err != nil {
					return err
				}
			}
			if prev != 0 && seq != prev+1 {
				return &CorruptRecordError{Key: item.KeyCopy(nil),
					Reason: fmt.Sprintf("sequence gap: %d follows %d", seq, prev)}
			}
			prev = seq
			if err := fn(seq, event); err != nil {
				fnErr = err
				return err
			}
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("replay %q after %d: %w", id, after, err)
	}
	return nil
}

// checkHistoryStart refuses a first event beyond one past after and the
// latest snapshot: the events between are neither stored nor covered.
// Compaction only deletes covered events, so this is lost history, such as
// a Delete of a large identity cut short by a crash.
func checkHistoryStart(txn *badger.Txn, p uint16, id string, after, first uint64, key []byte) error {
	it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: idPrefix(p, kindSnapshot, id)})
	ref, _, err := latestSnapshot(it, p, id)
	it.Close()
	if err != nil {
		return err
	}
	if first > max(after, ref.seq)+1 {
		return &CorruptRecordError{Key: key,
			Reason: fmt.Sprintf("sequence gap: history resumes at %d after %d (latest snapshot %d)", first, after, ref.seq)}
	}
	return nil
}

// stored is what Badger holds about an identity's position.
type stored struct {
	last       uint64 // last event sequence, or the snapshot's if larger
	snap       uint64 // latest snapshot's sequence, 0 for none
	snapChunks int    // its chunk keys; 0 when it is one value
	wake       int64
}

// loadStored reads id's sequences from its keys alone, with two reverse
// seeks of one iterator, plus its wake time's 8-byte inline value. Events
// covered by a snapshot may be compacted away, so the last sequence is the
// larger of the two. Its cost does not depend on the identity's history or
// snapshot size.
func (j *Journal) loadStored(id string) (s stored, err error) {
	p := j.partition(id)
	err = j.db.View(func(txn *badger.Txn) error {
		// Every stored identity has its wake-time key (written with its
		// first append, removed by Delete). A point read answers "never
		// stored" from Badger's bloom filters, which is what nearly every
		// cache miss of a busy node is: a new order's first append.
		var found bool
		if s.wake, found, err = readWake(txn, p, id); err != nil || !found {
			return err
		}
		it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: []byte{byte(p >> 8), byte(p)}})
		defer it.Close()
		it.Seek(eventKey(p, id, math.MaxUint64))
		if it.ValidForPrefix(idPrefix(p, kindEvent, id)) {
			key := it.Item().Key()
			_, _, seq, ok := parseEventKey(key)
			if !ok {
				return &CorruptRecordError{Key: clone(key), Reason: "malformed event key"}
			}
			s.last = seq
		}
		ref, found, err := latestSnapshot(it, p, id)
		if err != nil {
			return err
		}
		if found {
			s.snap = ref.seq
			if ref.chunked {
				s.snapChunks = int(ref.chunk) + 1
			}
		}
		return nil
	})
	if err != nil {
		return stored{}, fmt.Errorf("load sequences of %q: %w", id, err)
	}
	s.last = max(s.last, s.snap)
	return s, nil
}
