package persistence

import (
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
)

const (
	// compactSweepKeysMax bounds how many snapshot keys one pass of the
	// startup sweep reads; the sweep finds identities whose snapshots were
	// written before the last restart.
	compactSweepKeysMax = 1000
	// valueLogGCRunsMax bounds the value-log files one GC tick rewrites.
	valueLogGCRunsMax = 4
	// valueLogGCDiscardRatio: rewrite a value-log file once half of it is garbage.
	valueLogGCDiscardRatio = 0.5
)

// compactLoop deletes events that durable snapshots cover, at most
// CompactKeys per pass, until Close.
func (j *Journal) compactLoop() {
	defer j.loops.Done()
	if j.opts.RetainEvents {
		return
	}
	t := time.NewTicker(j.opts.CompactInterval)
	defer t.Stop()
	sweep := []byte{kindSnapshot}
	for {
		select {
		case <-j.stop:
			return
		case <-t.C:
		}
		if sweep != nil {
			sweep = j.sweepSnapshots(sweep)
		}
		j.compactPass()
	}
}

// sweepSnapshots queues for compaction the identities of up to
// compactSweepKeysMax snapshots from cursor on, and returns where the next
// pass resumes, or nil once every snapshot has been seen.
func (j *Journal) sweepSnapshots(cursor []byte) []byte {
	var next []byte
	err := j.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{kindSnapshot}})
		defer it.Close()
		n := 0
		for it.Seek(cursor); it.Valid(); it.Next() {
			key := it.Item().Key()
			if n == compactSweepKeysMax {
				next = it.Item().KeyCopy(nil)
				return nil
			}
			n++
			id, ok := parseSnapshotKey(key)
			if !ok {
				continue
			}
			seq, _, err := readSnapshot(txn, id)
			if err != nil {
				// Leave the events: a corrupt snapshot must not cost them.
				j.log.Error("journal compaction skips identity", "id", id, "err", err)
				continue
			}
			j.compactMu.Lock()
			j.compactDue[id] = max(j.compactDue[id], seq)
			j.compactMu.Unlock()
		}
		return nil
	})
	if err != nil {
		j.log.Error("journal snapshot sweep failed", "err", err)
		return cursor
	}
	return next
}

// compactPass deletes covered events of due identities, at most
// CompactKeys, in one write batch: one sync per pass, not per identity.
func (j *Journal) compactPass() {
	j.compactMu.Lock()
	due := make(map[string]uint64, len(j.compactDue))
	for id, seq := range j.compactDue {
		due[id] = seq
	}
	j.compactMu.Unlock()
	if len(due) == 0 {
		return
	}
	wb := j.db.NewWriteBatch()
	defer wb.Cancel()
	budget, deleted := j.opts.CompactKeys, 0
	completed := make(map[string]uint64)
	for id, seq := range due {
		if budget == 0 {
			break
		}
		keys, complete, err := j.coveredEvents(id, seq, budget)
		if err != nil {
			j.log.Error("journal compaction failed", "id", id, "err", err)
			break
		}
		for _, k := range keys {
			if err := wb.Delete(k); err != nil {
				j.log.Error("journal compaction failed", "id", id, "err", err)
				return
			}
		}
		budget, deleted = budget-len(keys), deleted+len(keys)
		if complete {
			completed[id] = seq
		}
	}
	if err := wb.Flush(); err != nil {
		j.log.Error("journal compaction failed", "err", err)
		return
	}
	j.stats.add(uint64(deleted), 0)
	j.compactMu.Lock()
	defer j.compactMu.Unlock()
	for id, seq := range completed {
		if j.compactDue[id] == seq { // a newer snapshot keeps it due
			delete(j.compactDue, id)
		}
	}
}

// coveredEvents returns the keys of up to budget events of id with
// sequences at most through, and whether that is all of them.
func (j *Journal) coveredEvents(id string, through uint64, budget int) (keys [][]byte, complete bool, err error) {
	complete = true
	err = j.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: idPrefix(kindEvent, id)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			_, seq, ok := parseEventKey(it.Item().Key())
			if !ok || seq > through {
				return nil
			}
			if len(keys) == budget {
				complete = false
				return nil
			}
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		return nil
	})
	return keys, complete, err
}

// valueLogGCLoop rewrites mostly-garbage value-log files every
// ValueLogGCInterval, a bounded number per tick, until Close.
func (j *Journal) valueLogGCLoop() {
	defer j.loops.Done()
	t := time.NewTicker(j.opts.ValueLogGCInterval)
	defer t.Stop()
	for {
		select {
		case <-j.stop:
			return
		case <-t.C:
		}
		runs := uint64(0)
		for range valueLogGCRunsMax {
			err := j.db.RunValueLogGC(valueLogGCDiscardRatio)
			if err != nil {
				if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
					j.log.Warn("journal value-log gc failed", "err", err)
				}
				break
			}
			runs++
		}
		j.stats.add(0, runs)
	}
}
