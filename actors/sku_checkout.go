package actors

import (
	"context"
	"errors"
	"fmt"
	"time"

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
// events, or the line is not its SKU) declines it, and the
// caller (Registry.Checkout) returns ErrCheckoutDeclined. Every answer is
// a *checkoutReply.
type Checkout struct {
	Order *pb.PlaceOrder
}

// ErrCheckoutDeclined is Registry.Checkout's answer when the SKU actor did
// not take the checkout, and changed nothing: place the order through its
// own actor instead (Orders.AskNew).
var ErrCheckoutDeclined = errors.New("checkout declined by the sku actor")

// checkoutReply is the SKU actor's answer to a Checkout. It names the
// order, so that an answer is never taken for another checkout's (the
// reply boxes of checkouts are reused, see Registry.replyBoxFor).
type checkoutReply struct {
	orderID string
	result  *pb.OrderResult
	// declined says why the actor did not take the checkout; result is
	// then nil.
	declined string
}

// CheckoutAnswer reads a SKU actor's answer to a Checkout, for a host that
// delivers it itself instead of through Registry.Checkout (the
// deterministic simulation): the order's result, or why the actor
// declined the checkout (result nil). ok is false when msg is no answer
// to a Checkout.
func CheckoutAnswer(msg any) (result *pb.OrderResult, declined string, ok bool) {
	c, ok := msg.(*checkoutReply)
	if !ok {
		return nil, "", false
	}
	return c.result, c.declined, true
}

// failedCheckout is the answer to a checkout whose events were not made
// durable.
func (c *checkoutReply) failed(detail string) *checkoutReply {
	return &checkoutReply{orderID: c.orderID, result: failedOrderResult(c.result, detail).(*pb.OrderResult)}
}

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
	ours := func(m any) bool {
		c, ok := m.(*checkoutReply)
		return !ok || c.orderID == place.OrderId
	}
	reply, err := r.askOnce(ctx, func() *actor.PID { return r.SKUPID(sku) }, &Checkout{Order: place}, ours)
	if err != nil {
		return nil, err
	}
	res, ok := reply.(*checkoutReply)
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: %T from sku %s", ErrUnexpectedReply, reply, sku)
	case res.result == nil:
		return nil, fmt.Errorf("%w: %s", ErrCheckoutDeclined, res.declined)
	}
	return res.result, nil
}

// checkout runs a Checkout in the SKU actor's turn; the caller has checked
// that the actor has its state.
func (a *skuActor) checkout(ctx actor.Context, c *Checkout, sender *actor.PID) {
	now := a.cfg.Clock.Now()
	order := NewOrderState(c.Order.GetOrderId())
	placed := order.Step(c.Order, now)
	if placed.Reply != nil {
		// Refused before anything was decided.
		ctx.Send(sender, &checkoutReply{orderID: order.ID, result: placed.Reply})
		return
	}
	owed := OrderOwed(order)
	switch {
	case len(owed) != 1 || owed[0].SKU != a.sku:
		ctx.Send(sender, &checkoutReply{orderID: order.ID, declined: "the order's line is not sku " + a.sku})
		return
	case a.cfg.Journal.AppendEventsMax() < 1+checkoutOrderEvents:
		ctx.Send(sender, &checkoutReply{orderID: order.ID, declined: "the journal's append limit is below one checkout's events"})
		return
	}
	events, res := a.state.Step(owed[0].Msg, now, a.cfg.Rules)
	for _, ev := range events {
		a.log.record(encodeSKUEvent(ev))
	}
	var reply *pb.OrderResult
	switch {
	case res.Outcome == pb.Outcome_OUTCOME_APPLIED && len(events) > 0:
		// Reserved: what the saga's LineReserved and OrderReserved would
		// make of it, in one record (see checkedOut).
		// order holds OrderPlaced as event 1; OrderCheckedOut in its
		// place leaves the state reserveAll makes of it.
		ev := checkedOut(placed.Events[0], now)
		order.reserveAll()
		order.StatusAt = ev.AtUnixNano
		a.log.bringToLife(orderJournalID(order.ID), [][]byte{encodeOrderEvent(ev)}, OrderWakeAt(order, 0))
		reply = OrderPlaceOutcome(order, false)
	case res.Outcome == pb.Outcome_OUTCOME_ALREADY_DONE:
		// The SKU holds units for this ID already: it is not new.
		reply = &pb.OrderResult{Code: pb.OrderCode_ORDER_CODE_UNAVAILABLE, Detail: "the new order's id is in use"}
	default:
		order.Step(&pb.StockAnswered{Sku: a.sku, Step: pb.SKUStep_SKU_STEP_RESERVE, Outcome: res.Outcome,
			Available: res.View.GetAvailable(), Limit: res.View.GetPerCustomerLimit(), Detail: res.Detail, Hold: res.Hold}, now)
		reply = checkoutRefusal(order, res)
	}
	a.log.reply(ctx, sender, &checkoutReply{orderID: order.ID, result: reply})
	a.log.setWake(a.state.WakeAt(a.cfg.Rules))
	a.log.flush()
	a.scheduleSweep(ctx)
	a.passivateSoonIfUnknown(ctx)
}

// checkoutRefusal is the answer to a checkout the SKU did not reserve. A
// refused order leaves nothing (nobody learns its ID); one the SKU could
// not answer (its volume full, say) is unavailable.
func checkoutRefusal(order *OrderState, res *pb.StockResult) *pb.OrderResult {
	if order.Status == pb.OrderStatus_ORDER_STATUS_REJECTED {
		return OrderPlaceOutcome(order, false)
	}
	detail := res.Detail
	if detail == "" {
		detail = "sku answered " + res.Outcome.String()
	}
	return &pb.OrderResult{Code: pb.OrderCode_ORDER_CODE_UNAVAILABLE, Detail: detail}
}

// checkedOut is the one record of an order placed by placed (its
// OrderPlaced event) whose only line its SKU reserved at now: the state
// the saga reaches with LineReserved and OrderReserved decided at now.
func checkedOut(placed *pb.OrderEvent, now time.Time) *pb.OrderEvent {
	return orderEvent(now, &pb.OrderEvent{Body: &pb.OrderEvent_CheckedOut{CheckedOut: &pb.OrderCheckedOut{Placed: placed.GetPlaced()}}})
}
