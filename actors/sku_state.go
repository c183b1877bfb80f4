package actors

import (
	"fmt"
	"iter"
	"math"

	"github.com/orderengine/orderengine/actors/pb"
)

// skuSchemaVersion is the version of SKUEvent and SKUSnapshot records this
// code writes and the only one it reads. Version 2 bounds what a SKU
// remembers (see SKUState); version 1 data is refused, not migrated.
const skuSchemaVersion = 2

// SKUState is everything a SKU actor knows. The zero value is not usable;
// NewSKUState makes one. Only apply changes what it knows; forgetting (see
// below) only drops records that no longer change any answer.
//
// # What a SKU remembers, and for how long
//
// A SKU keeps a record (a hold) of each order it has seen and the ID of
// each restock and remove it applied, so that a retried command gets the
// first answer instead of applying twice. It keeps them only as long as a
// retry can come, so its memory and its snapshots are bounded by its live
// reservations plus one window of traffic, not by its history:
//
//  1. A ReserveStock whose deadline plus Grace is not after now is refused
//     (CONFLICT, "the reservation's deadline has passed"). The safety sweep
//     would release such a hold at once, so nothing is lost, and a record
//     then only has to outlive its deadline plus Grace to catch every retry
//     of a reservation, and every reservation that arrives after its order
//     released it.
//  2. A live reservation is never forgotten. A settled hold (committed,
//     released, returned, or the tombstone a release of an unknown order
//     leaves) is forgotten once now >= max(deadline + Grace, settled +
//     DedupWindow), settled being when it settled. A tombstone takes its
//     deadline from the release (the order's expiry; the settled time when
//     the release carries none). So a retried commit, release or return
//     that comes within DedupWindow of when it became owed finds the record
//     (it was applied after it became owed), and so does every retried
//     reservation, until its deadline plus Grace.
//  3. A ReturnStock for an order the SKU does not remember is applied with
//     the command's quantity while owed_since + DedupWindow is after now:
//     had it been applied before, that was after owed_since, and its
//     RETURNED record would live until owed_since + DedupWindow at least.
//     Later it is refused (CONFLICT, "too late to tell whether this return
//     was applied"): a return is never applied twice. A return owed since a
//     time ahead of the SKU's clock is answered UNAVAILABLE (retry), since
//     its record could then be forgotten too early. A return of more units
//     than are sold is refused (CONFLICT); one without a quantity for an
//     order the SKU does not remember is INVALID.
//  4. A restock or remove ID is remembered for OpRetention after it
//     applied. A repeat after that applies again, so operators must not
//     retry that late.
//
// Forgetting is not an event. It is a function of the state and the time,
// so copies of one state (live, replayed from events, restored from a
// snapshot plus the events after it) may keep different records for a
// while, and that must never change an answer or an event:
//
//   - Decisions ignore a record that is forgettable at the decision's time,
//     as if it were gone, so when it is physically dropped (a bounded number
//     per turn: on sweeps, after loading, and a few per command) changes
//     nothing.
//   - A snapshot omits the records forgettable at its time T, and every
//     later decision uses a time >= T: the state's clock never goes back
//     (a decision's time is the later of the command's and the latest the
//     state has seen).
//   - Events carry what a forgotten record would have supplied (a release
//     and a return carry deadline and quantity), and apply replaces a
//     settled record it meets with a tombstone, a return or a reservation
//     that was decided without it. Counters (available, reserved, sold)
//     change only by events, never by forgetting.
type SKUState struct {
	SKU       string
	Sequence  uint64 // last applied journal sequence
	Known     bool   // restocked at least once
	Available int64
	Reserved  int64 // sum of the quantities of holds in HOLD_STATE_RESERVED
	Sold      int64
	Restocked int64 // total ever restocked
	Removed   int64 // total ever removed

	// Limit is the purchase limit per customer, 0 for none. While one is
	// in force, units counts each customer's units in live reservations
	// and in purchases made since limitSince (when it was set where there
	// was none); a reservation that would take a customer above Limit is
	// refused. Only customers with units are kept, so the map is bounded
	// by the customers holding reserved or sold units (plus, rarely, one
	// whose reservation from before the limit was returned: see giveBack),
	// and it is dropped with the limit. Units bought before the limit was
	// set are not counted: set it before the sale opens.
	Limit      int64
	limitSince int64
	units      map[string]int64

	holds holdTable
	ops   skuOps
	// clock is the latest time the state decided or applied at (Unix ns).
	// Decisions use the later of it and the command's time, which is what
	// keeps forgetting from changing answers when a clock steps back.
	clock int64
}

// NewSKUState returns the state of a SKU that was never restocked.
func NewSKUState(sku string) *SKUState {
	return &SKUState{SKU: sku, holds: newHoldTable(), ops: newSKUOps()}
}

// View is the SKU as the outside sees it.
func (s *SKUState) View() *pb.SKUView {
	return &pb.SKUView{Sku: s.SKU, Available: s.Available, Reserved: s.Reserved, Sold: s.Sold, Known: s.Known,
		PerCustomerLimit: s.Limit}
}

// CustomerUnits returns the units counted for customer under the purchase
// limit in force (0 when there is none).
func (s *SKUState) CustomerUnits(customer string) int64 { return s.units[customer] }

// CountedCustomers returns how many customers have units counted.
func (s *SKUState) CountedCustomers() int { return len(s.units) }

// count adds n (negative: takes) to customer's counted units, keeping only
// customers with units.
func (s *SKUState) count(customer string, n int64) {
	if n == 0 {
		return
	}
	if s.units == nil {
		s.units = make(map[string]int64)
	}
	if v := s.units[customer] + n; v > 0 {
		s.units[customer] = v
	} else {
		delete(s.units, customer)
	}
}

// apply folds one event into the state and checks the conservation
// invariant. An event that does not fit the state, or an invariant that no
// longer holds, is a bug or a corrupt journal: it panics, and the actor's
// supervisor restarts it from the journal.
func (s *SKUState) apply(seq uint64, ev *pb.SKUEvent) {
	if seq != s.Sequence+1 {
		panic(fmt.Sprintf("sku %s: event sequence %d after %d", s.SKU, seq, s.Sequence))
	}
	at := ev.AtUnixNano
	switch b := ev.Body.(type) {
	case *pb.SKUEvent_Restocked:
		s.applyOp(b.Restocked.OpId, b.Restocked.Quantity, false, at)
		s.Known = true
		s.Available += b.Restocked.Quantity
		s.Restocked += b.Restocked.Quantity
	case *pb.SKUEvent_Removed:
		s.applyOp(b.Removed.OpId, b.Removed.Quantity, true, at)
		s.Available -= b.Removed.Quantity
		s.Removed += b.Removed.Quantity
	case *pb.SKUEvent_Reserved:
		s.applyReserved(b.Reserved)
	case *pb.SKUEvent_Committed:
		s.applyCommitted(b.Committed.OrderId, at)
	case *pb.SKUEvent_Released:
		s.applyReleased(b.Released, at)
	case *pb.SKUEvent_Returned:
		s.applyReturned(b.Returned, at)
	case *pb.SKUEvent_LimitSet:
		s.applyLimitSet(b.LimitSet.PerCustomer, at)
	default:
		panic(fmt.Sprintf("sku %s: event %d has no body", s.SKU, seq))
	}
	s.Sequence = seq
	s.clock = max(s.clock, at)
	if err := s.checkInvariant(); err != nil {
		panic(err.Error())
	}
}

func (s *SKUState) applyOp(id string, qty int64, remove bool, at int64) {
	s.mustID(id)
	if qty < 1 || qty > stockQuantityMax {
		panic(fmt.Sprintf("sku %s: operation %s with quantity %d", s.SKU, id, qty))
	}
	s.ops.put(skuOpKey{id: id, remove: remove}, skuOpRec{qty: qty, at: at})
}

func (s *SKUState) applyReserved(r *pb.StockReserved) {
	s.mustID(r.OrderId)
	if r.Quantity < 1 || r.Quantity > stockQuantityMax {
		panic(fmt.Sprintf("sku %s: reservation of %d units", s.SKU, r.Quantity))
	}
	if slot, ok := s.holds.lookup(r.OrderId); ok && s.holds.rec(slot).state == uint8(pb.HoldState_HOLD_STATE_RESERVED) {
		panic(fmt.Sprintf("sku %s: order %s reserved twice", s.SKU, r.OrderId))
	}
	s.Available -= r.Quantity
	s.Reserved += r.Quantity
	counted := s.Limit > 0 && r.Customer != ""
	if counted {
		s.count(r.Customer, r.Quantity)
	}
	s.holds.put(holdRec{orderID: r.OrderId, deadline: r.DeadlineUnixNano, qty: int32(r.Quantity),
		state: uint8(pb.HoldState_HOLD_STATE_RESERVED), customer: r.Customer, counted: counted}, true)
}

func (s *SKUState) applyCommitted(orderID string, at int64) {
	slot, ok := s.holds.lookup(orderID)
	if !ok {
		panic(fmt.Sprintf("sku %s: commit of unknown order %s", s.SKU, orderID))
	}
	h := *s.holds.rec(slot)
	switch {
	case h.state == uint8(pb.HoldState_HOLD_STATE_RESERVED):
		s.Reserved -= int64(h.qty)
	case h.state == uint8(pb.HoldState_HOLD_STATE_RELEASED) && h.reason == uint8(pb.ReleaseReason_RELEASE_REASON_SAFETY_EXPIRY) && h.qty > 0:
		// Re-taken after a safety expiry: the units come from available,
		// and count again for the customer.
		s.Available -= int64(h.qty)
		if h.counted = s.Limit > 0 && h.customer != ""; h.counted {
			s.count(h.customer, int64(h.qty))
		}
	default:
		panic(fmt.Sprintf("sku %s: commit of order %s in hold state %d", s.SKU, orderID, h.state))
	}
	s.Sold += int64(h.qty)
	h.state, h.reason, h.settled = uint8(pb.HoldState_HOLD_STATE_COMMITTED), 0, at
	s.holds.put(h, true)
}

// applyReleased ends a reservation, or leaves a tombstone for an order
// whose reservation the SKU does not hold (never saw, or forgot).
func (s *SKUState) applyReleased(r *pb.ReservationReleased, at int64) {
	s.mustID(r.OrderId)
	if r.Reason < 0 || r.Reason > pb.ReleaseReason_RELEASE_REASON_SAFETY_EXPIRY {
		panic(fmt.Sprintf("sku %s: release of %s for reason %d", s.SKU, r.OrderId, r.Reason))
	}
	rel := holdRec{orderID: r.OrderId, settled: at, state: uint8(pb.HoldState_HOLD_STATE_RELEASED), reason: uint8(r.Reason)}
	if slot, ok := s.holds.lookup(r.OrderId); ok && s.holds.rec(slot).state == uint8(pb.HoldState_HOLD_STATE_RESERVED) {
		h := s.holds.rec(slot)
		s.Reserved -= int64(h.qty)
		s.Available += int64(h.qty)
		if h.counted {
			s.count(h.customer, -int64(h.qty))
		}
		rel.deadline, rel.qty, rel.customer = h.deadline, h.qty, h.customer
	} else {
		rel.deadline = r.DeadlineUnixNano
		if rel.deadline == 0 {
			rel.deadline = at
		}
	}
	s.holds.put(rel, true)
}

// applyReturned gives sold units back. The event carries the quantity and
// deadline, so it applies the same whether or not this copy of the state
// still has the committed record.
func (s *SKUState) applyReturned(r *pb.StockReturned, at int64) {
	s.mustID(r.OrderId)
	if r.Quantity < 1 || r.Quantity > stockQuantityMax {
		panic(fmt.Sprintf("sku %s: return of %d units", s.SKU, r.Quantity))
	}
	if slot, ok := s.holds.lookup(r.OrderId); ok && s.holds.rec(slot).state == uint8(pb.HoldState_HOLD_STATE_RESERVED) {
		panic(fmt.Sprintf("sku %s: return of order %s, which is reserved", s.SKU, r.OrderId))
	}
	s.Sold -= r.Quantity
	s.Available += r.Quantity
	if r.Counted && s.Limit > 0 {
		s.count(r.Customer, -r.Quantity)
	}
	s.holds.put(holdRec{orderID: r.OrderId, deadline: r.DeadlineUnixNano, settled: at, qty: int32(r.Quantity),
		state: uint8(pb.HoldState_HOLD_STATE_RETURNED), customer: r.Customer}, true)
}

// applyLimitSet changes the purchase limit. A limit where there was none
// starts counting from the live reservations (the only holds whose units
// are marked counted from then on); removing it forgets every count.
func (s *SKUState) applyLimitSet(limit, at int64) {
	if limit < 0 || limit > stockQuantityMax {
		panic(fmt.Sprintf("sku %s: purchase limit %d", s.SKU, limit))
	}
	old := s.Limit
	s.Limit = limit
	switch {
	case limit == 0:
		s.units, s.limitSince = nil, 0
		s.holds.setCounted(func(*holdRec) bool { return false })
	case old == 0:
		s.units, s.limitSince = nil, at
		s.holds.setCounted(func(r *holdRec) bool {
			live := r.state == uint8(pb.HoldState_HOLD_STATE_RESERVED) && r.customer != ""
			if live {
				s.count(r.customer, int64(r.qty))
			}
			return live
		})
	}
}

func (s *SKUState) mustID(id string) {
	if id == "" || len(id) > skuIDBytesMax {
		panic(fmt.Sprintf("sku %s: event with an ID of %d bytes", s.SKU, len(id)))
	}
}

// checkInvariant is promise 1: nothing oversold, every unit accounted for.
func (s *SKUState) checkInvariant() error {
	if s.Available < 0 || s.Reserved < 0 || s.Sold < 0 {
		return fmt.Errorf("sku %s: negative stock: available %d reserved %d sold %d", s.SKU, s.Available, s.Reserved, s.Sold)
	}
	if s.Available+s.Reserved+s.Sold != s.Restocked-s.Removed {
		return fmt.Errorf("sku %s: stock not conserved: available %d + reserved %d + sold %d != restocked %d - removed %d",
			s.SKU, s.Available, s.Reserved, s.Sold, s.Restocked, s.Removed)
	}
	return nil
}

// CheckHolds checks the counters against the records and the records'
// index and heaps against the records, a full check that is too slow for
// every event but right for tests and after recovery. Reserved must equal
// the reservations; sold must cover the committed records (it also counts
// committed orders the SKU has forgotten), unless a return was sent for
// an order that never bought: the SKU cannot tell one from a return whose
// commit it forgot, and applies it while units are sold.
func (s *SKUState) CheckHolds() error {
	var reserved, committed int64
	var err error
	t := &s.holds
	n := 0
	counted := map[string]int64{}
	t.each(func(slot int32, r *holdRec) bool {
		n++
		if r.counted && (r.state == uint8(pb.HoldState_HOLD_STATE_RESERVED) || r.state == uint8(pb.HoldState_HOLD_STATE_COMMITTED)) {
			counted[r.customer] += int64(r.qty)
		}
		switch pb.HoldState(r.state) {
		case pb.HoldState_HOLD_STATE_RESERVED:
			reserved += int64(r.qty)
		case pb.HoldState_HOLD_STATE_COMMITTED:
			committed += int64(r.qty)
		}
		if got, ok := t.lookup(r.orderID); !ok || got != slot {
			err = fmt.Errorf("sku %s: index does not find order %s", s.SKU, r.orderID)
		} else if k := t.heapOf(slot); t.heapIndex(slot) >= len(t.heaps[k]) || t.heaps[k][t.heapIndex(slot)] != slot {
			err = fmt.Errorf("sku %s: order %s is not where its heap position says", s.SKU, r.orderID)
		}
		return err == nil
	})
	switch {
	case err != nil:
		return err
	case n != t.count || t.index.size() != n || len(t.heaps[heapLive])+len(t.heaps[heapSettled])+len(t.heaps[heapLate]) != n:
		return fmt.Errorf("sku %s: %d records, count %d, index %d, heaps %d/%d/%d", s.SKU, n, t.count,
			t.index.size(), len(t.heaps[heapLive]), len(t.heaps[heapSettled]), len(t.heaps[heapLate]))
	case reserved != s.Reserved || committed > s.Sold:
		return fmt.Errorf("sku %s: holds say reserved %d committed %d, counters say reserved %d sold %d",
			s.SKU, reserved, committed, s.Reserved, s.Sold)
	}
	if err := s.checkUnits(counted); err != nil {
		return err
	}
	for k, h := range t.heaps {
		for i := 1; i < len(h); i++ {
			if t.less(k, h[i], h[(i-1)/2]) {
				return fmt.Errorf("sku %s: heap %d out of order at %d", s.SKU, k, i)
			}
		}
	}
	return s.checkInvariant()
}

// checkUnits checks the purchase limit's counts: none without a limit,
// every count positive, and each customer's at least what its counted
// holds add up to. (Counts may exceed the reserved and sold units: see
// the return rule in giveBack.)
func (s *SKUState) checkUnits(counted map[string]int64) error {
	if s.Limit == 0 && (len(s.units) > 0 || len(counted) > 0) {
		return fmt.Errorf("sku %s: %d customers counted without a purchase limit", s.SKU, max(len(s.units), len(counted)))
	}
	for c, n := range s.units {
		if n < 1 || c == "" {
			return fmt.Errorf("sku %s: customer %q counts %d units", s.SKU, c, n)
		}
	}
	for c, n := range counted {
		if s.units[c] < n {
			return fmt.Errorf("sku %s: customer %q counts %d units, its counted holds %d", s.SKU, c, s.units[c], n)
		}
	}
	return nil
}

// HoldOf returns a copy of the record the SKU keeps for orderID, including
// one it may already forget but has not dropped yet.
func (s *SKUState) HoldOf(orderID string) (*pb.Hold, bool) {
	slot, ok := s.holds.lookup(orderID)
	if !ok {
		return nil, false
	}
	return s.holds.rec(slot).toPB(), true
}

// HoldCount returns the number of holds the SKU keeps.
func (s *SKUState) HoldCount() int { return s.holds.count }

// Holds yields every hold the SKU keeps, by order ID, in no fixed order.
func (s *SKUState) Holds() iter.Seq2[string, *pb.Hold] {
	return func(yield func(string, *pb.Hold) bool) {
		s.holds.each(func(_ int32, r *holdRec) bool { return yield(r.orderID, r.toPB()) })
	}
}

// OpOf returns the quantity of the restock (remove false) or remove
// operation opID, if the SKU remembers it.
func (s *SKUState) OpOf(opID string, remove bool) (int64, bool) {
	op, ok := s.ops.byKey[skuOpKey{id: opID, remove: remove}]
	return op.qty, ok
}

// WakeAt returns when the SKU must next be woken even if nobody sends it
// anything: when its earliest live reservation falls due for the safety
// sweep (deadline plus grace), in Unix nanoseconds; 0 when it holds none.
func (s *SKUState) WakeAt(rules SKURules) int64 {
	slot, ok := s.holds.top(heapLive)
	if !ok {
		return 0
	}
	return max(addSat(s.holds.rec(slot).deadline, int64(rules.Grace)), 1)
}

func (r *holdRec) toPB() *pb.Hold {
	return &pb.Hold{OrderId: r.orderID, Quantity: int64(r.qty), DeadlineUnixNano: r.deadline,
		State: pb.HoldState(r.state), ReleaseReason: pb.ReleaseReason(r.reason), SettledUnixNano: r.settled,
		Customer: r.customer, Counted: r.counted}
}

// addSat adds two times or durations in nanoseconds, saturating instead of
// wrapping, so that a far deadline plus grace stays far.
func addSat(a, b int64) int64 {
	switch {
	case b > 0 && a > math.MaxInt64-b:
		return math.MaxInt64
	case b < 0 && a < math.MinInt64-b:
		return math.MinInt64
	}
	return a + b
}
