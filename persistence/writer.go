package persistence

import (
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// writeLoop is the single writer: it takes a batch from the queue, commits
// it in one synced transaction and completes its requests, until Close has
// begun and the queue is empty.
func (j *Journal) writeLoop() {
	defer close(j.writerDone)
	for {
		batch, stale, closing := j.takeBatch()
		j.finish(stale, ErrEarlierAppendFailed)
		if len(batch) > 0 {
			j.commit(batch)
		} else if closing {
			return
		}
	}
}

// takeBatch waits for work and removes from the head of the queue what fits
// in one batch. Requests whose identity had a commit fail after they were
// queued come back as stale.
//
// With FlushWait set it lingers for company, but only under load: when
// requests were already waiting as the previous commit ended. A writer that
// was idle commits a lone request at once.
func (j *Journal) takeBatch() (batch, stale []*request, closing bool) {
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
	entries, bytes, taken := 0, 0, 0
	for _, r := range j.queue {
		if st := j.ids[r.id]; !r.snapshot && r.gen != st.gen {
			stale = append(stale, r)
			taken++
			continue
		}
		n := r.entries()
		if len(batch) > 0 && (entries+n > j.opts.BatchEntries || bytes+r.bytes > j.opts.BatchBytes) {
			break
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
	return batch, stale, j.closing
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
// allows, never splitting one request, and completes every request. After a
// failed transaction the rest of the batch fails too: the disk is in
// trouble, and the identities in it have been set back.
func (j *Journal) commit(batch []*request) {
	for len(batch) > 0 {
		n, err := j.writeTxn(batch)
		if err != nil {
			err = fmt.Errorf("commit journal batch: %w", err)
			j.log.Error("journal commit failed", "requests", len(batch), "err", err)
			j.finish(batch, err)
			return
		}
		j.finish(batch[:n], nil)
		batch = batch[n:]
	}
}

// writeTxn commits the longest prefix of batch that fits in one transaction
// and returns its length.
func (j *Journal) writeTxn(batch []*request) (int, error) {
	txn := j.db.NewTransaction(true)
	defer txn.Discard()
	entries, bytes, n := 0, 0, 0
	for _, r := range batch {
		err := setRequest(txn, r)
		if errors.Is(err, badger.ErrTxnTooBig) && n > 0 {
			break // commit what fits; r starts the next transaction
		}
		if err != nil {
			return 0, fmt.Errorf("stage %s: %w", describeKey(firstKey(r)), err)
		}
		entries, bytes, n = entries+r.entries(), bytes+r.bytes, n+1
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
		return 0, err
	}
	return n, nil
}

func setRequest(txn *badger.Txn, r *request) error {
	if r.snapshot {
		return txn.Set(snapshotKey(r.id), encodeRecord(nil, recordKindSnap, r.seq, r.state))
	}
	for i, e := range r.events {
		seq := r.seq + uint64(i)
		if err := txn.Set(eventKey(r.id, seq), encodeRecord(nil, recordKindEvent, seq, e)); err != nil {
			return err
		}
	}
	return nil
}

func firstKey(r *request) []byte {
	if r.snapshot {
		return snapshotKey(r.id)
	}
	return eventKey(r.id, r.seq)
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
	}
	j.mu.Unlock()
	for _, r := range reqs {
		r.done(err)
	}
}

func (j *Journal) settleLocked(r *request, err error) {
	st := j.ids[r.id]
	st.inflight--
	switch {
	case err == nil && r.snapshot:
		st.snapDurable = max(st.snapDurable, r.seq)
		if !j.opts.RetainEvents {
			j.compactMu.Lock()
			j.compactDue[r.id] = max(j.compactDue[r.id], r.seq)
			j.compactMu.Unlock()
		}
	case err == nil:
		st.durable = r.last()
	case r.snapshot:
		st.snapPending = st.snapDurable
	case r.gen == st.gen:
		// The first failure of this generation: what was pending is gone.
		st.pending = st.durable
		st.snapPending = st.snapDurable
		st.gen++
	}
	if st.inflight == 0 && len(j.ids) > j.idsMax {
		delete(j.ids, r.id)
		j.evictions++
	}
}
