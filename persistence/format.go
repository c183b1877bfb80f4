package persistence

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// formatValueBytes is the format marker's value: version u8 | partitions u16.
const formatValueBytes = 1 + 2

// checkFormat refuses a database written with another key layout or
// another partition count, and marks a new one with ours. Format 1 is named
// in its refusal, because that is what an operator who upgraded orderd on
// an old data directory meets.
func checkFormat(db *badger.DB, partitions int) error {
	return db.Update(func(txn *badger.Txn) error {
		if _, err := txn.Get(formatV1Key); err == nil {
			return fmt.Errorf("%w: the data directory was written by an older orderd (journal format 1); "+
				"this build reads journal format %d, has no migration and has to be started on an empty data directory",
				ErrFormat, formatVersion)
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("read format marker: %w", err)
		}
		item, err := txn.Get(formatKey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return markNew(txn, partitions)
		}
		if err != nil {
			return fmt.Errorf("read format marker: %w", err)
		}
		return item.Value(func(v []byte) error {
			if len(v) != formatValueBytes || v[0] != formatVersion {
				return fmt.Errorf("%w: format marker %x, this build reads journal format %d", ErrFormat, v, formatVersion)
			}
			if have := int(binary.BigEndian.Uint16(v[1:])); have != partitions {
				return fmt.Errorf("%w: the data directory has %d partitions and the options ask for %d; "+
					"the count is fixed when a data directory is created", ErrPartitionCount, have, partitions)
			}
			return nil
		})
	})
}

// markNew writes the format marker into a database with no keys. One with
// keys but no marker was not written by a journal, and is refused rather
// than mixed with ours.
func markNew(txn *badger.Txn, partitions int) error {
	it := txn.NewIterator(badger.IteratorOptions{})
	it.Rewind()
	var stray []byte
	if it.Valid() {
		stray = it.Item().KeyCopy(nil)
	}
	it.Close()
	if stray != nil {
		return fmt.Errorf("%w: the data directory holds %s but no journal format marker", ErrFormat, describeKey(stray))
	}
	v := []byte{formatVersion}
	v = binary.BigEndian.AppendUint16(v, uint16(partitions))
	return txn.Set(formatKey, v)
}
