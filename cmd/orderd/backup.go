package main

import (
	"fmt"
	"io"

	"github.com/orderengine/orderengine/gateway"
	"github.com/orderengine/orderengine/persistence"
)

// journalBackups serves the gateway's backup route from the node's journal.
type journalBackups struct {
	journal *persistence.Journal
	node    string
}

var _ gateway.Backups = journalBackups{}

func (b journalBackups) Backup(req gateway.BackupRequest) (func(io.Writer) error, error) {
	if n := b.journal.Partitions(); req.Partition >= n {
		return nil, &gateway.InvalidFieldError{Field: "partition",
			Detail: fmt.Sprintf("this node has partitions 0 to %d", n-1)}
	}
	opts := persistence.BackupOptions{Partition: req.Partition, Since: req.Since, Parent: req.Parent, Node: b.node}
	return func(w io.Writer) error {
		_, err := b.journal.Backup(w, opts)
		return err
	}, nil
}
