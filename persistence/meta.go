package persistence

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Meta records are small named values the journal's users keep next to
// their data, in the same database and so the same backups: the cluster
// keeps its partition table and node identity there. They live in the meta
// partition, outside every identity partition (so no export, import or drop
// touches them), under metaUserPrefix, which keeps every name apart from
// the journal's own records ("format").
const (
	metaUserPrefix    = "user/"
	metaNameBytesMax  = 64
	metaValueBytesMax = 1 << 20
)

// checkMetaName refuses a name that is empty, longer than 64 bytes or not
// printable ASCII (space to tilde).
func checkMetaName(name string) error {
	if name == "" || len(name) > metaNameBytesMax {
		return fmt.Errorf("%w: meta name of %d bytes, want 1..%d", ErrInvalidRequest, len(name), metaNameBytesMax)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < ' ' || c > '~' {
			return fmt.Errorf("%w: meta name %q: byte %d is not printable ASCII", ErrInvalidRequest, name, i)
		}
	}
	return nil
}

func userMetaKey(name string) []byte { return metaKey(metaUserPrefix + name) }

// PutMeta stores value under name, replacing what was there, and returns
// once it is durable: in a synced transaction of its own, outside the
// writer's batches. name is 1..64 bytes of printable ASCII and value at
// most 1 MiB (ErrInvalidRequest). It is refused with ErrStorageFull below
// the storage reserve, writing nothing; a failed synced commit stops the
// journal (ErrJournalFailed), as the writer's does.
func (j *Journal) PutMeta(name string, value []byte) error {
	if err := checkMetaName(name); err != nil {
		return err
	}
	if len(value) > metaValueBytesMax {
		return fmt.Errorf("%w: meta value of %d bytes, limit %d", ErrInvalidRequest, len(value), metaValueBytesMax)
	}
	if err := j.beginRead(); err != nil {
		return err
	}
	defer j.reads.Done()
	if err := j.admitBatch(len(value)); err != nil {
		return fmt.Errorf("put meta %q: %w", name, err)
	}
	txn := j.db.NewTransaction(true)
	defer txn.Discard()
	if err := txn.Set(userMetaKey(name), clone(value)); err != nil {
		return fmt.Errorf("put meta %q: %w", name, err)
	}
	if err := txn.Commit(); err != nil {
		return j.failStop(fmt.Errorf("put meta %q: %w", name, err))
	}
	return nil
}

// GetMeta returns the value stored under name (a copy), and whether there
// is one.
func (j *Journal) GetMeta(name string) (value []byte, found bool, err error) {
	if err := checkMetaName(name); err != nil {
		return nil, false, err
	}
	if err := j.beginRead(); err != nil {
		return nil, false, err
	}
	defer j.reads.Done()
	err = j.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(userMetaKey(name))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		value, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("get meta %q: %w", name, err)
	}
	if value == nil && found {
		value = []byte{}
	}
	return value, found, nil
}

// HasData reports whether the journal holds any record of an identity, in
// any partition (its own meta records aside). A node uses it to tell a
// data directory that already served from one that is new.
func (j *Journal) HasData() (bool, error) {
	if err := j.beginRead(); err != nil {
		return false, err
	}
	defer j.reads.Done()
	found := false
	err := j.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		it := txn.NewIterator(opts)
		defer it.Close()
		it.Rewind() // identity keys sort before the meta partition (0xFFFF)
		found = it.Valid() && binary.BigEndian.Uint16(it.Item().Key()) != metaPartition
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("look for data: %w", err)
	}
	return found, nil
}
