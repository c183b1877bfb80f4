package persistence

import (
	"container/list"
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
// them all in memory. The reload reads keys and the 8-byte wake time only
// (loadStored), so a miss costs the same whatever the identity's history or
// snapshot size.
const identitiesCachedMax = 32_768

// Journal is the Badger-backed journal. Its methods are safe for concurrent
// use.
type Journal struct {
	db         *badger.DB
	dir        string
	opts       Options
	log        *slog.Logger
	partitions int

	mu      sync.Mutex
	space   *sync.Cond // broadcast when the queue shrinks, Close begins or failStop
	queue   []*request
	ids     map[string]*identity
	closing bool
	failed  error  // set once by failStop: wraps ErrJournalFailed
	batches uint64 // batches the writer has taken; guarded by mu
	settled uint64 // the last batch whose requests are settled; guarded by mu
	// settledCond is broadcast when settled moves (Release waits on it).
	settledCond *sync.Cond
	held        holdings // the partitions this journal writes (fence.go)

	wake       chan struct{} // capacity 1: there is work for the writer
	writerDone chan struct{}

	compactMu       sync.Mutex
	compactIdle     *sync.Cond          // broadcast when a compaction pass ends
	compactDue      map[string]uint64   // id -> snapshot sequence whose events may go
	compactRunning  map[string]struct{} // ids the running pass may delete events of
	compactDeleting map[string]int      // ids with a Delete being committed

	stop      chan struct{} // closed by Close to end background loops
	loops     sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	reads     sync.WaitGroup // reads of Badger outside the writer; Close waits for them
	evictions uint64         // identities dropped from ids; guarded by mu
	idsMax    int            // identitiesCachedMax; tests lower it
	// idsLRU orders ids by last use, most recent first, so that the
	// identities dropped beyond idsMax are the ones least likely to write
	// again soon (an order's second append follows its first by a few
	// milliseconds). Guarded by mu.
	idsLRU list.List

	opsBuf []op // the writer's scratch list of one request's writes

	stats   stats
	storage storageState

	// Hooks set only by tests before their first request. beforeCommit
	// (Options.BeforeCommit unless a test replaces it) runs before each
	// commit; an error it returns fails the commit. onBlocked runs when a
	// submitter starts waiting for queue space.
	beforeCommit func() error
	onBlocked    func()
}

// identity tracks one identity's sequences, snapshot and wake time. pending
// runs ahead of durable by what is queued or being committed; a failed
// commit sets it back and bumps gen, which fails the requests queued behind
// the failed one.
type identity struct {
	durable     uint64 // last durable event sequence
	pending     uint64 // last durable or queued event sequence
	snapDurable uint64 // sequence of the durable snapshot; 0 for none
	snapChunks  int    // chunk keys of the durable snapshot; 0: one key
	snapPending uint64 // latest durable or queued snapshot sequence
	wake        int64  // durable wake time; 0 for none
	gen         uint64
	inflight    int           // requests queued or being committed
	deletes     int           // Deletes queued or being committed
	used        *list.Element // in Journal.idsLRU

	// The snapshot and wake time as the batch being committed leaves them,
	// valid while stagedBatch equals the journal's batches: the writer
	// deletes the keys they name when it replaces them.
	stagedBatch  uint64
	stagedSnap   uint64
	stagedChunks int
	stagedWake   int64
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
	if err := checkOpenSpace(dir, opts); err != nil {
		return nil, fmt.Errorf("open journal %s: %w", dir, err)
	}
	db, err := openBadger(dir, opts)
	if err != nil {
		return nil, err
	}
	if err := checkFormat(db, opts.Partitions); err != nil {
		return nil, errors.Join(fmt.Errorf("open journal %s: %w", dir, err), db.Close())
	}
	j := &Journal{
		db:              db,
		dir:             dir,
		opts:            opts,
		log:             opts.Logger,
		partitions:      opts.Partitions,
		ids:             make(map[string]*identity),
		wake:            make(chan struct{}, 1),
		writerDone:      make(chan struct{}),
		compactDue:      make(map[string]uint64),
		compactRunning:  make(map[string]struct{}),
		compactDeleting: make(map[string]int),
		stop:            make(chan struct{}),
		idsMax:          identitiesCachedMax,
		beforeCommit:    opts.BeforeCommit,
	}
	j.space = sync.NewCond(&j.mu)
	j.settledCond = sync.NewCond(&j.mu)
	j.held.init(opts.Partitions, !opts.Fenced)
	j.compactIdle = sync.NewCond(&j.compactMu)
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

// Close commits what is queued, fails requests that arrive meanwhile with
// ErrClosed, stops the background loops and closes Badger. It is
// idempotent; every call returns the first call's result.
//
// On a volume below the storage reserve it leaves Badger open, because
// closing flushes the memtable into a new table, which a full volume
// cannot take: every commit is already in Badger's write-ahead log, so the
// process loses nothing by exiting without it.
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
		if st, err := j.measureStorage(); err == nil && st.Full {
			j.log.Error("journal left badger open at close: its volume is too full to flush; "+
				"every commit is in the write-ahead log, and the next open replays it",
				"free_bytes", st.Free, "reserve_bytes", st.Reserve, "dir", j.dir)
			return
		}
		if err := j.db.Close(); err != nil {
			j.closeErr = fmt.Errorf("close journal: %w", err)
		}
	})
	return j.closeErr
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
	st, err := j.loadStored(id)
	return st.last, err
}

// Partitions returns the number of partitions identities are spread over
// (Options.Partitions, which the data directory records).
func (j *Journal) Partitions() int { return j.partitions }

// AppendEventsMax is the most events one Append may carry:
// Options.BatchEntries.
func (j *Journal) AppendEventsMax() int { return j.opts.BatchEntries }

// partition returns id's partition in this journal.
func (j *Journal) partition(id string) uint16 {
	return uint16(Partition(id, j.partitions))
}

// beginRead refuses reads once Close has begun or the journal has failed
// (failStop), and otherwise counts the
// read, so that Close does not close Badger under it. The caller calls
// j.reads.Done when the read is over.
func (j *Journal) beginRead() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case j.failed != nil:
		return j.failed
	case j.closing:
		return ErrClosed
	}
	j.reads.Add(1)
	return nil
}
