package persistence

import (
	"fmt"
)

// requestKind says what a request writes.
type requestKind uint8

const (
	kindAppendRequest requestKind = iota
	kindSnapshotRequest
	kindDeleteRequest
)

// request is one Append, SaveSnapshot or Delete waiting for the writer.
type request struct {
	kind   requestKind
	id     string
	p      uint16   // id's partition
	seq    uint64   // first event's sequence, or the snapshot's
	events [][]byte // an append's events; none for a wake-only append
	wake   int64    // an append's wake time after its events; 0 for none
	state  []byte   // a snapshot's state
	gen    uint64   // the identity's generation at submission
	bytes  int      // encoded bytes, for batch limits
	done   func(error)

	// Set by takeBatch from the identity's staged state: the wake time and
	// snapshot this request replaces, whose keys it deletes.
	prevWake   int64
	prevSnap   uint64
	prevChunks int

	// awaited: a Delete that keeps compaction away from its identity until
	// it settles (awaitCompaction). Only the writer goroutine uses it.
	awaited bool
}

// entries is what the request counts for in batch limits and statistics:
// its events, or 1 for a snapshot or a Delete.
func (r *request) entries() int {
	if r.kind == kindAppendRequest {
		return len(r.events)
	}
	return 1
}

// last is the sequence the request leaves the identity at.
func (r *request) last() uint64 {
	if r.kind == kindSnapshotRequest {
		return r.seq
	}
	return r.seq + uint64(len(r.events)) - 1
}

// Append submits events as sequences first, first+1, ... of id, and wake
// (Unix nanoseconds, 0 for none) as id's wake time after them, in the same
// transaction. It may carry no events, to change only the wake time; first
// must still be one past the last durable or pending sequence. See the
// package documentation for when done is called.
func (j *Journal) Append(id string, first uint64, events [][]byte, wake int64, done func(error)) {
	r := &request{kind: kindAppendRequest, id: id, seq: first, events: events, wake: wake, done: done}
	if err := j.checkAppend(r); err != nil {
		done(err)
		return
	}
	if err := j.submit(r); err != nil {
		done(err)
	}
}

// SaveSnapshot submits state as id's state after event seq. seq must be
// durable already and not older than the identity's latest snapshot.
func (j *Journal) SaveSnapshot(id string, seq uint64, state []byte, done func(error)) {
	r := &request{kind: kindSnapshotRequest, id: id, seq: seq, state: state, done: done}
	if err := j.checkSnapshot(r); err != nil {
		done(err)
		return
	}
	if err := j.submit(r); err != nil {
		done(err)
	}
}

// Delete submits the removal of every record of id: its events, snapshot
// and wake time, in one synced transaction after the requests submitted
// before it. Appends submitted after it start again at sequence 1; a
// snapshot submitted before it has committed is refused.
//
// An identity with more keys than one Badger transaction holds (Badger's
// limit is about 13 000 keys with 8 MiB memtables) has its oldest events
// deleted in transactions of their own first. A crash between them leaves
// a history that starts late, which Replay reports as a *CorruptRecordError
// rather than replaying with a hole, and which a repeated Delete removes.
func (j *Journal) Delete(id string, done func(error)) {
	r := &request{kind: kindDeleteRequest, id: id, done: done}
	if err := checkID(id); err != nil {
		done(err)
		return
	}
	if err := j.submit(r); err != nil {
		done(err)
	}
}

func (j *Journal) checkAppend(r *request) error {
	if err := checkID(r.id); err != nil {
		return err
	}
	if len(r.events) > j.opts.BatchEntries {
		return fmt.Errorf("%w: %d events in one append, want at most %d",
			ErrInvalidRequest, len(r.events), j.opts.BatchEntries)
	}
	if r.seq == 0 || r.seq+uint64(len(r.events)) < r.seq {
		return fmt.Errorf("%w: first sequence %d", ErrInvalidRequest, r.seq)
	}
	if r.wake < 0 {
		return fmt.Errorf("%w: wake time %d before 1970", ErrInvalidRequest, r.wake)
	}
	for _, e := range r.events {
		if len(e) > eventBytesMax {
			return fmt.Errorf("%w: event of %d bytes, limit %d", ErrInvalidRequest, len(e), eventBytesMax)
		}
		r.bytes += recordBytes(e)
	}
	return nil
}

func (j *Journal) checkSnapshot(r *request) error {
	if err := checkID(r.id); err != nil {
		return err
	}
	if r.seq == 0 {
		return fmt.Errorf("%w: snapshot at sequence 0", ErrInvalidRequest)
	}
	if len(r.state) > snapshotBytesMax {
		return fmt.Errorf("%w: snapshot of %d bytes, limit %d", ErrInvalidRequest, len(r.state), snapshotBytesMax)
	}
	r.bytes = recordBytes(r.state)
	return nil
}

func checkID(id string) error {
	if id == "" || len(id) > idBytesMax {
		return fmt.Errorf("%w: id of %d bytes, want 1..%d", ErrInvalidRequest, len(id), idBytesMax)
	}
	return nil
}

// submit checks r's sequence against its identity and queues it, blocking
// while the queue is full.
func (j *Journal) submit(r *request) error {
	r.p = j.partition(r.id)
	j.mu.Lock()
	st, err := j.waitAndTrackLocked(r.id, r.p)
	if err != nil {
		j.mu.Unlock()
		return err
	}
	if err := st.admit(r); err != nil {
		j.mu.Unlock()
		return err
	}
	r.gen = st.gen
	st.inflight++
	j.queue = append(j.queue, r)
	j.mu.Unlock()
	j.signal()
	return nil
}

// waitAndTrackLocked waits for room in the queue and returns id's tracked
// state. An identity not tracked is loaded from Badger without holding
// j.mu, so that the writer and other submitters do not wait for the read;
// j.mu is held again on return. The load reads keys only, plus the wake
// time's small inline value, so its cost does not grow with the identity's
// history or snapshot.
//
// It refuses an identity of a partition the journal does not hold, on
// every turn: Release clears the bit under j.mu, so nothing is queued for
// p after it, and a read of an identity that began before a Release is
// not cached after a drop or import of p (forgetPartition bumps
// evictions) and is not read again.
func (j *Journal) waitAndTrackLocked(id string, p uint16) (*identity, error) {
	for {
		if len(j.queue) >= j.opts.QueueEntries && !j.closing && j.failed == nil && j.onBlocked != nil {
			j.onBlocked()
		}
		for len(j.queue) >= j.opts.QueueEntries && !j.closing && j.failed == nil {
			j.space.Wait()
		}
		switch {
		case j.failed != nil:
			return nil, j.failed
		case j.closing:
			return nil, ErrClosed
		case !j.held.holds(p):
			return nil, notHeld(p)
		}
		if st, ok := j.ids[id]; ok {
			j.idsLRU.MoveToFront(st.used)
			return st, nil
		}
		evictions := j.evictions
		j.reads.Add(1)
		j.mu.Unlock()
		s, err := j.loadStored(id)
		j.reads.Done()
		j.mu.Lock()
		if err != nil {
			return nil, err
		}
		// Another submitter may have tracked id meanwhile, and then it may
		// have been committed and evicted, which makes this read stale.
		if _, ok := j.ids[id]; !ok && j.evictions == evictions {
			j.ids[id] = &identity{durable: s.last, pending: s.last, snapDurable: s.snap,
				snapChunks: s.snapChunks, snapPending: s.snap, wake: s.wake, used: j.idsLRU.PushFront(id)}
		}
	}
}

// admit checks r against the identity's sequences and, if it fits, counts
// it as pending.
func (st *identity) admit(r *request) error {
	switch r.kind {
	case kindSnapshotRequest:
		if st.deletes > 0 {
			return fmt.Errorf("%w: snapshot of %q at %d while a delete of it is pending",
				ErrInvalidRequest, r.id, r.seq)
		}
		if r.seq > st.durable || r.seq < st.snapPending {
			return fmt.Errorf("%w: snapshot of %q at %d: last durable sequence %d, latest snapshot %d",
				ErrInvalidRequest, r.id, r.seq, st.durable, st.snapPending)
		}
		st.snapPending = r.seq
	case kindDeleteRequest:
		st.pending, st.snapPending = 0, 0
		st.deletes++
	default:
		if r.seq != st.pending+1 {
			return &SequenceError{ID: r.id, Want: st.pending + 1, Got: r.seq}
		}
		st.pending = r.last()
	}
	return nil
}
