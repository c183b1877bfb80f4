package actors

import (
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// MailboxDepths counts what waits behind a busy actor, by kind, and
// forgets an actor once it stopped.
func TestMailboxDepthsCountWaitingMessages(t *testing.T) {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer system.Shutdown()
	r := NewRegistry(system, SKUConfig{})
	release := make(chan struct{})
	busy := make(chan struct{}, 1)
	blocking := func() *actor.Props {
		return actor.PropsFromFunc(func(ctx actor.Context) {
			if _, ok := ctx.Message().(string); ok {
				select {
				case busy <- struct{}{}:
				default: // only the first of each actor is waited for
				}
				<-release
			}
		})
	}
	hot := r.activate(skuActorName("HOT"), blocking)
	order := r.activate(orderActorName("o1"), blocking)
	for range 6 {
		system.Root.Send(hot, "m")
	}
	<-busy // the first is being handled, five wait
	system.Root.Send(order, "m")
	<-busy
	system.Root.Send(order, "m")
	r.activate(skuActorName("IDLE"), blocking)

	skus, orders := r.MailboxDepths()
	if skus != (MailboxDepth{Queued: 5, Deepest: 5}) || orders != (MailboxDepth{Queued: 1, Deepest: 1}) {
		t.Fatalf("depths: skus %+v, orders %+v; want 5/5 and 1/1", skus, orders)
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for skus, orders = r.MailboxDepths(); skus.Queued+orders.Queued > 0; skus, orders = r.MailboxDepths() {
		if time.Now().After(deadline) {
			t.Fatalf("mailboxes not drained: %+v %+v", skus, orders)
		}
		time.Sleep(time.Millisecond)
	}
	if err := system.Root.StopFuture(hot).Wait(); err != nil {
		t.Fatal(err)
	}
}
