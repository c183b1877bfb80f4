package testkit

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Journal is an in-memory actors.Journal. Like the Badger journal it has one
// writer goroutine that takes every waiting append and snapshot as one
// flush, completes them in submission order, and refuses an append that
// does not continue its identity's sequence. A flush can be delayed
// (SetFlushDelay), held back (Pause/Resume) or made to fail (FailNext).
type Journal struct {
	mu       sync.Mutex
	cond     *sync.Cond
	events   map[string][][]byte // durable events; index i is sequence i+1
	snaps    map[string]memSnapshot
	last     map[string]uint64 // last durable-or-pending sequence
	queue    []journalOp
	paused   bool
	closed   bool
	delay    time.Duration
	failures []error
	flushes  int
	done     chan struct{}
}

type memSnapshot struct {
	seq   uint64
	state []byte
}

type journalOp struct {
	id       string
	first    uint64
	events   [][]byte
	snapshot bool
	done     func(error)
}

// ErrClosed is returned for writes submitted after Close.
var ErrClosed = errors.New("testkit journal closed")

// NewJournal starts an empty journal. Close stops its writer.
func NewJournal() *Journal {
	j := &Journal{
		events: map[string][][]byte{},
		snaps:  map[string]memSnapshot{},
		last:   map[string]uint64{},
		done:   make(chan struct{}),
	}
	j.cond = sync.NewCond(&j.mu)
	go j.writer()
	return j
}

// Append implements actors.Journal.
func (j *Journal) Append(id string, first uint64, events [][]byte, done func(error)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case j.closed:
		go done(ErrClosed)
		return
	case first != j.last[id]+1:
		go done(fmt.Errorf("append %s at %d after %d: sequence conflict", id, first, j.last[id]))
		return
	}
	j.last[id] += uint64(len(events))
	j.queue = append(j.queue, journalOp{id: id, first: first, events: slices.Clone(events), done: done})
	j.cond.Broadcast()
}

// SaveSnapshot implements actors.Journal.
func (j *Journal) SaveSnapshot(id string, seq uint64, state []byte, done func(error)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		go done(ErrClosed)
		return
	}
	j.queue = append(j.queue, journalOp{id: id, first: seq, events: [][]byte{slices.Clone(state)}, snapshot: true, done: done})
	j.cond.Broadcast()
}

// LoadSnapshot implements actors.Journal.
func (j *Journal) LoadSnapshot(id string) (uint64, []byte, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.snaps[id]
	return s.seq, slices.Clone(s.state), nil
}

// Replay implements actors.Journal.
func (j *Journal) Replay(id string, after uint64, fn func(seq uint64, event []byte) error) error {
	j.mu.Lock()
	events := slices.Clone(j.events[id])
	j.mu.Unlock()
	for i := after; i < uint64(len(events)); i++ {
		if err := fn(i+1, events[i]); err != nil {
			return err
		}
	}
	return nil
}

// Events returns a copy of the identity's durable events.
func (j *Journal) Events(id string) [][]byte {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.events[id])
}

// Flushes counts the flushes done so far (failed ones included).
func (j *Journal) Flushes() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.flushes
}

// SetFlushDelay makes every later flush take d before it completes.
func (j *Journal) SetFlushDelay(d time.Duration) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.delay = d
}

// Pause holds every flush back until Resume.
func (j *Journal) Pause() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.paused = true
}

// Resume lets held flushes complete.
func (j *Journal) Resume() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.paused = false
	j.cond.Broadcast()
}

// FailNext makes the next flush fail with err: none of its writes becomes
// visible and every waiter in it gets err.
func (j *Journal) FailNext(err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.failures = append(j.failures, err)
}

// Pending counts writes submitted but not yet completed.
func (j *Journal) Pending() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.queue)
}

// Close fails writes that were not flushed and stops the writer.
func (j *Journal) Close() {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return
	}
	j.closed = true
	j.cond.Broadcast()
	j.mu.Unlock()
	<-j.done
}

func (j *Journal) writer() {
	defer close(j.done)
	for {
		j.mu.Lock()
		for !j.closed && (len(j.queue) == 0 || j.paused) {
			j.cond.Wait()
		}
		batch, delay := j.queue, j.delay
		j.queue = nil
		closed := j.closed
		j.mu.Unlock()
		if closed {
			for _, op := range batch {
				op.done(ErrClosed)
			}
			return
		}
		if delay > 0 {
			time.Sleep(delay)
		}
		err := j.commit(batch)
		for _, op := range batch {
			op.done(err)
		}
	}
}

// commit makes a whole batch visible, or none of it if a failure was
// injected.
func (j *Journal) commit(batch []journalOp) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.flushes++
	for _, op := range batch {
		if !op.snapshot && op.first > uint64(len(j.events[op.id]))+1 {
			// Submitted after an earlier append of the identity failed:
			// writing it would leave a gap.
			return fmt.Errorf("append %s at %d: earlier events were lost: sequence conflict", op.id, op.first)
		}
	}
	if len(j.failures) > 0 {
		err := j.failures[0]
		j.failures = j.failures[1:]
		for _, op := range batch {
			if !op.snapshot {
				j.last[op.id] = uint64(len(j.events[op.id])) // forget the pending tail
			}
		}
		return err
	}
	for _, op := range batch {
		if op.snapshot {
			if op.first > j.snaps[op.id].seq {
				j.snaps[op.id] = memSnapshot{seq: op.first, state: op.events[0]}
			}
			continue
		}
		j.events[op.id] = append(j.events[op.id], op.events...)
	}
	return nil
}
