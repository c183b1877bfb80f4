package actors

import (
	"fmt"
	"time"

	"github.com/orderengine/orderengine/actors/pb"
)

// Limits of the SKU commands. The gateway enforces tighter ones from the
// HTTP contract; these protect the actor from any other sender.
const (
	// stockQuantityMax bounds one restock, remove or reservation; a hold
	// record stores it in 32 bits.
	stockQuantityMax = 1_000_000_000
	// stockUnitsMax bounds the total ever restocked, far from int64 overflow.
	stockUnitsMax = 1 << 60
	// skuIDBytesMax bounds order and operation IDs.
	skuIDBytesMax = 256
)

// SKURules are the SKU's own settings for the pure layer.
type SKURules struct {
	// Grace is how long past its deadline a reservation is kept before the
	// SKU releases it by itself. The order actor expires orders at the
	// deadline; this is the safety net behind it.
	Grace time.Duration
	// SweepMax bounds the reservations one sweep releases, so a pile of
	// expiries cannot stall the SKU.
	SweepMax int
	// DedupWindow is how long a settled hold is remembered after it
	// settled (and at least until its deadline plus Grace), so that retried
	// order commands get their first answer. 0 means the default.
	DedupWindow time.Duration
	// OpRetention is how long a restock or remove ID is remembered after
	// it applied. 0 means the default.
	OpRetention time.Duration
}

// DefaultSKURules are the production settings.
var DefaultSKURules = SKURules{Grace: 2 * time.Minute, SweepMax: 256, DedupWindow: 10 * time.Minute, OpRetention: 24 * time.Hour}

// withDefaults fills the windows left at zero: a zero window would forget
// a record as soon as it settled, which no caller means.
func (r SKURules) withDefaults() SKURules {
	if r.DedupWindow <= 0 {
		r.DedupWindow = DefaultSKURules.DedupWindow
	}
	if r.OpRetention <= 0 {
		r.OpRetention = DefaultSKURules.OpRetention
	}
	return r
}

// skuDecision is what the pure layer returns for one command.
type skuDecision struct {
	events []*pb.SKUEvent
	reply  *pb.StockResult
}

// skuTurn is one command's context: the state, the decision's time (Unix
// ns, never before the state's clock) and the rules.
type skuTurn struct {
	s     *SKUState
	at    int64
	rules SKURules
}

// Step decides one command, applies its events and returns them with the
// reply, whose view shows the state after the events. A nil reply means the
// command gets none (a sweep). On its way it forgets a few records that no
// longer matter, a sweep up to skuPruneMax.
func (s *SKUState) Step(cmd any, now time.Time, rules SKURules) ([]*pb.SKUEvent, *pb.StockResult) {
	rules = rules.withDefaults()
	at := s.advance(now)
	d := decideSKU(skuTurn{s: s, at: at, rules: rules}, cmd)
	for _, ev := range d.events {
		s.apply(s.Sequence+1, ev)
	}
	if d.reply != nil && d.reply.View == nil {
		d.reply.View = s.View()
	}
	limit := skuPrunePerCommand
	if _, sweep := cmd.(*pb.SweepReservations); sweep {
		limit = skuPruneMax
	}
	s.prune(at, rules, limit)
	return d.events, d.reply
}

// advance returns the time of a decision at now: never before the latest
// time the state has seen, so that what was forgettable stays forgettable.
func (s *SKUState) advance(now time.Time) int64 {
	s.clock = max(s.clock, now.UnixNano())
	return s.clock
}

// decideSKU decides one command against the state without changing it. A
// reply without a view gets the view after the events from Step.
func decideSKU(t skuTurn, cmd any) skuDecision {
	switch c := cmd.(type) {
	case *pb.Restock:
		return t.restock(c)
	case *pb.Remove:
		return t.remove(c)
	case *pb.ReserveStock:
		return t.reserve(c)
	case *pb.CommitReservation:
		return t.commit(c)
	case *pb.ReleaseReservation:
		return t.release(c)
	case *pb.ReturnStock:
		return t.giveBack(c)
	case *pb.SetPurchaseLimit:
		return t.setLimit(c)
	case *pb.GetStock:
		return skuDecision{reply: t.result(pb.Outcome_OUTCOME_APPLIED, "")}
	case *pb.SweepReservations:
		return t.sweep()
	default:
		return skuDecision{reply: t.result(pb.Outcome_OUTCOME_INVALID, fmt.Sprintf("unknown command %T", cmd))}
	}
}

func (t skuTurn) restock(c *pb.Restock) skuDecision {
	if d, bad := t.checkOp(c.OpId, c.Quantity, false); bad {
		return d
	}
	if t.s.Restocked+c.Quantity > stockUnitsMax {
		return skuDecision{reply: t.result(pb.Outcome_OUTCOME_INVALID, "restock would exceed the SKU's total stock limit")}
	}
	return t.decided(pb.Outcome_OUTCOME_APPLIED, &pb.SKUEvent{Body: &pb.SKUEvent_Restocked{Restocked: &pb.StockRestocked{OpId: c.OpId, Quantity: c.Quantity}}})
}

func (t skuTurn) remove(c *pb.Remove) skuDecision {
	if d, bad := t.checkOp(c.OpId, c.Quantity, true); bad {
		return d
	}
	if t.s.Available < c.Quantity {
		return skuDecision{reply: t.result(pb.Outcome_OUTCOME_INSUFFICIENT, "")}
	}
	return t.decided(pb.Outcome_OUTCOME_APPLIED, &pb.SKUEvent{Body: &pb.SKUEvent_Removed{Removed: &pb.StockRemoved{OpId: c.OpId, Quantity: c.Quantity}}})
}

// checkOp validates a restock or remove and recognises a repeat of an
// operation ID. bad is true when the decision is final.
func (t skuTurn) checkOp(opID string, qty int64, remove bool) (skuDecision, bool) {
	if d, bad := t.checkArgs("op_id", opID, qty); bad {
		return d, true
	}
	if prev, seen := t.s.visibleOp(skuOpKey{id: opID, remove: remove}, t.at, t.rules); seen {
		if prev.qty != qty {
			return skuDecision{reply: t.result(pb.Outcome_OUTCOME_CONFLICT,
				fmt.Sprintf("operation %s was applied with quantity %d", opID, prev.qty))}, true
		}
		return skuDecision{reply: t.result(pb.Outcome_OUTCOME_ALREADY_DONE, "")}, true
	}
	return skuDecision{}, false
}

func (t skuTurn) checkArgs(idName, id string, qty int64) (skuDecision, bool) {
	switch {
	case id == "" || len(id) > skuIDBytesMax:
		return skuDecision{reply: t.result(pb.Outcome_OUTCOME_INVALID, idName+" must be 1 to 256 bytes")}, true
	case qty < 1 || qty > stockQuantityMax:
		return skuDecision{reply: t.result(pb.Outcome_OUTCOME_INVALID, "quantity must be 1 to 1000000000")}, true
	}
	return skuDecision{}, false
}

// reserve holds units for an order. The deadline check comes before the
// order's record is looked at, so that its answer cannot depend on whether
// the record was forgotten yet (rule 1 of SKUState).
func (t skuTurn) reserve(c *pb.ReserveStock) skuDecision {
	if d, bad := t.checkArgs("order_id", c.OrderId, c.Quantity); bad {
		return d
	}
	if addSat(c.DeadlineUnixNano, int64(t.rules.Grace)) <= t.at {
		return skuDecision{reply: t.result(pb.Outcome_OUTCOME_CONFLICT, "the reservation's deadline has passed")}
	}
	if h, seen := t.s.visibleHold(c.OrderId, t.at, t.rules); seen {
		switch st := pb.HoldState(h.state); {
		case st == pb.HoldState_HOLD_STATE_RELEASED || st == pb.HoldState_HOLD_STATE_RETURNED:
			return t.holdResult(h, pb.Outcome_OUTCOME_CONFLICT, "the order's reservation was already ended")
		case int64(h.qty) != c.Quantity:
			return t.holdResult(h, pb.Outcome_OUTCOME_CONFLICT,
				fmt.Sprintf("order %s holds %d units, not %d", c.OrderId, h.qty, c.Quantity))
		}
		return t.holdResult(h, pb.Outcome_OUTCOME_ALREADY_DONE, "")
	}
	if len(c.Customer) > skuIDBytesMax {
		return skuDecision{reply: t.result(pb.Outcome_OUTCOME_INVALID, "customer must be at most 256 bytes")}
	}
	if t.s.Limit > 0 && c.Customer != "" && t.s.units[c.Customer]+c.Quantity > t.s.Limit {
		return skuDecision{reply: t.result(pb.Outcome_OUTCOME_LIMIT_EXCEEDED,
			fmt.Sprintf("customer %s holds %d units; the limit is %d", c.Customer, t.s.units[c.Customer], t.s.Limit))}
	}
	if t.s.Available < c.Quantity {
		return skuDecision{reply: t.result(pb.Outcome_OUTCOME_INSUFFICIENT, "")}
	}
	d := t.decided(pb.Outcome_OUTCOME_APPLIED, &pb.SKUEvent{Body: &pb.SKUEvent_Reserved{
		Reserved: &pb.StockReserved{OrderId: c.OrderId, Quantity: c.Quantity, DeadlineUnixNano: c.DeadlineUnixNano,
			Customer: c.Customer}}})
	d.reply.Hold = pb.HoldState_HOLD_STATE_RESERVED
	return d
}

func (t skuTurn) commit(c *pb.CommitReservation) skuDecision {
	h, seen := t.s.visibleHold(c.OrderId, t.at, t.rules)
	if !seen {
		return skuDecision{reply: t.result(pb.Outcome_OUTCOME_UNKNOWN_RESERVATION, "")}
	}
	switch pb.HoldState(h.state) {
	case pb.HoldState_HOLD_STATE_COMMITTED:
		return t.holdResult(h, pb.Outcome_OUTCOME_ALREADY_DONE, "")
	case pb.HoldState_HOLD_STATE_RELEASED:
		if h.reason != uint8(pb.ReleaseReason_RELEASE_REASON_SAFETY_EXPIRY) || h.qty == 0 {
			return t.holdResult(h, pb.Outcome_OUTCOME_CONFLICT, "the order released its reservation")
		}
		if t.s.Available < int64(h.qty) {
			return t.holdResult(h, pb.Outcome_OUTCOME_CONFLICT, "the reservation expired and the units are gone")
		}
	case pb.HoldState_HOLD_STATE_RETURNED:
		return t.holdResult(h, pb.Outcome_OUTCOME_CONFLICT, "the order's units were returned")
	}
	d := t.decided(pb.Outcome_OUTCOME_APPLIED, &pb.SKUEvent{Body: &pb.SKUEvent_Committed{Committed: &pb.ReservationCommitted{OrderId: c.OrderId}}})
	d.reply.Hold = pb.HoldState_HOLD_STATE_COMMITTED
	return d
}

// release ends a reservation; for an order the SKU does not remember it
// journals a tombstone, which refuses a reservation that arrives late and
// lives until the release's deadline plus grace at least.
func (t skuTurn) release(c *pb.ReleaseReservation) skuDecision {
	if c.OrderId == "" || len(c.OrderId) > skuIDBytesMax {
		return skuDecision{reply: t.result(pb.Outcome_OUTCOME_INVALID, "order_id must be 1 to 256 bytes")}
	}
	if c.Reason < 0 || c.Reason > pb.ReleaseReason_RELEASE_REASON_SAFETY_EXPIRY {
		return skuDecision{reply: t.result(pb.Outcome_OUTCOME_INVALID, fmt.Sprintf("unknown release reason %d", c.Reason))}
	}
	outcome, deadline := pb.Outcome_OUTCOME_UNKNOWN_RESERVATION, c.DeadlineUnixNano
	if h, seen := t.s.visibleHold(c.OrderId, t.at, t.rules); seen {
		switch pb.HoldState(h.state) {
		case pb.HoldState_HOLD_STATE_RELEASED:
			return t.holdResult(h, pb.Outcome_OUTCOME_ALREADY_DONE, "")
		case pb.HoldState_HOLD_STATE_COMMITTED, pb.HoldState_HOLD_STATE_RETURNED:
			return t.holdResult(h, pb.Outcome_OUTCOME_CONFLICT, "the order's units were sold; return them instead")
		}
		outcome, deadline = pb.Outcome_OUTCOME_APPLIED, h.deadline
	}
	d := t.decided(outcome, &pb.SKUEvent{Body: &pb.SKUEvent_Released{
		Released: &pb.ReservationReleased{OrderId: c.OrderId, Reason: c.Reason, DeadlineUnixNano: deadline}}})
	d.reply.Hold = pb.HoldState_HOLD_STATE_RELEASED
	return d
}

// giveBack returns sold units (ReturnStock; rule 3 of SKUState).
func (t skuTurn) giveBack(c *pb.ReturnStock) skuDecision {
	if c.OrderId == "" || len(c.OrderId) > skuIDBytesMax {
		return skuDecision{reply: t.result(pb.Outcome_OUTCOME_INVALID, "order_id must be 1 to 256 bytes")}
	}
	h, seen := t.s.visibleHold(c.OrderId, t.at, t.rules)
	qty, deadline := c.Quantity, c.DeadlineUnixNano
	// The units are uncounted if the order was placed while the limit in
	// force was, when its reservation was counted for sure (it came after
	// the placement). This is decided from the command alone, whether or
	// not the SKU still remembers the hold, so that forgetting cannot
	// change it. A reservation made before the limit was set and counted
	// when it was set stays counted after a return: the error is always
	// against the customer, never in favour of going over the limit.
	customer, counted := c.Customer, t.s.Limit > 0 && c.Customer != "" && c.PlacedUnixNano >= t.s.limitSince
	switch {
	case seen && h.state == uint8(pb.HoldState_HOLD_STATE_RETURNED):
		return t.holdResult(h, pb.Outcome_OUTCOME_ALREADY_DONE, "")
	case seen && h.state != uint8(pb.HoldState_HOLD_STATE_COMMITTED):
		return t.holdResult(h, pb.Outcome_OUTCOME_CONFLICT, "the order's units were never sold")
	case seen && qty != 0 && qty != int64(h.qty):
		return t.holdResult(h, pb.Outcome_OUTCOME_CONFLICT, fmt.Sprintf("order %s bought %d units, not %d", c.OrderId, h.qty, qty))
	case seen:
		qty, deadline = int64(h.qty), h.deadline
	case len(c.Customer) > skuIDBytesMax:
		return skuDecision{reply: t.result(pb.Outcome_OUTCOME_INVALID, "customer must be at most 256 bytes")}
	case qty < 1 || qty > stockQuantityMax:
		return skuDecision{reply: t.result(pb.Outcome_OUTCOME_INVALID,
			"quantity must be 1 to 1000000000 to return units of an order the SKU does not remember")}
	case addSat(c.OwedSinceUnixNano, int64(t.rules.DedupWindow)) <= t.at:
		return skuDecision{reply: t.result(pb.Outcome_OUTCOME_CONFLICT, "too late to tell whether this return was applied")}
	}
	if qty > t.s.Sold {
		// Only a return for an order that never bought can get here (the
		// SKU cannot tell it from one whose commit it forgot); refusing
		// keeps sold from going negative.
		return skuDecision{reply: t.result(pb.Outcome_OUTCOME_CONFLICT, fmt.Sprintf("only %d units are sold", t.s.Sold))}
	}
	if c.OwedSinceUnixNano > t.at {
		// Applied now, its record could be forgotten before owed_since plus
		// the window, and a retry then would apply again.
		return skuDecision{reply: t.result(pb.Outcome_OUTCOME_UNAVAILABLE, "the return is owed since a time ahead of the SKU's clock; retry")}
	}
	d := t.decided(pb.Outcome_OUTCOME_APPLIED, &pb.SKUEvent{Body: &pb.SKUEvent_Returned{
		Returned: &pb.StockReturned{OrderId: c.OrderId, Quantity: qty, DeadlineUnixNano: deadline,
			Customer: customer, Counted: counted}}})
	d.reply.Hold = pb.HoldState_HOLD_STATE_RETURNED
	return d
}

// setLimit sets or removes the purchase limit.
func (t skuTurn) setLimit(c *pb.SetPurchaseLimit) skuDecision {
	switch {
	case c.PerCustomer < 0 || c.PerCustomer > stockQuantityMax:
		return skuDecision{reply: t.result(pb.Outcome_OUTCOME_INVALID, "per_customer must be 0 to 1000000000")}
	case c.PerCustomer == t.s.Limit:
		return skuDecision{reply: t.result(pb.Outcome_OUTCOME_ALREADY_DONE, "")}
	}
	return t.decided(pb.Outcome_OUTCOME_APPLIED, &pb.SKUEvent{Body: &pb.SKUEvent_LimitSet{
		LimitSet: &pb.PurchaseLimitSet{PerCustomer: c.PerCustomer}}})
}

// sweep releases reservations past deadline plus grace, earliest deadline
// first (then by order ID), at most SweepMax. It has no caller to answer.
func (t skuTurn) sweep() skuDecision {
	var d skuDecision
	for _, slot := range t.s.holds.firstLive(addSat(t.at, -int64(t.rules.Grace)), t.rules.SweepMax) {
		r := t.s.holds.rec(slot)
		d.events = append(d.events, &pb.SKUEvent{SchemaVersion: skuSchemaVersion, AtUnixNano: t.at, Body: &pb.SKUEvent_Released{
			Released: &pb.ReservationReleased{OrderId: r.orderID, Reason: pb.ReleaseReason_RELEASE_REASON_SAFETY_EXPIRY, DeadlineUnixNano: r.deadline}}})
	}
	return d
}

// decided returns one event and a reply showing the state after it.
func (t skuTurn) decided(outcome pb.Outcome, ev *pb.SKUEvent) skuDecision {
	ev.SchemaVersion, ev.AtUnixNano = skuSchemaVersion, t.at
	return skuDecision{events: []*pb.SKUEvent{ev}, reply: &pb.StockResult{Outcome: outcome}}
}

func (t skuTurn) result(outcome pb.Outcome, detail string) *pb.StockResult {
	return &pb.StockResult{Outcome: outcome, View: t.s.View(), Detail: detail}
}

func (t skuTurn) holdResult(h holdRec, outcome pb.Outcome, detail string) skuDecision {
	r := t.result(outcome, detail)
	r.Hold = pb.HoldState(h.state)
	return skuDecision{reply: r}
}
