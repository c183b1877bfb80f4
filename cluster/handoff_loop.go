package cluster

import (
	"context"
	"errors"
	"time"
)

// handoffLoop is the one goroutine that acts on the table for this node:
// it starts and stops serving partitions, begins handoffs (step 1) and
// runs them in at most HandoffsMax workers, takes over committed ones
// (step 4), and drops data the table has passed. It runs only with a
// Store. Shutdown stops it; workers stop with it, leaving what they were
// handing off to the recovery of the next start.
type handoffLoop struct {
	n *Node
	// active: partitions whose StartServing was called, at which epoch.
	active map[int]uint64
	// inFlight: partitions a worker is handing off.
	inFlight map[int]bool
	// notBefore: partitions given up recently, not to be handed to the
	// same target again before then.
	notBefore map[int]backOff
	done      chan handoffDone
	cleaned   bool
	warned    map[int]uint64 // pending partitions reported without an import
}

type handoffDone struct {
	p int
	// backOff: the handoff was given up for want of an answer; p is not
	// handed to target again for HandoffTimeout.
	backOff bool
	target  string
}

type backOff struct {
	target string
	until  time.Time
	// received: target handed p to this node (see takeOver); a node that
	// is leaving itself may hand it back at once.
	received bool
}

func (n *Node) runHandoffLoop() {
	defer n.wg.Done()
	l := &handoffLoop{
		n: n, active: map[int]uint64{}, inFlight: map[int]bool{}, notBefore: map[int]backOff{},
		done: make(chan handoffDone, n.cfg.HandoffsMax), warned: map[int]uint64{},
	}
	tick := time.NewTicker(handoffRetryInterval)
	defer tick.Stop()
	for {
		l.reconcile()
		select {
		case <-n.ctx.Done():
			return
		case <-n.wake:
		case <-tick.C:
		case d := <-l.done:
			delete(l.inFlight, d.p)
			n.stats.inFlight.Store(int64(len(l.inFlight)))
			if d.backOff {
				l.notBefore[d.p] = backOff{target: d.target, until: n.cfg.Now().Add(n.cfg.HandoffTimeout)}
			}
		}
	}
}

// reconcile makes one pass over the table.
func (l *handoffLoop) reconcile() {
	n := l.n
	if !n.isReady() {
		return
	}
	// Whatever this pass acts on is durable first.
	t, err := n.persist()
	if err != nil {
		n.log.Error("table not saved; not acting on it", "err", err)
		return
	}
	if !l.cleaned {
		l.cleanup(t)
		l.cleaned = true
	}
	desired, members := n.desired(t)
	now := n.cfg.Now()
	n.mu.Lock()
	leaving := n.leaving
	n.mu.Unlock()
	for p, a := range t.Partitions {
		mine := a.Holder == n.self
		if e, ok := l.active[p]; ok && !(mine && a.Epoch == e && (a.State == StateServing || a.State == StatePending)) {
			// Only a conflict takes a served partition away unannounced.
			n.log.Error("serving a partition the table gives to another; stopping", "partition", p, "epoch", e, "table", a.Holder.String())
			l.stopServing(p)
		}
		switch {
		case !mine:
			l.dropPassed(p, a)
		case l.inFlight[p]:
		case a.State == StateServing:
			target, ok := members[desired[p]]
			wait := l.notBefore[p]
			if ok && len(l.inFlight) < n.cfg.HandoffsMax && (wait.target != target.Name || now.After(wait.until) || wait.received && leaving) {
				l.begin(p, a, Holder{target.Name, target.Meta.Generation})
				continue
			}
			l.startServing(p, a.Epoch)
		case a.State == StatePending:
			l.takeOver(p, a)
		case a.State == StateHandingOff && len(l.inFlight) < n.cfg.HandoffsMax:
			l.spawn(p, "", func() bool { return n.recoverHandoff(p, a.Epoch) })
		}
	}
}

// cleanup drops, once per start, the data of every partition this node
// does not hold except complete imports the table has not passed: what
// an earlier run left behind (a copy handed off just before a crash, or
// an import the crash cut short).
func (l *handoffLoop) cleanup(t Table) {
	n := l.n
	for p, a := range t.Partitions {
		if a.Holder == n.self {
			continue
		}
		n.importMu.Lock()
		e, complete, err := n.cfg.Store.Imported(p)
		if err == nil && !(complete && e > a.Epoch) {
			err = n.cfg.Store.Drop(p)
		}
		n.importMu.Unlock()
		if err != nil {
			n.log.Error("leftover partition data not dropped", "partition", p, "err", err)
		}
	}
}

// dropPassed drops an import of p that the table has passed: p is at that
// epoch or later and another node's.
func (l *handoffLoop) dropPassed(p int, a Assignment) {
	n := l.n
	e, _, err := n.cfg.Store.Imported(p)
	if err != nil || e == 0 || e > a.Epoch {
		return
	}
	if err := n.dropStale(p, a.Epoch); err != nil {
		n.log.Error("stale import not dropped", "partition", p, "err", err)
	} else {
		n.log.Info("stale import dropped", "partition", p, "import_epoch", e, "epoch", a.Epoch)
	}
}

func (l *handoffLoop) startServing(p int, epoch uint64) {
	if _, ok := l.active[p]; ok {
		return
	}
	// An incomplete import is no data to serve: it is what is left of a
	// handoff that a Forget overtook (the partition is assigned here empty).
	if e, complete, err := l.n.cfg.Store.Imported(p); err == nil && e > 0 && e <= epoch && !complete {
		if err := l.n.dropStale(p, epoch); err != nil {
			l.n.log.Error("incomplete import not dropped; not serving", "partition", p, "err", err)
			return
		}
	}
	l.n.cfg.Store.Hold(p, epoch)
	if l.n.cfg.StartServing != nil {
		l.n.cfg.StartServing(p, epoch)
	}
	l.active[p] = epoch
}

func (l *handoffLoop) stopServing(p int) {
	if _, ok := l.active[p]; ok && l.n.cfg.StopServing != nil {
		l.n.cfg.StopServing(p)
	}
	delete(l.active, p)
	l.n.cfg.Store.Release(p)
}

// begin is step 1: p is saved handing off, then no longer served.
func (l *handoffLoop) begin(p int, a Assignment, to Holder) {
	n := l.n
	err := n.change(func(t Table) (Table, error) {
		if t.Partitions[p] != a {
			return t, errPartitionChanged
		}
		t.Partitions[p].State = StateHandingOff
		return t, nil
	})
	if err != nil {
		n.log.Warn("handoff not begun", "partition", p, "err", err)
		return
	}
	n.stats.started.Add(1)
	n.log.Info("handoff begun", "partition", p, "epoch", a.Epoch, "to", to.String())
	l.stopServing(p)
	start := n.cfg.Now()
	l.spawn(p, to.Name, func() bool { return n.handOff(p, a.Epoch, to, start) })
}

// spawn runs a handoff worker for p; work reports whether to back off.
func (l *handoffLoop) spawn(p int, target string, work func() (backOff bool)) {
	n := l.n
	l.inFlight[p] = true
	n.stats.inFlight.Store(int64(len(l.inFlight)))
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		d := handoffDone{p: p, backOff: work(), target: target}
		select {
		case l.done <- d:
		case <-n.ctx.Done():
		}
	}()
}

// takeOver is step 4: a partition committed to this node is served once
// its import is complete.
func (l *handoffLoop) takeOver(p int, a Assignment) {
	n := l.n
	e, complete, err := n.cfg.Store.Imported(p)
	if err != nil || e != a.Epoch || !complete {
		if l.warned[p] != a.Epoch {
			l.warned[p] = a.Epoch
			n.log.Error("partition committed to this node without its import", "partition", p, "epoch", a.Epoch,
				"import_epoch", e, "complete", complete, "err", err)
		}
		return
	}
	l.startServing(p, a.Epoch)
	err = n.change(func(t Table) (Table, error) {
		if t.Partitions[p] != a {
			return t, errPartitionChanged
		}
		t.Partitions[p].State = StateServing
		return t, nil
	})
	if err != nil {
		n.log.Warn("taken-over partition not marked serving; trying again", "partition", p, "err", err)
		return
	}
	signal(n.pushNow)
	n.log.Info("partition taken over", "partition", p, "epoch", a.Epoch)
	// The sender gave p up, most likely because it is leaving; the news of
	// that may not have reached this node yet, and until it has, placement
	// still names the sender. Handing p straight back would be refused and
	// cost an epoch, so the sender waits like a target that gave no answer.
	n.importMu.Lock()
	from := n.receivedFrom[p]
	delete(n.receivedFrom, p)
	n.importMu.Unlock()
	if from != "" {
		l.notBefore[p] = backOff{target: from, until: n.cfg.Now().Add(n.cfg.HandoffTimeout), received: true}
	}
}

// handOff runs steps 2 and 3 for p, handing off at epoch, towards to; it
// reports whether it gave up.
func (n *Node) handOff(p int, epoch uint64, to Holder, start time.Time) bool {
	deadline := start.Add(n.cfg.HandoffTimeout)
	for attempt := 1; ; attempt++ {
		m, ok := n.member(to)
		var err error
		switch {
		case !ok:
			err = errors.New("target not a live member")
		case attempt > 1:
			var has bool
			if has, err = n.ask(m, p, epoch+1); err == nil && has {
				return n.commit(p, epoch, to, start)
			}
			fallthrough
		default:
			if err = n.stream(m, p, epoch); err == nil {
				if gaveUp, done := n.tryCommit(p, epoch, to, start); done {
					return gaveUp
				}
				err = errors.New("commit not saved")
			}
		}
		n.stats.failed.Add(1)
		n.log.Warn("handoff attempt failed", "partition", p, "to", to.String(), "attempt", attempt, "err", err)
		// A target that is leaving, left or was wiped will never take
		// p; one declared dead may come back with it, so it gets until
		// the deadline.
		if errors.Is(err, ErrLeaving) || n.goneForGood(to) || !n.cfg.Now().Before(deadline) {
			return n.giveUp(p, epoch)
		}
		if !n.sleep(handoffRetryInterval) {
			return false
		}
	}
}

// recoverHandoff settles a handoff this node began before it restarted:
// it commits to the member that has p at epoch+1 complete, gives up when
// every live member says it has not (twice, so that a node just restarted
// knows its members), and otherwise asks again until HandoffTimeout.
func (n *Node) recoverHandoff(p int, epoch uint64) bool {
	n.stats.started.Add(1)
	start := n.cfg.Now()
	deadline := start.Add(n.cfg.HandoffTimeout)
	noes := 0
	for {
		peers := n.livePeers()
		allNo := len(peers) > 0
		for _, m := range peers {
			has, err := n.ask(m, p, epoch+1)
			if err == nil && has {
				if gaveUp, done := n.tryCommit(p, epoch, Holder{m.Name, m.Meta.Generation}, start); done {
					return gaveUp
				}
			}
			allNo = allNo && err == nil
		}
		if allNo {
			noes++
		}
		if noes >= 2 {
			n.giveUp(p, epoch)
			return false // the peers answered: no reason to wait
		}
		if !n.cfg.Now().Before(deadline) {
			return n.giveUp(p, epoch)
		}
		if !n.sleep(handoffRetryInterval) {
			return false
		}
	}
}

// stream sends p's key range to m as chunks at epoch+1, the last one
// marked, holding one chunk back to know which is last.
func (n *Node) stream(m Member, p int, epoch uint64) error {
	var held []byte
	var seq uint64
	have := false
	send := func(data []byte, last bool) error {
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.HandoffTimeout)
		defer cancel()
		c := Chunk{Partition: p, Epoch: epoch + 1, From: n.self, Seq: seq, Last: last, Data: data}
		if err := n.cfg.Handoff.SendChunk(ctx, m, c); err != nil {
			return err
		}
		n.stats.bytesSent.Add(uint64(len(data)))
		seq++
		return nil
	}
	err := n.cfg.Store.Export(p, func(chunk []byte) error {
		if len(chunk) > ChunkBytesMax {
			return errors.New("store exported a chunk over ChunkBytesMax")
		}
		if have {
			if err := send(held, false); err != nil {
				return err
			}
		}
		held, have = chunk, true
		return nil
	})
	if err != nil {
		return err
	}
	return send(held, true)
}

func (n *Node) ask(m Member, p int, epoch uint64) (bool, error) {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.HandoffTimeout)
	defer cancel()
	return n.cfg.Handoff.HasImport(ctx, m, p, epoch)
}

// tryCommit commits and reports (gaveUp, true), or (false, false) when
// the commit could not be saved and the caller should try again.
func (n *Node) tryCommit(p int, epoch uint64, to Holder, start time.Time) (gaveUp, done bool) {
	err := n.change(func(t Table) (Table, error) {
		if t.Partitions[p] != (Assignment{n.self, epoch, StateHandingOff}) {
			return t, errPartitionChanged
		}
		t.Partitions[p] = Assignment{to, epoch + 1, StatePending}
		return t, nil
	})
	if errors.Is(err, errPartitionChanged) {
		n.log.Error("handing-off partition changed under its handoff", "partition", p)
		return false, true
	}
	if err != nil {
		n.log.Warn("handoff commit not saved", "partition", p, "err", err)
		return false, false
	}
	signal(n.pushNow)
	if err := n.dropStale(p, epoch+1); err != nil {
		n.log.Error("handed-off partition not dropped", "partition", p, "err", err)
	}
	d := n.cfg.Now().Sub(start)
	n.stats.completed.Add(1)
	n.stats.lastDuration.Store(int64(d))
	n.log.Info("handoff committed", "partition", p, "epoch", epoch+1, "to", to.String(), "duration", d)
	return false, true
}

func (n *Node) commit(p int, epoch uint64, to Holder, start time.Time) bool {
	for {
		if gaveUp, done := n.tryCommit(p, epoch, to, start); done {
			return gaveUp
		}
		if !n.sleep(handoffRetryInterval) {
			return false
		}
	}
}

// giveUp resumes serving p at epoch+1 on this node. When even that cannot
// be saved, p stays handing off and recovery tries again.
func (n *Node) giveUp(p int, epoch uint64) bool {
	err := n.change(func(t Table) (Table, error) {
		if t.Partitions[p] != (Assignment{n.self, epoch, StateHandingOff}) {
			return t, errPartitionChanged
		}
		t.Partitions[p] = Assignment{n.self, epoch + 1, StateServing}
		return t, nil
	})
	if err != nil {
		n.log.Error("handoff not given up", "partition", p, "err", err)
		return false
	}
	signal(n.pushNow)
	n.stats.givenUp.Add(1)
	n.log.Warn("handoff given up; serving the partition again", "partition", p, "epoch", epoch+1)
	return true
}

// sleep waits d, or reports false when the node stops first.
func (n *Node) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-n.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
