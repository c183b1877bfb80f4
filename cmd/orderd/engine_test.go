package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/gateway"
	"github.com/orderengine/orderengine/persistence"
)

// unreachableSKUs drops every SKU command, as a link to SKUs whose node
// is down does.
type unreachableSKUs struct{}

func (unreachableSKUs) RequestSKU(actor.Context, string, proto.Message) {}

// A keyed checkout whose reservation could not finish before its TTL ran
// out answers with the order, now expired (201), and a replay answers the
// same: the first outcome, as the idempotency promise says, not a refused
// move.
func TestCheckoutExpiredWhileReservingReplays(t *testing.T) {
	e, _ := newTestEngine(t, actors.OrderConfig{SKUs: unreachableSKUs{}, TickInterval: 50 * time.Millisecond})
	req := gateway.PlaceOrderRequest{Customer: "c", TTL: time.Second, IdempotencyKey: "k1",
		Items: []gateway.Item{{SKU: "tea", Quantity: 1}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first, err := e.PlaceOrder(ctx, req)
	if err != nil || first.Status != "expired" || first.ID == "" {
		t.Fatalf("first answer %+v, %v; want the order, expired", first, err)
	}
	again, err := e.PlaceOrder(ctx, req)
	if err != nil || again.ID != first.ID || again.Status != "expired" {
		t.Fatalf("replay %+v, %v; want %s expired", again, err, first.ID)
	}
}

// newTestEngine returns an engine on a real journal and actor system of
// its own, closed when tb ends: everything of a node but HTTP. orders is
// the order actors' configuration; its Journal is filled in.
func newTestEngine(tb testing.TB, orders actors.OrderConfig) (*engine, *actors.Registry) {
	tb.Helper()
	j, err := persistence.Open(tb.TempDir(), persistence.DefaultOptions())
	if err != nil {
		tb.Fatal(err)
	}
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	tb.Cleanup(func() {
		system.Shutdown()
		j.Close()
	})
	reg := actors.NewRegistry(system, actors.SKUConfig{Journal: j})
	orders.Journal = j
	e := &engine{clock: actors.SystemClock{}}
	e.node.Store(&nodeActors{skus: reg, orders: actors.NewOrders(reg, orders)})
	return e, reg
}
