package kit_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
	"github.com/orderengine/orderengine/actors/testkit"
)

// shop is a checkout with stock on hand, SKU by SKU.
func shop(t testing.TB, stock map[string]int64) *testkit.Checkout {
	t.Helper()
	c := testkit.NewCheckout(t, actors.OrderConfig{})
	for sku, n := range stock {
		if r := c.AskSKU(sku, &pb.Restock{OpId: "opening-" + sku, Quantity: n}); r.Outcome != pb.Outcome_OUTCOME_APPLIED {
			t.Fatalf("restock %s: %v", sku, r.Outcome)
		}
	}
	return c
}

func place(id, customer string, lines ...*pb.OrderLine) *pb.PlaceOrder {
	return &pb.PlaceOrder{OrderId: id, Customer: customer, Items: lines}
}

func line(sku string, n int64) *pb.OrderLine { return &pb.OrderLine{Sku: sku, Quantity: n} }

// wantStock waits until the SKU's live view shows these numbers: what an
// order gives back reaches the SKU after the order's own answer.
func wantStock(t testing.TB, c *testkit.Checkout, sku string, available, reserved, sold int64) {
	t.Helper()
	type units struct{ Available, Reserved, Sold int64 }
	want := units{available, reserved, sold}
	testkit.EventuallyValue(c.Kit, sku+" stock", func() units {
		v := c.AskSKU(sku, &pb.GetStock{}).View
		return units{v.Available, v.Reserved, v.Sold}
	}, func(u units) bool { return u == want })
}

func wantCode(t testing.TB, r *pb.OrderResult, code pb.OrderCode, status pb.OrderStatus) {
	t.Helper()
	if r.Code != code || r.GetOrder().GetStatus() != status {
		t.Fatalf("got %v %v (%s), want %v %v", r.Code, r.GetOrder().GetStatus(), r.Detail, code, status)
	}
}

// inBubble runs f in a synctest bubble, where the kit's timeouts and
// ExpectNoReply pass on fake time; the first cleanup lets protoactor's
// dead-letter timer end inside the bubble (see the testkit package docs).
func inBubble(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		t.Cleanup(func() { time.Sleep(time.Second) })
		f(t)
	})
}
