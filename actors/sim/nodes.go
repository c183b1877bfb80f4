package sim

import (
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
)

// The nodes follow the actor shells' discipline: a command is applied at
// once; its events wait in pending until a journal flush; a reply waits
// until every event applied before it is durable (except a saga that ended
// reserved: see the order shell); an order sends SKU commands only when
// nothing is pending, except the reservations of an order still reserving. A crash loses pending events and
// held replies and reloads the state from the journal.

// send puts one message on the network between orders and SKUs: after a
// random delay (which reorders), maybe twice, maybe never. A message to a
// stalled SKU (to not nil) waits until the stall ends.
func (w *world) send(to *skuNode, deliver func()) {
	for range w.copies() {
		w.inflight++
		at := w.now.Add(w.delay())
		if to != nil && to.stalledUntil.After(at) {
			at = to.stalledUntil.Add(w.delay())
		}
		w.at(at, func() {
			w.inflight--
			deliver()
			w.maybeCrash()
		})
	}
}

// copies counts one message on the network and decides how many copies of
// it arrive: none (dropped), one, or two (duplicated); always one once
// the network is healed.
func (w *world) copies() int {
	w.report.Messages++
	if w.healed {
		return 1
	}
	switch r := w.rng.Float64(); {
	case r < w.cfg.DropRate:
		w.report.Dropped++
		return 0
	case r < w.cfg.DropRate+w.cfg.DupRate:
		w.report.Duplicated++
		return 2
	}
	return 1
}

func (w *world) delay() time.Duration {
	if w.cfg.DelayMax <= 0 {
		return 0
	}
	return time.Duration(w.rng.Int64N(int64(w.cfg.DelayMax)))
}

func (w *world) maybeCrash() {
	if w.healed {
		return
	}
	if w.rng.Float64() < w.cfg.StallRate {
		w.report.Stalls++
		s := w.skus[w.skuIDs[w.rng.IntN(len(w.skuIDs))]]
		s.stalledUntil = w.now.Add(time.Duration(w.rng.Int64N(int64(w.cfg.StallMax))))
	}
	if w.rng.Float64() >= w.cfg.CrashRate {
		return
	}
	w.report.Crashes++
	if w.rng.IntN(2) == 0 || len(w.orderIDs) == 0 {
		w.skus[w.skuIDs[w.rng.IntN(len(w.skuIDs))]].crash()
		return
	}
	w.orders[w.orderIDs[w.rng.IntN(len(w.orderIDs))]].crash()
}

func (w *world) flushDelay() time.Duration { return time.Duration(w.rng.Int64N(int64(flushDelayMax))) }

// simLog is the model of an actor shell's durable log: events wait in
// pending until a flush (one at a time), replies wait in held until every
// event applied before them is durable, and a crash loses both.
type simLog struct {
	journalID string
	pending   [][]byte
	held      []func() // replies to send once pending is durable
	flushing  bool
	epoch     int // bumped by a crash; stale scheduled work checks it
}

// whenDurable runs reply now if nothing is pending, else after the flush.
func (l *simLog) whenDurable(reply func()) {
	if len(l.pending) == 0 {
		reply()
		return
	}
	l.held = append(l.held, reply)
}

// scheduleFlush writes pending to the journal after a random delay, then
// releases the held replies and calls then (if not nil).
func (l *simLog) scheduleFlush(w *world, then func()) {
	if l.flushing || len(l.pending) == 0 {
		return
	}
	l.flushing = true
	epoch := l.epoch
	w.after(w.flushDelay(), func() {
		if epoch != l.epoch {
			return
		}
		l.flushing = false
		w.journal.append(l.journalID, l.pending)
		l.pending = nil
		held := l.held
		l.held = nil
		for _, r := range held {
			r()
		}
		if then != nil {
			then()
		}
	})
}

// crash loses what was not durable and voids scheduled work.
func (l *simLog) crash() {
	l.epoch++
	l.pending, l.held, l.flushing = nil, nil, false
}

// skuNode is a SKU actor.
type skuNode struct {
	simLog
	w     *world
	id    string
	state *actors.SKUState
	// stalledUntil holds messages to the SKU back until then.
	stalledUntil time.Time
}

func newSKUNode(w *world, id string) *skuNode {
	return &skuNode{simLog: simLog{journalID: "sku/" + id}, w: w, id: id, state: actors.NewSKUState(id)}
}

// handle runs one command; reply (if not nil) gets the result once the
// events behind it are durable.
func (s *skuNode) handle(cmd any, reply func(*pb.StockResult)) {
	events, res := s.state.Step(cmd, s.w.now, actors.DefaultSKURules)
	for _, ev := range events {
		s.pending = append(s.pending, mustMarshal(ev))
	}
	if res != nil && reply != nil {
		s.whenDurable(func() { reply(res) })
	}
	s.scheduleFlush(s.w, nil)
}

// fromOrder handles a command that came over the network from an order;
// the answer goes back over the network.
func (s *skuNode) fromOrder(orderID string, step pb.SKUStep, msg proto.Message) {
	w := s.w
	s.handle(msg, func(res *pb.StockResult) {
		answer := &pb.StockAnswered{Sku: s.id, Step: step, Outcome: res.Outcome,
			Available: res.GetView().GetAvailable(), Detail: res.Detail, Hold: res.Hold}
		w.send(nil, func() {
			if step == pb.SKUStep_SKU_STEP_RESERVE && (res.Outcome == pb.Outcome_OUTCOME_APPLIED || res.Outcome == pb.Outcome_OUTCOME_ALREADY_DONE) {
				w.told[orderID+"/"+s.id] = true
			}
			w.orders[orderID].handle(answer, nil)
		})
	})
}

func (s *skuNode) crash() {
	s.simLog.crash()
	st, _, err := actors.LoadSKUState(s.w.journal, s.id)
	if err != nil {
		panic("recover sku " + s.id + ": " + err.Error())
	}
	s.state = st
}

// orderNode is an order actor.
type orderNode struct {
	simLog
	w           *world
	id          string
	state       *actors.OrderState
	sends       actors.OrderSends
	waiting     []func(*pb.OrderResult)
	retryAt     time.Time
	expiryArmed bool
}

// orderNode returns the order's actor, activating it on first use.
func (w *world) orderNode(id string) *orderNode {
	if o, ok := w.orders[id]; ok {
		return o
	}
	o := &orderNode{simLog: simLog{journalID: "order/" + id}, w: w, id: id, state: actors.NewOrderState(id)}
	w.orders[id] = o
	w.orderIDs = append(w.orderIDs, id)
	return o
}

// handle runs one command; reply (if not nil) gets the answer once the
// events behind it are durable.
func (o *orderNode) handle(cmd any, reply func(*pb.OrderResult)) {
	w := o.w
	if pay, ok := cmd.(*pb.PayOrder); ok {
		defer o.checkPay(pay, o.state.Status, w.now)
	}
	reserving := o.state.Status == pb.OrderStatus_ORDER_STATUS_RESERVING
	d := o.state.Step(cmd, w.now)
	for _, ev := range d.Events {
		o.pending = append(o.pending, mustMarshal(ev))
	}
	switch {
	case d.Wait && reply != nil:
		o.waiting = append(o.waiting, reply)
	case d.Reply != nil && reply != nil:
		o.reply(reply, d.Reply)
	}
	if (reserving || d.Wait) && o.state.Status != pb.OrderStatus_ORDER_STATUS_RESERVING {
		outcome := actors.OrderPlaceOutcome(o.state, false)
		// As the shell does: a saga that ended reserved is answered once
		// the events before its last step are durable; any other outcome
		// waits for all of them.
		early := o.state.Status == pb.OrderStatus_ORDER_STATUS_RESERVED && len(o.pending) == len(d.Events)
		for _, r := range o.waiting {
			if early {
				r(outcome)
			} else {
				o.reply(r, outcome)
			}
		}
		o.waiting = nil
	}
	o.scheduleFlush(o.w, o.pump)
	o.pump()
	o.armExpiry()
}

// checkPay is the oracle of "a pay after expires_at is refused".
func (o *orderNode) checkPay(pay *pb.PayOrder, before pb.OrderStatus, at time.Time) {
	if before != pb.OrderStatus_ORDER_STATUS_RESERVED || o.state.PaymentRef != pay.PaymentRef {
		return
	}
	if o.state.Status == pb.OrderStatus_ORDER_STATUS_PAID && at.UnixNano() >= o.state.ExpiresAt {
		panic("order " + o.id + " paid at or after expires_at")
	}
}

func (o *orderNode) reply(to func(*pb.OrderResult), res *pb.OrderResult) {
	o.whenDurable(func() { to(res) })
}

// pump sends the owed SKU commands that are due, once nothing is pending;
// an order still reserving sends its reservations at once, as the shell
// does.
func (o *orderNode) pump() {
	if len(o.pending) > 0 && o.state.Status != pb.OrderStatus_ORDER_STATUS_RESERVING {
		return
	}
	w := o.w
	for _, c := range o.sends.Due(o.state, w.now, w.rng.Float64) {
		sku, id, step, msg := w.skus[c.SKU], o.id, c.Step, c.Msg
		w.send(sku, func() { sku.fromOrder(id, step, msg) })
	}
	next, ok := o.sends.NextDue()
	if !ok || (!o.retryAt.IsZero() && !next.Before(o.retryAt)) {
		return
	}
	o.retryAt = next
	epoch := o.epoch
	w.at(next, func() {
		if epoch == o.epoch && o.retryAt.Equal(next) {
			o.retryAt = time.Time{}
			o.pump()
		}
	})
}

// armExpiry schedules the TTL tick once per activation of an unpaid order.
func (o *orderNode) armExpiry() {
	if o.expiryArmed || (o.state.Status != pb.OrderStatus_ORDER_STATUS_RESERVING && o.state.Status != pb.OrderStatus_ORDER_STATUS_RESERVED) {
		return
	}
	o.expiryArmed = true
	epoch := o.epoch
	lag := time.Duration(0)
	if o.w.cfg.ExpiryLagMax > 0 {
		lag = time.Duration(o.w.rng.Int64N(int64(o.w.cfg.ExpiryLagMax)))
	}
	o.w.at(time.Unix(0, o.state.ExpiresAt).Add(lag), func() {
		if epoch == o.epoch {
			o.handle(&pb.ExpireOrder{}, nil)
		}
	})
}

// crash loses what was not durable and recovers from the journal; the new
// activation sends everything the saga still owes.
func (o *orderNode) crash() {
	o.simLog.crash()
	o.waiting = nil
	o.retryAt, o.expiryArmed = time.Time{}, false
	o.sends.Reset()
	st, _, err := actors.LoadOrderState(o.w.journal, o.id)
	if err != nil {
		panic("recover order " + o.id + ": " + err.Error())
	}
	o.state = st
	for _, l := range st.Lines {
		if l.Hold == pb.LineHold_LINE_HOLD_NONE {
			delete(o.w.told, o.id+"/"+l.SKU) // what it was told was lost
		}
	}
	o.handle(&pb.RetryOrderSaga{}, nil) // expires it if due, then pumps
}

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}
