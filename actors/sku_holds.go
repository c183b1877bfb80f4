package actors

import (
	"hash/maphash"
	"slices"

	"github.com/orderengine/orderengine/actors/pb"
)

// holdRec is what a SKU remembers of one order. It is 40 bytes, so that a
// SKU holding a million reservations costs tens of megabytes of records,
// not hundreds: the order ID shares the bytes of the command it came in,
// quantities fit in 32 bits (they are at most stockQuantityMax), and the
// two enums fit in a byte each.
type holdRec struct {
	orderID  string // "" marks a free slot
	deadline int64  // Unix ns; for a tombstone, the release's deadline
	settled  int64  // Unix ns when it left RESERVED; 0 while reserved
	customer string // the order's customer; "" when not given
	qty      int32
	state    uint8 // pb.HoldState
	reason   uint8 // pb.ReleaseReason, for RELEASED
	// counted: the hold's units are in the customer's count under the
	// purchase limit in force (see SKUState.Limit).
	counted bool
}

// holdPageSlots is the number of records in one page of the hold table. A
// page is the unit of copy-on-write after a freeze: small enough that
// copying one costs microseconds (20 KiB), large enough that freezing a
// million records copies only about two thousand page pointers.
const holdPageSlots = 512

// holdPageFirstSlots is the room a new page starts with; it doubles up to
// holdPageSlots as slots are handed out, so that a SKU with a handful of
// holds (most SKUs of a large catalogue) costs a few hundred bytes, not a
// whole page.
const holdPageFirstSlots = 8

type holdPage struct {
	// epoch is the table epoch the page was created or copied in; a page
	// of an older epoch may be read by a frozen view and is copied before
	// it is written or grown.
	epoch uint64
	recs  []holdRec // at most holdPageSlots; only the last page is shorter
}

// Kinds of heap a record is in. A record is in exactly one heap: a
// reservation in heapLive by deadline (the safety sweep), a settled record
// first in heapSettled by settled time (until its dedup window has passed)
// and then, if its deadline plus grace is still ahead, in heapLate by
// deadline. Ordering each heap on fields of the record alone keeps the
// order fixed whatever rules the caller passes.
const (
	heapLive = iota
	heapSettled
	heapLate
	heapKinds
)

// holdTable stores a SKU's hold records in fixed-size pages, with an index
// from order ID to slot and the three heaps above. Records are read through
// rec and written only through put and remove, which keep the index and
// the heaps in step and copy a page that a frozen view still reads.
//
// Freed slots are reused, but pages are not given back: after a flash sale
// a SKU's table keeps the size of its peak (about 44 bytes a slot) until
// the actor passivates or restarts and loads only what it still keeps.
// Moving records to shrink the table would cost a pass over all of them
// in one turn.
type holdTable struct {
	pages []*holdPage
	// heapPos gives each slot's position in its heap. It is paged like the
	// records but never frozen: snapshots read records only.
	heapPos [][]int32
	used    int32   // slots ever handed out; slots at or above are unused
	free    []int32 // slots freed by remove, reused first
	count   int     // records present
	index   holdIndex
	heaps   [heapKinds][]int32

	epoch  uint64
	frozen int // frozen views not yet released (thaw)
}

func newHoldTable() holdTable {
	return holdTable{index: newHoldIndex()}
}

// rec returns the record in slot for reading. The caller must not write
// through it: writes go through put, so that frozen pages stay intact.
func (t *holdTable) rec(slot int32) *holdRec {
	return &t.pages[slot/holdPageSlots].recs[slot%holdPageSlots]
}

// writable returns the record in slot for writing, first copying its page
// if a frozen view may still read it.
func (t *holdTable) writable(slot int32) *holdRec {
	return &t.writablePage(slot / holdPageSlots).recs[slot%holdPageSlots]
}

// writablePage returns page i for writing, first copying it if a frozen
// view may still read it.
func (t *holdTable) writablePage(i int32) *holdPage {
	p := t.pages[i]
	if t.frozen > 0 && p.epoch != t.epoch {
		p = &holdPage{epoch: t.epoch, recs: slices.Clone(p.recs)}
		t.pages[i] = p
	}
	return p
}

func (t *holdTable) pos(slot int32) *int32 {
	return &t.heapPos[slot/holdPageSlots][slot%holdPageSlots]
}

// lookup returns the slot of orderID's record.
func (t *holdTable) lookup(orderID string) (int32, bool) {
	return t.index.find(t, orderID)
}

// put stores r as orderID's record, replacing the one it has, and returns
// its slot. withHeap false leaves the heaps alone (bulk loading calls
// rebuildHeaps afterwards).
func (t *holdTable) put(r holdRec, withHeap bool) int32 {
	if r.orderID == "" {
		panic("hold table: record without an order ID")
	}
	slot, ok := t.lookup(r.orderID)
	if ok {
		if withHeap {
			t.heapRemove(slot)
		}
	} else {
		slot = t.alloc()
		t.index.add(r.orderID, slot)
		t.count++
	}
	*t.writable(slot) = r
	if withHeap {
		t.heapAdd(slot)
	}
	return slot
}

// setCounted sets every record's counted flag to what counted says; the
// heaps do not depend on it. It visits every record, which only a change
// of the purchase limit asks for.
func (t *holdTable) setCounted(counted func(*holdRec) bool) {
	var slots []int32
	t.each(func(slot int32, _ *holdRec) bool {
		slots = append(slots, slot)
		return true
	})
	for _, slot := range slots {
		if c := counted(t.rec(slot)); c != t.rec(slot).counted {
			t.writable(slot).counted = c
		}
	}
}

// remove forgets the record in slot.
func (t *holdTable) remove(slot int32) {
	r := t.rec(slot)
	t.heapRemove(slot)
	t.index.del(r.orderID, slot)
	*t.writable(slot) = holdRec{}
	t.free = append(t.free, slot)
	t.count--
}

func (t *holdTable) alloc() int32 {
	if n := len(t.free); n > 0 {
		slot := t.free[n-1]
		t.free = t.free[:n-1]
		return slot
	}
	if int(t.used) == len(t.pages)*holdPageSlots {
		t.pages = append(t.pages, &holdPage{epoch: t.epoch, recs: make([]holdRec, 0, holdPageFirstSlots)})
		t.heapPos = append(t.heapPos, make([]int32, 0, holdPageFirstSlots))
	}
	last := int32(len(t.pages) - 1)
	p := t.writablePage(last)
	p.recs = append(p.recs, holdRec{})
	t.heapPos[last] = append(t.heapPos[last], 0)
	t.used++
	return t.used - 1
}

// each calls fn with every record present, in slot order, until fn
// returns false.
func (t *holdTable) each(fn func(slot int32, r *holdRec) bool) {
	for slot := int32(0); slot < t.used; slot++ {
		if r := t.rec(slot); r.orderID != "" && !fn(slot, r) {
			return
		}
	}
}

// freeze returns the pages as they are now. Until thaw, every write copies
// its page first, so the returned pages never change and another goroutine
// may read them while the actor goes on. It costs a copy of the page
// pointers, not of the records.
func (t *holdTable) freeze() (pages []*holdPage, used int32) {
	t.epoch++
	t.frozen++
	return slices.Clone(t.pages), t.used
}

// thaw releases a frozen view once nothing reads it any more.
func (t *holdTable) thaw() {
	if t.frozen > 0 {
		t.frozen--
	}
}

// heapOf says which heap the record in slot belongs to. For a settled
// record the sign of its position tells: heapLate positions are stored as
// -(position+1).
func (t *holdTable) heapOf(slot int32) int {
	switch {
	case t.rec(slot).state == uint8(pb.HoldState_HOLD_STATE_RESERVED):
		return heapLive
	case *t.pos(slot) < 0:
		return heapLate
	}
	return heapSettled
}

// less orders a heap by its key field, then by order ID, so that the order
// (and so which reservations a bounded sweep releases first) is the same
// in every replica of the state, whatever its slots.
func (t *holdTable) less(kind int, a, b int32) bool {
	ra, rb := t.rec(a), t.rec(b)
	ka, kb := ra.deadline, rb.deadline
	if kind == heapSettled {
		ka, kb = ra.settled, rb.settled
	}
	if ka != kb {
		return ka < kb
	}
	return ra.orderID < rb.orderID
}

func (t *holdTable) setPos(kind int, slot int32, i int) {
	p := int32(i)
	if kind == heapLate {
		p = -p - 1
	}
	*t.pos(slot) = p
}

func (t *holdTable) heapIndex(slot int32) int {
	p := *t.pos(slot)
	if p < 0 {
		p = -p - 1
	}
	return int(p)
}

// heapAdd puts a record in the heap its state calls for: heapLive for a
// reservation, heapSettled for a settled record.
func (t *holdTable) heapAdd(slot int32) {
	kind := heapSettled
	if t.rec(slot).state == uint8(pb.HoldState_HOLD_STATE_RESERVED) {
		kind = heapLive
	}
	t.heapPush(kind, slot)
}

func (t *holdTable) heapPush(kind int, slot int32) {
	h := append(t.heaps[kind], slot)
	t.heaps[kind] = h
	t.setPos(kind, slot, len(h)-1)
	t.siftUp(kind, len(h)-1)
}

// heapRemove takes the record in slot out of its heap.
func (t *holdTable) heapRemove(slot int32) {
	kind := t.heapOf(slot)
	h := t.heaps[kind]
	i, last := t.heapIndex(slot), len(h)-1
	if i != last {
		h[i] = h[last]
		t.setPos(kind, h[i], i)
	}
	t.heaps[kind] = h[:last]
	if i != last {
		t.siftDown(kind, i)
		t.siftUp(kind, i)
	}
}

// top returns the first slot of a heap.
func (t *holdTable) top(kind int) (int32, bool) {
	if len(t.heaps[kind]) == 0 {
		return 0, false
	}
	return t.heaps[kind][0], true
}

func (t *holdTable) siftUp(kind, i int) {
	h := t.heaps[kind]
	for i > 0 {
		parent := (i - 1) / 2
		if !t.less(kind, h[i], h[parent]) {
			return
		}
		h[i], h[parent] = h[parent], h[i]
		t.setPos(kind, h[i], i)
		t.setPos(kind, h[parent], parent)
		i = parent
	}
}

func (t *holdTable) siftDown(kind, i int) {
	h := t.heaps[kind]
	for {
		least, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && t.less(kind, h[l], h[least]) {
			least = l
		}
		if r < len(h) && t.less(kind, h[r], h[least]) {
			least = r
		}
		if least == i {
			return
		}
		h[i], h[least] = h[least], h[i]
		t.setPos(kind, h[i], i)
		t.setPos(kind, h[least], least)
		i = least
	}
}

// rebuildHeaps puts every record in the heap its state calls for, in
// linear time; loading a snapshot inserts without heaps and calls it once.
func (t *holdTable) rebuildHeaps() {
	for k := range t.heaps {
		t.heaps[k] = t.heaps[k][:0]
	}
	t.each(func(slot int32, r *holdRec) bool {
		kind := heapSettled
		if r.state == uint8(pb.HoldState_HOLD_STATE_RESERVED) {
			kind = heapLive
		}
		t.heaps[kind] = append(t.heaps[kind], slot)
		t.setPos(kind, slot, len(t.heaps[kind])-1)
		return true
	})
	for k := range t.heaps {
		for i := len(t.heaps[k])/2 - 1; i >= 0; i-- {
			t.siftDown(k, i)
		}
	}
}

// firstLive returns up to limit reservations in heap order (deadline, then
// order ID) whose deadline is at or before until, without changing the
// heap: it walks the heap with a small frontier of candidates, so it costs
// O(limit log limit) whatever the number of reservations.
func (t *holdTable) firstLive(until int64, limit int) []int32 {
	h := t.heaps[heapLive]
	var out []int32
	frontier := []int{} // heap positions, itself kept as a min-heap
	push := func(i int) {
		if i >= len(h) || t.rec(h[i]).deadline > until {
			return
		}
		frontier = append(frontier, i)
		for j := len(frontier) - 1; j > 0; {
			p := (j - 1) / 2
			if !t.less(heapLive, h[frontier[j]], h[frontier[p]]) {
				break
			}
			frontier[j], frontier[p] = frontier[p], frontier[j]
			j = p
		}
	}
	push(0)
	for len(frontier) > 0 && len(out) < limit {
		i := frontier[0]
		last := len(frontier) - 1
		frontier[0] = frontier[last]
		frontier = frontier[:last]
		for j := 0; ; {
			least, l, r := j, 2*j+1, 2*j+2
			if l < len(frontier) && t.less(heapLive, h[frontier[l]], h[frontier[least]]) {
				least = l
			}
			if r < len(frontier) && t.less(heapLive, h[frontier[r]], h[frontier[least]]) {
				least = r
			}
			if least == j {
				break
			}
			frontier[j], frontier[least] = frontier[least], frontier[j]
			j = least
		}
		out = append(out, h[i])
		push(2*i + 1)
		push(2*i + 2)
	}
	return out
}

// holdIndex maps order IDs to slots. It keys a Go map by a 32-bit hash of
// the ID rather than by the ID itself: a map entry then costs about 14
// bytes instead of about 40 (a string key is 16 bytes before the map's
// slack). The ID is checked against the record, and the rare ID whose hash
// is already taken by another lives in a small overflow map keyed by the
// ID. The seed is random per table, so the hashes cannot be aimed at.
type holdIndex struct {
	seed     maphash.Seed
	byHash   map[uint32]int32
	overflow map[string]int32
}

func newHoldIndex() holdIndex {
	return holdIndex{seed: maphash.MakeSeed(), byHash: map[uint32]int32{}}
}

func (x *holdIndex) hash(id string) uint32 {
	h := maphash.String(x.seed, id)
	return uint32(h) ^ uint32(h>>32)
}

func (x *holdIndex) find(t *holdTable, id string) (int32, bool) {
	if slot, ok := x.byHash[x.hash(id)]; ok && t.rec(slot).orderID == id {
		return slot, true
	}
	if len(x.overflow) == 0 {
		return 0, false
	}
	slot, ok := x.overflow[id]
	return slot, ok
}

// add indexes a new ID; the caller checked that it is not indexed yet.
func (x *holdIndex) add(id string, slot int32) {
	h := x.hash(id)
	if _, taken := x.byHash[h]; !taken {
		x.byHash[h] = slot
		return
	}
	if x.overflow == nil {
		x.overflow = map[string]int32{}
	}
	x.overflow[id] = slot
}

// del removes an indexed ID. An overflow entry whose hash slot becomes
// free stays where it is: find looks in the overflow map whenever the hash
// slot does not match.
func (x *holdIndex) del(id string, slot int32) {
	h := x.hash(id)
	if s, ok := x.byHash[h]; ok && s == slot {
		delete(x.byHash, h)
		return
	}
	delete(x.overflow, id)
}

// size is the number of indexed IDs.
func (x *holdIndex) size() int { return len(x.byHash) + len(x.overflow) }
