package sim

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/orderengine/orderengine/actors"
)

// shellJournal is the journal of the real-shell simulation: an
// asynchronous in-memory actors.Journal whose every completion is an
// event of the run. Like the Badger journal it has one writer that takes
// the waiting writes in order and completes them in group commits; here
// the seed chooses how many writes each commit takes, when it completes,
// and whether it fails (an I/O error, or a full volume). A node crash
// keeps a seed-chosen prefix of the writes not yet acknowledged (written,
// but the answer never left) and loses the rest, as a process killed in
// the middle of a group commit would.
//
// It enforces the contract of actors.Journal as an oracle: an append that
// does not continue its identity's sequence, or carries more than
// AppendEventsMax events, is refused (the shells must never make one),
// and a snapshot past the durable sequence fails the run.
type shellJournal struct {
	h      *host
	events map[string][][]byte // durable events; index i is sequence i+1
	snaps  map[string]journalSnap
	wakes  map[string]int64  // durable wake times
	last   map[string]uint64 // last durable-or-pending sequence
	// gen is each identity's generation, as the real journal keeps it:
	// the first failed write of a generation forgets what is pending and
	// starts the next one, and the writes still queued from the one
	// before fail unwritten, without forgetting what the next
	// generation has pending since.
	gen   map[string]uint64
	queue []journalOp
	// flushing: a group commit is scheduled.
	flushing bool
	// deleted counts the deletions of each identity, for the checks: a
	// rejection that forgot itself leaves no journal.
	deleted map[string]int
	// refused counts appends refused for breaking the contract.
	refused int
	// misuse is the first breach of the contract by a shell; it fails
	// the run.
	misuse error
}

type journalSnap struct {
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
	gen      uint64 // the identity's generation when submitted
	// born are the first appends of new identities written with this
	// one (AppendWith): committed, failed or lost with it.
	born []journalOp
	done func(error)
}

// errDiskFull is a journal refusal for a full volume (actors.IsStorageFull).
type errDiskFull struct{}

func (errDiskFull) Error() string     { return "storage full: simulated full volume" }
func (errDiskFull) StorageFull() bool { return true }

var errJournalIO = errors.New("simulated journal write failure")

func newShellJournal(h *host) *shellJournal {
	return &shellJournal{h: h, events: map[string][][]byte{}, snaps: map[string]journalSnap{},
		wakes: map[string]int64{}, last: map[string]uint64{}, gen: map[string]uint64{}, deleted: map[string]int{}}
}

const (
	// shellAppendEventsMax is small, so that the shells split long
	// buffers.
	shellAppendEventsMax = 2
	// shellFlushDelayMax is the slowest group commit: slow enough that
	// busy actors buffer several events behind a write in flight.
	shellFlushDelayMax = 20 * time.Millisecond
)

// flushDelay is how long the next group commit takes: mostly quick, now
// and then slow (a stall of the disk).
func (j *shellJournal) flushDelay() time.Duration {
	d := shellFlushDelayMax
	if j.h.w.rng.IntN(10) == 0 {
		d *= 10
	}
	return time.Duration(j.h.w.rng.Int64N(int64(d)))
}

// AppendEventsMax implements actors.Journal.
func (j *shellJournal) AppendEventsMax() int { return shellAppendEventsMax }

// Append implements actors.Journal.
func (j *shellJournal) Append(id string, first uint64, events [][]byte, wake int64, done func(error)) {
	var err error
	switch {
	case len(events) > shellAppendEventsMax:
		err = fmt.Errorf("append %s: %d events, limit %d", id, len(events), shellAppendEventsMax)
		j.breach(err)
	case first != j.last[id]+1:
		err = fmt.Errorf("append %s at %d after %d: sequence conflict", id, first, j.last[id])
		// Only an order activated as fresh (Orders.AskNew) may guess
		// its sequence wrong: it did not read the journal, and reloads
		// when refused. Any other conflict means two activations of one
		// identity wrote at once, or a restart that did not wait for its
		// predecessor's append.
		if c := j.h.cells[id]; c == nil || !c.fresh {
			j.breach(err)
		}
	}
	if err != nil {
		j.refused++
		j.h.soon(func() { done(err) })
		return
	}
	j.append(id, first, events, wake, nil, done)
}

// append queues an append that passed its checks.
func (j *shellJournal) append(id string, first uint64, events [][]byte, wake int64, born []journalOp, done func(error)) {
	j.last[id] += uint64(len(events))
	j.enqueue(journalOp{id: id, first: first, events: cloneEvents(events), wake: wake, born: born, done: done, gen: j.gen[id]})
}

// AppendWith implements actors.Journal. A new identity that has events,
// stored or pending, is a breach: the shells bring to life only IDs just
// generated.
func (j *shellJournal) AppendWith(id string, first uint64, events [][]byte, wake int64, born []actors.NewIdentity, done func(error)) {
	total := len(events)
	for _, b := range born {
		total += len(b.Events)
		var err error
		switch {
		case len(b.Events) == 0 || b.ID == id:
			err = fmt.Errorf("append %s: new identity %q with no events, or the appender", id, b.ID)
		case j.last[b.ID] != 0 || len(j.events[b.ID]) != 0:
			err = fmt.Errorf("append %s: new identity %s has events already (last %d)", id, b.ID, j.last[b.ID])
		case total > shellAppendEventsMax:
			err = fmt.Errorf("append %s: %d events with its new identities, limit %d", id, total, shellAppendEventsMax)
		}
		if err != nil {
			j.breach(err)
			j.refused++
			j.h.soon(func() { done(err) })
			return
		}
	}
	var ops []journalOp
	for _, b := range born {
		j.last[b.ID] = uint64(len(b.Events))
		ops = append(ops, journalOp{id: b.ID, first: 1, events: cloneEvents(b.Events), wake: b.Wake, gen: j.gen[b.ID]})
	}
	j.append(id, first, events, wake, ops, done)
}

func cloneEvents(events [][]byte) [][]byte {
	evs := make([][]byte, len(events))
	for i, e := range events {
		evs[i] = slices.Clone(e)
	}
	return evs
}

// SaveSnapshot implements actors.Journal.
func (j *shellJournal) SaveSnapshot(id string, seq uint64, state []byte, done func(error)) {
	if seq == 0 || seq > uint64(len(j.events[id])) {
		j.breach(fmt.Errorf("snapshot of %s at %d, but %d events are durable", id, seq, len(j.events[id])))
	}
	j.enqueue(journalOp{id: id, first: seq, events: [][]byte{slices.Clone(state)}, snapshot: true, done: done})
}

// Delete implements actors.Journal.
func (j *shellJournal) Delete(id string, done func(error)) {
	j.last[id] = 0
	j.enqueue(journalOp{id: id, delete: true, done: done, gen: j.gen[id]})
}

func (j *shellJournal) breach(err error) {
	if j.misuse == nil {
		j.misuse = fmt.Errorf("at %v: %w", j.h.w.now.Sub(simStart), err)
	}
}

func (j *shellJournal) enqueue(op journalOp) {
	j.queue = append(j.queue, op)
	if !j.flushing {
		j.flushing = true
		j.h.nodeAfter(j.flushDelay(), j.flush)
	}
}

// flush completes a seed-chosen prefix of the waiting writes as one group
// commit, which fails as a whole now and then.
func (j *shellJournal) flush() {
	w := j.h.w
	j.flushing = false
	n := 1 + w.rng.IntN(len(j.queue))
	batch := slices.Clone(j.queue[:n])
	j.queue = slices.Delete(j.queue, 0, n)
	var err error
	if !w.healed && w.rng.Float64() < w.cfg.JournalFailRate {
		w.report.JournalFailures++
		err = errJournalIO
		if w.rng.IntN(3) == 0 {
			err = errDiskFull{}
		}
	}
	errs := make([]error, len(batch))
	for i, op := range batch {
		errs[i] = j.commit(op, err)
	}
	for i, op := range batch {
		op.done(errs[i])
	}
	if len(j.queue) > 0 && !j.flushing {
		j.flushing = true
		j.h.nodeAfter(j.flushDelay(), j.flush)
	}
}

// commit makes one write durable, or fails it with failed (and forgets
// the identity's pending tail, as a failed flush does).
func (j *shellJournal) commit(op journalOp, failed error) error {
	all := append([]journalOp{op}, op.born...)
	for _, o := range all {
		switch {
		case o.snapshot:
		case o.gen != j.gen[o.id]:
			// Submitted before an earlier write of the identity failed.
			failed = fmt.Errorf("append %s at %d: an earlier write of it failed", o.id, o.first)
		case !o.delete && o.first != uint64(len(j.events[o.id]))+1:
			failed = fmt.Errorf("append %s at %d: earlier events were lost: sequence conflict", o.id, o.first)
		}
	}
	if failed != nil {
		for _, o := range all {
			if !o.snapshot && o.gen == j.gen[o.id] {
				j.last[o.id] = uint64(len(j.events[o.id]))
				j.gen[o.id]++
			}
		}
		return failed
	}
	for _, b := range op.born {
		j.write(b)
	}
	j.write(op)
	return nil
}

// write makes one checked write durable.
func (j *shellJournal) write(op journalOp) {
	switch {
	case op.delete:
		delete(j.events, op.id)
		delete(j.snaps, op.id)
		delete(j.wakes, op.id)
		j.deleted[op.id]++
	case op.snapshot:
		if op.first > j.snaps[op.id].seq && op.first <= uint64(len(j.events[op.id])) {
			j.snaps[op.id] = journalSnap{seq: op.first, state: op.events[0]}
		}
	default:
		j.events[op.id] = append(j.events[op.id], op.events...)
		if op.wake == 0 {
			delete(j.wakes, op.id)
		} else {
			j.wakes[op.id] = op.wake
		}
	}
}

// crash is the node's death: a seed-chosen prefix of the waiting writes
// reached the disk unacknowledged, the rest is lost, and nothing is
// pending any more.
func (j *shellJournal) crash() {
	n := j.h.w.rng.IntN(len(j.queue) + 1)
	for _, op := range j.queue[:n] {
		_ = j.commit(op, nil) // a conflicting one writes nothing, as before
	}
	j.queue, j.flushing = nil, false
	clear(j.last)
	for id, evs := range j.events {
		j.last[id] = uint64(len(evs))
	}
}

// idle reports whether no write is waiting.
func (j *shellJournal) idle() bool { return len(j.queue) == 0 }

// LoadSnapshot implements actors.Journal.
func (j *shellJournal) LoadSnapshot(id string) (uint64, []byte, error) {
	s := j.snaps[id]
	return s.seq, slices.Clone(s.state), nil
}

// Replay implements actors.Journal.
func (j *shellJournal) Replay(id string, after uint64, fn func(seq uint64, event []byte) error) error {
	events := j.events[id]
	for i := after; i < uint64(len(events)); i++ {
		if err := fn(i+1, events[i]); err != nil {
			return err
		}
	}
	return nil
}

// Due implements actors.Journal.
func (j *shellJournal) Due(before int64, limit int, fn func(id string, wake int64) bool) error {
	type due struct {
		id   string
		wake int64
	}
	var list []due
	for id, w := range j.wakes {
		if w != 0 && w <= before {
			list = append(list, due{id, w})
		}
	}
	slices.SortFunc(list, func(a, b due) int { return cmp.Or(cmp.Compare(a.wake, b.wake), cmp.Compare(a.id, b.id)) })
	for i, d := range list {
		if i == limit || !fn(d.id, d.wake) {
			break
		}
	}
	return nil
}
