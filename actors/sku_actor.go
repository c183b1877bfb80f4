package actors

import (
	"context"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/actors/pb"
)

// SKUConfig is what a SKU actor needs from the node.
type SKUConfig struct {
	Journal Journal
	Clock   Clock
	Rules   SKURules
	// SnapshotEvery is the number of events between snapshots; 0 turns
	// periodic snapshots off.
	SnapshotEvery uint64
	// PassivateAfter stops an idle actor (after a snapshot); it is
	// activated again by its next message. 0 keeps actors forever.
	PassivateAfter time.Duration
	// UnknownPassivateAfter stops, this soon, an actor whose SKU has
	// nothing in the journal (never restocked; a read or a refused command
	// changed nothing), so that requests for SKUs that do not exist leave
	// no actors behind. Default DefaultUnknownPassivateAfter.
	UnknownPassivateAfter time.Duration
	// SweepInterval is how often a SKU that holds reservations looks for
	// ones past deadline plus grace.
	SweepInterval time.Duration
	Logger        *slog.Logger
	// Timers arms the actor's timers and runs its snapshot encodes; nil
	// (production) uses real time and goroutines. The simulation sets it.
	Timers Timers

	// snapshotHook, when set (by tests only), runs on the snapshot
	// goroutine before it encodes, so a test can hold an encode back.
	snapshotHook func()
}

// DefaultSnapshotEvery and DefaultSweepInterval are the production values.
const (
	DefaultSnapshotEvery = 1000
	DefaultSweepInterval = time.Second
	// DefaultUnknownPassivateAfter: see SKUConfig.UnknownPassivateAfter.
	DefaultUnknownPassivateAfter = time.Second
	// loadRetryInterval spaces attempts to recover from a journal that
	// could not be read.
	loadRetryInterval = time.Second
)

func (c SKUConfig) withDefaults() SKUConfig {
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.Rules == (SKURules{}) {
		c.Rules = DefaultSKURules
	}
	c.Rules = c.Rules.withDefaults()
	if c.SweepInterval <= 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	if c.UnknownPassivateAfter <= 0 {
		c.UnknownPassivateAfter = DefaultUnknownPassivateAfter
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// SKUProps returns the props of the actor for one SKU.
func SKUProps(sku string, cfg SKUConfig) *actor.Props {
	return actor.PropsFromProducer(SKUProducer(sku, cfg))
}

// SKUProducer returns what SKUProps spawns: the producer of one activation
// of the SKU's actor, called again for each restart by its supervisor. A
// host other than protoactor's (the deterministic simulation) calls it
// directly: once per activation, and again on each restart.
func SKUProducer(sku string, cfg SKUConfig) actor.Producer {
	cfg = cfg.withDefaults()
	carry := &restartCarry{}
	return func() actor.Actor { return newSKUActor(sku, cfg, carry) }
}

// skuActor is the shell around SKUState: it journals what the pure layer
// decides and answers once that is durable.
type skuActor struct {
	sku string
	cfg SKUConfig
	// idle passivates the SKU after PassivateAfter without activity, or
	// UnknownPassivateAfter while unknownIdle: the SKU has nothing
	// journaled.
	idle        idleTimer
	unknownIdle bool
	state       *SKUState
	log         *durableLog
	// loadErr is set while the journal cannot be read; commands are then
	// answered UNAVAILABLE and loading is retried.
	loadErr     error
	loadTried   time.Time
	sweep       Timer
	sweepAt     time.Time // when the armed sweep timer fires, on Clock
	passivating bool
	carry       *restartCarry
	// snapshotHolds is the number of holds in the latest snapshot (or the
	// loaded state); it spaces the next snapshot.
	snapshotHolds uint64
}

func newSKUActor(sku string, cfg SKUConfig, carry *restartCarry) *skuActor {
	a := &skuActor{sku: sku, cfg: cfg, carry: carry}
	a.idle.timers = cfg.Timers
	a.log = newDurableLog(skuJournalID(sku), cfg.Journal, cfg.Timers, failedStockResult)
	return a
}

// failedStockResult is what a caller gets when its command's events were
// not made durable.
func failedStockResult(reply any, detail string) any {
	if c, checkout := reply.(*checkoutReply); checkout {
		return c.failed(detail)
	}
	r := proto.Clone(reply.(*pb.StockResult)).(*pb.StockResult)
	r.Outcome, r.Detail = pb.Outcome_OUTCOME_UNAVAILABLE, detail
	return r
}

// Receive is the actor's message loop.
func (a *skuActor) Receive(ctx actor.Context) {
	a.idle.observe(ctx.Message())
	switch m := ctx.Message().(type) {
	case *actor.Started:
		if !a.carry.waiting() {
			a.load(ctx, false)
		}
		if a.idle.after == 0 { // load may have set the unknown SKU's shorter time
			a.idle.set(ctx, a.cfg.PassivateAfter)
		}
	case *actor.Restarting:
		a.carry.restarting(a.log)
		a.log.failAll(ctx, "sku actor restarted")
		a.stopSweep()
		a.idle.stop()
	case *actor.Stopping:
		a.log.failSentOff(ctx, "sku actor stopped")
		a.log.failAll(ctx, "sku actor stopped")
		a.stopSweep()
		a.idle.stop()
		a.snapshotOnStop()
	case *appendDone:
		if m.err != nil && m.incarnation == a.log.incarnation {
			a.cfg.Logger.Log(context.Background(), journalFailureLevel(m.err), "sku journal write failed; reloading", "sku", a.sku, "err", m.err)
		}
		appendAnswered(ctx, a, a.carry, a.log, m)
		a.afterDurable(ctx)
	case *snapshotDone:
		if m.incarnation == a.log.incarnation && a.state != nil {
			a.state.holds.thaw() // the encode is over: nothing reads the frozen pages
		}
		if !a.log.snapshotSaved(m) && m.err != nil {
			a.cfg.Logger.Warn("sku snapshot failed", "sku", a.sku, "err", m.err)
		}
		a.afterDurable(ctx)
	case *sweepTick:
		a.sweep = nil
		a.command(ctx, &pb.SweepReservations{}, nil)
	case *idleTick:
		if a.idle.fired(ctx, m) {
			a.passivate(ctx)
		}
	case *passivateRequest:
		a.passivate(ctx)
	case *wakeUp:
		a.command(ctx, &pb.SweepReservations{}, nil)
	case Crash:
		panic("sku " + a.sku + ": crash requested")
	case *pb.Restock, *pb.Remove, *pb.ReserveStock, *pb.CommitReservation,
		*pb.ReleaseReservation, *pb.ReturnStock, *pb.SetPurchaseLimit, *pb.GetStock, *pb.SweepReservations, *Checkout:
		a.command(ctx, m, ctx.Sender())
	}
}

// command runs one SKU command through the pure layer.
func (a *skuActor) command(ctx actor.Context, cmd any, sender *actor.PID) {
	if a.carry.waiting() {
		if !a.carry.hold(cmd, sender) {
			a.unavailable(ctx, cmd, sender, "sku actor is recovering")
		}
		return
	}
	if a.state == nil && !a.retryLoad(ctx) {
		a.unavailable(ctx, cmd, sender, "sku journal unreadable: "+a.loadErr.Error())
		return
	}
	if _, sweep := cmd.(*pb.SweepReservations); !sweep {
		a.passivating = false // a sweep is no activity: it must not keep an idle SKU awake
	}
	if c, ok := cmd.(*Checkout); ok {
		a.checkout(ctx, c, sender)
		return
	}
	events, reply := a.state.Step(cmd, a.cfg.Clock.Now(), a.cfg.Rules)
	for _, ev := range events {
		a.log.record(encodeSKUEvent(ev))
	}
	if reply != nil {
		reply.Step = skuStepOf(cmd)
		a.log.reply(ctx, sender, reply)
	}
	a.log.setWake(a.state.WakeAt(a.cfg.Rules))
	a.log.flush()
	a.scheduleSweep(ctx)
	a.passivateSoonIfUnknown(ctx)
}

// passivateSoonIfUnknown shortens the idle time of an actor whose SKU has
// nothing journaled, and restores it once it has: a request for a SKU
// that does not exist must cost nothing after its answer.
func (a *skuActor) passivateSoonIfUnknown(ctx actor.Context) {
	unknown := a.state.Sequence == 0 && a.log.applied == 0
	switch {
	case unknown && !a.unknownIdle:
		a.unknownIdle = true
		a.idle.set(ctx, a.cfg.UnknownPassivateAfter)
	case !unknown && a.unknownIdle:
		a.unknownIdle = false
		a.idle.set(ctx, a.cfg.PassivateAfter)
	}
}

func (a *skuActor) unavailable(ctx actor.Context, cmd any, sender *actor.PID, detail string) {
	if _, tick := cmd.(*pb.SweepReservations); tick || sender == nil {
		return
	}
	if c, checkout := cmd.(*Checkout); checkout {
		ctx.Send(sender, &checkoutReply{orderID: c.Order.GetOrderId(),
			result: &pb.OrderResult{Code: pb.OrderCode_ORDER_CODE_UNAVAILABLE, Detail: detail}})
		return
	}
	ctx.Send(sender, &pb.StockResult{Outcome: pb.Outcome_OUTCOME_UNAVAILABLE, View: &pb.SKUView{Sku: a.sku}, Detail: detail,
		Step: skuStepOf(cmd)})
}

// skuStepOf names the order command cmd is, for the answer's step; other
// commands have none.
func skuStepOf(cmd any) pb.SKUStep {
	switch cmd.(type) {
	case *pb.ReserveStock:
		return pb.SKUStep_SKU_STEP_RESERVE
	case *pb.CommitReservation:
		return pb.SKUStep_SKU_STEP_COMMIT
	case *pb.ReleaseReservation:
		return pb.SKUStep_SKU_STEP_RELEASE
	case *pb.ReturnStock:
		return pb.SKUStep_SKU_STEP_RETURN
	}
	return pb.SKUStep_SKU_STEP_UNSPECIFIED
}

// load (re)builds the state from the journal. On failure the actor stays
// up and answers UNAVAILABLE, so a caller gets an answer, not a timeout.
func (a *skuActor) load(ctx actor.Context, rewrite bool) {
	a.loadTried = a.cfg.Clock.Now()
	state, snap, err := LoadSKUState(a.cfg.Journal, a.sku)
	if err != nil {
		a.state, a.loadErr = nil, err
		a.cfg.Logger.Error("sku recovery failed", "sku", a.sku, "err", err)
		return
	}
	a.state, a.loadErr = state, nil
	a.snapshotHolds = uint64(state.HoldCount())
	// Records that expired while the SKU was away go now, a bounded number
	// per turn; sweeps drop the rest.
	state.prune(state.advance(a.cfg.Clock.Now()), a.cfg.Rules, skuPruneMax)
	a.log.start(ctx, state.Sequence, snap, state.WakeAt(a.cfg.Rules), rewrite)
	a.scheduleSweep(ctx)
}

func (a *skuActor) retryLoad(ctx actor.Context) bool {
	if a.cfg.Clock.Now().Sub(a.loadTried) >= loadRetryInterval {
		a.load(ctx, false)
	}
	return a.state != nil
}

// scheduleSweep arms a timer that sends SweepReservations while the SKU
// keeps any hold: it releases reservations past deadline plus grace and
// forgets settled records whose time has come. It fires when the earliest
// reservation falls due (WakeAt), but no sooner than SweepInterval and no
// later than sweepWaitMax from now, and is armed again earlier when a
// command makes an earlier reservation. A sweep every SweepInterval
// whatever was due cost a node with many SKUs holding reservations (every
// SKU of a sale) a timer, a message and a turn per SKU per interval,
// about as many as its checkouts; forgetting settled records needs no
// hurry, since every command forgets some on its way. The timer only
// wakes the actor; what is due is decided on the injected clock. A SKU
// that passivates needs no timer: the node's waker activates it when its
// first reservation falls due, and loading forgets what expired.
func (a *skuActor) scheduleSweep(ctx actor.Context) {
	if a.state == nil || a.state.HoldCount() == 0 {
		return
	}
	now := a.cfg.Clock.Now()
	at := now.Add(sweepWaitMax)
	if due := a.state.WakeAt(a.cfg.Rules); due > 0 {
		at = minTime(at, maxTime(time.Unix(0, due), now.Add(a.cfg.SweepInterval)))
	}
	if a.sweep != nil {
		if !at.Before(a.sweepAt) {
			return
		}
		a.sweep.Stop()
	}
	root, self := ctx.ActorSystem().Root, ctx.Self()
	a.sweepAt = at
	a.sweep = afterFunc(a.cfg.Timers, at.Sub(now), func() {
		root.Send(self, &sweepTick{})
	})
}

// sweepWaitMax bounds the wait for a sweep of a SKU whose reservations
// fall due later (or that holds only settled records): a bound on how
// long a jump of the clock, or a settled record, waits for one.
const sweepWaitMax = 30 * time.Second

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Crash makes an actor panic, as a bug would: its supervisor restarts it and
// it recovers from the journal. Tests send it (testkit.Kit.CrashSKU); it is
// not protobuf, so it cannot arrive from another node.
type Crash struct{}

// sweepTick wakes the actor to sweep; it does not count as activity, so an
// actor is still passivated when only its timer talks to it.
type sweepTick struct{}

func (*sweepTick) NotInfluenceReceiveTimeout() {}

func (a *skuActor) stopSweep() {
	if a.sweep != nil {
		a.sweep.Stop()
		a.sweep = nil
	}
}
