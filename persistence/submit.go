package persistence

import (
	"fmt"
	"slices"
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

	// born are the first appends of new identities that an AppendWith
	// writes in the same transaction as this append. They are not queued
	// on their own: they are staged, committed, settled and failed with
	// this request, and have no done of their own.
	born []*request
}

// NewIdentity is a new identity's first events (sequences 1, 2, ...) and
// wake time, written by AppendWith together with another append. The
// type is unnamed so that the actors package can declare the same type
// without importing this one.
type NewIdentity = struct {
	ID     string
	Events [][]byte
	Wake   int64
}

// entries is what the request counts for in batch limits and statistics:
// its events and those of the identities it brings to life, or 1 for a
// snapshot or a Delete.
func (r *request) entries() int {
	if r.kind != kindAppendRequest {
		return 1
	}
	n := len(r.events)
	for _, b := range r.born {
		n += len(b.events)
	}
	return n
}

// touches reports whether the request writes anything of partition p.
func (r *request) touches(p uint16) bool {
	if r.p == p {
		return true
	}
	for _, b := range r.born {
		if b.p == p {
			return true
		}
	}
	return false
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

// AppendWith is Append plus, in the same synced transaction, the first
// events (sequences 1, 2, ...) and wake time of each identity in born:
// done reports nil once all of it is durable, or the error that kept all
// of it from being written. It is how one actor's decision that creates
// another identity (a SKU that takes a one-line checkout writes its new
// order) costs one commit and can never be half written.
//
// Each identity in born must be new: its ID generated just now with
// enough randomness that nothing is stored under it. The journal does not
// read storage to check (that read is what a fresh identity saves); it
// refuses the whole append, writing nothing, when it knows of events of
// one (pending, or durable and still tracked), when one is named twice or
// is id itself, or when one's partition is not held. The events of the
// append and of every identity in born count together against
// AppendEventsMax.
func (j *Journal) AppendWith(id string, first uint64, events [][]byte, wake int64, born []NewIdentity, done func(error)) {
	r := &request{kind: kindAppendRequest, id: id, seq: first, events: events, wake: wake, done: done}
	if err := j.checkAppend(r); err != nil {
		done(err)
		return
	}
	if err := j.checkBorn(r, born); err != nil {
		done(err)
		return
	}
	if err := j.submit(r); err != nil {
		done(err)
	}
}

// checkBorn builds r's born requests and checks them as Append checks
// its own, with the events of all of them counted against the limit.
func (j *Journal) checkBorn(r *request, born []NewIdentity) error {
	total := len(r.events)
	for i, b := range born {
		if len(b.Events) == 0 {
			return fmt.Errorf("%w: new identity %q with no events", ErrInvalidRequest, b.ID)
		}
		if b.ID == r.id || slices.ContainsFunc(born[:i], func(o NewIdentity) bool { return o.ID == b.ID }) {
			return fmt.Errorf("%w: identity %q written twice in one append", ErrInvalidRequest, b.ID)
		}
		c := &request{kind: kindAppendRequest, id: b.ID, seq: 1, events: b.Events, wake: b.Wake}
		if err := j.checkAppend(c); err != nil {
			return err
		}
		total += len(b.Events)
		r.bytes += c.bytes
		r.born = append(r.born, c)
	}
	if total > j.opts.BatchEntries {
		return fmt.Errorf("%w: %d events in one append with its new identities, want at most %d",
			ErrInvalidRequest, total, j.opts.BatchEntries)
	}
	return nil
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
	born, err := j.trackBornLocked(r)
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
	for i, b := range r.born {
		_ = born[i].admit(b) // checked by trackBornLocked
		b.gen = born[i].gen
		born[i].inflight++
	}
	j.queue = append(j.queue, r)
	j.mu.Unlock()
	j.signal()
	return nil
}

// trackBornLocked checks r's new identities and returns their tracked
// states, tracking those the journal does not know yet as empty, without
// the read from storage that waitAndTrackLocked makes: the caller vouches
// that nothing is stored under them. It changes nothing it would have to
// undo: an identity tracked here and then not admitted is merely known to
// be empty.
func (j *Journal) trackBornLocked(r *request) ([]*identity, error) {
	if len(r.born) == 0 {
		return nil, nil
	}
	sts := make([]*identity, len(r.born))
	for i, b := range r.born {
		b.p = j.partition(b.id)
		if !j.held.holds(b.p) {
			return nil, notHeld(b.p)
		}
		st, ok := j.ids[b.id]
		switch {
		case !ok:
			st = &identity{used: j.idsLRU.PushFront(b.id)}
			j.ids[b.id] = st
		case st.pending != 0 || st.inflight != 0 || st.snapPending != 0:
			return nil, fmt.Errorf("%w: new identity %q has events already (last %d)", ErrInvalidRequest, b.id, st.pending)
		default:
			j.idsLRU.MoveToFront(st.used)
		}
		sts[i] = st
	}
	return sts, nil
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
