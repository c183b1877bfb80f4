package persistence

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// backupPrefetchEntries is how many values a full backup reads ahead.
const backupPrefetchEntries = 256

// BackupOptions say what a backup holds.
type BackupOptions struct {
	// Partition is the one partition to back up, or AllPartitions. The
	// zero value is partition 0: callers say AllPartitions explicitly.
	Partition int
	// Since is 0 for a full backup, or the Version of an earlier backup of
	// the same journal: the backup then holds only what changed after it
	// (and the names of the keys that did not). Parent is that backup's
	// checksum, recorded so that a restore can check the chain.
	Since  uint64
	Parent string
	// Node names the node in the header.
	Node string
	// Now stamps the header; nil is time.Now.
	Now func() time.Time
	// Progress, when set, is called with the bytes written as they are
	// written.
	Progress func(bytes int64)
}

// Backup writes a consistent backup of the journal to w while it keeps
// serving: one read transaction covers the whole backup, so it holds every
// commit up to its version and none after, across partitions. Writes go on
// meanwhile; the journal only keeps the versions the backup reads until it
// ends.
func (j *Journal) Backup(w io.Writer, opts BackupOptions) (BackupInfo, error) {
	if err := j.beginRead(); err != nil {
		return BackupInfo{}, err
	}
	defer j.reads.Done()
	return writeBackup(j.db, j.partitions, w, opts)
}

// BackupDir writes a backup of the journal in dir, which no process may
// have open: it is opened read-only. A directory in use fails with
// ErrDirectoryLocked.
func BackupDir(dir string, w io.Writer, opts BackupOptions) (BackupInfo, error) {
	r, err := OpenReader(dir)
	if err != nil {
		return BackupInfo{}, err
	}
	info, err := writeBackup(r.db, r.partitions, w, opts)
	return info, errors.Join(err, r.Close())
}

func writeBackup(db *badger.DB, partitions int, w io.Writer, opts BackupOptions) (BackupInfo, error) {
	if opts.Partition != AllPartitions && (opts.Partition < 0 || opts.Partition >= partitions) {
		return BackupInfo{}, fmt.Errorf("%w: partition %d, the journal has partitions 0..%d",
			ErrInvalidRequest, opts.Partition, partitions-1)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	txn := db.NewTransaction(false)
	defer txn.Discard()
	h := BackupHeader{Format: backupFormat, JournalFormat: int(formatVersion), Node: opts.Node,
		Partitions: partitions, Partition: opts.Partition, Version: txn.ReadTs(), Since: opts.Since,
		Parent: opts.Parent, CreatedAt: now().UTC()}
	if h.Since > h.Version {
		return BackupInfo{}, fmt.Errorf("%w: since version %d is ahead of this journal (version %d): "+
			"the earlier backup was taken from another node or data directory", ErrBackupChain, h.Since, h.Version)
	}
	bw, err := newBackupWriter(w, h, opts.Progress)
	if err != nil {
		return BackupInfo{}, err
	}
	full := h.Since == 0
	it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: full, PrefetchSize: backupPrefetchEntries,
		Prefix: h.rangePrefix()})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		key := item.Key()
		if item.Version() <= h.Since {
			if err := bw.frame(key, nil, true); err != nil {
				return BackupInfo{}, err
			}
			continue
		}
		if err := item.Value(func(v []byte) error { return bw.frame(key, v, false) }); err != nil {
			return BackupInfo{}, err
		}
	}
	info, err := bw.finish()
	info.Header = h
	return info, err
}

// Reader reads a journal directory that no process has open, without
// writing to it. Its LoadSnapshot and Replay behave as the Journal's.
type Reader struct {
	db         *badger.DB
	partitions int
}

// OpenReader opens the journal in dir read-only. A directory in use by a
// running node fails with ErrDirectoryLocked; one that was not closed
// cleanly (a node that crashed) with ErrNotClosedCleanly, since reading
// it needs the recovery that only a read-write open does.
func OpenReader(dir string) (*Reader, error) {
	opts := DefaultOptions().withDefaults()
	db, err := badger.Open(opts.badgerOptions(dir).WithReadOnly(true))
	switch {
	case err == nil:
	case strings.Contains(err.Error(), "Cannot acquire directory lock"):
		return nil, fmt.Errorf("open journal %s: %w", dir, ErrDirectoryLocked)
	case errors.Is(err, badger.ErrTruncateNeeded), strings.Contains(err.Error(), "truncate"):
		return nil, fmt.Errorf("open journal %s: %w", dir, ErrNotClosedCleanly)
	default:
		return nil, fmt.Errorf("open journal %s read-only: %w", dir, err)
	}
	partitions, err := readFormat(db)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open journal %s: %w", dir, err), db.Close())
	}
	return &Reader{db: db, partitions: partitions}, nil
}

// ErrNotClosedCleanly refuses a read-only open of a journal whose last
// node did not stop cleanly.
var ErrNotClosedCleanly = errors.New("the journal was not closed cleanly " +
	"(start orderd on it once and stop it, which recovers it)")

// readFormat returns the partition count of a journal, refusing a database
// without our format marker.
func readFormat(db *badger.DB) (partitions int, err error) {
	err = db.View(func(txn *badger.Txn) error {
		if _, err := txn.Get(formatV1Key); err == nil {
			return fmt.Errorf("%w: journal format 1", ErrFormat)
		}
		item, err := txn.Get(formatKey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("%w: no journal format marker (not a journal, or an empty one)", ErrFormat)
		}
		if err != nil {
			return fmt.Errorf("read format marker: %w", err)
		}
		return item.Value(func(v []byte) error {
			if len(v) != formatValueBytes || v[0] != formatVersion {
				return fmt.Errorf("%w: format marker %x, this build reads journal format %d", ErrFormat, v, formatVersion)
			}
			partitions = int(binary.BigEndian.Uint16(v[1:]))
			return nil
		})
	})
	return partitions, err
}

// Close closes the reader.
func (r *Reader) Close() error {
	if err := r.db.Close(); err != nil {
		return fmt.Errorf("close journal: %w", err)
	}
	return nil
}

// Partitions returns the journal's partition count.
func (r *Reader) Partitions() int { return r.partitions }

// LoadSnapshot returns id's latest snapshot, as Journal.LoadSnapshot.
func (r *Reader) LoadSnapshot(id string) (seq uint64, state []byte, err error) {
	if err := checkID(id); err != nil {
		return 0, nil, err
	}
	return loadSnapshot(r.db, uint16(Partition(id, r.partitions)), id)
}

// Replay calls fn with id's events after after, as Journal.Replay.
func (r *Reader) Replay(id string, after uint64, fn func(seq uint64, event []byte) error) error {
	if err := checkID(id); err != nil {
		return err
	}
	return replay(r.db, uint16(Partition(id, r.partitions)), id, after, fn)
}
