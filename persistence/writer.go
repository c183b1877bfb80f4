package persistence

import (
	"errors"
	"fmt"
	"time"
)

// writeLoop is the single writer: it takes a batch from the queue, commits
// it in one synced transaction and completes its requests, until Close has
// begun and the queue is empty.
func (j *Journal) writeLoop() {
	defer close(j.writerDone)
	for {
		batch, stale, n, closing := j.takeBatch()
		switch failed := j.failure(); {
		case failed != nil:
			j.finish(stale, failed)
			j.finish(batch, failed)
		default:
			j.finish(stale, ErrEarlierAppendFailed)
			if len(batch) > 0 {
				j.commit(batch)
			}
		}
		j.mu.Lock()
		j.settled = n
		j.settledCond.Broadcast()
		j.mu.Unlock()
		if len(batch) == 0 && closing {
			return
		}
	}
}

// takeBatch waits for work and removes from the head of the queue what fits
// in one batch, which it numbers (n; the writer marks it settled once
// its requests are). Requests whose identity had a commit fail after they were
// queued come back as stale.
//
// With FlushWait set it lingers for company, but only under load: when
// requests were already waiting as the previous commit ended. A writer that
// was idle commits a lone request at once.
func (j *Journal) takeBatch() (batch, stale []*request, n uint64, closing bool) {
	idle := false
	for {
		j.mu.Lock()
		if len(j.queue) > 0 || j.closing {
			break
		}
		j.mu.Unlock()
		idle = true
		<-j.wake
	}
	if j.opts.FlushWait > 0 && !idle && !j.closing && !j.batchFullLocked() {
		j.mu.Unlock()
		j.linger()
		j.mu.Lock()
	}
	defer j.mu.Unlock()
	j.batches++
	entries, bytes, taken := 0, 0, 0
	for _, r := range j.queue {
		st := j.ids[r.id]
		if r.kind != kindSnapshotRequest && j.staleLocked(st, r) {
			stale = append(stale, r)
			taken++
			continue
		}
		n := r.entries()
		if len(batch) > 0 && (entries+n > j.opts.BatchEntries || bytes+r.bytes > j.opts.BatchBytes) {
			break
		}
		j.stageLocked(st, r)
		for _, b := range r.born {
			j.stageLocked(j.ids[b.id], b)
		}
		batch = append(batch, r)
		entries, bytes, taken = entries+n, bytes+r.bytes, taken+1
	}
	rest := copy(j.queue, j.queue[taken:])
	clear(j.queue[rest:])
	j.queue = j.queue[:rest]
	j.space.Broadcast()
	if rest > 0 {
		j.signal() // the next turn must not wait for a submitter
	}
	return batch, stale, j.batches, j.closing
}

// staleLocked reports whether an append must fail unwritten because an
// earlier request of its identity, or of one it brings to life, failed
// after it was queued.
func (j *Journal) staleLocked(st *identity, r *request) bool {
	if r.gen != st.gen {
		return true
	}
	for _, b := range r.born {
		if b.gen != j.ids[b.id].gen {
			return true
		}
	}
	return false
}

// stageLocked records in r the wake time and snapshot it replaces, as the
// requests of id before it in this batch leave them, and moves the
// identity's staged state past r. Every batch starts again from the durable
// state, because the previous one has been settled by then.
func (j *Journal) stageLocked(st *identity, r *request) {
	if st.stagedBatch != j.batches {
		st.stagedBatch = j.batches
		st.stagedSnap, st.stagedChunks, st.stagedWake = st.snapDurable, st.snapChunks, st.wake
	}
	switch r.kind {
	case kindAppendRequest:
		r.prevWake, st.stagedWake = st.stagedWake, r.wake
	case kindSnapshotRequest:
		r.prevSnap, r.prevChunks = st.stagedSnap, st.stagedChunks
		st.stagedSnap, st.stagedChunks = r.seq, snapshotChunks(len(r.state))
	case kindDeleteRequest:
		r.prevWake = st.stagedWake
		st.stagedSnap, st.stagedChunks, st.stagedWake = 0, 0, 0
	}
}

// linger waits up to FlushWait, returning early once a full batch is queued.
func (j *Journal) linger() {
	t := time.NewTimer(j.opts.FlushWait)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return
		case <-j.wake:
			j.mu.Lock()
			full := j.closing || j.batchFullLocked()
			j.mu.Unlock()
			if full {
				return
			}
		}
	}
}

func (j *Journal) batchFullLocked() bool {
	entries, bytes := 0, 0
	for _, r := range j.queue {
		entries, bytes = entries+r.entries(), bytes+r.bytes
		if entries >= j.opts.BatchEntries || bytes >= j.opts.BatchBytes {
			return true
		}
	}
	return false
}

// commit writes batch in as few synced transactions as Badger's size limit
// allows, never splitting one request, and completes every request. A
// refusal before anything is staged (the volume below its storage reserve,
// see admitBatch, or a request that cannot be written) fails what is left
// of the batch and sets its identities back, and the journal goes on. A
// synced write that fails stops the journal (failStop).
func (j *Journal) commit(batch []*request) {
	bytes := 0
	for _, r := range batch {
		bytes += r.bytes
	}
	if err := j.admitBatch(bytes); err != nil {
		j.finish(batch, err)
		return
	}
	for len(batch) > 0 {
		n, err := j.writeTxn(batch)
		var cf *commitError
		switch {
		case errors.As(err, &cf):
			j.finish(batch, j.failStop(fmt.Errorf("commit journal batch: %w", cf.err)))
			return
		case err != nil:
			err = fmt.Errorf("commit journal batch: %w", err)
			j.log.Error("journal commit failed", "requests", len(batch), "err", err)
			j.finish(batch, err)
			return
		}
		j.finish(batch[:n], nil)
		batch = batch[n:]
	}
}

// commitError is a synced write to Badger that failed, as opposed to a
// request refused before anything was staged: Badger may hold its entries
// in memory, readable, though they are not durable.
type commitError struct{ err error }

func (e *commitError) Error() string { return e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

// failStop stops the journal after a synced write failed with cause, and
// returns the error every request fails with from now on. Like etcd and
// PostgreSQL after a failed fsync, it does not retry: what Badger holds
// may differ from what is durable, and an actor that read it would build
// on events that were never acknowledged. The first call logs and reports
// it (Options.OnFatal); queued requests, blocked submitters and later
// requests and reads all get the error, and the writer and compactor write
// nothing more.
func (j *Journal) failStop(cause error) error {
	j.mu.Lock()
	first := j.failed == nil
	if first {
		j.failed = fmt.Errorf("%w: %w", ErrJournalFailed, cause)
		j.space.Broadcast()
	}
	failed := j.failed
	j.mu.Unlock()
	j.signal()
	if first {
		j.log.Error("journal stopped: a synced commit failed and the state on disk is unknown; "+
			"restart the process to recover from the data directory", "err", failed)
		if j.opts.OnFatal != nil {
			j.opts.OnFatal(failed)
		}
	}
	return failed
}

// failure returns the error of a stopped journal, nil while it works.
func (j *Journal) failure() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.failed
}

// writeTxn commits the longest prefix of batch that fits in one transaction
// and returns its length. Each request's writes are listed and measured
// against Badger's limit before any is staged, so a request is in a
// transaction whole or not at all. A Delete reads its identity's keys from
// what is committed, so it starts a new transaction when an earlier request
// of the same identity is staged in this one.
func (j *Journal) writeTxn(batch []*request) (int, error) {
	txn := j.db.NewTransaction(true)
	defer txn.Discard()
	budget := j.newTxnBudget()
	var staged map[string]struct{} // ids in this txn; built at the first Delete
	entries, bytes, n := 0, 0, 0
	for _, r := range batch {
		if r.kind == kindDeleteRequest && n > 0 {
			if staged == nil {
				staged = make(map[string]struct{}, n)
				for _, s := range batch[:n] {
					staged[s.id] = struct{}{}
				}
			}
			if _, ok := staged[r.id]; ok {
				break
			}
		}
		ops, err := j.requestOps(j.opsBuf[:0], r)
		for _, b := range r.born {
			if err == nil {
				ops, err = j.requestOps(ops, b)
			}
		}
		if err == nil && n == 0 && r.kind == kindDeleteRequest && !budget.fits(ops) {
			ops, err = j.shrinkDelete(r, ops)
		}
		if err != nil {
			return 0, fmt.Errorf("%s: %w", describeRequest(r), err)
		}
		if !budget.fits(ops) {
			j.recycle(ops)
			if n > 0 {
				break // r starts the next transaction
			}
			return 0, fmt.Errorf("%s: %d writes exceed one badger transaction", describeRequest(r), len(ops))
		}
		if err := stageOps(txn, ops); err != nil {
			return 0, fmt.Errorf("stage %s: %w", describeRequest(r), err)
		}
		budget.add(ops)
		j.recycle(ops)
		if staged != nil {
			staged[r.id] = struct{}{}
		}
		entries, bytes, n = entries+r.entries(), bytes+r.bytes, n+1
	}
	if budget.entries == 0 {
		return n, nil // only wake-only appends that changed nothing: no commit to make
	}
	start := time.Now()
	var err error
	if j.beforeCommit != nil {
		err = j.beforeCommit()
	}
	if err == nil {
		err = txn.Commit()
	}
	d := time.Since(start)
	j.stats.flushed(n, entries, bytes, d, err)
	if j.opts.OnFlush != nil {
		j.opts.OnFlush(n, entries, bytes, d, err)
	}
	if err != nil {
		return 0, &commitError{err}
	}
	return n, nil
}

// finish records the outcome of reqs in their identities and calls their
// done functions, outside the lock so that a done may submit again.
func (j *Journal) finish(reqs []*request, err error) {
	if len(reqs) == 0 {
		return
	}
	j.mu.Lock()
	for _, r := range reqs {
		j.settleLocked(r, err)
		for _, b := range r.born {
			j.settleLocked(b, err)
			j.untrackBornLocked(b)
		}
	}
	j.mu.Unlock()
	for _, r := range reqs {
		r.done(err)
	}
}

func (j *Journal) settleLocked(r *request, err error) {
	st := j.ids[r.id]
	st.inflight--
	if r.kind == kindDeleteRequest {
		st.deletes--
		j.deleteSettled(r)
	}
	switch {
	case err == nil && r.kind == kindSnapshotRequest:
		st.snapDurable, st.snapChunks = r.seq, snapshotChunks(len(r.state))
		if !j.opts.RetainEvents {
			j.compactMu.Lock()
			j.compactDue[r.id] = max(j.compactDue[r.id], r.seq)
			j.compactMu.Unlock()
		}
	case err == nil && r.kind == kindDeleteRequest:
		// No snapshot is admitted while a Delete is pending, and those
		// before it have settled, so none is pending now: a failed one may
		// have set snapPending back to the old history's.
		st.durable, st.snapDurable, st.snapChunks, st.wake, st.snapPending = 0, 0, 0, 0, 0
	case err == nil:
		st.durable, st.wake = r.last(), r.wake
	case r.kind == kindSnapshotRequest:
		st.snapPending = st.snapDurable
	case r.gen == st.gen:
		// The first failure of this generation: what was pending is gone.
		st.pending = st.durable
		st.snapPending = st.snapDurable
		st.gen++
	}
	j.evictLocked()
}

// untrackBornLocked drops a new identity from the cache once its first
// append has settled, unless something else is in flight for it. A new
// order is next written when it is paid or expires, minutes later if
// ever; cached, the new identities of a busy node would push out the
// SKUs that write all the time, each of which would then be read back
// from Badger on its next append.
func (j *Journal) untrackBornLocked(b *request) {
	st, ok := j.ids[b.id]
	if !ok || st.inflight != 0 || st.deletes != 0 {
		return
	}
	j.idsLRU.Remove(st.used)
	delete(j.ids, b.id)
	j.evictions++
}

// evictScanMax bounds the least recently used identities one eviction
// looks at for one with nothing in flight.
const evictScanMax = 8

// evictLocked drops least recently used identities with nothing in flight
// while more than idsMax are tracked.
func (j *Journal) evictLocked() {
	e := j.idsLRU.Back()
	for scanned := 0; len(j.ids) > j.idsMax && e != nil && scanned < evictScanMax; scanned++ {
		prev := e.Prev()
		id := e.Value.(string)
		if st := j.ids[id]; st.inflight == 0 {
			j.idsLRU.Remove(e)
			delete(j.ids, id)
			j.evictions++
		}
		e = prev
	}
}
