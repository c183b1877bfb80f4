package actors

import (
	"time"

	"github.com/orderengine/orderengine/actors/pb"
)

// wakeAtOnce is the wake time of an identity a node must activate as soon
// as it can: an order whose saga owes a SKU command. Any time in the past
// would do; 1 sorts it first in the journal's wake index.
const wakeAtOnce int64 = 1

// DefaultOrderRetention is how long a terminal order (rejected, cancelled,
// expired, completed) is kept before its journal is deleted. API.md asks
// for at least 24 hours, so that an idempotent checkout can be replayed.
const DefaultOrderRetention = 7 * 24 * time.Hour

// OrderWakeAt returns when the order must next be activated even if nobody
// asks for it (Unix nanoseconds), 0 for never:
//
//   - at once while its saga owes a SKU command after the reservation (a
//     commit, release or return: after a restart, nothing else would send
//     it);
//   - at expires_at while it is unpaid, so that it expires on time although
//     it passivated; also while it is still reserving. A checkout's
//     reservations take milliseconds, so writing "at once" with its first
//     event and expires_at with its second would cost every checkout a
//     wake-time write and a tombstone that the waker's scans would wade
//     through. An order that a crash caught reserving is brought back by
//     its next request or at its expiry, and its SKUs hold its units until
//     then, as they would for a reserved order;
//   - at the end of its retention once it is terminal, when it deletes
//     itself (retention 0 keeps it forever), or shortly after a rejection
//     that is to leave nothing behind (OrderState.ForgetRejection), in
//     case a crash stopped it before it deleted itself;
//   - never while paid or shipped: those wait for the customer or the
//     operator, and an order never placed has nothing to do.
//
// It is a pure function of the state, so a recovered order computes the
// same wake time that its last append wrote.
func OrderWakeAt(s *OrderState, retention time.Duration) int64 {
	switch {
	case s.Status == pb.OrderStatus_ORDER_STATUS_UNSPECIFIED:
		return 0
	case orderUnpaid(s.Status):
		return s.ExpiresAt
	case !OrderSettled(s):
		return wakeAtOnce
	}
	return orderForgetAt(s, retention)
}

// orderForgetAt returns when the node must activate a terminal order so
// that it deletes its journal (Unix nanoseconds), 0 for never: at the end
// of its retention, or, for a rejection that is to leave nothing behind,
// forgetRejectionGrace after it. Such an order deletes itself as soon as
// it is settled; its wake time only brings it back if a crash came first.
func orderForgetAt(s *OrderState, retention time.Duration) int64 {
	switch {
	case !orderTerminal(s.Status):
		return 0
	case orderForgetsRejection(s):
		return s.StatusAt + int64(forgetRejectionGrace)
	case retention > 0:
		return s.StatusAt + int64(retention)
	}
	return 0
}

// forgetRejectionGrace delays the wake time of a rejection that forgets
// itself. Had it been "at once", the waker's scans would find orders in
// the moment between their rejection and their deletion and activate
// them again just after they stopped.
const forgetRejectionGrace = time.Minute

// orderForgetsRejection reports whether the order is a rejection that is
// to leave nothing behind (OrderState.ForgetRejection). Nobody was told
// its ID, so nothing can ask for it again.
func orderForgetsRejection(s *OrderState) bool {
	return s.Status == pb.OrderStatus_ORDER_STATUS_REJECTED && s.ForgetRejection
}

// orderTerminal reports whether no command can move an order in this
// status any more.
func orderTerminal(st pb.OrderStatus) bool {
	switch st {
	case pb.OrderStatus_ORDER_STATUS_REJECTED, pb.OrderStatus_ORDER_STATUS_CANCELLED,
		pb.OrderStatus_ORDER_STATUS_EXPIRED, pb.OrderStatus_ORDER_STATUS_COMPLETED:
		return true
	}
	return false
}

// orderRetentionDue reports whether a terminal order that owes nothing has
// been kept for its retention and may be forgotten.
func orderRetentionDue(s *OrderState, now time.Time, retention time.Duration) bool {
	switch {
	case !orderTerminal(s.Status) || !OrderSettled(s):
		return false
	case orderForgetsRejection(s):
		return true
	}
	return retention > 0 && now.UnixNano() >= s.StatusAt+int64(retention)
}
