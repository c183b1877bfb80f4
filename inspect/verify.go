package inspect

import (
	"fmt"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
	"github.com/orderengine/orderengine/persistence"
)

// problemsKeptMax bounds the problems a report lists; the rest are only
// counted.
const problemsKeptMax = 1000

// Report is what Verify found.
type Report struct {
	SKUs   int `json:"skus"`
	Orders int `json:"orders"`
	// Reservations counts the live reservations the SKUs hold.
	Reservations int `json:"reservations"`
	// OrphanReservations are live reservations of orders the journal does
	// not hold: an order lost before its placement was durable, whose SKU
	// releases the units at deadline plus grace. Not a problem.
	OrphanReservations int `json:"orphan_reservations"`
	// UncheckedLines are order lines whose SKU the journal does not hold
	// (a single-partition restore holds some orders' SKUs elsewhere).
	UncheckedLines int       `json:"unchecked_lines"`
	Problems       []Problem `json:"problems"`
	// ProblemsNotListed counts problems beyond the ones listed.
	ProblemsNotListed int `json:"problems_not_listed"`
}

// Problem is one broken invariant.
type Problem struct {
	Kind   Kind   `json:"kind"`
	ID     string `json:"id"`
	Detail string `json:"detail"`
}

func (p Problem) String() string { return fmt.Sprintf("%s %s: %s", p.Kind, p.ID, p.Detail) }

// OK reports whether every invariant holds.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

func (r *Report) add(kind Kind, id, format string, args ...any) {
	if len(r.Problems) >= problemsKeptMax {
		r.ProblemsNotListed++
		return
	}
	r.Problems = append(r.Problems, Problem{Kind: kind, ID: id, Detail: fmt.Sprintf(format, args...)})
}

// hold is what a SKU remembers of one order, and whether an order of the
// journal has accounted for it.
type hold struct {
	state  pb.HoldState
	reason pb.ReleaseReason
	qty    int64
}

// Verify rebuilds every actor of the journal and checks:
//
//   - every identity is a SKU or an order with a wake-time key, and its
//     snapshot and events rebuild a state (no event that does not apply);
//   - per SKU, stock conservation and no oversell (available, reserved and
//     sold never negative; available + reserved + sold = restocked -
//     removed) and that its records agree with its counters (CheckHolds);
//   - per order, that its status agrees with its lines (Check);
//   - across them, for every order line whose SKU is in the journal and
//     remembers the order: that the SKU holds the line's units as the
//     order says (reserved while the order holds them, committed once and
//     for the line's quantity when it is paid, released or returned when
//     the order let them go), allowing for the one step of the saga that
//     may be in flight (the SKU applies a command before the order records
//     its answer). A SKU's reservation or sale for an order of the journal
//     that has no line for it is a problem too.
//
// SKUs forget settled records after their dedup window and orders are
// deleted after their retention, so a record that is missing on one side
// is only a problem where the engine never forgets it (a live
// reservation). progress, when set, is called after each actor.
func Verify(src Source, progress func()) (*Report, error) {
	j := readOnly{src}
	rep := &Report{}
	holds := map[string]map[string]hold{} // sku -> order -> hold
	// live maps an order to the SKUs that hold its units (reserved or
	// sold), so that a SKU's record of an order with no such line is
	// found; entries are removed as orders account for them.
	live := map[string]map[string]bool{}
	tick := func() {
		if progress != nil {
			progress()
		}
	}
	err := src.Identities(func(info persistence.IdentityInfo) error {
		kind, id := splitID(info.ID)
		switch {
		case kind == KindUnknown:
			rep.add(kind, id, "journal identity of neither a SKU nor an order")
		case !info.HasWake:
			rep.add(kind, id, "records without a wake-time key: the node would take it for one never stored and overwrite it")
		}
		if kind != KindSKU {
			return nil
		}
		defer tick()
		rep.SKUs++
		st, _, err := actors.LoadSKUState(j, id)
		if err != nil {
			rep.add(kind, id, "%v", err)
			return nil
		}
		if err := st.CheckHolds(); err != nil {
			rep.add(kind, id, "%v", err)
		}
		hs := make(map[string]hold, st.HoldCount())
		for orderID, h := range st.Holds() {
			hs[orderID] = hold{state: h.State, reason: h.ReleaseReason, qty: h.Quantity}
			switch h.State {
			case pb.HoldState_HOLD_STATE_RESERVED:
				rep.Reservations++
				fallthrough
			case pb.HoldState_HOLD_STATE_COMMITTED:
				if live[orderID] == nil {
					live[orderID] = map[string]bool{}
				}
				live[orderID][id] = true
			}
		}
		holds[id] = hs
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = src.Identities(func(info persistence.IdentityInfo) error {
		kind, id := splitID(info.ID)
		if kind != KindOrder {
			return nil
		}
		defer tick()
		rep.Orders++
		skus := live[id]
		delete(live, id)
		st, _, err := actors.LoadOrderState(j, id)
		if err != nil {
			rep.add(kind, id, "%v", err)
			return nil
		}
		for _, l := range st.Lines {
			delete(skus, l.SKU)
			hs, ok := holds[l.SKU]
			if !ok {
				rep.UncheckedLines++
				continue
			}
			h, remembered := hs[id]
			if what := checkLine(st, l, h, remembered); what != "" {
				rep.add(kind, id, "line %s (%d units, %s): %s", l.SKU, l.Quantity, enumName(l.Hold.String(), "LINE_HOLD_"), what)
			}
		}
		for sku := range skus {
			rep.add(KindSKU, sku, "holds units of order %s, which has no line for this SKU", id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for orderID, skus := range live {
		for sku := range skus {
			if holds[sku][orderID].state == pb.HoldState_HOLD_STATE_COMMITTED {
				continue // a paid order deleted after its retention
			}
			rep.OrphanReservations++
		}
	}
	return rep, nil
}

// checkLine compares an order line with the SKU's record of the order
// (remembered false: the SKU has none) and says what is wrong, or "".
func checkLine(o *actors.OrderState, l actors.OrderLineState, h hold, remembered bool) string {
	paid := o.Status == pb.OrderStatus_ORDER_STATUS_PAID || o.Status == pb.OrderStatus_ORDER_STATUS_SHIPPED ||
		o.Status == pb.OrderStatus_ORDER_STATUS_COMPLETED
	holding := paid || o.Status == pb.OrderStatus_ORDER_STATUS_RESERVED
	everPaid := paid || (o.Status == pb.OrderStatus_ORDER_STATUS_CANCELLED && o.EndedFrom == pb.OrderStatus_ORDER_STATUS_PAID)
	qty := func() string {
		if h.qty != l.Quantity {
			return fmt.Sprintf("the SKU holds %d units for it", h.qty)
		}
		return ""
	}
	if !remembered {
		if l.Hold == pb.LineHold_LINE_HOLD_RESERVED && holding {
			return "the SKU has no record of the reservation the order holds"
		}
		return ""
	}
	switch l.Hold {
	case pb.LineHold_LINE_HOLD_RESERVED:
		switch h.state {
		case pb.HoldState_HOLD_STATE_RESERVED:
			return qty()
		case pb.HoldState_HOLD_STATE_COMMITTED:
			if !everPaid {
				return "the SKU sold the units of an order that was never paid"
			}
			return qty()
		case pb.HoldState_HOLD_STATE_RELEASED:
			if holding && h.reason != pb.ReleaseReason_RELEASE_REASON_SAFETY_EXPIRY {
				return "the SKU released the reservation the order still holds (" + enumName(h.reason.String(), "RELEASE_REASON_") + ")"
			}
		case pb.HoldState_HOLD_STATE_RETURNED:
			if holding {
				return "the SKU returned units the order still holds"
			}
		}
	case pb.LineHold_LINE_HOLD_COMMITTED:
		switch h.state {
		case pb.HoldState_HOLD_STATE_RESERVED:
			return "the order says its units are sold, the SKU only reserves them"
		case pb.HoldState_HOLD_STATE_COMMITTED:
			return qty()
		case pb.HoldState_HOLD_STATE_RELEASED:
			return "the SKU released units the order bought"
		case pb.HoldState_HOLD_STATE_RETURNED:
			if o.Status != pb.OrderStatus_ORDER_STATUS_CANCELLED {
				return "the SKU returned units of an order that was not cancelled"
			}
		}
	case pb.LineHold_LINE_HOLD_RELEASED, pb.LineHold_LINE_HOLD_RETURNED, pb.LineHold_LINE_HOLD_NONE:
		switch h.state {
		case pb.HoldState_HOLD_STATE_RESERVED:
			if l.Hold != pb.LineHold_LINE_HOLD_NONE {
				return "the order let its units go, the SKU still reserves them"
			}
			if holding {
				return "the order never recorded the reservation the SKU holds"
			}
		case pb.HoldState_HOLD_STATE_COMMITTED:
			return "the SKU sold units the order does not hold"
		}
	}
	return ""
}
