package persistence

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
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
	sweep := kindPrefix(0, kindSnapshot)
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
// compactSweepKeysMax snapshot keys from cursor on, partition by partition,
// and returns where the next pass resumes, or nil once every partition has
// been seen. The sequence is in the key, so the sweep reads no value.
func (j *Journal) sweepSnapshots(cursor []byte) []byte {
	var next []byte
	err := j.db.View(func(txn *badger.Txn) error {
		n := 0
		for p := binary.BigEndian.Uint16(cursor); int(p) < j.partitions; p++ {
			prefix := kindPrefix(p, kindSnapshot)
			it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
			start := prefix
			if bytes.HasPrefix(cursor, prefix) {
				start = cursor
			}
			for it.Seek(start); it.Valid(); it.Next() {
				if n == compactSweepKeysMax {
					next = it.Item().KeyCopy(nil)
					it.Close()
					return nil
				}
				n++
				ref, ok := parseSnapshotKey(it.Item().Key())
				if !ok || ref.chunk != 0 {
					continue // one entry per snapshot; a malformed key is reported on load
				}
				j.compactMu.Lock()
				j.compactDue[ref.id] = max(j.compactDue[ref.id], ref.seq)
				j.compactMu.Unlock()
			}
			it.Close()
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
//
// It writes outside the writer, so it must never delete events of a history
// that a Delete has started again: each identity is marked running, under
// compactMu, only while it is due and no Delete of it is being committed,
// the writer waits for a running identity's pass to end before it reads the
// keys a Delete removes, and the pass checks in its own read that a
// snapshot still covers the events it deletes.
func (j *Journal) compactPass() {
	if j.failure() != nil {
		return
	}
	j.compactMu.Lock()
	due := make(map[string]uint64, len(j.compactDue))
	for id, seq := range j.compactDue {
		due[id] = seq
	}
	j.compactMu.Unlock()
	if len(due) == 0 {
		return
	}
	defer func() {
		j.compactMu.Lock()
		clear(j.compactRunning)
		j.compactIdle.Broadcast()
		j.compactMu.Unlock()
	}()
	budget := j.opts.CompactKeys
	var keys [][]byte
	completed := make(map[string]uint64)
	for id, seq := range due {
		if budget == 0 || !j.markRunning(id) {
			continue
		}
		covered, complete, err := j.coveredEvents(id, seq, budget)
		if err != nil {
			j.log.Error("journal compaction failed", "id", id, "err", err)
			break
		}
		keys = append(keys, covered...)
		budget -= len(covered)
		if complete {
			completed[id] = seq
		}
	}
	if len(keys) > 0 && !j.deleteKeys(keys) {
		return
	}
	j.stats.add(uint64(len(keys)), 0)
	j.compactMu.Lock()
	defer j.compactMu.Unlock()
	for id, seq := range completed {
		if j.compactDue[id] == seq { // a newer snapshot keeps it due
			delete(j.compactDue, id)
		}
	}
}

// deleteKeys deletes keys in one write batch and reports whether it did.
// It writes nothing unless the volume has room for the deletes on top of
// the storage reserve; a failed write stops the journal, as a failed
// commit of the writer does.
func (j *Journal) deleteKeys(keys [][]byte) bool {
	var bytes uint64
	for _, k := range keys {
		bytes += uint64(len(k) + entryOverheadBytes)
	}
	if !j.roomFor(bytes) {
		return false
	}
	wb := j.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range keys {
		if err := wb.Delete(k); err != nil {
			j.log.Error("journal compaction failed", "err", err)
			return false
		}
	}
	if err := wb.Flush(); err != nil {
		j.failStop(fmt.Errorf("compaction: %w", err))
		return false
	}
	return true
}

// markRunning marks id as compacted by this pass, unless a Delete took it
// off the due list since the pass began or is being committed: this pass
// could read the history before the Delete and delete, after it, events of
// the history that follows. A later pass reads after the Delete. For the
// same reason it skips partitions the journal does not hold, which a drop
// or import may change (awaitPartitionCompaction); they stay due.
func (j *Journal) markRunning(id string) bool {
	j.compactMu.Lock()
	defer j.compactMu.Unlock()
	if !j.held.holds(j.partition(id)) {
		return false
	}
	if _, ok := j.compactDue[id]; !ok || j.compactDeleting[id] > 0 {
		return false
	}
	j.compactRunning[id] = struct{}{}
	return true
}

// awaitCompaction takes r's identity off the due list, waits until no pass
// is deleting its events, and keeps passes away from it until r settles.
// The writer calls it before it reads the keys a Delete removes.
func (j *Journal) awaitCompaction(r *request) {
	j.compactMu.Lock()
	defer j.compactMu.Unlock()
	delete(j.compactDue, r.id)
	for {
		if _, ok := j.compactRunning[r.id]; !ok {
			break
		}
		j.compactIdle.Wait()
	}
	if !r.awaited {
		r.awaited = true
		j.compactDeleting[r.id]++
	}
}

// deleteSettled lets passes compact r's identity again once the Delete r
// has committed or failed.
func (j *Journal) deleteSettled(r *request) {
	if !r.awaited {
		return
	}
	j.compactMu.Lock()
	defer j.compactMu.Unlock()
	if j.compactDeleting[r.id]--; j.compactDeleting[r.id] == 0 {
		delete(j.compactDeleting, r.id)
	}
}

// coveredEvents returns the keys of up to budget events of id with
// sequences at most through, and whether that is all of them. It returns
// none unless the same read still holds a snapshot at through or later,
// which a sweep or an entry that a Delete overtook may not.
func (j *Journal) coveredEvents(id string, through uint64, budget int) (keys [][]byte, complete bool, err error) {
	p := j.partition(id)
	complete = true
	err = j.db.View(func(txn *badger.Txn) error {
		snapIt := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: idPrefix(p, kindSnapshot, id)})
		ref, found, err := latestSnapshot(snapIt, p, id)
		snapIt.Close()
		if err != nil || !found || ref.seq < through {
			return err
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: idPrefix(p, kindEvent, id)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			_, _, seq, ok := parseEventKey(it.Item().Key())
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
		// A run copies a value-log file's live values into the current
		// one: room for a whole file on top of the reserve.
		if j.failure() != nil || !j.roomFor(uint64(j.opts.ValueLogFileBytes)) {
			continue
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
