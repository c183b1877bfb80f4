package persistence

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// Fencing: in a cluster each partition is written by one node at an epoch
// (DESIGN.md, Cluster), and the journal is where that is enforced, as
// Kafka's leader epoch is: a write of an identity whose partition this
// journal does not hold is refused with ErrNotHeld before anything of it
// is queued or staged. A journal opened with Options.Fenced holds nothing
// until Hold; one opened without holds every partition at epoch 0, which
// is the single node's journal as it always was.
//
// The held set is a bitmap of atomic words, read on every submission, so
// the check costs one atomic load. It changes only under j.mu, the lock
// under which submit queues a request and the writer takes its batch, so
// that Release can remove every queued request of a partition in the same
// step that clears its bit.

// holdings is the set of held partitions with their epochs, and the
// partitions that an export, import or drop is working on.
type holdings struct {
	bits   []atomic.Uint64 // bit p%64 of word p/64: partition p is held; written under j.mu
	epochs []uint64        // the epoch each held partition is held at; guarded by j.mu

	busyMu sync.Mutex
	busy   map[uint16]string // partition -> what works on it (export, import, drop)
}

func (h *holdings) init(partitions int, all bool) {
	h.bits = make([]atomic.Uint64, (partitions+63)/64)
	h.epochs = make([]uint64, partitions)
	h.busy = make(map[uint16]string)
	if all {
		for p := range partitions {
			h.bits[p/64].Or(1 << (p % 64))
		}
	}
}

// holds reports whether partition p is held; safe without j.mu.
func (h *holdings) holds(p uint16) bool {
	return h.bits[p/64].Load()&(1<<(p%64)) != 0
}

// checkPartition refuses a partition number outside 0..partitions-1.
func (j *Journal) checkPartition(p int) error {
	if p < 0 || p >= j.partitions {
		return fmt.Errorf("%w: partition %d, want 0..%d", ErrInvalidRequest, p, j.partitions-1)
	}
	return nil
}

func notHeld(p uint16) error {
	return fmt.Errorf("%w: partition %d", ErrNotHeld, p)
}

// Hold makes the journal accept writes of partition p, at epoch. Holding
// a partition already held moves it to epoch, which must not be lower than
// the one it is held at. It is refused (ErrPartitionBusy) while an export,
// import or drop of p is working. The epoch is the cluster's fencing
// token; the journal keeps it in memory only, for Held, and the cluster
// stores its partition table durably itself (PutMeta).
func (j *Journal) Hold(p int, epoch uint64) error {
	if err := j.checkPartition(p); err != nil {
		return err
	}
	j.held.busyMu.Lock()
	defer j.held.busyMu.Unlock()
	if what, ok := j.held.busy[uint16(p)]; ok {
		return fmt.Errorf("%w: partition %d: %s", ErrPartitionBusy, p, what)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.held.holds(uint16(p)) && epoch < j.held.epochs[p] {
		return fmt.Errorf("%w: hold partition %d at epoch %d, below the held epoch %d",
			ErrInvalidRequest, p, epoch, j.held.epochs[p])
	}
	j.held.epochs[p] = epoch
	j.held.bits[p/64].Or(1 << (p % 64))
	return nil
}

// Held returns the epoch partition p is held at, and whether it is held.
func (j *Journal) Held(p int) (epoch uint64, ok bool) {
	if j.checkPartition(p) != nil {
		return 0, false
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.held.holds(uint16(p)) {
		return 0, false
	}
	return j.held.epochs[p], true
}

// Release stops the journal accepting writes of partition p, and is a
// fence: once it returns, no write of p can commit any more, until the
// next Hold. It does that in two steps:
//
//  1. Under the lock under which requests are queued and batches are
//     taken, it clears p's bit and takes every queued request of p off the
//     queue. Nothing of p can be queued after this step (submission checks
//     the bit under the same lock), and no batch taken after it holds a
//     write of p.
//  2. It waits for the writer to settle the batch it was committing, if
//     any, which may hold writes of p staged before step 1: they commit or
//     fail before Release returns.
//
// The requests taken off the queue then fail with ErrNotHeld, in queue
// order after the batch in flight, so that an identity's failures follow
// its successes as they do in the writer. Release does not wait for
// compaction, which only deletes events a snapshot covers and skips
// unheld partitions; DropPartition and BeginImport wait for it.
//
// Releasing a partition not held does nothing more than the wait. Release
// must not be called from a done function: it waits for the writer that
// runs it.
func (j *Journal) Release(p int) error {
	if err := j.checkPartition(p); err != nil {
		return err
	}
	// busyMu keeps markBusy out until the refused requests have settled, so
	// that a drop or import that follows finds nothing of p in flight.
	j.held.busyMu.Lock()
	j.mu.Lock()
	j.held.bits[p/64].And(^uint64(1 << (p % 64)))
	var refused []*request
	kept := j.queue[:0]
	for _, r := range j.queue {
		if r.touches(uint16(p)) {
			refused = append(refused, r)
		} else {
			kept = append(kept, r)
		}
	}
	clear(j.queue[len(kept):])
	j.queue = kept
	j.space.Broadcast()
	j.awaitWriterLocked()
	err := notHeld(uint16(p))
	for _, r := range refused {
		j.settleLocked(r, err)
		for _, b := range r.born {
			j.settleLocked(b, err)
			j.untrackBornLocked(b)
		}
	}
	j.mu.Unlock()
	j.held.busyMu.Unlock()
	for _, r := range refused {
		r.done(err)
	}
	return nil
}

// Drain waits until every write of partition p submitted before it was
// called has committed or failed. A partition's actors write their last
// snapshots as they stop; draining before Release lets those commit
// instead of being refused by the fence. It returns at once when the
// journal is closing or has failed.
func (j *Journal) Drain(p int) error {
	if err := j.checkPartition(p); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for !j.closing && j.failed == nil && slices.ContainsFunc(j.queue, func(r *request) bool { return r.touches(uint16(p)) }) {
		j.settledCond.Wait()
	}
	j.awaitWriterLocked()
	return nil
}

// awaitWriterLocked waits, with j.mu held, until the writer has settled
// the batch it took last: the batch it may be committing now.
func (j *Journal) awaitWriterLocked() {
	target := j.batches
	for j.settled < target {
		j.settledCond.Wait()
	}
}

// markBusy marks p as worked on by what, refusing a held or busy
// partition; unmark ends it. The lock order is busyMu, then j.mu.
func (j *Journal) markBusy(p int, what string) error {
	if err := j.checkPartition(p); err != nil {
		return err
	}
	j.held.busyMu.Lock()
	defer j.held.busyMu.Unlock()
	if other, ok := j.held.busy[uint16(p)]; ok {
		return fmt.Errorf("%w: %s of partition %d while its %s is working", ErrPartitionBusy, what, p, other)
	}
	// Under busyMu no Release is between clearing p's bit and settling
	// what it refused: an unheld partition has nothing in flight.
	j.mu.Lock()
	held, epoch := j.held.holds(uint16(p)), j.held.epochs[p]
	j.mu.Unlock()
	if held {
		return fmt.Errorf("%w: %s of partition %d, held at epoch %d", ErrHeld, what, p, epoch)
	}
	j.held.busy[uint16(p)] = what
	return nil
}

func (j *Journal) unmarkBusy(p int) {
	j.held.busyMu.Lock()
	delete(j.held.busy, uint16(p))
	j.held.busyMu.Unlock()
}

// forgetPartition drops every cached identity of partition p, after its
// keys changed underneath the cache (DropPartition, an import), and its
// compaction entries. p is not held and nothing of it is in flight, so no
// cached identity of p has requests; bumping evictions makes a submitter
// that read an identity of p before it was released discard what it read.
func (j *Journal) forgetPartition(p uint16) {
	j.mu.Lock()
	for id, st := range j.ids {
		if j.partition(id) != p {
			continue
		}
		if st.inflight != 0 {
			panic(fmt.Sprintf("persistence: identity %q of unheld partition %d has %d requests in flight", id, p, st.inflight))
		}
		j.idsLRU.Remove(st.used)
		delete(j.ids, id)
	}
	j.evictions++
	j.mu.Unlock()
	j.compactMu.Lock()
	for id := range j.compactDue {
		if j.partition(id) == p {
			delete(j.compactDue, id)
		}
	}
	j.compactMu.Unlock()
}

// awaitPartitionCompaction waits until no compaction pass is deleting
// events of partition p. p is not held, so no pass starts on it after
// this (markRunning skips unheld partitions): what a pass read before the
// release cannot be deleted after a drop or import changed the range.
func (j *Journal) awaitPartitionCompaction(p uint16) {
	j.compactMu.Lock()
	defer j.compactMu.Unlock()
	for {
		running := false
		for id := range j.compactRunning {
			if j.partition(id) == p {
				running = true
				break
			}
		}
		if !running {
			return
		}
		j.compactIdle.Wait()
	}
}
