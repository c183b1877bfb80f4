package actors

import (
	"container/heap"

	"github.com/orderengine/orderengine/actors/pb"
)

// Bounds on forgetting (see SKUState for the rules).
const (
	// skuPruneMax bounds the records one sweep, or the load of an actor,
	// forgets in its turn, so that a pile of expired records cannot stall
	// the SKU; the rest go in later turns.
	skuPruneMax = 4096
	// skuPrunePerCommand is how many records every command forgets on its
	// way. A command creates at most one record, so forgetting keeps up
	// with any command rate instead of depending on the sweep's pace.
	skuPrunePerCommand = 2
)

// holdForgettable reports whether the record may be forgotten at `at`
// (rule 2 of SKUState): a settled record past both its deadline plus
// grace and its settled time plus the dedup window.
func holdForgettable(r *holdRec, at int64, rules SKURules) bool {
	if r.state == uint8(pb.HoldState_HOLD_STATE_RESERVED) {
		return false
	}
	return at >= max(addSat(r.deadline, int64(rules.Grace)), addSat(r.settled, int64(rules.DedupWindow)))
}

// visibleHold returns orderID's record as decisions see it at `at`: a
// record that may be forgotten counts as forgotten, whether or not it has
// been dropped yet.
func (s *SKUState) visibleHold(orderID string, at int64, rules SKURules) (holdRec, bool) {
	slot, ok := s.holds.lookup(orderID)
	if !ok {
		return holdRec{}, false
	}
	r := s.holds.rec(slot)
	if holdForgettable(r, at, rules) {
		return holdRec{}, false
	}
	return *r, true
}

// visibleOp is visibleHold for restock and remove IDs (rule 4).
func (s *SKUState) visibleOp(key skuOpKey, at int64, rules SKURules) (skuOpRec, bool) {
	op, ok := s.ops.byKey[key]
	if !ok || opForgettable(op, at, rules) {
		return skuOpRec{}, false
	}
	return op, true
}

func opForgettable(op skuOpRec, at int64, rules SKURules) bool {
	return at >= addSat(op.at, int64(rules.OpRetention))
}

// prune drops up to limit records that may be forgotten at `at` and
// returns how many it dropped. It changes no counter and no answer (see
// SKUState), so it is not journaled: each copy of the state prunes on its
// own schedule. While a snapshot reads a frozen view it leaves the holds
// alone: dropping a record then would copy its page only to forget it,
// and a sweep could copy every page in one turn.
func (s *SKUState) prune(at int64, rules SKURules, limit int) int {
	t := &s.holds
	n := 0
	for n < limit && t.frozen == 0 {
		slot, ok := t.top(heapSettled)
		if !ok || addSat(t.rec(slot).settled, int64(rules.DedupWindow)) > at {
			break
		}
		n++
		if addSat(t.rec(slot).deadline, int64(rules.Grace)) <= at {
			t.remove(slot)
			continue
		}
		// Past its dedup window but not its deadline plus grace: wait in
		// the heap ordered by deadline.
		t.heapRemove(slot)
		t.heapPush(heapLate, slot)
	}
	for n < limit && t.frozen == 0 {
		slot, ok := t.top(heapLate)
		if !ok || addSat(t.rec(slot).deadline, int64(rules.Grace)) > at {
			break
		}
		t.remove(slot)
		n++
	}
	return n + s.ops.prune(at, rules, limit-n)
}

// skuOps remembers applied restock and remove IDs (rule 4 of SKUState),
// with a queue by time to forget them in order. Operations are rare next to
// orders, so a map and a heap with lazy deletion are enough.
type skuOps struct {
	byKey map[skuOpKey]skuOpRec
	queue opQueue
}

// skuOpKey names an operation: restock and remove IDs are separate name
// spaces.
type skuOpKey struct {
	id     string
	remove bool
}

type skuOpRec struct {
	qty int64
	at  int64 // Unix ns when it applied
}

func newSKUOps() skuOps { return skuOps{byKey: map[skuOpKey]skuOpRec{}} }

func (o *skuOps) put(k skuOpKey, op skuOpRec) {
	o.byKey[k] = op
	heap.Push(&o.queue, opQueued{at: op.at, key: k})
}

// prune forgets up to limit operations whose retention has passed. A
// queue entry whose operation was since replaced (by a repeat after its
// retention) is dropped without forgetting the newer one.
func (o *skuOps) prune(at int64, rules SKURules, limit int) int {
	n := 0
	for n < limit && len(o.queue) > 0 && opForgettable(skuOpRec{at: o.queue[0].at}, at, rules) {
		q := heap.Pop(&o.queue).(opQueued)
		if op, ok := o.byKey[q.key]; ok && op.at == q.at {
			delete(o.byKey, q.key)
		}
		n++
	}
	if len(o.queue) == 0 {
		o.queue = nil // let a large backing array go
	}
	return n
}

type opQueued struct {
	at  int64
	key skuOpKey
}

// opQueue is a min-heap of operations by time (container/heap).
type opQueue []opQueued

func (q opQueue) Len() int           { return len(q) }
func (q opQueue) Less(i, j int) bool { return q[i].at < q[j].at }
func (q opQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *opQueue) Push(x any)        { *q = append(*q, x.(opQueued)) }
func (q *opQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}
