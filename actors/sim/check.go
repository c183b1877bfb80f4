package sim

import (
	"fmt"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
)

// checkSettled checks a quiet world: every SKU conserves its stock, every
// order's lines agree with the SKUs' holds, no reservation is held for an
// order that is not reserved, every paid order's units are sold exactly
// once, and every customer's confirmed moves are where the order ended.
// Before the TTLs and the SKUs' grace have run out (final false), a hold
// that a late duplicate ReserveStock made after the order was refused on
// that SKU, and whose answer was lost, is counted, not failed: nobody told
// the order, and the SKU's safety expiry is what releases it. After them
// (final true), no reservation may remain at all.
func (w *world) checkSettled(final bool) error {
	sold := map[string]int64{}
	stale := 0
	ws := w.states()
	for _, sku := range w.skuIDs {
		if err := ws.skus[sku].CheckHolds(); err != nil {
			return err
		}
	}
	for _, id := range w.orderIDs {
		o := ws.orders[id]
		status := o.Status
		if status == pb.OrderStatus_ORDER_STATUS_UNSPECIFIED {
			continue
		}
		for _, l := range o.Lines {
			var hold *pb.Hold
			if h, ok := ws.skus[l.SKU].HoldOf(id); ok {
				hold = h
			}
			state := pb.HoldState_HOLD_STATE_UNSPECIFIED
			if hold != nil {
				state = hold.State
				if hold.Quantity != l.Quantity && hold.Quantity != 0 {
					return fmt.Errorf("order %s line %s: %d units, the SKU holds %d", id, l.SKU, l.Quantity, hold.Quantity)
				}
			}
			bad := func(what string) error {
				return fmt.Errorf("order %s (%v, from %v) line %s (%v, %v): SKU hold %v: %s",
					id, status, o.EndedFrom, l.SKU, l.Reserve, l.Hold, state, what)
			}
			switch {
			case l.Hold == pb.LineHold_LINE_HOLD_FAILED:
				return bad("the SKU refused a step of the saga")
			case status == pb.OrderStatus_ORDER_STATUS_RESERVING && w.shells != nil && !final &&
				state != pb.HoldState_HOLD_STATE_COMMITTED && state != pb.HoldState_HOLD_STATE_RETURNED:
				// A node crash lost the saga's last steps (the shell
				// answers a checkout before OrderReserved is durable). The
				// order stays reserving in its journal until its next
				// request or its expiry brings it back, and its SKUs hold
				// its units meanwhile; the final check wants it expired.
			case status == pb.OrderStatus_ORDER_STATUS_RESERVING:
				return bad("still reserving")
			case status == pb.OrderStatus_ORDER_STATUS_RESERVED:
				if final || state != pb.HoldState_HOLD_STATE_RESERVED {
					return bad("a reserved order's line is not reserved")
				}
			case status == pb.OrderStatus_ORDER_STATUS_PAID && o.StatusAt >= o.ExpiresAt:
				return bad("paid at or after expires_at")
			case status == pb.OrderStatus_ORDER_STATUS_PAID || status == pb.OrderStatus_ORDER_STATUS_SHIPPED ||
				status == pb.OrderStatus_ORDER_STATUS_COMPLETED:
				if state != pb.HoldState_HOLD_STATE_COMMITTED {
					return bad("a paid order's units are not sold")
				}
				sold[l.SKU] += l.Quantity
			case status == pb.OrderStatus_ORDER_STATUS_CANCELLED && o.EndedFrom == pb.OrderStatus_ORDER_STATUS_PAID:
				if state != pb.HoldState_HOLD_STATE_RETURNED {
					return bad("a cancelled paid order's units were not returned")
				}
			default: // rejected, expired, cancelled before payment
				switch {
				case state == pb.HoldState_HOLD_STATE_UNSPECIFIED || state == pb.HoldState_HOLD_STATE_RELEASED:
				case state == pb.HoldState_HOLD_STATE_RESERVED && !final && !w.told[id+"/"+l.SKU] &&
					l.Reserve == pb.LineReserve_LINE_RESERVE_REFUSED:
					stale++
				default:
					return bad("an order that is not reserved holds stock")
				}
			}
		}
	}
	for _, sku := range w.skuIDs {
		s := ws.skus[sku]
		if s.Sold != sold[sku] {
			return fmt.Errorf("sku %s: %d sold, paid orders account for %d", sku, s.Sold, sold[sku])
		}
		for id, h := range s.Holds() {
			o, ok := ws.orders[id]
			if ok && o.Status != pb.OrderStatus_ORDER_STATUS_UNSPECIFIED || h.State == pb.HoldState_HOLD_STATE_RELEASED {
				continue
			}
			// With the real shells, an order that forgot its rejection, or
			// one whose first append a node crash lost after its
			// reservations went out, leaves holds nobody knows of until
			// the SKU's safety expiry.
			if w.shells != nil && ok && !final && h.State == pb.HoldState_HOLD_STATE_RESERVED {
				stale++
				continue
			}
			return fmt.Errorf("sku %s: hold %v for order %s, which was never placed (forgotten: %v)", sku, h.State, id, ws.forgotten[id])
		}
	}
	if err := w.checkClients(ws); err != nil {
		return err
	}
	if !final {
		w.report.StaleHolds = stale
	} else {
		w.count(ws)
	}
	return nil
}

// checkClients compares what customers were told with where orders ended.
func (w *world) checkClients(ws worldStates) error {
	for _, c := range w.clients {
		o := ws.orders[c.id]
		st := o.Status
		switch {
		case c.first == nil && c.gaveUp:
			// An unkeyed checkout that timed out: the customer knows
			// nothing, and its order (if any) expires unpaid.
		case c.first == nil:
			return fmt.Errorf("order %s: the checkout was never answered (%v)", c.id, st)
		case c.first.Code == pb.OrderCode_ORDER_CODE_OUT_OF_STOCK && ws.forgotten[c.id]:
			// The rejection left nothing behind, as promised.
		case c.first.Code == pb.OrderCode_ORDER_CODE_OUT_OF_STOCK && st != pb.OrderStatus_ORDER_STATUS_REJECTED:
			return fmt.Errorf("order %s: told out of stock, but %v", c.id, st)
		case c.first.Code == pb.OrderCode_ORDER_CODE_OUT_OF_STOCK && c.first.Sku != firstRefused(o):
			return fmt.Errorf("order %s: told %s is out of stock, but the first refused line is %s", c.id, c.first.Sku, firstRefused(o))
		case c.cancelled && st != pb.OrderStatus_ORDER_STATUS_CANCELLED:
			return fmt.Errorf("order %s: cancel confirmed, but %v", c.id, st)
		case c.paid && !c.cancelled && st != pb.OrderStatus_ORDER_STATUS_PAID &&
			st != pb.OrderStatus_ORDER_STATUS_SHIPPED && st != pb.OrderStatus_ORDER_STATUS_COMPLETED:
			return fmt.Errorf("order %s: pay confirmed, but %v", c.id, st)
		}
	}
	return nil
}

func (w *world) count(ws worldStates) {
	r := &w.report
	r.Orders = len(w.orderIDs)
	for _, id := range w.orderIDs {
		o := ws.orders[id]
		switch {
		case ws.forgotten[id]:
			r.Rejected++ // a rejection that left nothing behind
		}
		switch o.Status {
		case pb.OrderStatus_ORDER_STATUS_REJECTED:
			r.Rejected++
		case pb.OrderStatus_ORDER_STATUS_EXPIRED:
			r.Expired++
			if o.EndedFrom == pb.OrderStatus_ORDER_STATUS_RESERVING {
				r.ExpiredReserving++
			}
		case pb.OrderStatus_ORDER_STATUS_CANCELLED:
			r.Cancelled++
		case pb.OrderStatus_ORDER_STATUS_COMPLETED:
			r.Completed++
		}
		if o.PaymentRef != "" {
			r.Paid++
		}
	}
}

// firstRefused is the first line in request order that a SKU refused.
func firstRefused(o *actors.OrderState) string {
	for _, l := range o.Lines {
		if l.Reserve == pb.LineReserve_LINE_RESERVE_REFUSED {
			return l.SKU
		}
	}
	return ""
}
