package sim

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
)

// The world's side of the real-shell simulation: the workload reaches the
// actors through the host, and the checks read what the journal holds
// (what would survive one more crash) instead of a model's memory.

// shellArrivalSpacing is the mean time between two checkouts.
const shellArrivalSpacing = 20 * time.Millisecond

// quietCheckEvery spaces the costly part of shellsQuiet (reading every
// order back from the journal).
const quietCheckEvery = 100 * time.Millisecond

func (w *world) setupShells() {
	h := w.shells
	for i := range w.cfg.SKUs {
		id := fmt.Sprintf("S%02d", i)
		w.skuIDs = append(w.skuIDs, id)
		if n := w.rng.Int64N(w.cfg.Stock + 1); n > 0 {
			h.tell("sku/"+id, &pb.Restock{OpId: "initial", Quantity: n})
		}
	}
	w.every(wakeInterval, h.wake)
	// Customers arrive in bursts, so that actors are busy while their
	// writes are in flight.
	span := time.Duration(w.cfg.Orders) * shellArrivalSpacing
	for i := range w.cfg.Orders {
		w.after(time.Duration(w.rng.Int64N(int64(span))), func() { w.newClient(i) })
	}
	for i := range max(w.cfg.Orders/20, 1) {
		w.after(time.Duration(w.rng.Int64N(int64(span))), func() {
			id := w.skuIDs[w.rng.IntN(len(w.skuIDs))]
			h.tell("sku/"+id, &pb.Restock{OpId: fmt.Sprint("restock-", i), Quantity: 1 + w.rng.Int64N(5)})
		})
	}
}

// shellsQuiet reports whether nothing is on its way to an actor or a
// client, the journal has nothing pending, no customer waits, and every
// order's saga is settled in the journal.
func (w *world) shellsQuiet() bool {
	h := w.shells
	if h.inflight > 0 || !h.journal.idle() || slices.ContainsFunc(w.clients, func(c *client) bool { return c.busy }) {
		return false
	}
	if w.now.Before(w.quietChecked.Add(quietCheckEvery)) {
		return false
	}
	w.quietChecked = w.now
	for _, id := range w.orderIDs {
		if !actors.OrderSettled(w.durableOrder(id)) {
			return false
		}
	}
	return true
}

// busy says what keeps the real-shell world from being quiet.
func (w *world) busy() string {
	h := w.shells
	var out []string
	if h.inflight > 0 || !h.journal.idle() {
		out = append(out, fmt.Sprintf("%d messages in flight, %d journal writes", h.inflight, len(h.journal.queue)))
	}
	for _, c := range w.clients {
		if c.busy {
			out = append(out, fmt.Sprintf("customer of %s waits (%T)", c.id, c.cmd))
		}
	}
	for _, id := range w.orderIDs {
		if o := w.durableOrder(id); !actors.OrderSettled(o) {
			out = append(out, fmt.Sprintf("order %s %v (wake %d) owes %v", id, o.Status, h.journal.wakes["order/"+id], actors.OrderOwed(o)))
		}
	}
	if len(out) > 5 {
		out = append(out[:5], fmt.Sprintf("and %d more", len(out)-5))
	}
	return strings.Join(out, "; ")
}

func (w *world) durableOrder(id string) *actors.OrderState {
	st, _, err := actors.LoadOrderState(w.shells.journal, id)
	if err != nil {
		panic("read order " + id + " back: " + err.Error())
	}
	return st
}

func (w *world) durableSKU(id string) *actors.SKUState {
	st, _, err := actors.LoadSKUState(w.shells.journal, id)
	if err != nil {
		panic("read sku " + id + " back: " + err.Error())
	}
	return st
}

// stockAnswered records that an order was told a SKU holds its units.
func (w *world) stockAnswered(orderID string, r *pb.StockResult) {
	if r.Step == pb.SKUStep_SKU_STEP_RESERVE &&
		(r.Outcome == pb.Outcome_OUTCOME_APPLIED || r.Outcome == pb.Outcome_OUTCOME_ALREADY_DONE) {
		w.told[orderID+"/"+r.GetView().GetSku()] = true
	}
}

// orderLostMemory forgets what an order was told but did not journal: a
// new instance of it knows only its journal.
func (w *world) orderLostMemory(id string) {
	for _, l := range w.durableOrder(id).Lines {
		if l.Hold == pb.LineHold_LINE_HOLD_NONE {
			delete(w.told, id+"/"+l.SKU)
		}
	}
}

// worldStates is what the checks read: the model's memory, or the
// journal's durable state for the real shells.
type worldStates struct {
	skus   map[string]*actors.SKUState
	orders map[string]*actors.OrderState
	// forgotten: nothing is stored under the order's ID, as a refusal
	// promises: its journal was deleted (a rejection of the order's
	// actor that forgot itself) and nothing was written since, or it was
	// never written (a checkout its SKU's actor refused in its turn).
	forgotten map[string]bool
}

func (w *world) states() worldStates {
	s := worldStates{skus: map[string]*actors.SKUState{}, orders: map[string]*actors.OrderState{}, forgotten: map[string]bool{}}
	for _, id := range w.skuIDs {
		if w.shells != nil {
			s.skus[id] = w.durableSKU(id)
		} else {
			s.skus[id] = w.skus[id].state
		}
	}
	inTurn := map[string]bool{}
	for _, c := range w.clients {
		inTurn[c.id] = c.inTurn
	}
	for _, id := range w.orderIDs {
		if w.shells == nil {
			s.orders[id] = w.orders[id].state
			continue
		}
		s.orders[id] = w.durableOrder(id)
		j := w.shells.journal
		s.forgotten[id] = (j.deleted["order/"+id] > 0 || inTurn[id]) && len(j.events["order/"+id]) == 0
	}
	return s
}
