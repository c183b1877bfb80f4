package actors

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/orderengine/orderengine/actors/pb"
)

// The journal keeps, atomically with each identity's events, the time at
// which it must next be activated (its wake time; see OrderWakeAt and
// SKUState.WakeAt). That is what lets actors leave memory while they
// still have something to do at a known time: an unpaid order waits for
// its expiry, a SKU for its first reservation's safety expiry, a terminal
// order for the end of its retention, and after a restart an order whose
// saga owes a SKU command waits for nothing at all. Nothing is loaded in
// bulk at start; the waker finds what is due.
const (
	// DefaultWakeInterval is how often a node looks for identities whose
	// wake time has passed. API.md promises an unpaid order shows expired
	// within 1 s of expires_at.
	DefaultWakeInterval = 200 * time.Millisecond
	// wakeBatchMax bounds the identities one pass reads from the index, so
	// a pile of due work after a long outage is spread over passes.
	wakeBatchMax = 4096
)

// WakeDue wakes every actor whose wake time is at or before now, at most
// wakeBatchMax per call, and returns how many it woke.
//
// Actors in memory are woken too, although their own timers would usually
// get there first: a timer runs on real time, while the decision is made
// on the node's clock, and a wake-up that finds nothing due changes
// nothing. Actors not in memory are activated only while the registry's
// resident bound leaves room; for the rest it asks the least recently
// used actors to passivate, and the next pass activates them. So a pile
// of expiries cannot push the node over its bound.
func (o *Orders) WakeDue(now time.Time) (int, error) {
	var due []string
	err := o.cfg.Journal.Due(now.UnixNano(), wakeBatchMax, func(id string, _ int64) bool {
		due = append(due, id)
		return true
	})
	if err != nil {
		return 0, fmt.Errorf("list due wake times: %w", err)
	}
	room, deferred, woken := o.reg.room(), 0, 0
	for _, id := range due {
		if _, resident := o.reg.system.ProcessRegistry.GetLocal(id); !resident {
			if room == 0 {
				deferred++
				continue
			}
			room--
		}
		msg, ok := WakeMessage(id)
		if !ok {
			continue // an identity of another kind; not ours to wake
		}
		var pid *actor.PID
		if strings.HasPrefix(id, skuActorName("")) {
			pid = o.reg.SKUPID(strings.TrimPrefix(id, skuActorName("")))
		} else {
			pid = o.PID(strings.TrimPrefix(id, orderActorName("")))
		}
		o.reg.system.Root.Send(pid, msg)
		woken++
	}
	if deferred > 0 {
		o.reg.makeRoom(deferred)
	}
	return woken, nil
}

// WakeMessage returns the message that wakes the actor of a journal
// identity that Journal.Due listed (the identity is also the actor's
// name): a sweep for a SKU, a wake-up for an order. ok is false for an
// identity of a kind this package does not wake. WakeDue sends it; so
// does the simulation, which hosts the actors itself.
func WakeMessage(id string) (msg any, ok bool) {
	switch {
	case strings.HasPrefix(id, skuActorName("")):
		return &pb.SweepReservations{}, true
	case strings.HasPrefix(id, orderActorName("")):
		return &wakeUp{}, true
	}
	return nil, false
}

// RunWaker calls WakeDue every interval on clock until ctx is done. A
// failed pass is reported to onError (if set) and retried next interval.
func (o *Orders) RunWaker(ctx context.Context, clock Clock, interval time.Duration, onError func(error)) {
	if interval <= 0 {
		interval = DefaultWakeInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := o.WakeDue(clock.Now()); err != nil && onError != nil {
			onError(err)
		}
	}
}
