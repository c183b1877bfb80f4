package actors

import (
	"bytes"
	"fmt"
	"time"

	"github.com/orderengine/orderengine/actors/pb"
)

// Limits of the order commands, from API.md. The gateway checks them
// first; the actor checks again so that no other sender can break it.
const (
	orderLinesMax        = 100
	orderLineQuantityMax = 10_000
	// OrderTTLDefault is the TTL of an order placed with ttl_seconds 0.
	OrderTTLDefault         = 900 * time.Second
	orderTTLSecondsMin      = 1
	orderTTLSecondsMax      = 86_400
	orderSKUBytesMax        = 64
	orderCustomerBytesMax   = 128
	orderPaymentRefBytesMax = 64
)

// OrderDecision is what the pure layer decides for one command.
type OrderDecision struct {
	// Events are the changes, to journal in order.
	Events []*pb.OrderEvent
	// Reply is nil when the command gets none (ticks, SKU answers) or when
	// Wait is set.
	Reply *pb.OrderResult
	// Wait means the caller (a PlaceOrder) is answered when the saga ends,
	// with OrderPlaceOutcome once the status has left reserving.
	Wait bool
}

// Step decides one command, applies its events and returns them with the
// decision; a reply's view shows the state after the events.
func (s *OrderState) Step(cmd any, now time.Time) OrderDecision {
	d := decideOrder(s, cmd, now)
	for _, ev := range d.Events {
		s.apply(s.Sequence+1, ev)
	}
	if d.Reply != nil && d.Reply.Order == nil {
		d.Reply.Order = s.View()
	}
	return d
}

// decideOrder decides one command against the state without changing it.
//
// An unpaid order at or past expires_at is expired before any command is
// decided, so a pay after expires_at is refused even when the expiry tick
// has not run yet, a GetOrder never shows an order reserved past its TTL
// (its answer then waits for the expiry to be durable), and a saga never
// ends reserved past its TTL.
func decideOrder(s *OrderState, cmd any, now time.Time) OrderDecision {
	if orderExpiryDue(s, now) {
		ev := orderEvent(now, &pb.OrderEvent{Body: &pb.OrderEvent_Expired{Expired: &pb.OrderExpired{FromStatus: s.Status}}})
		next := s.clone()
		next.apply(next.Sequence+1, ev)
		d := decideOrderNow(next, cmd, now)
		d.Events = append([]*pb.OrderEvent{ev}, d.Events...)
		return d
	}
	return decideOrderNow(s, cmd, now)
}

// orderExpiryDue reports whether an unpaid order has reached expires_at.
func orderExpiryDue(s *OrderState, now time.Time) bool {
	return orderUnpaid(s.Status) && now.UnixNano() >= s.ExpiresAt
}

func decideOrderNow(s *OrderState, cmd any, now time.Time) OrderDecision {
	switch c := cmd.(type) {
	case *pb.PlaceOrder:
		return decidePlaceOrder(s, c, now)
	case *pb.PayOrder:
		return decidePayOrder(s, c, now)
	case *pb.CancelOrder:
		return decideOrderMove(s, c.OrderId, now, pb.OrderStatus_ORDER_STATUS_CANCELLED)
	case *pb.ShipOrder:
		return decideOrderMove(s, c.OrderId, now, pb.OrderStatus_ORDER_STATUS_SHIPPED)
	case *pb.CompleteOrder:
		return decideOrderMove(s, c.OrderId, now, pb.OrderStatus_ORDER_STATUS_COMPLETED)
	case *pb.GetOrder:
		if d, bad := checkOrderTarget(s, c.OrderId); bad {
			return d
		}
		return orderReply(pb.OrderCode_ORDER_CODE_OK)
	case *pb.ExpireOrder, *pb.RetryOrderSaga:
		return OrderDecision{} // expiry was decided above; retries change no state
	case *pb.StockAnswered:
		return decideStockAnswered(s, c, now)
	default:
		return orderInvalid(fmt.Sprintf("unknown command %T", cmd))
	}
}

func decidePlaceOrder(s *OrderState, c *pb.PlaceOrder, now time.Time) OrderDecision {
	ttl := c.TtlSeconds
	if ttl == 0 {
		ttl = int64(OrderTTLDefault / time.Second)
	}
	if detail := checkPlaceOrder(c, ttl); detail != "" {
		return orderInvalid(detail)
	}
	if c.OrderId != s.ID {
		return orderInvalid(fmt.Sprintf("order_id %q is not this actor's (%q)", c.OrderId, s.ID))
	}
	fp := OrderFingerprint(c.Customer, c.Items, ttl)
	if s.Status != pb.OrderStatus_ORDER_STATUS_UNSPECIFIED {
		if !bytes.Equal(fp, s.Fingerprint) {
			d := orderReply(pb.OrderCode_ORDER_CODE_IDEMPOTENCY_KEY_REUSED)
			d.Reply.Detail = "this order id holds a different request"
			return d
		}
		if s.Status == pb.OrderStatus_ORDER_STATUS_RESERVING {
			return OrderDecision{Wait: true}
		}
		return OrderDecision{Reply: OrderPlaceOutcome(s, true)}
	}
	items := make([]*pb.OrderLine, len(c.Items))
	for i, it := range c.Items {
		items[i] = &pb.OrderLine{Sku: it.Sku, Quantity: it.Quantity}
	}
	at := now.UnixNano()
	ev := orderEvent(now, &pb.OrderEvent{Body: &pb.OrderEvent_Placed{Placed: &pb.OrderPlaced{
		OrderId: c.OrderId, Customer: c.Customer, Items: items, TtlSeconds: ttl,
		CreatedAtUnixNano: at, ExpiresAtUnixNano: at + ttl*int64(time.Second), Fingerprint: fp,
		ForgetRejection: c.ForgetRejection,
	}}})
	return OrderDecision{Events: []*pb.OrderEvent{ev}, Wait: true}
}

// checkPlaceOrder returns what is wrong with a PlaceOrder, or "".
func checkPlaceOrder(c *pb.PlaceOrder, ttl int64) string {
	switch {
	case !orderIdentifierOK(c.Customer, orderCustomerBytesMax):
		return "customer must be 1 to 128 characters of [A-Za-z0-9._:-]"
	case len(c.Items) < 1 || len(c.Items) > orderLinesMax:
		return "items must have 1 to 100 lines"
	case ttl < orderTTLSecondsMin || ttl > orderTTLSecondsMax:
		return "ttl_seconds must be 1 to 86400"
	}
	seen := make(map[string]bool, len(c.Items))
	for i, it := range c.Items {
		switch {
		case it == nil || !orderIdentifierOK(it.Sku, orderSKUBytesMax):
			return fmt.Sprintf("items[%d].sku must be 1 to 64 characters of [A-Za-z0-9._:-]", i)
		case seen[it.Sku]:
			return fmt.Sprintf("items[%d].sku repeats an earlier line", i)
		case it.Quantity < 1 || it.Quantity > orderLineQuantityMax:
			return fmt.Sprintf("items[%d].quantity must be 1 to 10000", i)
		}
		seen[it.Sku] = true
	}
	return ""
}

// orderIdentifierOK checks API.md's identifier rule: 1 to max characters
// of [A-Za-z0-9._:-].
func orderIdentifierOK(id string, max int) bool {
	if id == "" || len(id) > max {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// OrderPlaceOutcome is the answer to PlaceOrder once the saga has ended,
// the same for the first request and every repeat (repeat turns OK into
// ALREADY_DONE). It must not be called while the order is reserving.
func OrderPlaceOutcome(s *OrderState, repeat bool) *pb.OrderResult {
	r := &pb.OrderResult{Code: pb.OrderCode_ORDER_CODE_OK, Order: s.View()}
	switch {
	case s.Status == pb.OrderStatus_ORDER_STATUS_REJECTED && s.RejectedLimit > 0:
		r.Code, r.Sku, r.Limit = pb.OrderCode_ORDER_CODE_LIMIT_EXCEEDED, s.RejectedSKU, s.RejectedLimit
		r.OrderStatus = s.Status
	case s.Status == pb.OrderStatus_ORDER_STATUS_REJECTED:
		r.Code, r.Sku, r.Available = pb.OrderCode_ORDER_CODE_OUT_OF_STOCK, s.RejectedSKU, s.RejectedAvailable
		r.OrderStatus = s.Status
	case s.Status == pb.OrderStatus_ORDER_STATUS_EXPIRED && s.EndedFrom == pb.OrderStatus_ORDER_STATUS_RESERVING:
		r.Code, r.OrderStatus = pb.OrderCode_ORDER_CODE_EXPIRED, s.Status
		r.Detail = "the stock could not be reserved before the order expired"
	case repeat:
		r.Code = pb.OrderCode_ORDER_CODE_ALREADY_DONE
	}
	return r
}

func decidePayOrder(s *OrderState, c *pb.PayOrder, now time.Time) OrderDecision {
	if !orderIdentifierOK(c.PaymentRef, orderPaymentRefBytesMax) {
		return orderInvalid("payment_ref must be 1 to 64 characters of [A-Za-z0-9._:-]")
	}
	if d, bad := checkOrderTarget(s, c.OrderId); bad {
		return d
	}
	switch s.Status {
	case pb.OrderStatus_ORDER_STATUS_RESERVED:
		return OrderDecision{
			Events: []*pb.OrderEvent{orderEvent(now, &pb.OrderEvent{Body: &pb.OrderEvent_Paid{Paid: &pb.OrderPaid{PaymentRef: c.PaymentRef}}})},
			Reply:  &pb.OrderResult{Code: pb.OrderCode_ORDER_CODE_OK},
		}
	case pb.OrderStatus_ORDER_STATUS_PAID:
		if c.PaymentRef == s.PaymentRef {
			return orderReply(pb.OrderCode_ORDER_CODE_ALREADY_DONE)
		}
		d := orderConflict(s)
		d.Reply.Detail = "the order was paid with another payment_ref"
		return d
	case pb.OrderStatus_ORDER_STATUS_EXPIRED:
		d := orderConflict(s)
		d.Reply.Code = pb.OrderCode_ORDER_CODE_EXPIRED
		return d
	}
	return orderConflict(s)
}

// orderMoves lists, for each status a client can move an order to, the
// statuses it may come from (API.md's status flow).
var orderMoves = map[pb.OrderStatus][]pb.OrderStatus{
	pb.OrderStatus_ORDER_STATUS_CANCELLED: {pb.OrderStatus_ORDER_STATUS_RESERVED, pb.OrderStatus_ORDER_STATUS_PAID},
	pb.OrderStatus_ORDER_STATUS_SHIPPED:   {pb.OrderStatus_ORDER_STATUS_PAID},
	pb.OrderStatus_ORDER_STATUS_COMPLETED: {pb.OrderStatus_ORDER_STATUS_SHIPPED},
}

// decideOrderMove decides cancel, ship and complete: the move is made when
// allowed, a repeat of the move that produced the current status answers
// ALREADY_DONE, anything else is a conflict naming the current status.
func decideOrderMove(s *OrderState, orderID string, now time.Time, to pb.OrderStatus) OrderDecision {
	if d, bad := checkOrderTarget(s, orderID); bad {
		return d
	}
	if s.Status == to {
		return orderReply(pb.OrderCode_ORDER_CODE_ALREADY_DONE)
	}
	for _, from := range orderMoves[to] {
		if s.Status != from {
			continue
		}
		var body *pb.OrderEvent
		switch to {
		case pb.OrderStatus_ORDER_STATUS_CANCELLED:
			body = &pb.OrderEvent{Body: &pb.OrderEvent_Cancelled{Cancelled: &pb.OrderCancelled{FromStatus: from}}}
		case pb.OrderStatus_ORDER_STATUS_SHIPPED:
			body = &pb.OrderEvent{Body: &pb.OrderEvent_Shipped{Shipped: &pb.OrderShipped{}}}
		default:
			body = &pb.OrderEvent{Body: &pb.OrderEvent_Completed{Completed: &pb.OrderCompleted{}}}
		}
		return OrderDecision{Events: []*pb.OrderEvent{orderEvent(now, body)}, Reply: &pb.OrderResult{Code: pb.OrderCode_ORDER_CODE_OK}}
	}
	return orderConflict(s)
}

// checkOrderTarget answers commands for an order that does not exist or
// that name another order. bad is true when the decision is final.
func checkOrderTarget(s *OrderState, orderID string) (OrderDecision, bool) {
	if orderID != s.ID {
		return orderInvalid(fmt.Sprintf("order_id %q is not this actor's (%q)", orderID, s.ID)), true
	}
	if s.Status == pb.OrderStatus_ORDER_STATUS_UNSPECIFIED {
		return orderReply(pb.OrderCode_ORDER_CODE_NOT_FOUND), true
	}
	return OrderDecision{}, false
}

// decideStockAnswered folds a SKU's answer into the saga. Only answers that
// tell the order something new make events; a duplicate or late answer of
// something already known changes nothing. The saga's rules:
//
//   - reserving: a line is held (APPLIED, ALREADY_DONE) or refused (anything
//     else final). Once every line has answered, the order is reserved, or
//     rejected naming the first refused line in request order: waiting for
//     every answer is what makes "first in request order" well defined.
//   - A reserve answer that reveals a hold the order did not know of (a late
//     or duplicated ReserveStock after a refusal) records the hold, so the
//     order owes its release like any other.
//   - commit, release and return answers acknowledge the owed step; a
//     refusal no retry can change is recorded as LineFailed.
func decideStockAnswered(s *OrderState, c *pb.StockAnswered, now time.Time) OrderDecision {
	l := s.line(c.Sku)
	if l == nil || s.Status == pb.OrderStatus_ORDER_STATUS_UNSPECIFIED {
		return OrderDecision{}
	}
	goal := orderGoalOf(s)
	ok := c.Outcome == pb.Outcome_OUTCOME_APPLIED || c.Outcome == pb.Outcome_OUTCOME_ALREADY_DONE
	final := c.Outcome == pb.Outcome_OUTCOME_CONFLICT || c.Outcome == pb.Outcome_OUTCOME_INVALID ||
		c.Outcome == pb.Outcome_OUTCOME_UNKNOWN_RESERVATION
	var body *pb.OrderEvent
	switch c.Step {
	case pb.SKUStep_SKU_STEP_RESERVE:
		switch {
		case ok && l.Hold == pb.LineHold_LINE_HOLD_NONE:
			body = &pb.OrderEvent{Body: &pb.OrderEvent_LineReserved{LineReserved: &pb.LineReserved{Sku: l.SKU}}}
		case !ok && (final || c.Outcome == pb.Outcome_OUTCOME_INSUFFICIENT || c.Outcome == pb.Outcome_OUTCOME_LIMIT_EXCEEDED) &&
			l.Reserve == pb.LineReserve_LINE_RESERVE_PENDING:
			refused := &pb.LineRefused{Sku: l.SKU, Available: c.Available, Detail: c.Detail}
			if c.Outcome == pb.Outcome_OUTCOME_LIMIT_EXCEEDED {
				refused.Limit = max(c.Limit, 1) // a limit refused it; it is never 0
			}
			body = &pb.OrderEvent{Body: &pb.OrderEvent_LineRefused{LineRefused: refused}}
		}
	case pb.SKUStep_SKU_STEP_COMMIT:
		if l.Hold == pb.LineHold_LINE_HOLD_RESERVED && (goal == orderGoalCommitted || goal == orderGoalReturned) {
			body = orderAckOrFail(l, c, ok, final, &pb.OrderEvent{Body: &pb.OrderEvent_LineCommitted{LineCommitted: &pb.LineCommitted{Sku: l.SKU}}})
		}
	case pb.SKUStep_SKU_STEP_RELEASE:
		// UNKNOWN_RESERVATION is success here: the SKU holds nothing and
		// keeps a tombstone that refuses a late ReserveStock.
		if goal == orderGoalReleased && orderOwesRelease(l) {
			if c.Outcome == pb.Outcome_OUTCOME_UNKNOWN_RESERVATION {
				ok, final = true, false
			}
			body = orderAckOrFail(l, c, ok, final, &pb.OrderEvent{Body: &pb.OrderEvent_LineReleased{LineReleased: &pb.LineReleased{Sku: l.SKU}}})
		}
	case pb.SKUStep_SKU_STEP_RETURN:
		if l.Hold == pb.LineHold_LINE_HOLD_COMMITTED && goal == orderGoalReturned {
			body = orderAckOrFail(l, c, ok, final, &pb.OrderEvent{Body: &pb.OrderEvent_LineReturned{LineReturned: &pb.LineReturned{Sku: l.SKU}}})
		}
	}
	if body == nil {
		return OrderDecision{}
	}
	events := []*pb.OrderEvent{orderEvent(now, body)}
	if end := orderSagaEnd(s, body, now); end != nil {
		events = append(events, end)
	}
	return OrderDecision{Events: events}
}

// orderAckOrFail returns ack for a success, LineFailed for a final refusal,
// and nil (wait and retry) for anything else, such as UNAVAILABLE.
func orderAckOrFail(l *OrderLineState, c *pb.StockAnswered, ok, final bool, ack *pb.OrderEvent) *pb.OrderEvent {
	switch {
	case ok:
		return ack
	case final:
		return &pb.OrderEvent{Body: &pb.OrderEvent_LineFailed{LineFailed: &pb.LineFailed{Sku: l.SKU, Step: c.Step, Outcome: c.Outcome, Detail: c.Detail}}}
	}
	return nil
}

// orderSagaEnd returns OrderReserved or OrderRejected when ev answers the
// last pending line of a reserving order, else nil.
func orderSagaEnd(s *OrderState, ev *pb.OrderEvent, now time.Time) *pb.OrderEvent {
	if s.Status != pb.OrderStatus_ORDER_STATUS_RESERVING {
		return nil
	}
	answered, to, toAvailable, toLimit := "", pb.LineReserve_LINE_RESERVE_HELD, int64(0), int64(0)
	switch b := ev.Body.(type) {
	case *pb.OrderEvent_LineReserved:
		answered = b.LineReserved.Sku
	case *pb.OrderEvent_LineRefused:
		r := b.LineRefused
		answered, to, toAvailable, toLimit = r.Sku, pb.LineReserve_LINE_RESERVE_REFUSED, r.Available, r.Limit
	default:
		return nil
	}
	var first *pb.OrderRejected
	for _, l := range s.Lines {
		st, available, limit := l.Reserve, l.Available, l.Limit
		if l.SKU == answered && st == pb.LineReserve_LINE_RESERVE_PENDING {
			st, available, limit = to, toAvailable, toLimit
		}
		switch {
		case st == pb.LineReserve_LINE_RESERVE_PENDING:
			return nil
		case st == pb.LineReserve_LINE_RESERVE_REFUSED && first == nil:
			first = &pb.OrderRejected{Sku: l.SKU, Available: available, Limit: limit}
		}
	}
	if first == nil {
		return orderEvent(now, &pb.OrderEvent{Body: &pb.OrderEvent_Reserved{Reserved: &pb.OrderReserved{}}})
	}
	return orderEvent(now, &pb.OrderEvent{Body: &pb.OrderEvent_Rejected{Rejected: first}})
}

// orderEvent stamps an event with the schema version and the time.
func orderEvent(now time.Time, ev *pb.OrderEvent) *pb.OrderEvent {
	ev.SchemaVersion, ev.AtUnixNano = orderSchemaVersion, now.UnixNano()
	return ev
}

func orderReply(code pb.OrderCode) OrderDecision {
	return OrderDecision{Reply: &pb.OrderResult{Code: code}}
}

func orderInvalid(detail string) OrderDecision {
	return OrderDecision{Reply: &pb.OrderResult{Code: pb.OrderCode_ORDER_CODE_INVALID, Detail: detail}}
}

// orderConflict refuses a move that the current status does not allow.
func orderConflict(s *OrderState) OrderDecision {
	return OrderDecision{Reply: &pb.OrderResult{Code: pb.OrderCode_ORDER_CODE_INVALID_TRANSITION, OrderStatus: s.Status,
		Detail: "not allowed while the order is " + orderStatusName(s.Status)}}
}

// orderStatusName is the status as API.md spells it ("reserved").
func orderStatusName(st pb.OrderStatus) string {
	name := pb.OrderStatus_name[int32(st)]
	const prefix = "ORDER_STATUS_"
	if len(name) > len(prefix) {
		name = name[len(prefix):]
	}
	b := []byte(name)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// clone returns a deep copy of the state.
func (s *OrderState) clone() *OrderState {
	c := *s
	c.Lines = append([]OrderLineState(nil), s.Lines...)
	c.Fingerprint = bytes.Clone(s.Fingerprint)
	c.indexLines()
	return &c
}
