package actors

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/actors/pb"
)

// SkuConfig is what a SKU actor needs from the node.
type SkuConfig struct {
	Journal Journal
	Clock   Clock
	Rules   SkuRules
	// SnapshotEvery is the number of events between snapshots; 0 turns
	// periodic snapshots off.
	SnapshotEvery uint64
	// PassivateAfter stops an idle actor (after a snapshot); it is
	// activated again by its next message. 0 keeps actors forever.
	PassivateAfter time.Duration
	// SweepInterval is how often a SKU that holds reservations looks for
	// ones past deadline plus grace.
	SweepInterval time.Duration
	Logger        *slog.Logger
}

// DefaultSnapshotEvery and DefaultSweepInterval are the production values.
const (
	DefaultSnapshotEvery = 1000
	DefaultSweepInterval = time.Second
	// loadRetryInterval spaces attempts to recover from a journal that
	// could not be read.
	loadRetryInterval = time.Second
)

func (c SkuConfig) withDefaults() SkuConfig {
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.Rules == (SkuRules{}) {
		c.Rules = DefaultSkuRules
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// SkuProps returns the props of the actor for one SKU.
func SkuProps(sku string, cfg SkuConfig) *actor.Props {
	cfg = cfg.withDefaults()
	carry := &restartCarry{}
	return actor.PropsFromProducer(func() actor.Actor { return newSkuActor(sku, cfg, carry) })
}

// skuActor is the shell around SkuState: it journals what the pure layer
// decides and answers once that is durable.
type skuActor struct {
	sku   string
	cfg   SkuConfig
	state *SkuState
	log   *durableLog
	// loadErr is set while the journal cannot be read; commands are then
	// answered UNAVAILABLE and loading is retried.
	loadErr     error
	loadTried   time.Time
	sweep       *time.Timer
	passivating bool
	carry       *restartCarry
	// snapshotHolds is the number of holds in the latest snapshot (or the
	// loaded state); it spaces the next snapshot.
	snapshotHolds uint64
}

func newSkuActor(sku string, cfg SkuConfig, carry *restartCarry) *skuActor {
	a := &skuActor{sku: sku, cfg: cfg, carry: carry}
	a.log = newDurableLog(skuJournalID(sku), cfg.Journal, failedStockResult)
	return a
}

// failedStockResult is what a caller gets when its command's events were
// not made durable.
func failedStockResult(reply any, detail string) any {
	r := proto.Clone(reply.(*pb.StockResult)).(*pb.StockResult)
	r.Outcome, r.Detail = pb.Outcome_OUTCOME_UNAVAILABLE, detail
	return r
}

// Receive is the actor's message loop.
func (a *skuActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		if !a.carry.waiting() {
			a.load(ctx)
		}
		if a.cfg.PassivateAfter > 0 {
			ctx.SetReceiveTimeout(a.cfg.PassivateAfter)
		}
	case *actor.Restarting:
		a.carry.restarting(a.log)
		a.log.failAll(ctx, "sku actor restarted")
		a.stopSweep()
	case *actor.Stopping:
		a.log.failAll(ctx, "sku actor stopped")
		a.stopSweep()
		a.snapshotOnStop()
	case *appendDone:
		if held, ok := a.carry.opened(m); ok {
			a.load(ctx)
			for _, e := range held {
				a.command(ctx, e.msg, e.sender)
			}
			return
		}
		if !a.log.appended(ctx, m) {
			a.cfg.Logger.Warn("sku journal write failed; reloading", "sku", a.sku, "err", m.err)
			a.load(ctx)
		}
		a.afterDurable(ctx)
	case *snapshotDone:
		if !a.log.snapshotSaved(m) && m.err != nil {
			a.cfg.Logger.Warn("sku snapshot failed", "sku", a.sku, "err", m.err)
		}
		a.afterDurable(ctx)
	case *sweepTick:
		a.sweep = nil
		a.command(ctx, &pb.SweepReservations{}, nil)
	case *actor.ReceiveTimeout:
		a.passivate(ctx)
	case Crash:
		panic("sku " + a.sku + ": crash requested")
	case *pb.Restock, *pb.Remove, *pb.ReserveStock, *pb.CommitReservation,
		*pb.ReleaseReservation, *pb.ReturnStock, *pb.GetStock, *pb.SweepReservations:
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
	a.passivating = false
	events, reply := a.state.Step(cmd, a.cfg.Clock.Now(), a.cfg.Rules)
	for _, ev := range events {
		a.log.record(encodeSkuEvent(ev))
	}
	if reply != nil {
		a.log.reply(ctx, sender, reply)
	}
	a.log.flush()
	a.scheduleSweep(ctx)
}

func (a *skuActor) unavailable(ctx actor.Context, cmd any, sender *actor.PID, detail string) {
	if _, tick := cmd.(*pb.SweepReservations); tick || sender == nil {
		return
	}
	ctx.Send(sender, &pb.StockResult{Outcome: pb.Outcome_OUTCOME_UNAVAILABLE, View: &pb.SkuView{Sku: a.sku}, Detail: detail})
}

// load (re)builds the state from the journal. On failure the actor stays
// up and answers UNAVAILABLE, so a caller gets an answer, not a timeout.
func (a *skuActor) load(ctx actor.Context) {
	a.loadTried = a.cfg.Clock.Now()
	state, snap, err := LoadSkuState(a.cfg.Journal, a.sku)
	if err != nil {
		a.state, a.loadErr = nil, err
		a.cfg.Logger.Error("sku recovery failed", "sku", a.sku, "err", err)
		return
	}
	a.state, a.loadErr = state, nil
	a.snapshotHolds = uint64(len(state.Holds))
	a.log.start(ctx, state.Sequence, snap)
	a.scheduleSweep(ctx)
}

func (a *skuActor) retryLoad(ctx actor.Context) bool {
	if a.cfg.Clock.Now().Sub(a.loadTried) >= loadRetryInterval {
		a.load(ctx)
	}
	return a.state != nil
}

// afterDurable takes a periodic snapshot once everything is durable and
// finishes a passivation that was waiting for it.
func (a *skuActor) afterDurable(ctx actor.Context) {
	if a.state == nil {
		return
	}
	if a.log.snapshotDue(a.snapshotInterval()) {
		a.log.saveSnapshot(a.snapshotBytes())
		return
	}
	if a.passivating && a.log.idle() && !a.log.snapshotting {
		ctx.Stop(ctx.Self())
	}
}

// snapshotInterval is the number of events between snapshots: at least
// SnapshotEvery, and at least the number of holds the last snapshot
// carried. A snapshot costs time in proportion to the state, and a SKU
// remembers every order it has seen, so a fixed interval would make a hot
// SKU's snapshots cost more and more per event. Spacing them by the size
// of the last one makes the intervals grow geometrically with the state:
// the snapshot cost per event stays constant, and the tail a recovery
// replays is never longer than the snapshot it starts from.
func (a *skuActor) snapshotInterval() uint64 {
	if a.cfg.SnapshotEvery == 0 {
		return 0
	}
	return max(a.cfg.SnapshotEvery, a.snapshotHolds)
}

// passivate stops an idle actor after a snapshot of its latest state, so
// that the next activation reads one record instead of a long tail. A SKU
// that holds reservations stays, because its safety expiry needs it awake.
func (a *skuActor) passivate(ctx actor.Context) {
	if a.state == nil || !a.log.idle() || len(a.state.reservedIDs) > 0 {
		return
	}
	a.passivating = true
	if a.log.durable > a.log.snapshotted && !a.log.snapshotting {
		a.log.saveSnapshot(a.snapshotBytes())
		return
	}
	a.afterDurable(ctx)
}

// snapshotOnStop hands the journal a snapshot of a state with nothing in
// flight; the journal writes it even though the actor will not hear back
// (closing the journal drains its queue).
func (a *skuActor) snapshotOnStop() {
	if a.state == nil || !a.log.idleJournal() || a.log.durable <= a.log.snapshotted || a.log.snapshotting {
		return
	}
	a.cfg.Journal.SaveSnapshot(a.log.id, a.log.durable, a.snapshotBytes(), func(err error) {
		if err != nil {
			a.cfg.Logger.Warn("sku snapshot at stop failed", "sku", a.sku, "err", err)
		}
	})
}

func (a *skuActor) snapshotBytes() []byte {
	a.snapshotHolds = uint64(len(a.state.Holds))
	b, err := proto.Marshal(a.state.Snapshot())
	if err != nil {
		panic("encode sku snapshot: " + err.Error())
	}
	return b
}

// scheduleSweep arms a timer that sends SweepReservations while the SKU
// holds reservations. The timer only wakes the actor; whether a
// reservation is due is decided on the injected clock.
func (a *skuActor) scheduleSweep(ctx actor.Context) {
	if a.sweep != nil || a.state == nil || len(a.state.reservedIDs) == 0 {
		return
	}
	root, self := ctx.ActorSystem().Root, ctx.Self()
	a.sweep = time.AfterFunc(a.cfg.SweepInterval, func() {
		root.Send(self, &sweepTick{})
	})
}

// Crash makes an actor panic, as a bug would: its supervisor restarts it and
// it recovers from the journal. Tests send it (testkit.Kit.CrashSku); it is
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
