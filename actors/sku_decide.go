package actors

import (
	"fmt"
	"time"

	"github.com/orderengine/orderengine/actors/pb"
)

// Limits of the SKU commands. The gateway enforces tighter ones from the
// HTTP contract; these protect the actor from any other sender.
const (
	// stockQuantityMax bounds one restock, remove or reservation.
	stockQuantityMax = 1_000_000_000
	// stockUnitsMax bounds the total ever restocked, far from int64 overflow.
	stockUnitsMax = 1 << 60
	// skuIDBytesMax bounds order and operation IDs.
	skuIDBytesMax = 256
)

// SkuRules are the SKU's own settings for the pure layer.
type SkuRules struct {
	// Grace is how long past its deadline a reservation is kept before the
	// SKU releases it by itself. The order actor expires orders at the
	// deadline; this is the safety net behind it.
	Grace time.Duration
	// SweepMax bounds the reservations one sweep releases, so a pile of
	// expiries cannot stall the SKU.
	SweepMax int
}

// DefaultSkuRules are the production settings.
var DefaultSkuRules = SkuRules{Grace: 2 * time.Minute, SweepMax: 256}

// skuDecision is what the pure layer returns for one command.
type skuDecision struct {
	events []*pb.SkuEvent
	reply  *pb.StockResult
}

// Step decides one command, applies its events and returns them with the
// reply, whose view shows the state after the events. A nil reply means the
// command gets none (a sweep).
func (s *SkuState) Step(cmd any, now time.Time, rules SkuRules) ([]*pb.SkuEvent, *pb.StockResult) {
	d := decideSku(s, cmd, now, rules)
	for _, ev := range d.events {
		s.apply(s.Sequence+1, ev)
	}
	if d.reply != nil && d.reply.View == nil {
		d.reply.View = s.View()
	}
	return d.events, d.reply
}

// decideSku decides one command against the state without changing it. A
// reply without a view gets the view after the events from Step.
func decideSku(s *SkuState, cmd any, now time.Time, rules SkuRules) skuDecision {
	at := now.UnixNano()
	switch c := cmd.(type) {
	case *pb.Restock:
		return decideRestock(s, c, at)
	case *pb.Remove:
		return decideRemove(s, c, at)
	case *pb.ReserveStock:
		return decideReserve(s, c, at)
	case *pb.CommitReservation:
		return decideCommit(s, c, at)
	case *pb.ReleaseReservation:
		return decideRelease(s, c, at)
	case *pb.ReturnStock:
		return decideReturn(s, c, at)
	case *pb.GetStock:
		return skuDecision{reply: s.result(pb.Outcome_OUTCOME_APPLIED, "")}
	case *pb.SweepReservations:
		return decideSweep(s, at, rules)
	default:
		return skuDecision{reply: s.result(pb.Outcome_OUTCOME_INVALID, fmt.Sprintf("unknown command %T", cmd))}
	}
}

func decideRestock(s *SkuState, c *pb.Restock, at int64) skuDecision {
	if d, bad := checkOp(s, c.OpId, c.Quantity, s.RestockOps); bad {
		return d
	}
	if s.Restocked+c.Quantity > stockUnitsMax {
		return skuDecision{reply: s.result(pb.Outcome_OUTCOME_INVALID, "restock would exceed the SKU's total stock limit")}
	}
	return s.decided(pb.Outcome_OUTCOME_APPLIED, &pb.SkuEvent{AtUnixNano: at,
		Body: &pb.SkuEvent_Restocked{Restocked: &pb.StockRestocked{OpId: c.OpId, Quantity: c.Quantity}}})
}

func decideRemove(s *SkuState, c *pb.Remove, at int64) skuDecision {
	if d, bad := checkOp(s, c.OpId, c.Quantity, s.RemoveOps); bad {
		return d
	}
	if s.Available < c.Quantity {
		return skuDecision{reply: s.result(pb.Outcome_OUTCOME_INSUFFICIENT, "")}
	}
	return s.decided(pb.Outcome_OUTCOME_APPLIED, &pb.SkuEvent{AtUnixNano: at,
		Body: &pb.SkuEvent_Removed{Removed: &pb.StockRemoved{OpId: c.OpId, Quantity: c.Quantity}}})
}

// checkOp validates a restock or remove and recognises a repeat of an
// operation ID. bad is true when the decision is final.
func checkOp(s *SkuState, opID string, qty int64, done map[string]int64) (skuDecision, bool) {
	if d, bad := checkArgs(s, "op_id", opID, qty); bad {
		return d, true
	}
	if prev, seen := done[opID]; seen {
		if prev != qty {
			return skuDecision{reply: s.result(pb.Outcome_OUTCOME_CONFLICT,
				fmt.Sprintf("operation %s was applied with quantity %d", opID, prev))}, true
		}
		return skuDecision{reply: s.result(pb.Outcome_OUTCOME_ALREADY_DONE, "")}, true
	}
	return skuDecision{}, false
}

func checkArgs(s *SkuState, idName, id string, qty int64) (skuDecision, bool) {
	switch {
	case id == "" || len(id) > skuIDBytesMax:
		return skuDecision{reply: s.result(pb.Outcome_OUTCOME_INVALID, idName+" must be 1 to 256 bytes")}, true
	case qty < 1 || qty > stockQuantityMax:
		return skuDecision{reply: s.result(pb.Outcome_OUTCOME_INVALID, "quantity must be 1 to 1000000000")}, true
	}
	return skuDecision{}, false
}

func decideReserve(s *SkuState, c *pb.ReserveStock, at int64) skuDecision {
	if d, bad := checkArgs(s, "order_id", c.OrderId, c.Quantity); bad {
		return d
	}
	if h, seen := s.Holds[c.OrderId]; seen {
		switch {
		case h.State == pb.HoldState_HOLD_STATE_RELEASED || h.State == pb.HoldState_HOLD_STATE_RETURNED:
			return s.holdResult(c.OrderId, pb.Outcome_OUTCOME_CONFLICT, "the order's reservation was already ended")
		case h.Quantity != c.Quantity:
			return s.holdResult(c.OrderId, pb.Outcome_OUTCOME_CONFLICT,
				fmt.Sprintf("order %s holds %d units, not %d", c.OrderId, h.Quantity, c.Quantity))
		}
		return s.holdResult(c.OrderId, pb.Outcome_OUTCOME_ALREADY_DONE, "")
	}
	if s.Available < c.Quantity {
		return skuDecision{reply: s.result(pb.Outcome_OUTCOME_INSUFFICIENT, "")}
	}
	d := s.decided(pb.Outcome_OUTCOME_APPLIED, &pb.SkuEvent{AtUnixNano: at, Body: &pb.SkuEvent_Reserved{
		Reserved: &pb.StockReserved{OrderId: c.OrderId, Quantity: c.Quantity, DeadlineUnixNano: c.DeadlineUnixNano}}})
	d.reply.Hold = pb.HoldState_HOLD_STATE_RESERVED
	return d
}

func decideCommit(s *SkuState, c *pb.CommitReservation, at int64) skuDecision {
	h, seen := s.Holds[c.OrderId]
	if !seen {
		return s.holdResult(c.OrderId, pb.Outcome_OUTCOME_UNKNOWN_RESERVATION, "")
	}
	switch h.State {
	case pb.HoldState_HOLD_STATE_COMMITTED:
		return s.holdResult(c.OrderId, pb.Outcome_OUTCOME_ALREADY_DONE, "")
	case pb.HoldState_HOLD_STATE_RELEASED:
		if h.ReleaseReason != pb.ReleaseReason_RELEASE_REASON_SAFETY_EXPIRY || h.Quantity == 0 {
			return s.holdResult(c.OrderId, pb.Outcome_OUTCOME_CONFLICT, "the order released its reservation")
		}
		if s.Available < h.Quantity {
			return s.holdResult(c.OrderId, pb.Outcome_OUTCOME_CONFLICT, "the reservation expired and the units are gone")
		}
	case pb.HoldState_HOLD_STATE_RETURNED:
		return s.holdResult(c.OrderId, pb.Outcome_OUTCOME_CONFLICT, "the order's units were returned")
	}
	d := s.decided(pb.Outcome_OUTCOME_APPLIED, &pb.SkuEvent{AtUnixNano: at,
		Body: &pb.SkuEvent_Committed{Committed: &pb.ReservationCommitted{OrderId: c.OrderId}}})
	d.reply.Hold = pb.HoldState_HOLD_STATE_COMMITTED
	return d
}

func decideRelease(s *SkuState, c *pb.ReleaseReservation, at int64) skuDecision {
	if c.OrderId == "" || len(c.OrderId) > skuIDBytesMax {
		return skuDecision{reply: s.result(pb.Outcome_OUTCOME_INVALID, "order_id must be 1 to 256 bytes")}
	}
	h, seen := s.Holds[c.OrderId]
	if seen {
		switch h.State {
		case pb.HoldState_HOLD_STATE_RELEASED:
			return s.holdResult(c.OrderId, pb.Outcome_OUTCOME_ALREADY_DONE, "")
		case pb.HoldState_HOLD_STATE_COMMITTED, pb.HoldState_HOLD_STATE_RETURNED:
			return s.holdResult(c.OrderId, pb.Outcome_OUTCOME_CONFLICT, "the order's units were sold; return them instead")
		}
	}
	outcome := pb.Outcome_OUTCOME_APPLIED
	if !seen {
		outcome = pb.Outcome_OUTCOME_UNKNOWN_RESERVATION // journaled as a tombstone
	}
	d := s.decided(outcome, &pb.SkuEvent{AtUnixNano: at,
		Body: &pb.SkuEvent_Released{Released: &pb.ReservationReleased{OrderId: c.OrderId, Reason: c.Reason}}})
	d.reply.Hold = pb.HoldState_HOLD_STATE_RELEASED
	return d
}

func decideReturn(s *SkuState, c *pb.ReturnStock, at int64) skuDecision {
	h, seen := s.Holds[c.OrderId]
	switch {
	case !seen:
		return s.holdResult(c.OrderId, pb.Outcome_OUTCOME_UNKNOWN_RESERVATION, "")
	case h.State == pb.HoldState_HOLD_STATE_RETURNED:
		return s.holdResult(c.OrderId, pb.Outcome_OUTCOME_ALREADY_DONE, "")
	case h.State != pb.HoldState_HOLD_STATE_COMMITTED:
		return s.holdResult(c.OrderId, pb.Outcome_OUTCOME_CONFLICT, "the order's units were never sold")
	}
	d := s.decided(pb.Outcome_OUTCOME_APPLIED, &pb.SkuEvent{AtUnixNano: at,
		Body: &pb.SkuEvent_Returned{Returned: &pb.StockReturned{OrderId: c.OrderId}}})
	d.reply.Hold = pb.HoldState_HOLD_STATE_RETURNED
	return d
}

// decideSweep releases reservations past deadline plus grace. It has no
// caller to answer.
func decideSweep(s *SkuState, at int64, rules SkuRules) skuDecision {
	var d skuDecision
	for _, id := range s.expiredReservations(at, int64(rules.Grace), rules.SweepMax) {
		d.events = append(d.events, &pb.SkuEvent{SchemaVersion: skuSchemaVersion, AtUnixNano: at, Body: &pb.SkuEvent_Released{
			Released: &pb.ReservationReleased{OrderId: id, Reason: pb.ReleaseReason_RELEASE_REASON_SAFETY_EXPIRY}}})
	}
	return d
}

// decided returns one event and a reply showing the state after it.
func (s *SkuState) decided(outcome pb.Outcome, ev *pb.SkuEvent) skuDecision {
	ev.SchemaVersion = skuSchemaVersion
	return skuDecision{events: []*pb.SkuEvent{ev}, reply: &pb.StockResult{Outcome: outcome}}
}

func (s *SkuState) result(outcome pb.Outcome, detail string) *pb.StockResult {
	return &pb.StockResult{Outcome: outcome, View: s.View(), Detail: detail}
}

func (s *SkuState) holdResult(orderID string, outcome pb.Outcome, detail string) skuDecision {
	r := s.result(outcome, detail)
	if h, ok := s.Holds[orderID]; ok {
		r.Hold = h.State
	}
	return skuDecision{reply: r}
}
