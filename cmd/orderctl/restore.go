package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/orderengine/orderengine/persistence"
)

const restoreUsage = `Usage:
  orderctl restore -i FILE [-i INCREMENTAL ...] -data DIR [-force]

Restores into DIR, which must be empty or absent (-force restores over an
existing data directory's journal, replacing the backed-up key range). Give a
full backup first and then its incrementals in the order they were taken.
Every file is read whole and checked (structure, every record, the SHA-256)
and the chain is checked before anything is written: a damaged or truncated
file restores nothing, and a restore that fails leaves DIR as it was (empty
or absent). Start orderd with -data DIR afterwards; it keeps its own admin
token (give -admin-token, or it generates one).

Examples:
  orderctl restore -i full.backup -data /var/lib/orderd-new
  orderctl restore -i full.backup -i inc1.backup -i inc2.backup -data ./restored
`

var restoreCmd = command{
	name:    "restore",
	summary: "restore a backup (a full one and its incrementals) into a new data directory",
	usage:   restoreUsage,
	run:     runRestore,
}

func runRestore(_ context.Context, e *env, args []string) error {
	fs := e.flags("restore", restoreUsage)
	var files stringList
	fs.Var(&files, "i", "backup file; repeat for incrementals, oldest first (required)")
	data := fs.String("data", "", "data directory to restore into (required; empty or absent)")
	force := fs.Bool("force", false, "restore over a data directory that holds a journal")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	switch {
	case len(files) == 0:
		return errors.New("restore: -i FILE is required")
	case *data == "":
		return errors.New("restore: -data DIR is required")
	}
	entries, err := os.ReadDir(*data)
	absent := errors.Is(err, os.ErrNotExist)
	if err != nil && !absent {
		return fmt.Errorf("restore: %w", err)
	}
	if len(entries) > 0 && !*force {
		return fmt.Errorf("restore: %s is not empty; restore into an empty or absent directory "+
			"(or give -force to replace the backed-up range of the journal it holds)", *data)
	}
	var total int64
	for _, name := range files {
		st, err := os.Stat(name)
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		total += st.Size()
	}
	start := time.Now()
	bar := newProgress(e.stderr, 2*total, "restore", true) // checked, then applied
	info, err := persistence.Restore(journalDir(*data), files, persistence.RestoreOptions{Force: *force, Progress: bar.add})
	bar.done()
	if err != nil {
		if absent {
			err = errors.Join(err, os.RemoveAll(*data))
		}
		return fmt.Errorf("restore: %w; nothing was restored", err)
	}
	last := info.Backups[len(info.Backups)-1]
	took := time.Since(start)
	fmt.Fprintf(e.stdout, "restored %d backup file(s) into %s: journal version %d, %d actors, %s in %s (%s)\n",
		len(files), *data, info.Version, last.Identities, mib(total), took.Round(time.Millisecond), rate(total, took))
	return nil
}
