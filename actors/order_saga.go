package actors

import (
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/actors/pb"
)

// The saga is derived from the state, not stored beside it: the status says
// where every line's units should end up (the goal), each line says where
// they are known to be (its hold), and the difference is the SKU commands
// the order still owes. The shell sends what OrderOwed lists, re-sends what
// stays unanswered, and after a crash simply starts again from the list:
// every SKU command is idempotent on the order ID, so re-sending is always
// safe.

// orderGoal is where the order wants its units on every SKU.
type orderGoal int

const (
	orderGoalNone      orderGoal = iota // no order
	orderGoalHeld                       // reserving, reserved
	orderGoalCommitted                  // paid, shipped, completed
	orderGoalReleased                   // rejected, expired, cancelled before payment
	orderGoalReturned                   // cancelled after payment
)

func orderGoalOf(s *OrderState) orderGoal {
	switch s.Status {
	case pb.OrderStatus_ORDER_STATUS_RESERVING, pb.OrderStatus_ORDER_STATUS_RESERVED:
		return orderGoalHeld
	case pb.OrderStatus_ORDER_STATUS_PAID, pb.OrderStatus_ORDER_STATUS_SHIPPED, pb.OrderStatus_ORDER_STATUS_COMPLETED:
		return orderGoalCommitted
	case pb.OrderStatus_ORDER_STATUS_REJECTED, pb.OrderStatus_ORDER_STATUS_EXPIRED:
		return orderGoalReleased
	case pb.OrderStatus_ORDER_STATUS_CANCELLED:
		if s.EndedFrom == pb.OrderStatus_ORDER_STATUS_PAID {
			return orderGoalReturned
		}
		return orderGoalReleased
	}
	return orderGoalNone
}

// orderOwesRelease reports whether a line of an order that releases still
// needs a ReleaseReservation: it is known held, or its ReserveStock was
// never answered (the SKU may hold units; the release leaves a tombstone
// that refuses the reservation if it arrives later).
func orderOwesRelease(l *OrderLineState) bool {
	return l.Hold == pb.LineHold_LINE_HOLD_RESERVED ||
		(l.Hold == pb.LineHold_LINE_HOLD_NONE && l.Reserve == pb.LineReserve_LINE_RESERVE_PENDING)
}

// OrderSKUCommand is one SKU command the order owes.
type OrderSKUCommand struct {
	SKU  string
	Step pb.SKUStep
	// Msg is *pb.ReserveStock, *pb.CommitReservation,
	// *pb.ReleaseReservation or *pb.ReturnStock.
	Msg proto.Message
}

// OrderOwed lists the SKU commands the order still owes, in line order, at
// most one per line. An empty list means the saga is settled: every SKU
// agrees with the order's status.
func OrderOwed(s *OrderState) []OrderSKUCommand {
	var out []OrderSKUCommand
	goal := orderGoalOf(s)
	for i := range s.Lines {
		l := &s.Lines[i]
		if c, ok := orderOwedFor(s, goal, l); ok {
			out = append(out, c)
		}
	}
	return out
}

func orderOwedFor(s *OrderState, goal orderGoal, l *OrderLineState) (OrderSKUCommand, bool) {
	switch goal {
	case orderGoalHeld:
		if s.Status == pb.OrderStatus_ORDER_STATUS_RESERVING && l.Reserve == pb.LineReserve_LINE_RESERVE_PENDING {
			return OrderSKUCommand{l.SKU, pb.SKUStep_SKU_STEP_RESERVE,
				&pb.ReserveStock{OrderId: s.ID, Quantity: l.Quantity, DeadlineUnixNano: s.ExpiresAt, Customer: s.Customer}}, true
		}
	case orderGoalCommitted:
		if l.Hold == pb.LineHold_LINE_HOLD_RESERVED {
			return OrderSKUCommand{l.SKU, pb.SKUStep_SKU_STEP_COMMIT, &pb.CommitReservation{OrderId: s.ID}}, true
		}
	case orderGoalReleased:
		if orderOwesRelease(l) {
			return OrderSKUCommand{l.SKU, pb.SKUStep_SKU_STEP_RELEASE,
				&pb.ReleaseReservation{OrderId: s.ID, Reason: orderReleaseReason(s), DeadlineUnixNano: s.ExpiresAt}}, true
		}
	case orderGoalReturned:
		// A paid order's units are committed first and then returned, so
		// each SKU command meets the hold state it expects.
		switch l.Hold {
		case pb.LineHold_LINE_HOLD_RESERVED:
			return OrderSKUCommand{l.SKU, pb.SKUStep_SKU_STEP_COMMIT, &pb.CommitReservation{OrderId: s.ID}}, true
		case pb.LineHold_LINE_HOLD_COMMITTED:
			// The SKU may have forgotten the committed hold by now (its
			// dedup window is short, a cancellation can come days later),
			// so the return says what to give back, since when it is
			// owed, and whose purchase (placed when) it uncounts.
			return OrderSKUCommand{l.SKU, pb.SKUStep_SKU_STEP_RETURN, &pb.ReturnStock{OrderId: s.ID,
				Quantity: l.Quantity, DeadlineUnixNano: s.ExpiresAt, OwedSinceUnixNano: s.StatusAt,
				Customer: s.Customer, PlacedUnixNano: s.CreatedAt}}, true
		}
	}
	return OrderSKUCommand{}, false
}

func orderReleaseReason(s *OrderState) pb.ReleaseReason {
	switch s.Status {
	case pb.OrderStatus_ORDER_STATUS_REJECTED:
		return pb.ReleaseReason_RELEASE_REASON_REJECTED
	case pb.OrderStatus_ORDER_STATUS_EXPIRED:
		return pb.ReleaseReason_RELEASE_REASON_EXPIRED
	}
	return pb.ReleaseReason_RELEASE_REASON_CANCELLED
}

// OrderSettled reports whether the order owes its SKUs nothing.
func OrderSettled(s *OrderState) bool {
	goal := orderGoalOf(s)
	for i := range s.Lines {
		if _, ok := orderOwedFor(s, goal, &s.Lines[i]); ok {
			return false
		}
	}
	return true
}

// Retry timing of owed SKU commands. A command unanswered after
// its timeout is sent again; the timeout doubles up to orderRetryMax, with
// jitter from the caller's seeded source so that many orders that lost the
// same SKU do not retry in step.
const (
	orderRetryFirst = 500 * time.Millisecond
	orderRetryMax   = 30 * time.Second
)

// orderRetryDelay is the wait before attempt+1 of a command (attempt counts
// from 1), scaled by jitter in [0, 1) to between 50% and 100% of the
// backoff.
func orderRetryDelay(attempt int, jitter float64) time.Duration {
	d := orderRetryFirst
	for i := 1; i < attempt && d < orderRetryMax; i++ {
		d *= 2
	}
	d = min(d, orderRetryMax)
	return d/2 + time.Duration(float64(d/2)*jitter)
}

// orderNextExpiry returns when the order must expire, and false when it
// never will (it is not unpaid).
func orderNextExpiry(s *OrderState) (time.Time, bool) {
	if !orderUnpaid(s.Status) {
		return time.Time{}, false
	}
	return time.Unix(0, s.ExpiresAt), true
}
