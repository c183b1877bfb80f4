package testkit

import (
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/orderengine/orderengine/actors"
)

// Limits of the Badger journal's default options (persistence), which this
// journal enforces the same way, so that a test sees what production
// would: an over-long append or identity is refused, not stored.
const (
	// DefaultAppendEventsMax is persistence's default BatchEntries: the
	// most events one Append may carry.
	DefaultAppendEventsMax = 1024
	// idBytesMax, eventBytesMax and snapshotBytesMax are persistence's
	// hard limits.
	idBytesMax       = 1024
	eventBytesMax    = 1 << 20
	snapshotBytesMax = 256 << 20
)

// ErrInvalidRequest is returned for a write that breaks one of the limits.
var ErrInvalidRequest = errors.New("testkit journal: invalid request")

// Journal is an in-memory actors.Journal. Like the Badger journal it has one
// writer goroutine that takes every waiting append and snapshot as one
// flush, completes them in submission order, and refuses an append that
// does not continue its identity's sequence. A flush can be delayed
// (SetFlushDelay), held back (Pause/Resume) or made to fail (FailNext). It
// enforces the Badger journal's limits (AppendEventsMax and the byte
// limits), keeps wake times atomically with the events, and deletes.
type Journal struct {
	mu        sync.Mutex
	cond      *sync.Cond
	events    map[string][][]byte // durable events; index i is sequence i+1
	snaps     map[string]memSnapshot
	wakes     map[string]int64  // durable wake times
	last      map[string]uint64 // last durable-or-pending sequence
	appendMax int
	queue     []journalOp
	paused    bool
	closed    bool
	delay     time.Duration
	failures  []error
	flushes   int
	done      chan struct{}
}

type memSnapshot struct {
	seq   uint64
	state []byte
}

type journalOp struct {
	id       string
	first    uint64
	events   [][]byte
	wake     int64
	snapshot bool
	delete   bool
	// born are the first appends of new identities written with this one
	// (AppendWith): committed or failed with it.
	born []journalOp
	done func(error)
}

// all is the op followed by the appends it brings to life.
func (op journalOp) all() []journalOp {
	if len(op.born) == 0 {
		return []journalOp{op}
	}
	return append([]journalOp{op}, op.born...)
}

// ErrClosed is returned for writes submitted after Close.
var ErrClosed = errors.New("testkit journal closed")

// NewJournal starts an empty journal. Close stops its writer.
func NewJournal() *Journal {
	j := &Journal{
		events:    map[string][][]byte{},
		snaps:     map[string]memSnapshot{},
		last:      map[string]uint64{},
		wakes:     map[string]int64{},
		appendMax: DefaultAppendEventsMax,
		done:      make(chan struct{}),
	}
	j.cond = sync.NewCond(&j.mu)
	go j.writer()
	return j
}

// AppendEventsMax implements actors.Journal.
func (j *Journal) AppendEventsMax() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.appendMax
}

// SetAppendEventsMax changes the most events one Append may carry, as the
// Badger journal's BatchEntries option does.
func (j *Journal) SetAppendEventsMax(n int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.appendMax = max(n, 1)
}

// Append implements actors.Journal.
func (j *Journal) Append(id string, first uint64, events [][]byte, wake int64, done func(error)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.checkAppend(id, first, events); err != nil {
		go done(err)
		return
	}
	j.last[id] += uint64(len(events))
	j.queue = append(j.queue, journalOp{id: id, first: first, events: slices.Clone(events), wake: wake, done: done})
	j.cond.Broadcast()
}

// AppendWith implements actors.Journal. Unlike the Badger journal, which
// trusts the caller that a new identity has nothing stored (it does not
// read storage to check), this one knows and refuses any that has events,
// stored or pending: a test that reuses an identity learns it here.
func (j *Journal) AppendWith(id string, first uint64, events [][]byte, wake int64, born []actors.NewIdentity, done func(error)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	err := j.checkAppend(id, first, events)
	total := len(events)
	for i, b := range born {
		if err != nil {
			break
		}
		total += len(b.Events)
		switch {
		case len(b.Events) == 0:
			err = fmt.Errorf("%w: new identity %q with no events", ErrInvalidRequest, b.ID)
		case b.ID == id || slices.ContainsFunc(born[:i], func(o actors.NewIdentity) bool { return o.ID == b.ID }):
			err = fmt.Errorf("%w: identity %q written twice in one append", ErrInvalidRequest, b.ID)
		case j.last[b.ID] != 0 || len(j.events[b.ID]) != 0:
			err = fmt.Errorf("%w: new identity %q has events already (last %d)", ErrInvalidRequest, b.ID, j.last[b.ID])
		case total > j.appendMax:
			err = fmt.Errorf("%w: %d events in one append with its new identities, want at most %d", ErrInvalidRequest, total, j.appendMax)
		default:
			err = j.checkAppend(b.ID, 1, b.Events)
		}
	}
	if err != nil {
		go done(err)
		return
	}
	op := journalOp{id: id, first: first, events: slices.Clone(events), wake: wake, done: done}
	j.last[id] += uint64(len(events))
	for _, b := range born {
		j.last[b.ID] = uint64(len(b.Events))
		op.born = append(op.born, journalOp{id: b.ID, first: 1, events: slices.Clone(b.Events), wake: b.Wake})
	}
	j.queue = append(j.queue, op)
	j.cond.Broadcast()
}

func (j *Journal) checkAppend(id string, first uint64, events [][]byte) error {
	switch {
	case j.closed:
		return ErrClosed
	case id == "" || len(id) > idBytesMax:
		return fmt.Errorf("%w: id of %d bytes, want 1..%d", ErrInvalidRequest, len(id), idBytesMax)
	case len(events) > j.appendMax:
		return fmt.Errorf("%w: %d events in one append, want at most %d", ErrInvalidRequest, len(events), j.appendMax)
	case first != j.last[id]+1:
		return fmt.Errorf("append %s at %d after %d: sequence conflict", id, first, j.last[id])
	}
	for _, e := range events {
		if len(e) > eventBytesMax {
			return fmt.Errorf("%w: event of %d bytes, limit %d", ErrInvalidRequest, len(e), eventBytesMax)
		}
	}
	return nil
}

// SaveSnapshot implements actors.Journal.
func (j *Journal) SaveSnapshot(id string, seq uint64, state []byte, done func(error)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case j.closed:
		go done(ErrClosed)
		return
	case len(state) > snapshotBytesMax || seq == 0:
		go done(fmt.Errorf("%w: snapshot of %d bytes at %d", ErrInvalidRequest, len(state), seq))
		return
	}
	j.queue = append(j.queue, journalOp{id: id, first: seq, events: [][]byte{slices.Clone(state)}, snapshot: true, done: done})
	j.cond.Broadcast()
}

// Delete implements actors.Journal.
func (j *Journal) Delete(id string, done func(error)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		go done(ErrClosed)
		return
	}
	j.last[id] = 0
	j.queue = append(j.queue, journalOp{id: id, delete: true, done: done})
	j.cond.Broadcast()
}

// Due implements actors.Journal. It keeps the limit earliest entries in a
// bounded heap, so that a test with a million wake times stays quick.
func (j *Journal) Due(before int64, limit int, fn func(id string, wake int64) bool) error {
	if limit <= 0 {
		return nil
	}
	j.mu.Lock()
	h := &dueHeap{}
	for id, w := range j.wakes {
		if w == 0 || w > before {
			continue
		}
		e := dueEntry{id, w}
		switch {
		case h.Len() < limit:
			heap.Push(h, e)
		case e.before((*h)[0]):
			(*h)[0] = e
			heap.Fix(h, 0)
		}
	}
	j.mu.Unlock()
	list := []dueEntry(*h)
	slices.SortFunc(list, func(a, b dueEntry) int { return cmp.Or(cmp.Compare(a.wake, b.wake), cmp.Compare(a.id, b.id)) })
	for _, d := range list {
		if !fn(d.id, d.wake) {
			break
		}
	}
	return nil
}

type dueEntry struct {
	id   string
	wake int64
}

func (a dueEntry) before(b dueEntry) bool {
	return a.wake < b.wake || (a.wake == b.wake && a.id < b.id)
}

// dueHeap is a max-heap: its root is the latest of the entries kept.
type dueHeap []dueEntry

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[j].before(h[i]) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueEntry)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Wake returns the identity's durable wake time, 0 for none.
func (j *Journal) Wake(id string) int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.wakes[id]
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

// Paused reports whether flushes are held back (Pause without Resume).
func (j *Journal) Paused() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.paused
}

// hold describes, for a timeout error, what the journal is doing to hold
// writes back; "" when nothing.
func (j *Journal) hold() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case j.paused:
		return fmt.Sprintf("the journal is paused with %d write(s) pending (Journal.Resume lets them finish)", len(j.queue))
	case j.delay > 0:
		return fmt.Sprintf("every journal flush takes %v (Journal.SetFlushDelay)", j.delay)
	}
	return ""
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
	var flat []journalOp
	for _, op := range batch {
		flat = append(flat, op.all()...)
	}
	batch = flat
	next := map[string]uint64{} // the sequence each identity continues at, as the batch goes
	for _, op := range batch {
		switch {
		case op.delete:
			next[op.id] = 1
		case op.snapshot:
		default:
			want, ok := next[op.id]
			if !ok {
				want = uint64(len(j.events[op.id])) + 1
			}
			if op.first != want {
				// Submitted after an earlier append of the identity failed:
				// writing it would leave a gap.
				return fmt.Errorf("append %s at %d: earlier events were lost: sequence conflict", op.id, op.first)
			}
			next[op.id] = op.first + uint64(len(op.events))
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
		if op.delete {
			delete(j.events, op.id)
			delete(j.snaps, op.id)
			delete(j.wakes, op.id)
			continue
		}
		if op.snapshot {
			if op.first > j.snaps[op.id].seq {
				j.snaps[op.id] = memSnapshot{seq: op.first, state: op.events[0]}
			}
			continue
		}
		j.events[op.id] = append(j.events[op.id], op.events...)
		if op.wake == 0 {
			delete(j.wakes, op.id)
		} else {
			j.wakes[op.id] = op.wake
		}
	}
	return nil
}
