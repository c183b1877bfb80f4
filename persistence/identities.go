package persistence

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"
)

// IdentityInfo is what a journal's keys say about one identity.
type IdentityInfo struct {
	ID        string
	Partition int
	// FirstEvent and LastEvent are the sequences of its stored events (0
	// when none is stored); Events how many there are.
	FirstEvent, LastEvent uint64
	Events                uint64
	// Snapshot is the sequence of its latest snapshot, 0 for none.
	Snapshot uint64
	// Wake is its stored wake time (Unix nanoseconds, 0 for none).
	// HasWake is false when the identity has records but no wake-time
	// key, which every stored identity has: the journal would take it for
	// one never stored.
	Wake    int64
	HasWake bool
}

// Identities calls fn for every identity stored in the journal, partition
// by partition and by id within one, until fn returns an error, which it
// returns. It reads keys and wake times only.
func (r *Reader) Identities(fn func(IdentityInfo) error) error {
	for p := 0; p < r.partitions; p++ {
		infos, err := partitionIdentities(r.db, uint16(p))
		if err != nil {
			return err
		}
		for _, info := range infos {
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}

// partitionIdentities gathers the identities of one partition from its
// event, snapshot and wake-time keys.
func partitionIdentities(db *badger.DB, p uint16) ([]IdentityInfo, error) {
	byID := make(map[string]*IdentityInfo)
	get := func(id string) *IdentityInfo {
		info, ok := byID[id]
		if !ok {
			info = &IdentityInfo{ID: id, Partition: int(p)}
			byID[id] = info
		}
		return info
	}
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{byte(p >> 8), byte(p)}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := gatherKey(it.Item(), get); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list identities of partition %d: %w", p, err)
	}
	infos := make([]IdentityInfo, 0, len(byID))
	for _, info := range byID {
		infos = append(infos, *info)
	}
	slices.SortFunc(infos, func(a, b IdentityInfo) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return infos, nil
}

// gatherKey adds what one key says to its identity's info.
func gatherKey(item *badger.Item, get func(id string) *IdentityInfo) error {
	key := item.Key()
	switch key[keyPartitionBytes] {
	case kindEvent:
		_, id, seq, ok := parseEventKey(key)
		if !ok {
			return &CorruptRecordError{Key: item.KeyCopy(nil), Reason: "malformed event key"}
		}
		info := get(id)
		if info.Events == 0 {
			info.FirstEvent = seq
		}
		info.Events++
		info.LastEvent = seq
	case kindSnapshot:
		ref, ok := parseSnapshotKey(key)
		if !ok {
			return &CorruptRecordError{Key: item.KeyCopy(nil), Reason: "malformed snapshot key"}
		}
		info := get(ref.id)
		info.Snapshot = max(info.Snapshot, ref.seq)
	case kindWakeOf:
		_, id, ok := parseWakeOfKey(key)
		if !ok {
			return &CorruptRecordError{Key: item.KeyCopy(nil), Reason: "malformed wake-time key"}
		}
		info := get(id)
		info.HasWake = true
		return item.Value(func(v []byte) error {
			if len(v) != wakeValueBytes {
				return &CorruptRecordError{Key: item.KeyCopy(nil), Reason: "wake time of the wrong size"}
			}
			info.Wake = int64(binary.BigEndian.Uint64(v))
			return nil
		})
	}
	return nil
}

// Identity returns what the journal's keys say about id; found is false
// when it holds nothing of id.
func (r *Reader) Identity(id string) (info IdentityInfo, found bool, err error) {
	if err := checkID(id); err != nil {
		return IdentityInfo{}, false, err
	}
	p := uint16(Partition(id, r.partitions))
	info = IdentityInfo{ID: id, Partition: int(p)}
	get := func(string) *IdentityInfo { found = true; return &info }
	err = r.db.View(func(txn *badger.Txn) error {
		for _, kind := range []byte{kindEvent, kindSnapshot, kindWakeOf} {
			if err := gatherPrefix(txn, idPrefix(p, kind, id), kind == kindWakeOf, get); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return IdentityInfo{}, false, fmt.Errorf("read identity %q: %w", id, err)
	}
	return info, found, nil
}

// gatherPrefix gathers the keys of one of id's ranges. The wake-time key
// is the prefix itself; the others extend it.
func gatherPrefix(txn *badger.Txn, prefix []byte, exact bool, get func(string) *IdentityInfo) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if exact != (len(it.Item().Key()) == len(prefix)) {
			continue
		}
		if err := gatherKey(it.Item(), get); err != nil {
			return err
		}
	}
	return nil
}
