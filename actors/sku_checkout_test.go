package actors_test

import (
	"context"
	crand "crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
	"github.com/orderengine/orderengine/actors/testkit"
)

// checkout places a one-line unkeyed order through its SKU's actor
// (actors.Checkout), as the node does, and returns its ID and answer.
func checkout(t *testing.T, c *testkit.Checkout, sku string, qty int) (string, *pb.OrderResult, error) {
	t.Helper()
	id, err := actors.NewOrderID(c.Clock.Now(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cmd := placeCmd(id, sku, qty)
	cmd.ForgetRejection = true
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	res, err := c.Registry.Checkout(ctx, cmd)
	return id, res, err
}

func mustCheckout(t *testing.T, c *testkit.Checkout, sku string, qty int) (string, *pb.OrderResult) {
	t.Helper()
	id, res, err := checkout(t, c, sku, qty)
	if err != nil {
		t.Fatalf("checkout of %d %s: %v", qty, sku, err)
	}
	return id, res
}

// A one-line checkout taken by the SKU's actor answers as the saga would,
// writes the order's events with the hold, and the order then lives as an
// actor like any other: read, paid, its units sold.
func TestOneLineCheckoutThenPay(t *testing.T) {
	c := newCheckout(t, map[string]int64{"A": 10})
	id, res := mustCheckout(t, c, "A", 2)
	wantCode(t, res, pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_RESERVED)
	if items := res.Order.GetItems(); len(items) != 1 || items[0].Sku != "A" || items[0].Quantity != 2 {
		t.Fatalf("order items %v", items)
	}
	skuIs(t, c, "A", 8, 2, 0)
	if evs := c.OrderEvents(id); len(evs) != 1 || evs[0].GetCheckedOut() == nil {
		t.Fatalf("order journal holds %v, want one OrderCheckedOut", evs)
	}
	st := c.OrderState(id)
	if err := st.Check(); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Journal.Wake("order/"+id), st.ExpiresAt; got != want {
		t.Fatalf("order wake time %d, want its expiry %d", got, want)
	}
	wantCode(t, c.AskOrder(id, &pb.GetOrder{OrderId: id}), pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_RESERVED)
	wantCode(t, c.AskOrder(id, &pb.PayOrder{OrderId: id, PaymentRef: "p-1"}), pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_PAID)
	skuIs(t, c, "A", 8, 0, 2)
	settled(t, c, id)
}

// An unpaid order that no actor ever ran expires at its TTL: the node's
// waker finds its wake time and the stock comes back.
func TestOneLineCheckoutExpires(t *testing.T) {
	c := newCheckout(t, map[string]int64{"A": 10})
	id, _ := mustCheckout(t, c, "A", 3)
	skuIs(t, c, "A", 7, 3, 0)
	// The kit's own Advance would wake the order first, and it could
	// expire (clearing its wake time) before the check below: only the
	// clock moves here, and the waker must find the order.
	c.Kit.Advance(orderTTL*time.Second + time.Second)
	if n := c.WakeDue(); n == 0 {
		t.Fatal("the waker found no order due")
	}
	c.Eventually("order "+id+" expired", func() bool {
		return c.OrderState(id).Status == pb.OrderStatus_ORDER_STATUS_EXPIRED
	})
	skuIs(t, c, "A", 10, 0, 0)
	settled(t, c, id)
}

// A refusal, an invalid order, a failed journal write and a checkout the
// journal's limit cannot carry: none leaves an order or a hold behind.
func TestOneLineCheckoutRefusalsLeaveNothing(t *testing.T) {
	c := newCheckout(t, map[string]int64{"A": 5})
	nothing := func(what, id string) {
		t.Helper()
		if evs := c.OrderEvents(id); len(evs) != 0 {
			t.Fatalf("%s: the order has %d events", what, len(evs))
		}
		skuIs(t, c, "A", 5, 0, 0)
	}

	id, res := mustCheckout(t, c, "A", 6)
	if res.Code != pb.OrderCode_ORDER_CODE_OUT_OF_STOCK || res.Available != 5 {
		t.Fatalf("too many units: %v", res)
	}
	nothing("out of stock", id)

	id, res = mustCheckout(t, c, "A", 0)
	if res.Code != pb.OrderCode_ORDER_CODE_INVALID {
		t.Fatalf("zero units: %v", res)
	}
	nothing("invalid", id)

	c.Journal.FailNext(errors.New("disk on fire"))
	id, res = mustCheckout(t, c, "A", 1)
	if res.Code != pb.OrderCode_ORDER_CODE_UNAVAILABLE {
		t.Fatalf("failed write: %v", res)
	}
	nothing("failed write", id)

	c.Journal.SetAppendEventsMax(1)
	id, _, err := checkout(t, c, "A", 1)
	if !errors.Is(err, actors.ErrCheckoutDeclined) {
		t.Fatalf("append limit below one checkout: %v, want ErrCheckoutDeclined", err)
	}
	nothing("declined", id)

	// The SKU goes on: the next checkout is taken.
	c.Journal.SetAppendEventsMax(testkit.DefaultAppendEventsMax)
	_, res = mustCheckout(t, c, "A", 5)
	wantCode(t, res, pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_RESERVED)
	skuIs(t, c, "A", 0, 5, 0)
}

// Checkouts that pile up behind a journal write in flight go out together,
// split over several appends at command boundaries, each order with its
// hold: every acknowledged order is in the journal whole, and the SKU's
// count matches them.
func TestOneLineCheckoutsSplitWithTheirHolds(t *testing.T) {
	const n = 40
	c := newCheckout(t, map[string]int64{"A": n})
	c.Journal.SetAppendEventsMax(5) // two checkouts (2 events each) per append
	c.Journal.Pause()
	var wg sync.WaitGroup
	ids := make([]string, n)
	results := make([]*pb.OrderResult, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if ids[i], results[i], err = checkout(t, c, "A", 1); err != nil {
				t.Error(err)
			}
		}()
	}
	c.Eventually("checkouts buffered", func() bool { return c.Journal.Pending() > 0 })
	time.Sleep(50 * time.Millisecond) // let more pile up behind the first write
	c.Journal.Resume()
	wg.Wait()
	for i, id := range ids {
		wantCode(t, results[i], pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_RESERVED)
		if st := c.OrderState(id); st.Status != pb.OrderStatus_ORDER_STATUS_RESERVED {
			t.Fatalf("order %s is %v in its journal", id, st.Status)
		}
	}
	skuIs(t, c, "A", 0, n, 0)
	if f := c.Journal.Flushes(); f < 2 {
		t.Fatalf("%d flushes; the test wants the checkouts split", f)
	}
}
