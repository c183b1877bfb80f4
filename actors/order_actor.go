package actors

import (
	"context"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/actors/pb"
)

// OrderSKULink carries an order's commands to its SKUs' actors. The
// Registry is one (the SKU is on this node); a cluster's router is another
// (the SKU may be on another node); the test kit puts a link in between
// that drops, duplicates, delays and reorders messages.
type OrderSKULink interface {
	// RequestSKU sends msg to the SKU's actor with ctx.Self() as the reply
	// address, and returns at once. A link that cannot deliver now (the
	// SKU's holder is down or moving) drops the message: the order sends
	// it again when it is overdue, and every SKU command is idempotent.
	RequestSKU(ctx actor.Context, sku string, msg proto.Message)
}

// OrderConfig is what an order actor needs from the node.
type OrderConfig struct {
	Journal Journal
	Clock   Clock
	// SKUs routes SKU commands; Orders fills in its Registry when nil.
	SKUs OrderSKULink
	// SnapshotEvery is the number of events between snapshots; 0 turns
	// periodic snapshots off. Orders are short, so 0 is a fine default.
	SnapshotEvery uint64
	// PassivateAfter stops an idle order whose saga owes nothing; 0 keeps
	// actors forever. An unpaid order passivates too: the journal's wake
	// index brings it back at expires_at (Registry.WakeDue).
	PassivateAfter time.Duration
	// Retention is how long a terminal order is kept before it deletes its
	// journal; 0 keeps it forever. See DefaultOrderRetention.
	Retention time.Duration
	// TickInterval is the shortest wait, in real time, before an order
	// with SKU commands in flight checks whether one is overdue on Clock.
	TickInterval time.Duration
	Logger       *slog.Logger
	// Timers arms the actor's timers; nil (production) uses real time.
	// The simulation sets it.
	Timers Timers
}

// Defaults of OrderConfig.
const (
	DefaultOrderTickInterval = 250 * time.Millisecond
	// orderWaitersMax bounds the PlaceOrder callers waiting for one saga.
	orderWaitersMax = 1_000
	// orderPassivationSnapshotMin is the journal tail below which an order
	// passivates without a snapshot: replaying a handful of events on the
	// next activation is cheaper than one more journal write per order.
	orderPassivationSnapshotMin = 16
)

func (c OrderConfig) withDefaults() OrderConfig {
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.TickInterval <= 0 {
		c.TickInterval = DefaultOrderTickInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// OrderProps returns the props of the actor for one order ID.
func OrderProps(orderID string, cfg OrderConfig) *actor.Props {
	return orderProps(orderID, cfg, false)
}

// orderProps is OrderProps for an order ID that may be fresh: just
// generated, with nothing journaled under it.
func orderProps(orderID string, cfg OrderConfig, fresh bool) *actor.Props {
	return actor.PropsFromProducer(OrderProducer(orderID, cfg, fresh))
}

// OrderProducer returns what OrderProps spawns: the producer of one
// activation of the order's actor, called again for each restart. fresh
// says the ID was just generated (NewOrderID) and has nothing journaled,
// so the first start need not read the journal (Orders.AskNew). A host
// other than protoactor's (the deterministic simulation) calls it directly.
func OrderProducer(orderID string, cfg OrderConfig, fresh bool) actor.Producer {
	cfg = cfg.withDefaults()
	carry := &restartCarry{fresh: fresh}
	return func() actor.Actor { return newOrderActor(orderID, cfg, carry) }
}

// orderActor is the shell around OrderState: it journals what the pure
// layer decides, answers once that is durable, and sends the SKU commands
// the state says are owed once the decision behind them is durable.
type orderActor struct {
	id    string
	cfg   OrderConfig
	idle  idleTimer // passivates the order after PassivateAfter without activity
	state *OrderState
	log   *durableLog
	sends OrderSends
	// waiting are PlaceOrder callers answered when the saga ends.
	waiting []*actor.PID
	// deferred are client commands that arrived while the order was
	// reserving; they run once it is not (see deferWhileReserving).
	deferred []deferredCommand
	// settling are answers to payments and cancellations held until the
	// order's SKU commands are acknowledged (answerSettled).
	settling    []heldReply
	loadErr     error
	loadTried   time.Time
	carry       *restartCarry
	expiry      Timer
	retry       Timer
	rng         *rand.Rand
	passivating bool
	// forgetting: the order's retention ended and its journal is being
	// deleted; it stops once that is done.
	forgetting bool
	// evicted: the registry asked the order to make room while it was
	// busy; it passivates as soon as it is idle, unless a caller uses it
	// again first.
	evicted bool
}

func newOrderActor(id string, cfg OrderConfig, carry *restartCarry) *orderActor {
	h := fnv.New64a()
	h.Write([]byte(id))
	a := &orderActor{id: id, cfg: cfg, carry: carry, rng: rand.New(rand.NewPCG(h.Sum64(), 0x5a6a))}
	a.idle.timers = cfg.Timers
	a.log = newDurableLog(orderJournalID(id), cfg.Journal, cfg.Timers, failedOrderResult)
	return a
}

// deferredCommand is a command held back until the order's reservation
// saga has ended.
type deferredCommand struct {
	cmd    any
	sender *actor.PID
}

// deferWhileReserving reports whether cmd waits for the end of the
// reservation saga when it meets an order that is reserving. A client
// never sees the internal reserving status: a checkout answers when its
// saga ends, and a read, payment or cancellation that meets a saga in
// progress (a keyed retry's order, or one re-establishing its
// reservations after a crash or a failed journal write) waits for it,
// bounded by the caller's timeout.
func deferWhileReserving(cmd any) bool {
	switch cmd.(type) {
	case *pb.GetOrder, *pb.PayOrder, *pb.CancelOrder, *pb.ShipOrder, *pb.CompleteOrder:
		return true
	}
	return false
}

// failedOrderResult is what a caller gets when its command's events were
// not made durable.
func failedOrderResult(reply any, detail string) any {
	r := proto.Clone(reply.(*pb.OrderResult)).(*pb.OrderResult)
	r.Code, r.Detail = pb.OrderCode_ORDER_CODE_UNAVAILABLE, detail
	return r
}

// orderForgotten is the journal's answer to the deletion of a terminal
// order whose retention ended.
type orderForgotten struct {
	incarnation uint64
	err         error
}

// orderRetryTick and orderExpiryTick wake the actor; they do not count as
// activity for passivation.
type (
	orderRetryTick  struct{}
	orderExpiryTick struct{}
)

func (*orderRetryTick) NotInfluenceReceiveTimeout()  {}
func (*orderExpiryTick) NotInfluenceReceiveTimeout() {}

// Receive is the actor's message loop.
func (a *orderActor) Receive(ctx actor.Context) {
	a.idle.observe(ctx.Message())
	switch m := ctx.Message().(type) {
	case *actor.Started:
		if !a.carry.waiting() {
			a.load(ctx, false)
		}
		a.idle.set(ctx, a.cfg.PassivateAfter)
	case *actor.Restarting:
		a.carry.restarting(a.log)
		a.failAll(ctx, "order actor restarted")
		a.stopTimers()
		a.idle.stop()
	case *actor.Stopping:
		a.log.failSentOff(ctx, "order actor stopped")
		a.failAll(ctx, "order actor stopped")
		a.stopTimers()
		a.idle.stop()
		a.snapshotOnStop()
	case *appendDone:
		if m.err != nil && m.incarnation == a.log.incarnation {
			a.cfg.Logger.Log(context.Background(), journalFailureLevel(m.err), "order journal write failed; reloading", "order_id", a.id, "err", m.err)
			a.failWaiting(ctx, journalFailureDetail(m.err))
		}
		appendAnswered(ctx, a, a.carry, a.log, m)
		a.afterDurable(ctx)
	case *orderForgotten:
		a.forgotten(ctx, m)
	case *snapshotDone:
		if !a.log.snapshotSaved(m) && m.err != nil {
			a.cfg.Logger.Warn("order snapshot failed", "order_id", a.id, "err", m.err)
		}
		a.afterDurable(ctx)
	case *pb.StockResult:
		// A SKU's answer to a command of the saga: the SKU replied to the
		// order, which sent the command with itself as the sender.
		if m.Step != pb.SKUStep_SKU_STEP_UNSPECIFIED && m.GetView().GetSku() != "" {
			if m.Outcome == pb.Outcome_OUTCOME_UNAVAILABLE && IsStorageFull(m.Detail) {
				// The saga retries once space is freed; its callers learn now.
				a.failWaiting(ctx, m.Detail)
			}
			a.command(ctx, &pb.StockAnswered{Sku: m.View.Sku, Step: m.Step, Outcome: m.Outcome,
				Available: m.View.Available, Limit: m.View.PerCustomerLimit, Detail: m.Detail, Hold: m.Hold}, nil)
		}
	case *orderRetryTick:
		a.retry = nil
		a.pump(ctx)
	case *orderExpiryTick:
		a.expiry = nil
		a.command(ctx, &pb.ExpireOrder{}, nil)
	case *idleTick:
		if a.idle.fired(ctx, m) {
			a.passivate(ctx)
		}
	case *passivateRequest:
		a.evicted = true
		a.passivate(ctx)
	case *wakeUp:
		a.woken(ctx)
	case Crash:
		panic("order " + a.id + ": crash requested")
	case *pb.RetryOrderSaga:
		a.pump(ctx)
	case *pb.PlaceOrder, *pb.PayOrder, *pb.CancelOrder, *pb.ShipOrder, *pb.CompleteOrder,
		*pb.GetOrder, *pb.ExpireOrder, *pb.StockAnswered:
		a.command(ctx, m, ctx.Sender())
	}
}

// command runs one command through the pure layer.
func (a *orderActor) command(ctx actor.Context, cmd any, sender *actor.PID) {
	if a.carry.waiting() {
		if !a.carry.hold(cmd, sender) {
			a.unavailable(ctx, sender, "order actor is recovering")
		}
		return
	}
	if a.state == nil && !a.retryLoad(ctx) {
		a.unavailable(ctx, sender, "order journal unreadable: "+a.loadErr.Error())
		return
	}
	a.passivating = false
	if sender != nil {
		a.evicted = false // in use again
	}
	reserving := a.state.Status == pb.OrderStatus_ORDER_STATUS_RESERVING
	if reserving && sender != nil && deferWhileReserving(cmd) {
		if len(a.deferred) < orderWaitersMax {
			a.deferred = append(a.deferred, deferredCommand{cmd: cmd, sender: sender})
		} else {
			a.unavailable(ctx, sender, "too many callers wait for this order")
		}
		return
	}
	d := a.state.Step(cmd, a.cfg.Clock.Now())
	for _, ev := range d.Events {
		a.log.record(encodeOrderEvent(ev))
	}
	switch {
	case d.Wait && sender != nil && len(a.waiting) < orderWaitersMax:
		a.waiting = append(a.waiting, sender)
	case d.Wait && sender != nil:
		a.unavailable(ctx, sender, "too many callers wait for this order")
	case d.Reply != nil && sender != nil && movesStock(cmd) && d.Reply.Code != pb.OrderCode_ORDER_CODE_INVALID_TRANSITION &&
		!OrderSettled(a.state):
		if len(a.settling) < orderWaitersMax {
			a.settling = append(a.settling, heldReply{to: sender, reply: d.Reply})
		} else {
			a.unavailable(ctx, sender, "too many callers wait for this order")
		}
	case d.Reply != nil:
		a.log.reply(ctx, sender, d.Reply)
	}
	if (reserving || d.Wait) && a.state.Status != pb.OrderStatus_ORDER_STATUS_RESERVING {
		a.answerWaiting(ctx, a.log.applied-uint64(len(d.Events)))
	}
	a.log.setWake(OrderWakeAt(a.state, a.cfg.Retention))
	a.log.flush()
	a.pump(ctx)
	a.scheduleExpiry(ctx)
	a.answerSettled(ctx)
	a.runDeferred(ctx)
}

// movesStock reports whether cmd moves units on the SKUs: its answer
// waits until they have (see answerSettled).
func movesStock(cmd any) bool {
	switch cmd.(type) {
	case *pb.PayOrder, *pb.CancelOrder:
		return true
	}
	return false
}

// answerSettled answers the payments and cancellations held until the
// SKUs agree with the order: read-your-writes covers each SKU involved,
// so a 200 for a pay leaves only once its units are sold on every SKU
// (and their acknowledgements are durable in the order's journal).
func (a *orderActor) answerSettled(ctx actor.Context) {
	if len(a.settling) == 0 || a.state == nil || !OrderSettled(a.state) {
		return
	}
	for _, h := range a.settling {
		a.log.reply(ctx, h.to, h.reply)
	}
	a.settling = nil
}

// runDeferred runs the commands held back while the order was reserving,
// in arrival order, once it is not.
func (a *orderActor) runDeferred(ctx actor.Context) {
	if len(a.deferred) == 0 || a.state == nil || a.state.Status == pb.OrderStatus_ORDER_STATUS_RESERVING {
		return
	}
	deferred := a.deferred
	a.deferred = nil
	for _, d := range deferred {
		a.command(ctx, d.cmd, d.sender)
	}
}

// answerWaiting gives every waiting PlaceOrder caller the saga's outcome,
// held until the events behind it are durable. before is the sequence
// applied before the step that ended the saga.
//
// A saga that ended reserved is answered once everything before its last
// step is durable (OrderPlaced above all, with its wake time that brings
// the order back after a restart), without waiting for the last LineReserved and OrderReserved: the SKU
// holds they record are already durable on the SKUs, so a recovering
// order re-sends those reservations, gets ALREADY_DONE, and reaches
// reserved again. That saves one journal round trip per checkout. Any
// other outcome waits for everything: a rejection re-derived after a
// crash could come out differently (stock may have returned meanwhile),
// and the first answer must stand.
func (a *orderActor) answerWaiting(ctx actor.Context, before uint64) {
	if len(a.waiting) == 0 {
		return
	}
	outcome := OrderPlaceOutcome(a.state, false)
	for _, w := range a.waiting {
		if a.state.Status == pb.OrderStatus_ORDER_STATUS_RESERVED {
			a.log.replyAt(ctx, w, proto.Clone(outcome), before)
		} else {
			a.log.reply(ctx, w, proto.Clone(outcome))
		}
	}
	a.waiting = nil
}

func (a *orderActor) unavailable(ctx actor.Context, sender *actor.PID, detail string) {
	if sender != nil {
		ctx.Send(sender, &pb.OrderResult{Code: pb.OrderCode_ORDER_CODE_UNAVAILABLE, Detail: detail})
	}
}

func (a *orderActor) failWaiting(ctx actor.Context, detail string) {
	for _, w := range a.waiting {
		a.unavailable(ctx, w, detail)
	}
	a.waiting = nil
	for _, h := range a.settling {
		a.unavailable(ctx, h.to, detail)
	}
	a.settling = nil
}

func (a *orderActor) failAll(ctx actor.Context, detail string) {
	a.log.failAll(ctx, detail)
	a.failWaiting(ctx, detail)
	for _, d := range a.deferred {
		a.unavailable(ctx, d.sender, detail)
	}
	a.deferred = nil
}

// pump sends the SKU commands that are owed and not in flight, or overdue.
// Nothing is sent while an applied event is not yet durable: a crash could
// still undo the decision that makes the command owed (an OrderPaid, say),
// and the SKU must never run ahead of the order's journal. The append's
// completion calls pump again.
//
// The one exception is the reservations of an order still reserving: they
// go out together with the OrderPlaced append, saving a journal round trip
// per checkout. If the order is lost before that append is durable,
// nobody was told it exists, and its reservations are released by the
// SKUs' own safety expiry (deadline plus grace). Once it is durable, the
// order's wake time (at once, while the saga owes something) brings it
// back after a restart.
func (a *orderActor) pump(ctx actor.Context) {
	if a.state == nil {
		return
	}
	if a.state.Status != pb.OrderStatus_ORDER_STATUS_RESERVING && a.log.applied != a.log.durable {
		return
	}
	for _, c := range a.sends.Due(a.state, a.cfg.Clock.Now(), a.rng.Float64) {
		a.send(ctx, c)
	}
	a.scheduleRetry(ctx)
}

// send makes one SKU request with the order as the reply address: the
// answer arrives as a *pb.StockResult naming its SKU and step, however late,
// and a command that stays unanswered is sent again when it is overdue. No
// future, no continuation: an answer to an earlier instance of the order
// reaches the current one like any message.
func (a *orderActor) send(ctx actor.Context, c OrderSKUCommand) {
	a.cfg.SKUs.RequestSKU(ctx, c.SKU, c.Msg)
}

// scheduleRetry wakes the actor when the first command in flight becomes
// overdue on Clock, or after TickInterval if that is later, so an order
// whose SKU is down costs a wake-up per backoff, not per tick.
func (a *orderActor) scheduleRetry(ctx actor.Context) {
	next, ok := a.sends.NextDue()
	if a.retry != nil || !ok {
		return
	}
	a.retryIn(ctx, min(max(next.Sub(a.cfg.Clock.Now()), a.cfg.TickInterval), orderRetryMax))
}

func (a *orderActor) retryIn(ctx actor.Context, wait time.Duration) {
	if a.retry != nil {
		return
	}
	root, self := ctx.ActorSystem().Root, ctx.Self()
	a.retry = afterFunc(a.cfg.Timers, wait, func() { root.Send(self, &orderRetryTick{}) })
}

// scheduleExpiry arms a timer for expires_at while the order is unpaid.
// The timer only wakes the actor; whether the order expires is decided on
// the injected clock, so tests send ExpireOrder after moving their clock.
func (a *orderActor) scheduleExpiry(ctx actor.Context) {
	at, ok := orderNextExpiry(a.state)
	if a.expiry != nil || !ok {
		return
	}
	root, self := ctx.ActorSystem().Root, ctx.Self()
	wait := max(at.Sub(a.cfg.Clock.Now()), 0)
	a.expiry = afterFunc(a.cfg.Timers, wait, func() { root.Send(self, &orderExpiryTick{}) })
}

func (a *orderActor) stopTimers() {
	for _, t := range []*Timer{&a.retry, &a.expiry} {
		if *t != nil {
			(*t).Stop()
			*t = nil
		}
	}
}

// load (re)builds the state from the journal and finishes what the saga
// owes: a recovered reserving order re-sends its reservations (and then
// completes or compensates), a paid one its unacknowledged commits, an
// unpaid one past its TTL expires at once, and a terminal one past its
// retention forgets itself.
func (a *orderActor) load(ctx actor.Context, rewrite bool) {
	a.loadTried = a.cfg.Clock.Now()
	state, snap, err := NewOrderState(a.id), uint64(0), error(nil)
	if a.carry.fresh {
		a.carry.fresh = false
	} else {
		state, snap, err = LoadOrderState(a.cfg.Journal, a.id)
	}
	if err != nil {
		a.state, a.loadErr = nil, err
		a.cfg.Logger.Error("order recovery failed", "order_id", a.id, "err", err)
		return
	}
	a.state, a.loadErr = state, nil
	a.log.start(ctx, state.Sequence, snap, OrderWakeAt(state, a.cfg.Retention), rewrite)
	a.sends.Reset()
	a.stopTimers()
	now := a.cfg.Clock.Now()
	switch {
	case orderRetentionDue(a.state, now, a.cfg.Retention):
		a.forget(ctx)
		return
	case orderExpiryDue(a.state, now):
		a.command(ctx, &pb.ExpireOrder{}, nil)
		return
	}
	a.pump(ctx)
	a.scheduleExpiry(ctx)
	a.log.flush() // a rewritten wake time goes out even without events
	a.runDeferred(ctx)
}

// woken handles the node's wake-up of an order whose wake time passed
// while it was not in memory: expire it, finish its saga, or forget it.
func (a *orderActor) woken(ctx actor.Context) {
	if a.state != nil && !a.forgetting && orderRetentionDue(a.state, a.cfg.Clock.Now(), a.cfg.Retention) && a.log.idle() {
		a.forget(ctx)
		return
	}
	a.command(ctx, &pb.ExpireOrder{}, nil)
	if a.state != nil && a.state.Status == pb.OrderStatus_ORDER_STATUS_UNSPECIFIED {
		// A wake-up that found no order (a scan that listed it just before
		// it deleted itself) leaves no actor behind.
		a.passivate(ctx)
	}
}

// forget deletes the journal of a terminal order whose retention ended.
// The actor goes on as an order that was never placed (the journal runs
// the deletion before any later append for the ID), and stops once the
// deletion is durable.
func (a *orderActor) forget(ctx actor.Context) {
	a.forgetting = true
	inc, root, self := a.log.incarnation, ctx.ActorSystem().Root, ctx.Self()
	a.cfg.Journal.Delete(a.log.id, func(err error) {
		root.Send(self, &orderForgotten{incarnation: inc, err: err})
	})
	a.state = NewOrderState(a.id)
	a.log.start(ctx, 0, 0, 0, false)
	a.stopTimers()
}

func (a *orderActor) forgotten(ctx actor.Context, m *orderForgotten) {
	a.forgetting = false
	if m.err != nil {
		a.cfg.Logger.Warn("order retention delete failed; reloading", "order_id", a.id, "err", m.err)
		if m.incarnation == a.log.incarnation {
			a.load(ctx, true)
		}
		return
	}
	a.passivating = true
	a.afterDurable(ctx)
}

func (a *orderActor) retryLoad(ctx actor.Context) bool {
	if a.cfg.Clock.Now().Sub(a.loadTried) >= loadRetryInterval {
		a.load(ctx, false)
	}
	return a.state != nil
}

// afterDurable sends what became owed, takes a periodic snapshot once
// everything is durable, and finishes a passivation waiting for it.
func (a *orderActor) afterDurable(ctx actor.Context) {
	if a.state == nil {
		return
	}
	if !a.forgetting && orderForgetsRejection(a.state) && a.log.idle() && len(a.waiting) == 0 &&
		orderRetentionDue(a.state, a.cfg.Clock.Now(), a.cfg.Retention) {
		a.forget(ctx) // a refusal leaves nothing behind
		return
	}
	a.pump(ctx)
	a.answerSettled(ctx)
	if a.log.snapshotDue(a.cfg.SnapshotEvery) {
		a.log.saveSnapshot(a.encodedSnapshot())
		return
	}
	if a.evicted && !a.passivating {
		a.passivate(ctx)
		return
	}
	if a.passivating && !a.forgetting && a.log.idle() && len(a.waiting) == 0 && len(a.deferred) == 0 && len(a.settling) == 0 && !a.log.snapshotting {
		ctx.Stop(ctx.Self())
	}
}

// passivate stops an idle order that owes nothing: its next command, or
// the node's wake-up at its wake time (expires_at for an unpaid order),
// activates it again from the journal.
func (a *orderActor) passivate(ctx actor.Context) {
	if a.state == nil || a.forgetting || !a.log.idle() || len(a.waiting) > 0 || len(a.deferred) > 0 || len(a.settling) > 0 || !OrderSettled(a.state) {
		return
	}
	a.passivating = true
	if a.log.durable >= a.log.snapshotted+orderPassivationSnapshotMin && !a.log.snapshotting && a.state.Status != pb.OrderStatus_ORDER_STATUS_UNSPECIFIED {
		a.log.saveSnapshot(a.encodedSnapshot())
		return
	}
	a.afterDurable(ctx)
}

// snapshotOnStop hands the journal a snapshot of a state with nothing in
// flight, so the next activation reads one record; the journal writes it
// although the actor will not hear back.
func (a *orderActor) snapshotOnStop() {
	if a.state == nil || a.state.Status == pb.OrderStatus_ORDER_STATUS_UNSPECIFIED || !a.log.idleJournal() ||
		a.log.durable < a.log.snapshotted+orderPassivationSnapshotMin || a.log.snapshotting || a.log.applied != a.log.durable {
		return
	}
	a.cfg.Journal.SaveSnapshot(a.log.id, a.log.durable, a.snapshotBytes(), func(err error) {
		if err != nil {
			a.cfg.Logger.Warn("order snapshot at stop failed", "order_id", a.id, "err", err)
		}
	})
}

// encodedSnapshot encodes the state in the turn (an order's state is
// small and changes with the next command) for durableLog.saveSnapshot.
func (a *orderActor) encodedSnapshot() func() ([]byte, error) {
	b := a.snapshotBytes()
	return func() ([]byte, error) { return b, nil }
}

func (a *orderActor) snapshotBytes() []byte {
	b, err := proto.Marshal(a.state.Snapshot())
	if err != nil {
		panic("encode order snapshot: " + err.Error())
	}
	return b
}
