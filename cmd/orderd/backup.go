package main

import (
	"fmt"
	"io"
	"sync/atomic"

	"github.com/orderengine/orderengine/gateway"
	"github.com/orderengine/orderengine/persistence"
)

// journalBackups serves the gateway's backup route from the node's
// journal. The gateway may serve before the journal is open: until use
// is called, a backup is answered 503 unavailable.
type journalBackups struct {
	journal atomic.Pointer[persistence.Journal]
	node    string
}

var _ gateway.Backups = (*journalBackups)(nil)

// use makes backups read j.
func (b *journalBackups) use(j *persistence.Journal) { b.journal.Store(j) }

func (b *journalBackups) Backup(req gateway.BackupRequest) (func(io.Writer) error, error) {
	j := b.journal.Load()
	if j == nil {
		return nil, fmt.Errorf("%w: the journal is not open yet", gateway.ErrUnavailable)
	}
	if n := j.Partitions(); req.Partition >= n {
		return nil, &gateway.InvalidFieldError{Field: "partition",
			Detail: fmt.Sprintf("this node has partitions 0 to %d", n-1)}
	}
	opts := persistence.BackupOptions{Partition: req.Partition, Since: req.Since, Parent: req.Parent, Node: b.node}
	return func(w io.Writer) error {
		_, err := j.Backup(w, opts)
		return err
	}, nil
}
