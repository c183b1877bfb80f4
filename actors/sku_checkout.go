package actors

import (
	"context"
	"errors"
	"fmt"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/orderengine/orderengine/actors/pb"
)

// Checkout is a checkout of one line, for a new order, sent to the line's
// SKU actor, which decides all of it in one turn: the order's placement
// and reservation (the order's own pure layer, OrderState.Step) and the
// SKU's hold (SKUState.Step). The SKU journals its hold and, in the same
// durable write (Journal.AppendWith), the order's first events with its
// wake time at expires_at; it answers the order's *pb.OrderResult once
// both are durable. No order actor runs: the order's next command, or the
// node's waker at expires_at, activates it from its journal like any
// passivated order, and from then on it is an actor that owns its state.
//
// So a one-line checkout costs one journal write on its critical path and
// no actor spawn, against the saga's order actor, two writes (one on the
// critical path) and four more messages. The outcome is the same as the
// saga's: the same pure functions decide it, and a crash keeps the hold
// and the order together or neither. A refusal leaves nothing behind, as
// for an unkeyed PlaceOrder (ForgetRejection).
//
// It is for orders whose ID was just generated (NewOrderID): nothing may
// be stored under it (see Journal.AppendWith). Keyed checkouts, whose
// replays must find their order, and orders of several lines go through
// the order's actor and its saga. A SKU actor that cannot take the
// checkout whole (the journal's append limit is too small for the order's
// events, or the line is not its SKU) answers checkoutDeclined, and the
// caller (Registry.Checkout) returns ErrCheckoutDeclined.
type Checkout struct {
	Order *pb.PlaceOrder
}

// ErrCheckoutDeclined is Registry.Checkout's answer when the SKU actor did
// not take the checkout, and changed nothing: place the order through its
// own actor instead (Orders.AskNew).
var ErrCheckoutDeclined = errors.New("checkout declined by the sku actor")

// checkoutDeclined is the SKU actor's reply to a Checkout it does not take.
type checkoutDeclined struct{ reason string }

// checkoutOrderEvents is how many events a one-line order that ends
// reserved is brought to life with: one OrderCheckedOut.
const checkoutOrderEvents = 1

// Checkout asks the SKU actor of the order's only line to take a one-line
// checkout (see Checkout) and returns the order's result. It is sent once
// (again only when it met a stopping actor, which never saw it): unlike
// the SKU's own commands it is not idempotent, since its order ID must be
// new.
func (r *Registry) Checkout(ctx context.Context, place *pb.PlaceOrder) (*pb.OrderResult, error) {
	if len(place.GetItems()) != 1 {
		return nil, fmt.Errorf("%w: %d lines", ErrCheckoutDeclined, len(place.GetItems()))
	}
	sku := place.Items[0].Sku
	reply, err := r.askOnce(ctx, func() *actor.PID { return r.SKUPID(sku) }, &Checkout{Order: place})
	if err != nil {
		return nil, err
	}
	switch res := reply.(type) {
	case *pb.OrderResult:
		return res, nil
	case *checkoutDeclined:
		return nil, fmt.Errorf("%w: %s", ErrCheckoutDeclined, res.reason)
	}
	return nil, fmt.Errorf("%w: %T from sku %s", ErrUnexpectedReply, reply, sku)
}

// checkout runs a Checkout in the SKU actor's turn; the caller has checked
// that the actor has its state.
func (a *skuActor) checkout(ctx actor.Context, c *Checkout, sender *actor.PID) {
	now := a.cfg.Clock.Now()
	order := NewOrderState(c.Order.GetOrderId())
	placed := order.Step(c.Order, now)
	if placed.Reply != nil {
		ctx.Send(sender, placed.Reply) // refused before anything was decided
		return
	}
	owed := OrderOwed(order)
	switch {
	case len(owed) != 1 || owed[0].SKU != a.sku:
		ctx.Send(sender, &checkoutDeclined{reason: fmt.Sprintf("the order's line is not sku %s", a.sku)})
		return
	case a.cfg.Journal.AppendEventsMax() < 1+checkoutOrderEvents:
		ctx.Send(sender, &checkoutDeclined{reason: "the journal's append limit is below one checkout's events"})
		return
	}
	events, res := a.state.Step(owed[0].Msg, now, a.cfg.Rules)
	for _, ev := range events {
		a.log.record(encodeSKUEvent(ev))
	}
	var reply *pb.OrderResult
	if res.Outcome == pb.Outcome_OUTCOME_ALREADY_DONE {
		// The SKU holds units for this ID already: it is not new.
		reply = &pb.OrderResult{Code: pb.OrderCode_ORDER_CODE_UNAVAILABLE, Detail: "the new order's id is in use"}
	} else {
		answered := order.Step(&pb.StockAnswered{Sku: a.sku, Step: pb.SKUStep_SKU_STEP_RESERVE, Outcome: res.Outcome,
			Available: res.View.GetAvailable(), Limit: res.View.GetPerCustomerLimit(), Detail: res.Detail, Hold: res.Hold}, now)
		reply = a.checkoutOutcome(order, res, len(events), append(placed.Events, answered.Events...))
	}
	a.log.reply(ctx, sender, reply)
	a.log.setWake(a.state.WakeAt(a.cfg.Rules))
	a.log.flush()
	a.scheduleSweep(ctx)
	a.passivateSoonIfUnknown(ctx)
}

// checkoutOutcome is a checkout's answer once the SKU has decided. An
// order that ended reserved is brought to life with the hold's event; a
// refused one leaves nothing (nobody learns its ID); one the SKU could not
// answer (its volume full, say) is unavailable, and any hold it got
// meanwhile is released by the SKU's safety expiry, as for an order lost
// before its first write.
func (a *skuActor) checkoutOutcome(order *OrderState, res *pb.StockResult, skuEvents int, events []*pb.OrderEvent) *pb.OrderResult {
	switch order.Status {
	case pb.OrderStatus_ORDER_STATUS_RESERVED:
		checkedOut := orderCheckedOut(events)
		if skuEvents == 0 || checkedOut == nil {
			break // never: a hold made now is an event, and the saga took its one path
		}
		a.log.bringToLife(orderJournalID(order.ID), [][]byte{encodeOrderEvent(checkedOut)}, OrderWakeAt(order, 0))
		return OrderPlaceOutcome(order, false)
	case pb.OrderStatus_ORDER_STATUS_REJECTED:
		return OrderPlaceOutcome(order, false)
	}
	detail := res.Detail
	if detail == "" {
		detail = "sku answered " + res.Outcome.String()
	}
	return &pb.OrderResult{Code: pb.OrderCode_ORDER_CODE_UNAVAILABLE, Detail: detail}
}

// orderCheckedOut folds the events of a one-line order that was placed and
// reserved in one turn (OrderPlaced, LineReserved, OrderReserved) into the
// one OrderCheckedOut that leaves the same state, or returns nil for any
// other list.
func orderCheckedOut(events []*pb.OrderEvent) *pb.OrderEvent {
	if len(events) != 3 {
		return nil
	}
	placed, line, reserved := events[0].GetPlaced(), events[1].GetLineReserved(), events[2].GetReserved()
	if placed == nil || line == nil || reserved == nil || len(placed.Items) != 1 || placed.Items[0].Sku != line.Sku {
		return nil
	}
	return &pb.OrderEvent{SchemaVersion: events[2].SchemaVersion, AtUnixNano: events[2].AtUnixNano,
		Body: &pb.OrderEvent_CheckedOut{CheckedOut: &pb.OrderCheckedOut{Placed: placed}}}
}
