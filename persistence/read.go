package persistence

import (
	"errors"
	"fmt"
	"math"

	"github.com/dgraph-io/badger/v4"
)

// replayPrefetchEntries is how many values Badger reads ahead during Replay.
const replayPrefetchEntries = 256

// LoadSnapshot returns id's latest snapshot, or 0 and nil when it has none.
// A snapshot that fails its checks is a *CorruptRecordError.
func (j *Journal) LoadSnapshot(id string) (seq uint64, state []byte, err error) {
	if err := checkID(id); err != nil {
		return 0, nil, err
	}
	if err := j.beginRead(); err != nil {
		return 0, nil, err
	}
	defer j.reads.Done()
	err = j.db.View(func(txn *badger.Txn) error {
		seq, state, err = readSnapshot(txn, id)
		return err
	})
	if err != nil {
		return 0, nil, fmt.Errorf("load snapshot of %q: %w", id, err)
	}
	return seq, state, nil
}

func readSnapshot(txn *badger.Txn, id string) (seq uint64, state []byte, err error) {
	key := snapshotKey(id)
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	err = item.Value(func(v []byte) error {
		seq, state, err = decodeSnapshot(key, v)
		return err
	})
	return seq, state, err
}

// Replay calls fn with each durable event of id after sequence after, in
// order, and returns the first error fn returns, unwrapped. The events it
// reads must be contiguous: a gap, or a record that fails its checks, is a
// *CorruptRecordError and fn sees nothing past it. event is fn's to keep.
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
	if after == math.MaxUint64 {
		return nil
	}
	var fnErr error
	err := j.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{
			PrefetchValues: true,
			PrefetchSize:   replayPrefetchEntries,
			Prefix:         idPrefix(kindEvent, id),
		})
		defer it.Close()
		prev := uint64(0)
		for it.Seek(eventKey(id, after+1)); it.Valid(); it.Next() {
			item := it.Item()
			var seq uint64
			var event []byte
			if err := item.Value(func(v []byte) (err error) {
				seq, event, err = decodeEvent(item.Key(), v)
				return err
			}); err != nil {
				return err
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

// loadSequences reads id's last event sequence and snapshot sequence. Events
// covered by a snapshot may be compacted away, so the last sequence is the
// larger of the two.
func (j *Journal) loadSequences(id string) (last, snap uint64, err error) {
	err = j.db.View(func(txn *badger.Txn) error {
		var err error
		if snap, _, err = readSnapshot(txn, id); err != nil {
			return err
		}
		last, err = lastEventSeq(txn, id)
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("load sequences of %q: %w", id, err)
	}
	return max(last, snap), snap, nil
}

func lastEventSeq(txn *badger.Txn, id string) (uint64, error) {
	it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: idPrefix(kindEvent, id)})
	defer it.Close()
	it.Seek(eventKey(id, math.MaxUint64))
	if !it.Valid() {
		return 0, nil
	}
	key := it.Item().Key()
	_, seq, ok := parseEventKey(key)
	if !ok {
		return 0, &CorruptRecordError{Key: clone(key), Reason: "malformed event key"}
	}
	return seq, nil
}
