package actors_test

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
	"github.com/orderengine/orderengine/actors/testkit"
)

// unpaidOrders is how many orders TestUnpaidOrdersExpireFromTheWakeIndex
// places: small enough for make test, and raised by hand to check the
// promise at scale (go test ./actors -run UnpaidOrders -unpaid-orders
// 1000000 -timeout 60m).
var unpaidOrders = flag.Int("unpaid-orders", 5_000, "orders placed by TestUnpaidOrdersExpireFromTheWakeIndex")

// Unpaid orders passivate (the resident bound pushes them out), and the
// journal's wake index brings each back at its expiry: every order expires
// exactly once, within one second of its deadline on the node's clock,
// its stock comes back exactly once, and the node never keeps more than
// its bound of actors (plus those busy at the moment, which decline).
func TestUnpaidOrdersExpireFromTheWakeIndex(t *testing.T) {
	const (
		residentMax = 2_000
		workers     = 64
		ttlSeconds  = 60
		stepFake    = 100 * time.Millisecond // waker interval, in fake time
	)
	n := *unpaidOrders
	c := testkit.NewCheckout(t, actors.OrderConfig{})
	c.Timeout = 5 * time.Minute // one wait covers every expiry of a step
	c.Registry.SetResidentMax(residentMax)
	c.AskSKU("A", &pb.Restock{OpId: "r", Quantity: int64(n)})

	// Place every order: the fake clock moves 1 ms every few orders, so
	// deadlines are spread as in a real sale, over less than the TTL (no
	// order may fall due while the others are still being placed).
	perMilli := max(10, n/(ttlSeconds*1000/2))
	ids := make([]string, n)
	var next atomic.Int64
	var residentPeak atomic.Int64
	var wg sync.WaitGroup
	placeStart := time.Now()
	// Time moves only as orders are placed. A saga whose SKU answer was
	// lost retries when the clock says so, so a quiet moment must not stop
	// the clock: a watchdog nudges it when nothing was placed for a while.
	stopWatch, nudges := make(chan struct{}), 0
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		last := next.Load()
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(time.Second):
			}
			if now := next.Load(); now == last {
				c.Clock.Advance(time.Second)
				nudges++
			} else {
				last = now
			}
		}
	}()
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if i%perMilli == 0 {
					c.Clock.Advance(time.Millisecond)
				}
				ids[i] = actors.KeyedOrderID("c", fmt.Sprint("k-", i))
				res := askOrder(t, c, ids[i], &pb.PlaceOrder{OrderId: ids[i], Customer: "c", TtlSeconds: ttlSeconds,
					Items: []*pb.OrderLine{{Sku: "A", Quantity: 1}}})
				if res.Code != pb.OrderCode_ORDER_CODE_OK || res.Order.Status != pb.OrderStatus_ORDER_STATUS_RESERVED {
					t.Errorf("place %d: %v", i, res)
					return
				}
				residentPeak.Store(max(residentPeak.Load(), int64(c.Registry.Resident())))
			}
		})
	}
	wg.Wait()
	close(stopWatch)
	<-watchDone
	if t.Failed() {
		return
	}
	t.Logf("placed %d orders in %v (the clock was nudged %d times)", n, time.Since(placeStart).Round(time.Millisecond), nudges)
	expireStart := time.Now()
	if v := c.AskSKU("A", &pb.GetStock{}).View; v.Available != 0 || v.Reserved != int64(n) {
		t.Fatalf("after placing: %v", v)
	}

	// Move time in waker-sized steps; after each, wake what is due and
	// wait until nothing due is left, as a node's waker would within its
	// interval.
	end := c.Clock.Now().Add(ttlSeconds*time.Second + time.Second)
	for c.Clock.Now().Before(end) {
		c.Clock.Advance(stepFake)
		now := c.Clock.Now().UnixNano()
		c.Eventually("every due order expired and settled", func() bool {
			c.WakeDue()
			residentPeak.Store(max(residentPeak.Load(), int64(c.Registry.Resident())))
			due := 0
			_ = c.Journal.Due(now, 1, func(string, int64) bool {
				due++
				return false
			})
			return due == 0
		})
	}
	t.Logf("expired them in %v", time.Since(expireStart).Round(time.Millisecond))
	skuIs(t, c, "A", int64(n), 0, 0)

	late, expired := time.Duration(0), 0
	for _, id := range ids {
		var deadline int64
		count := 0
		for _, ev := range c.OrderEvents(id) {
			switch b := ev.Body.(type) {
			case *pb.OrderEvent_Placed:
				deadline = b.Placed.ExpiresAtUnixNano
			case *pb.OrderEvent_Expired:
				count++
				late = max(late, time.Duration(ev.AtUnixNano-deadline))
			}
		}
		if count != 1 {
			t.Fatalf("order %s expired %d times", id, count)
		}
		expired++
	}
	if late > time.Second {
		t.Errorf("an order expired %v after its deadline, want within 1s", late)
	}
	// The bound is soft by the actors busy at a given moment (a saga in
	// flight declines to passivate): at most one per worker here.
	if peak := residentPeak.Load(); peak > residentMax+workers+2 {
		t.Errorf("resident actors peaked at %d, bound %d", peak, residentMax)
	}
	t.Logf("%d orders expired, latest %v after its deadline, resident peak %d (bound %d)",
		expired, late, residentPeak.Load(), residentMax)
}

// askOrder asks without the kit remembering the order, so that a test with
// many orders does not make the kit wake or stop each of them.
func askOrder(t *testing.T, c *testkit.Checkout, id string, cmd any) *pb.OrderResult {
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	res, err := c.Orders.Ask(ctx, id, cmd)
	if err != nil {
		t.Errorf("ask order %s: %v", id, err)
		return &pb.OrderResult{}
	}
	return res
}

// A terminal order is kept for its retention and then deletes its journal
// when the wake index brings it back: its ID reads as never placed, and a
// keyed checkout with the same key starts a new order. Paid orders are
// kept, since they can still move.
func TestTerminalOrdersAreForgottenAfterTheirRetention(t *testing.T) {
	const retention = 24 * time.Hour
	c := testkit.NewCheckout(t, actors.OrderConfig{Retention: retention})
	c.AskSKU("A", &pb.Restock{OpId: "r", Quantity: 10})
	place := func(key string) string {
		id := actors.KeyedOrderID("c", key)
		res := c.AskOrder(id, &pb.PlaceOrder{OrderId: id, Customer: "c", TtlSeconds: 60,
			Items: []*pb.OrderLine{{Sku: "A", Quantity: 1}}})
		if res.Code != pb.OrderCode_ORDER_CODE_OK {
			t.Fatalf("place %s: %v", key, res)
		}
		return id
	}
	cancelled, paid := place("cancelled"), place("paid")
	c.AskOrder(cancelled, &pb.CancelOrder{OrderId: cancelled})
	c.AskOrder(paid, &pb.PayOrder{OrderId: paid, PaymentRef: "p"})
	c.Eventually("both settled", func() bool { return c.Settled(cancelled) && c.Settled(paid) })
	cancelledAt := c.OrderState(cancelled).StatusAt
	if w := c.Journal.Wake("order/" + cancelled); w != cancelledAt+int64(retention) {
		t.Fatalf("cancelled order's wake time %d, want the end of its retention %d", w, cancelledAt+int64(retention))
	}
	if w := c.Journal.Wake("order/" + paid); w != 0 {
		t.Fatalf("paid order's wake time %d, want none", w)
	}

	c.Clock.Advance(retention - time.Second)
	c.WakeDue()
	if len(c.Journal.Events("order/"+cancelled)) == 0 {
		t.Fatal("forgotten before its retention ended")
	}
	c.Clock.Advance(time.Second)
	c.WakeDue()
	c.Eventually("the cancelled order's journal deleted", func() bool {
		return len(c.Journal.Events("order/"+cancelled)) == 0 && c.Journal.Wake("order/"+cancelled) == 0
	})
	if r := c.AskOrder(cancelled, &pb.GetOrder{OrderId: cancelled}); r.Code != pb.OrderCode_ORDER_CODE_NOT_FOUND {
		t.Fatalf("a forgotten order reads %v, want NOT_FOUND", r.Code)
	}
	if got := c.OrderState(paid); got.Status != pb.OrderStatus_ORDER_STATUS_PAID {
		t.Fatalf("the paid order was touched: %v", got.Status)
	}
	// The key is free again: the same checkout is a new order. (Its last
	// events may still be on their way to the journal when it answers.)
	if again := place("cancelled"); again != cancelled {
		t.Fatalf("a keyed checkout after the retention got order %s", again)
	}
	c.Eventually("the new order reserved in the journal", func() bool {
		s := c.OrderState(cancelled)
		return s.Status == pb.OrderStatus_ORDER_STATUS_RESERVED && s.Sequence >= 1
	})
}

// A checkout without an idempotency key that is refused leaves nothing
// behind: once its releases are acknowledged the order deletes its journal
// and stops, while a keyed refusal stays readable for replay.
func TestUnkeyedRejectionLeavesNothing(t *testing.T) {
	c := testkit.NewCheckout(t, actors.OrderConfig{Retention: 24 * time.Hour})
	c.AskSKU("A", &pb.Restock{OpId: "r", Quantity: 10})
	c.AskSKU("B", &pb.Restock{OpId: "r", Quantity: 3})
	skusResident := c.Registry.Resident()

	const n = 200
	ids := make([]string, n)
	for i := range ids {
		ids[i] = testOrderID(t, c)
		// A is reserved first, then B refuses: the refusal owes A a release.
		cmd := placeCmd(ids[i], "A", 2, "B", 5)
		cmd.ForgetRejection = true
		if r := c.AskOrder(ids[i], cmd); r.Code != pb.OrderCode_ORDER_CODE_OUT_OF_STOCK || r.Sku != "B" {
			t.Fatalf("checkout %d: %v, want OUT_OF_STOCK on B", i, r)
		}
	}
	c.Eventually("every refused order's journal deleted and its actor stopped", func() bool {
		for _, id := range ids {
			if len(c.Journal.Events("order/"+id)) != 0 || c.Journal.Wake("order/"+id) != 0 {
				return false
			}
			if seq, _, _ := c.Journal.LoadSnapshot("order/" + id); seq != 0 {
				return false
			}
		}
		return c.Registry.Resident() == skusResident
	})
	skuIs(t, c, "A", 10, 0, 0)
	if r := c.AskOrder(ids[0], &pb.GetOrder{OrderId: ids[0]}); r.Code != pb.OrderCode_ORDER_CODE_NOT_FOUND {
		t.Fatalf("a refused unkeyed order reads %v, want NOT_FOUND", r.Code)
	}

	keyed := actors.KeyedOrderID("c-1", "k")
	if r := c.AskOrder(keyed, placeCmd(keyed, "A", 2, "B", 5)); r.Code != pb.OrderCode_ORDER_CODE_OUT_OF_STOCK {
		t.Fatalf("keyed checkout: %v", r)
	}
	settled(t, c, keyed)
	c.WakeDue()
	wantCode(t, c.AskOrder(keyed, &pb.GetOrder{OrderId: keyed}), pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_REJECTED)
}

// An unkeyed refusal that a crash interrupts before its order forgot
// itself is finished by the wake index: the order comes back, settles
// what it owes and deletes its journal.
func TestUnkeyedRejectionForgottenAfterACrash(t *testing.T) {
	c := testkit.NewCheckout(t, actors.OrderConfig{Retention: 24 * time.Hour})
	c.AskSKU("A", &pb.Restock{OpId: "r", Quantity: 10})
	c.Link.SetRule(func(m testkit.LinkMessage) testkit.LinkAction {
		if m.Step == pb.SKUStep_SKU_STEP_RELEASE {
			return testkit.Hold
		}
		return testkit.Deliver
	})
	id := testOrderID(t, c)
	cmd := placeCmd(id, "A", 2, "NEVER", 1)
	cmd.ForgetRejection = true
	if r := c.AskOrder(id, cmd); r.Code != pb.OrderCode_ORDER_CODE_OUT_OF_STOCK {
		t.Fatalf("checkout: %v", r)
	}
	c.Eventually("the release of A held", func() bool { return len(c.Link.Held()) > 0 })
	c.StopOrder(id)
	if s := c.OrderState(id); s.Status != pb.OrderStatus_ORDER_STATUS_REJECTED {
		t.Fatalf("journal after the crash: %v, want rejected", s.Status)
	}
	c.Link.SetRule(nil)
	c.Eventually("the order forgotten after the wake index brought it back", func() bool {
		c.WakeDue()
		return len(c.Journal.Events("order/"+id)) == 0 && c.Journal.Wake("order/"+id) == 0
	})
	skuIs(t, c, "A", 10, 0, 0)
}
