package persistence

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dgraph-io/badger/v4"
)

// ErrRestoreTarget refuses a restore into a directory that holds files.
var ErrRestoreTarget = errors.New("the restore target is not empty")

// RestoreOptions configure Restore.
type RestoreOptions struct {
	// Force restores into a directory that holds a journal: the key range
	// of the backups (every key, or one partition's) is replaced by theirs
	// and the rest is kept. The journal's partition count must match.
	Force bool
	// Progress, when set, is called with the bytes read, first while the
	// files are checked and again while they are applied.
	Progress func(bytes int64)
}

// RestoreInfo describes a restore that succeeded.
type RestoreInfo struct {
	Backups []BackupInfo
	// Version is the journal position, in the source journal's numbering,
	// that the restored data is at: the last backup's version.
	Version uint64
}

// Restore writes the journal that the backup files describe into dir: a
// full backup followed by incrementals, each continuing the one before.
// It reads every file whole and checks it (structure, every record, the
// SHA-256) and the chain before it creates or writes anything, so a
// damaged, truncated or misplaced file changes nothing. dir must be absent
// or empty unless opts.Force is set. If a write fails after that, a
// directory that was absent or empty is left as it was.
func Restore(dir string, files []string, opts RestoreOptions) (RestoreInfo, error) {
	if len(files) == 0 {
		return RestoreInfo{}, fmt.Errorf("%w: no backup files", ErrInvalidRequest)
	}
	var info RestoreInfo
	for _, name := range files {
		bi, err := checkBackupFile(name, opts.Progress)
		if err != nil {
			return RestoreInfo{}, err
		}
		info.Backups = append(info.Backups, bi)
	}
	if err := checkChain(files, info.Backups); err != nil {
		return RestoreInfo{}, err
	}
	last := info.Backups[len(info.Backups)-1].Header
	info.Version = last.Version

	existed, empty, err := dirState(dir)
	if err != nil {
		return RestoreInfo{}, err
	}
	if !empty && !opts.Force {
		return RestoreInfo{}, fmt.Errorf("%w: %s holds files; restore into an empty or absent directory "+
			"(or force a restore over the backed-up range)", ErrRestoreTarget, dir)
	}
	err = restoreInto(dir, files, info.Backups, opts.Progress)
	if err != nil && empty {
		// Leave the directory as it was found: absent or empty.
		var cleanup error
		if existed {
			cleanup = emptyDir(dir)
		} else {
			cleanup = os.RemoveAll(dir)
		}
		err = errors.Join(err, cleanup)
	}
	if err != nil {
		return RestoreInfo{}, err
	}
	return info, nil
}

func checkBackupFile(name string, progress func(int64)) (BackupInfo, error) {
	f, err := os.Open(name)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("open backup: %w", err)
	}
	defer f.Close()
	bi, err := CheckBackup(f, progress)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("%s: %w", name, err)
	}
	return bi, nil
}

// checkChain checks that backups is one full backup followed by
// incrementals, each continuing the one before.
func checkChain(files []string, backups []BackupInfo) error {
	if backups[0].Header.Incremental() {
		return fmt.Errorf("%w: %s is incremental (since version %d); restore starts from a full backup",
			ErrBackupChain, files[0], backups[0].Header.Since)
	}
	for i := 1; i < len(backups); i++ {
		prev, h := backups[i-1], backups[i].Header
		switch {
		case !h.Incremental():
			return fmt.Errorf("%w: %s is a full backup; only the first backup of a restore may be", ErrBackupChain, files[i])
		case h.Partitions != prev.Header.Partitions || h.Partition != prev.Header.Partition:
			return fmt.Errorf("%w: %s covers partition %d of %d, %s partition %d of %d", ErrBackupChain,
				files[i], h.Partition, h.Partitions, files[i-1], prev.Header.Partition, prev.Header.Partitions)
		case h.Since != prev.Header.Version:
			return fmt.Errorf("%w: %s continues version %d, but %s is at version %d; give the backups in the order they were taken",
				ErrBackupChain, files[i], h.Since, files[i-1], prev.Header.Version)
		case h.Parent != "" && h.Parent != prev.Checksum:
			return fmt.Errorf("%w: %s continues another backup than %s (checksums differ)", ErrBackupChain, files[i], files[i-1])
		case h.Parent == "" && h.Node != prev.Header.Node:
			return fmt.Errorf("%w: %s was taken from node %q, %s from %q", ErrBackupChain, files[i], h.Node, files[i-1], prev.Header.Node)
		}
	}
	return nil
}

// dirState reports whether dir exists and whether it is empty (an absent
// directory is empty).
func dirState(dir string) (existed, empty bool, err error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return false, true, nil
	case err != nil:
		return false, false, fmt.Errorf("restore target: %w", err)
	}
	return true, len(entries) == 0, nil
}

func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
	}
	return errors.Join(errs...)
}

// restoreInto opens (creating) the journal in dir and applies the backups
// in order. Writes are not synced one by one; closing Badger flushes them,
// and a restore that did not finish is not a journal anyone may start on.
func restoreInto(dir string, files []string, backups []BackupInfo, progress func(int64)) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create journal directory: %w", err)
	}
	opts := DefaultOptions().withDefaults()
	db, err := openBadger(dir, opts)
	if err != nil {
		return err
	}
	err = checkFormat(db, backups[0].Header.Partitions)
	for i := 0; err == nil && i < len(files); i++ {
		err = applyBackupFile(db, files[i], backups[i], progress)
	}
	if err == nil {
		err = db.Sync()
	}
	if cerr := db.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close journal: %w", cerr))
	}
	return err
}

func applyBackupFile(db *badger.DB, name string, want BackupInfo, progress func(int64)) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("open backup: %w", err)
	}
	defer f.Close()
	if err := applyBackup(db, f, want, progress); err != nil {
		return fmt.Errorf("restore %s: %w", name, err)
	}
	return nil
}

// applyBackup makes the backup's key range of db what the backup says, in
// one pass over both in key order: a key the backup puts is set, one it
// keeps must be there already, and any other key of the range is deleted.
// The file was checked before; its checksum is checked again at its end,
// in case it changed in between, which leaves a partial restore.
func applyBackup(db *badger.DB, r io.Reader, want BackupInfo, progress func(int64)) error {
	br, err := newBackupReader(r, progress)
	if err != nil {
		return err
	}
	txn := db.NewTransaction(false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: br.header.rangePrefix()})
	defer it.Close()
	wb := db.NewWriteBatch()
	defer wb.Cancel()
	it.Rewind()
	for {
		keep, ok, err := br.next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		for ; it.Valid() && bytes.Compare(it.Item().Key(), br.key) < 0; it.Next() {
			if err := wb.Delete(it.Item().KeyCopy(nil)); err != nil {
				return err
			}
		}
		exists := it.Valid() && bytes.Equal(it.Item().Key(), br.key)
		if exists {
			it.Next()
		}
		switch {
		case keep && !exists:
			return fmt.Errorf("%w: the backup keeps %s, which the restored data lacks", ErrBackupChain, describeKey(br.key))
		case !keep:
			if err := wb.Set(clone(br.key), clone(br.value)); err != nil {
				return err
			}
		}
	}
	for ; it.Valid(); it.Next() {
		if err := wb.Delete(it.Item().KeyCopy(nil)); err != nil {
			return err
		}
	}
	if got := br.info(); got.Checksum != want.Checksum {
		return fmt.Errorf("%w: the file changed while it was restored", ErrBackupCorrupt)
	}
	return wb.Flush()
}
