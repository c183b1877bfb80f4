package persistence

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// identitiesCachedMax bounds the per-identity sequence cache. An identity
// with nothing in flight is dropped beyond it and reloaded from Badger on
// its next request, so a node that has seen millions of orders does not keep
// them all in memory.
const identitiesCachedMax = 100_000

// Journal is the Badger-backed journal. Its methods are safe for concurrent
// use.
type Journal struct {
	db   *badger.DB
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	space   *sync.Cond // broadcast when the queue shrinks or Close begins
	queue   []*request
	ids     map[string]*identity
	closing bool

	wake       chan struct{} // capacity 1: there is work for the writer
	writerDone chan struct{}

	compactMu  sync.Mutex
	compactDue map[string]uint64 // id -> snapshot sequence whose events may go

	stop      chan struct{} // closed by Close to end background loops
	loops     sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	reads     sync.WaitGroup // reads of Badger outside the writer; Close waits for them
	evictions uint64         // identities dropped from ids; guarded by mu
	idsMax    int            // identitiesCachedMax; tests lower it

	stats stats

	// beforeCommit, set only by tests before their first request, runs
	// before each commit; an error it returns fails the commit.
	beforeCommit func() error
}

// request is one Append or SaveSnapshot waiting for the writer.
type request struct {
	id       string
	seq      uint64   // first event's sequence, or the snapshot's
	events   [][]byte // nil for a snapshot
	state    []byte   // the snapshot state
	snapshot bool
	gen      uint64 // the identity's generation at submission
	bytes    int    // encoded bytes, for batch limits
	done     func(error)
}

func (r *request) entries() int {
	if r.snapshot {
		return 1
	}
	return len(r.events)
}

func (r *request) last() uint64 {
	if r.snapshot {
		return r.seq
	}
	return r.seq + uint64(len(r.events)) - 1
}

// identity tracks one identity's sequences. pending runs ahead of durable by
// what is queued or being committed; a failed commit sets it back and bumps
// gen, which fails the requests queued behind the failed one.
type identity struct {
	durable     uint64
	pending     uint64
	snapDurable uint64
	snapPending uint64
	gen         uint64
	inflight    int
}

// Open opens (creating if needed) the journal in dir.
func Open(dir string, opts Options) (*Journal, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create journal directory: %w", err)
	}
	db, err := openBadger(dir, opts)
	if err != nil {
		return nil, err
	}
	if err := checkFormat(db); err != nil {
		return nil, errors.Join(fmt.Errorf("open journal %s: %w", dir, err), db.Close())
	}
	j := &Journal{
		db:         db,
		opts:       opts,
		log:        opts.Logger,
		ids:        make(map[string]*identity),
		wake:       make(chan struct{}, 1),
		writerDone: make(chan struct{}),
		compactDue: make(map[string]uint64),
		stop:       make(chan struct{}),
		idsMax:     identitiesCachedMax,
	}
	j.space = sync.NewCond(&j.mu)
	go j.writeLoop()
	j.loops.Add(2)
	go j.compactLoop()
	go j.valueLogGCLoop()
	return j, nil
}

// openBadger opens Badger, mapping its errors to ours. Badger formats them
// without wrapping, so their text is matched.
//
// A kill between Badger creating a memtable or value-log file and sizing it
// leaves a 0-byte file that makes the next Open fail with z.NewFile
// ("Create a new file", badger issue 2207; our crash test hits it). That
// failed Open has already sized the file, under the directory lock, and the
// file holds no data, so one more Open succeeds and loses nothing.
func openBadger(dir string, opts Options) (*badger.DB, error) {
	db, err := badger.Open(opts.badgerOptions(dir))
	if err != nil && strings.Contains(err.Error(), "Create a new file") {
		opts.Logger.Warn("journal retries open after an interrupted file creation", "dir", dir, "err", err)
		db, err = badger.Open(opts.badgerOptions(dir))
	}
	switch {
	case err == nil:
		return db, nil
	case strings.Contains(err.Error(), "Cannot acquire directory lock"):
		return nil, fmt.Errorf("open journal %s: %w", dir, ErrDirectoryLocked)
	default:
		return nil, fmt.Errorf("open journal %s: %w", dir, err)
	}
}

// checkFormat refuses a database written with another key layout and marks
// a new one with ours.
func checkFormat(db *badger.DB) error {
	return db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(formatKey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return txn.Set(formatKey, []byte{formatVersion})
		}
		if err != nil {
			return fmt.Errorf("read format marker: %w", err)
		}
		return item.Value(func(v []byte) error {
			if len(v) != 1 || v[0] != formatVersion {
				return fmt.Errorf("journal format %x, this build reads %d", v, formatVersion)
			}
			return nil
		})
	})
}

// Close commits what is queued, fails requests that arrive meanwhile with
// ErrClosed, stops the background loops and closes Badger. It is
// idempotent; every call returns the first call's result.
func (j *Journal) Close() error {
	j.closeOnce.Do(func() {
		j.mu.Lock()
		j.closing = true
		j.space.Broadcast()
		j.mu.Unlock()
		j.signal()
		<-j.writerDone
		close(j.stop)
		j.loops.Wait()
		j.reads.Wait()
		if err := j.db.Close(); err != nil {
			j.closeErr = fmt.Errorf("close journal: %w", err)
		}
	})
	return j.closeErr
}

// Append submits events as sequences first, first+1, ... of id. See the
// package documentation for when done is called.
func (j *Journal) Append(id string, first uint64, events [][]byte, done func(error)) {
	r := &request{id: id, seq: first, events: events, done: done}
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
	r := &request{id: id, seq: seq, state: state, snapshot: true, done: done}
	if err := j.checkSnapshot(r); err != nil {
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
	if len(r.events) == 0 || len(r.events) > j.opts.BatchEntries {
		return fmt.Errorf("%w: %d events in one append, want 1..%d",
			ErrInvalidRequest, len(r.events), j.opts.BatchEntries)
	}
	if r.seq == 0 || r.seq+uint64(len(r.events)) < r.seq {
		return fmt.Errorf("%w: first sequence %d", ErrInvalidRequest, r.seq)
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
	j.mu.Lock()
	st, err := j.waitAndTrackLocked(r.id)
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
// sequences. An identity seen for the first time is loaded from Badger
// without holding j.mu, so that the writer and other submitters do not wait
// for the read; j.mu is held again on return.
func (j *Journal) waitAndTrackLocked(id string) (*identity, error) {
	for {
		for len(j.queue) >= j.opts.QueueEntries && !j.closing {
			j.space.Wait()
		}
		if j.closing {
			return nil, ErrClosed
		}
		if st, ok := j.ids[id]; ok {
			return st, nil
		}
		evictions := j.evictions
		j.reads.Add(1)
		j.mu.Unlock()
		last, snap, err := j.loadSequences(id)
		j.reads.Done()
		j.mu.Lock()
		if err != nil {
			return nil, err
		}
		// Another submitter may have tracked id meanwhile, and then it may
		// have been committed and evicted, which makes this read stale.
		if _, ok := j.ids[id]; !ok && j.evictions == evictions {
			j.ids[id] = &identity{durable: last, pending: last, snapDurable: snap, snapPending: snap}
		}
	}
}

// admit checks r against the identity's sequences and, if it fits, counts
// it as pending.
func (st *identity) admit(r *request) error {
	if r.snapshot {
		if r.seq > st.durable || r.seq < st.snapPending {
			return fmt.Errorf("%w: snapshot of %q at %d: last durable sequence %d, latest snapshot %d",
				ErrInvalidRequest, r.id, r.seq, st.durable, st.snapPending)
		}
		st.snapPending = r.seq
		return nil
	}
	if r.seq != st.pending+1 {
		return &SequenceError{ID: r.id, Want: st.pending + 1, Got: r.seq}
	}
	st.pending = r.last()
	return nil
}

// signal wakes the writer without blocking.
func (j *Journal) signal() {
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

// LastSequence returns the last durable sequence of id, 0 if it has none.
func (j *Journal) LastSequence(id string) (uint64, error) {
	if err := checkID(id); err != nil {
		return 0, err
	}
	j.mu.Lock()
	if st, ok := j.ids[id]; ok {
		j.mu.Unlock()
		return st.durable, nil
	}
	j.mu.Unlock()
	if err := j.beginRead(); err != nil {
		return 0, err
	}
	defer j.reads.Done()
	last, _, err := j.loadSequences(id)
	return last, err
}

// beginRead refuses reads once Close has begun and otherwise counts the
// read, so that Close does not close Badger under it. The caller calls
// j.reads.Done when the read is over.
func (j *Journal) beginRead() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closing {
		return ErrClosed
	}
	j.reads.Add(1)
	return nil
}
