package actors

import (
	"time"

	"github.com/orderengine/orderengine/actors/pb"
)

// OrderSends remembers which owed SKU commands are in flight, so that the
// shell sends each once and sends it again only when its answer is
// overdue, with a backoff. It is volatile on purpose: a recovered order
// actor starts with nothing in flight and sends everything it owes, which
// is safe because every SKU command is idempotent on the order ID.
//
// It reads no clock: times come in as arguments, so the actor shell and
// the simulation share it.
type OrderSends struct {
	inflight map[orderSendKey]orderSend
}

type orderSendKey struct {
	sku  string
	step pb.SKUStep
}

type orderSend struct {
	attempt int
	due     time.Time // when to send again if no answer came
}

// Due returns the owed commands to send at now: those not in flight and
// those whose answer is overdue. It marks them in flight until now plus
// the backoff of their attempt; jitter in [0, 1) spreads retries (pass a
// seeded source's Float64). Commands no longer owed are forgotten, so the
// next step for a line (return after commit, say) goes out at once, and an
// answer that settles nothing (UNAVAILABLE) waits for its due time.
//
// Call it only when every applied event is durable: a command must never
// act on a decision that a crash could still undo.
func (o *OrderSends) Due(s *OrderState, now time.Time, jitter func() float64) []OrderSKUCommand {
	owed := OrderOwed(s)
	if len(owed) == 0 && o.inflight == nil {
		return nil
	}
	if o.inflight == nil {
		o.inflight = make(map[orderSendKey]orderSend, len(owed))
	}
	var out []OrderSKUCommand
	keep := make(map[orderSendKey]bool, len(owed))
	for _, c := range owed {
		k := orderSendKey{c.SKU, c.Step}
		keep[k] = true
		f, ok := o.inflight[k]
		if ok && now.Before(f.due) {
			continue
		}
		f.attempt++
		f.due = now.Add(orderRetryDelay(f.attempt, jitter()))
		o.inflight[k] = f
		out = append(out, c)
	}
	if len(keep) != len(o.inflight) {
		for k := range o.inflight {
			if !keep[k] {
				delete(o.inflight, k)
			}
		}
	}
	if len(o.inflight) == 0 {
		o.inflight = nil // a settled order that stays resident keeps no map
	}
	return out
}

// NextDue returns the earliest time a command in flight becomes overdue,
// and false when none is in flight.
func (o *OrderSends) NextDue() (time.Time, bool) {
	var first time.Time
	for _, f := range o.inflight {
		if first.IsZero() || f.due.Before(first) {
			first = f.due
		}
	}
	return first, !first.IsZero()
}

// Reset forgets everything in flight, as a restart does.
func (o *OrderSends) Reset() { o.inflight = nil }
