package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/orderengine/orderengine/persistence"
)

// openSource opens what inspect and verify read: a stopped node's data
// directory, or a backup (restored into a temporary directory first). The
// returned close removes that directory.
func openSource(e *env, data string, backups []string) (*persistence.Reader, func() error, error) {
	switch {
	case (data == "") == (len(backups) == 0):
		return nil, nil, errors.New("give either -data DIR (a stopped node's data directory) or -i FILE (a backup)")
	case data != "":
		dir, err := existingJournal(data)
		if err != nil {
			return nil, nil, err
		}
		r, err := persistence.OpenReader(dir)
		switch {
		case errors.Is(err, persistence.ErrDirectoryLocked):
			return nil, nil, fmt.Errorf("the data directory %s is in use by a running orderd; stop it, "+
				"or take a backup with orderctl backup -from http://ADDR -token TOKEN -o FILE and give it with -i FILE", data)
		case err != nil:
			return nil, nil, err
		}
		return r, r.Close, nil
	}
	tmp, err := os.MkdirTemp("", "orderctl-")
	if err != nil {
		return nil, nil, err
	}
	var total int64
	for _, name := range backups {
		if st, err := os.Stat(name); err == nil {
			total += st.Size()
		}
	}
	bar := newProgress(e.stderr, 2*total, "read backup", true)
	_, err = persistence.Restore(tmp, backups, persistence.RestoreOptions{Progress: bar.add})
	bar.done()
	if err != nil {
		return nil, nil, errors.Join(err, os.RemoveAll(tmp))
	}
	r, err := persistence.OpenReader(tmp)
	if err != nil {
		return nil, nil, errors.Join(err, os.RemoveAll(tmp))
	}
	return r, func() error { return errors.Join(r.Close(), os.RemoveAll(tmp)) }, nil
}

// closeWith joins the error of closing c to err.
func closeWith(err *error, c func() error) {
	*err = errors.Join(*err, c())
}
