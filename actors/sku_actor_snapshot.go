package actors

import "github.com/asynkron/protoactor-go/actor"

// A SKU actor's snapshots are taken off its turn. The turn only freezes
// the state (holdTable.freeze: a copy of the page pointers, microseconds
// even for a million holds); a goroutine encodes the frozen view and hands
// the bytes to the journal, whose answer comes back as *snapshotDone. The
// actor keeps serving meanwhile, its writes copying the pages they touch,
// and thaws the table when the answer arrives. One snapshot is in flight
// at a time (durableLog.snapshotting).

// afterDurable takes a periodic snapshot once everything is durable and
// finishes a passivation that was waiting for it.
func (a *skuActor) afterDurable(ctx actor.Context) {
	if a.state == nil {
		return
	}
	if a.log.snapshotDue(a.snapshotInterval()) {
		a.startSnapshot()
		return
	}
	if a.passivating && a.log.idle() && !a.log.snapshotting {
		ctx.Stop(ctx.Self())
	}
}

// snapshotInterval is the number of events between snapshots: at least
// SnapshotEvery, and at least the number of holds the last snapshot
// carried. A snapshot costs time in proportion to the holds, which a hot
// SKU can have by the million, so a fixed interval would make its
// snapshots cost more and more per event. Spacing them by the size of the
// last one makes the intervals grow with the state: the snapshot cost per
// event stays constant, and the tail a recovery replays is never longer
// than the snapshot it starts from.
func (a *skuActor) snapshotInterval() uint64 {
	if a.cfg.SnapshotEvery == 0 {
		return 0
	}
	return max(a.cfg.SnapshotEvery, a.snapshotHolds)
}

// passivate stops an idle actor after a snapshot of its latest state, so
// that the next activation reads one record instead of a long tail. A SKU
// that holds reservations may go too: the journal holds its wake time, and
// the node's waker activates it when the first reservation falls due.
func (a *skuActor) passivate(ctx actor.Context) {
	if a.state == nil || !a.log.idle() {
		return
	}
	a.passivating = true
	if a.log.durable > a.log.snapshotted && !a.log.snapshotting {
		a.startSnapshot()
		return
	}
	a.afterDurable(ctx)
}

// startSnapshot freezes the state as of the durable sequence (every event
// is durable: snapshotDue and passivate check it) and encodes and saves it
// on a goroutine that always reports back with *snapshotDone.
func (a *skuActor) startSnapshot() {
	l := a.log
	f := a.state.freeze(a.state.advance(a.cfg.Clock.Now()), a.cfg.Rules)
	if f.seq != l.durable {
		a.state.holds.thaw()
		panic("sku " + a.sku + ": snapshot of a state that is not durable")
	}
	a.snapshotHolds = uint64(f.holds)
	hook := a.cfg.snapshotHook
	l.saveSnapshot(func() ([]byte, error) {
		if hook != nil {
			hook()
		}
		return f.encode()
	})
}

// snapshotOnStop hands the journal a snapshot of a state with nothing in
// flight; the journal writes it even though the actor will not hear back
// (closing the journal drains its queue). It encodes in the turn, since
// the actor is going away and the journal may close right after: the cost
// is bounded by the holds, and nothing waits on anything else.
func (a *skuActor) snapshotOnStop() {
	l := a.log
	if a.state == nil || !l.idleJournal() || l.durable <= l.snapshotted || l.snapshotting || a.state.Sequence != l.durable {
		return
	}
	f := a.state.freeze(a.state.advance(a.cfg.Clock.Now()), a.cfg.Rules)
	b, err := f.encode()
	a.state.holds.thaw()
	if err != nil {
		a.cfg.Logger.Error("sku snapshot at stop refused", "sku", a.sku, "err", err)
		return
	}
	a.cfg.Journal.SaveSnapshot(l.id, l.durable, b, func(err error) {
		if err != nil {
			a.cfg.Logger.Warn("sku snapshot at stop failed", "sku", a.sku, "err", err)
		}
	})
}
