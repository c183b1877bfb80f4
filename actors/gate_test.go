package actors_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
	"github.com/orderengine/orderengine/actors/testkit"
)

// A node that stops serving some identities refuses to activate them at
// once, stops the resident ones, and serves them again from the journal
// once the gate opens: nothing resident survives a close.
func TestGateRefusesAndStopWhereStops(t *testing.T) {
	k := testkit.New(t)
	var closed atomic.Bool // closes "sku/B*"
	k.Registry.SetGate(func(name string) bool { return !closed.Load() || !strings.HasPrefix(name, "sku/B") })
	k.AskSKU("A1", &pb.Restock{OpId: "r", Quantity: 3})
	k.AskSKU("B1", &pb.Restock{OpId: "r", Quantity: 5})
	k.WaitSKUDurable("B1")

	closed.Store(true)
	n, err := k.Registry.StopWhere(context.Background(), func(name string) bool { return strings.HasPrefix(name, "sku/B") })
	if err != nil || n != 1 {
		t.Fatalf("StopWhere = %d, %v; want 1 stopped", n, err)
	}
	if _, err := k.TryAskSKU("B1", &pb.GetStock{}); !errors.Is(err, actors.ErrNotServed) {
		t.Fatalf("ask of a refused SKU: %v, want ErrNotServed", err)
	}
	if skus, _ := k.Registry.Count(); skus != 1 {
		t.Fatalf("%d SKU actors live, want only A1", skus)
	}
	if v := k.AskSKU("A1", &pb.GetStock{}).View; v.Available != 3 {
		t.Fatalf("A1 available %d, want 3", v.Available)
	}

	closed.Store(false)
	if v := k.AskSKU("B1", &pb.GetStock{}).View; v.Available != 5 {
		t.Fatalf("B1 after reopening: available %d, want 5 from the journal", v.Available)
	}
}
