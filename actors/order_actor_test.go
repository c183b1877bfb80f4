package actors_test

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
	"github.com/orderengine/orderengine/actors/testkit"
)

const orderTTL = 60 // seconds

func newCheckout(t *testing.T, stock map[string]int64) *testkit.Checkout {
	t.Helper()
	c := testkit.NewCheckout(t, actors.OrderConfig{})
	for sku, n := range stock {
		c.AskSKU(sku, &pb.Restock{OpId: "r-" + sku, Quantity: n})
	}
	return c
}

func placeCmd(id string, kv ...any) *pb.PlaceOrder {
	cmd := &pb.PlaceOrder{OrderId: id, Customer: "c-1", TtlSeconds: orderTTL}
	for i := 0; i < len(kv); i += 2 {
		cmd.Items = append(cmd.Items, &pb.OrderLine{Sku: kv[i].(string), Quantity: int64(kv[i+1].(int))})
	}
	return cmd
}

// skuIs waits until the SKU shows available, reserved and sold.
func skuIs(t *testing.T, c *testkit.Checkout, sku string, available, reserved, sold int64) {
	t.Helper()
	var v *pb.SKUView
	c.Eventually(sku+" stock", func() bool {
		v = c.AskSKU(sku, &pb.GetStock{}).View
		return v.Available == available && v.Reserved == reserved && v.Sold == sold
	})
	if err := c.SKUState(sku).CheckHolds(); err != nil {
		t.Fatal(err)
	}
}

func settled(t *testing.T, c *testkit.Checkout, id string) {
	t.Helper()
	c.Eventually("order "+id+" settled", func() bool { return c.Settled(id) })
}

func wantCode(t *testing.T, r *pb.OrderResult, code pb.OrderCode, status pb.OrderStatus) {
	t.Helper()
	if r == nil || r.Code != code || r.GetOrder().GetStatus() != status {
		t.Fatalf("got %v, want %v with status %v", r, code, status)
	}
}

func TestCheckoutAllLinesReservedPaidShipped(t *testing.T) {
	c := newCheckout(t, map[string]int64{"A": 10, "B": 5})
	id := actors.KeyedOrderID("c-1", "k-1")
	wantCode(t, c.AskOrder(id, placeCmd(id, "A", 2, "B", 1)), pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_RESERVED)
	skuIs(t, c, "A", 8, 2, 0)
	skuIs(t, c, "B", 4, 1, 0)

	wantCode(t, c.AskOrder(id, placeCmd(id, "A", 2, "B", 1)), pb.OrderCode_ORDER_CODE_ALREADY_DONE, pb.OrderStatus_ORDER_STATUS_RESERVED)
	reused := c.AskOrder(id, placeCmd(id, "A", 3, "B", 1))
	if reused.Code != pb.OrderCode_ORDER_CODE_IDEMPOTENCY_KEY_REUSED {
		t.Fatalf("same key, other body: %v", reused.Code)
	}

	wantCode(t, c.AskOrder(id, &pb.PayOrder{OrderId: id, PaymentRef: "pay-1"}), pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_PAID)
	skuIs(t, c, "A", 8, 0, 2)
	skuIs(t, c, "B", 4, 0, 1)
	settled(t, c, id)
	wantCode(t, c.AskOrder(id, &pb.ShipOrder{OrderId: id}), pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_SHIPPED)
	wantCode(t, c.AskOrder(id, &pb.CompleteOrder{OrderId: id}), pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_COMPLETED)
	wantCode(t, c.AskOrder(id, &pb.CompleteOrder{OrderId: id}), pb.OrderCode_ORDER_CODE_ALREADY_DONE, pb.OrderStatus_ORDER_STATUS_COMPLETED)
	if r := c.AskOrder(id, &pb.CancelOrder{OrderId: id}); r.Code != pb.OrderCode_ORDER_CODE_INVALID_TRANSITION ||
		r.OrderStatus != pb.OrderStatus_ORDER_STATUS_COMPLETED {
		t.Fatalf("cancel after completion: %v", r)
	}
}

func TestCheckoutOutOfStockReleasesEveryReservation(t *testing.T) {
	c := newCheckout(t, map[string]int64{"A": 10, "B": 3})
	id := actors.KeyedOrderID("c-1", "k-oos")
	cmd := placeCmd(id, "A", 2, "B", 5, "NEVER", 1)
	r := c.AskOrder(id, cmd)
	wantCode(t, r, pb.OrderCode_ORDER_CODE_OUT_OF_STOCK, pb.OrderStatus_ORDER_STATUS_REJECTED)
	if r.Sku != "B" || r.Available != 3 {
		t.Fatalf("names %s/%d, want the first refused line B/3", r.Sku, r.Available)
	}
	skuIs(t, c, "A", 10, 0, 0)
	settled(t, c, id)

	// A keyed retry replays the first outcome, even once B has stock.
	c.AskSKU("B", &pb.Restock{OpId: "more", Quantity: 10})
	again := c.AskOrder(id, cmd)
	if again.Code != pb.OrderCode_ORDER_CODE_OUT_OF_STOCK || again.Sku != "B" || again.Available != 3 {
		t.Fatalf("replay: %v", again)
	}
}

func TestCheckoutLostReplyIsRetried(t *testing.T) {
	c := newCheckout(t, map[string]int64{"A": 10, "B": 5})
	var dropped atomic.Bool
	c.Link.SetRule(func(m testkit.LinkMessage) testkit.LinkAction {
		if m.SKU == "B" && m.Step == pb.SKUStep_SKU_STEP_RESERVE && dropped.CompareAndSwap(false, true) {
			return testkit.DropReply
		}
		return testkit.Deliver
	})
	id := actors.KeyedOrderID("c-1", "k-lost")
	done := c.PlaceOrderAsync(placeCmd(id, "A", 2, "B", 1))
	skuIs(t, c, "B", 4, 1, 0) // the SKU did reserve; its answer is lost
	select {
	case r := <-done:
		t.Fatalf("answered before the retry: %v", r)
	case <-time.After(20 * time.Millisecond):
	}
	c.Advance(time.Second) // past the first backoff: the reserve goes again
	wantCode(t, <-done, pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_RESERVED)
	skuIs(t, c, "B", 4, 1, 0) // reserved once
}

func TestCheckoutDuplicatesChangeNothing(t *testing.T) {
	c := newCheckout(t, map[string]int64{"A": 10, "B": 5})
	c.Link.SetRule(func(testkit.LinkMessage) testkit.LinkAction { return testkit.Duplicate })
	id := actors.KeyedOrderID("c-1", "k-dup")
	wantCode(t, c.AskOrder(id, placeCmd(id, "A", 2, "B", 1)), pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_RESERVED)
	wantCode(t, c.AskOrder(id, &pb.PayOrder{OrderId: id, PaymentRef: "p"}), pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_PAID)
	skuIs(t, c, "A", 8, 0, 2)
	skuIs(t, c, "B", 4, 0, 1)
	settled(t, c, id)

	// Injected duplicate and late SKU answers are recognised as known.
	n := len(c.OrderEvents(id))
	for _, step := range []pb.SKUStep{pb.SKUStep_SKU_STEP_RESERVE, pb.SKUStep_SKU_STEP_COMMIT} {
		c.SendOrder(id, &pb.StockAnswered{Sku: "A", Step: step, Outcome: pb.Outcome_OUTCOME_APPLIED})
	}
	c.AskOrder(id, &pb.GetOrder{OrderId: id})
	if got := len(c.OrderEvents(id)); got != n {
		t.Fatalf("duplicate answers made %d events", got-n)
	}
}

// The order actor crashes while a reservation is in flight: the new
// instance recovers from the journal, sends the reservations again, and
// the saga completes; the SKU reserves once.
func TestCheckoutOrderCrashMidSaga(t *testing.T) {
	c := newCheckout(t, map[string]int64{"A": 10, "B": 5})
	c.Link.SetRule(func(m testkit.LinkMessage) testkit.LinkAction {
		if m.SKU == "B" {
			return testkit.Hold
		}
		return testkit.Deliver
	})
	id := actors.KeyedOrderID("c-1", "k-crash")
	cmd := placeCmd(id, "A", 2, "B", 1)
	first := c.PlaceOrderAsync(cmd)
	c.Eventually("reserve B held", func() bool { return len(c.Link.Held()) == 1 })
	c.CrashOrder(id)
	if r := <-first; r == nil || r.Code != pb.OrderCode_ORDER_CODE_UNAVAILABLE {
		t.Fatalf("caller of the crashed instance got %v, want UNAVAILABLE", r)
	}
	c.Eventually("reserve B sent again", func() bool { return len(c.Link.Held()) == 2 })
	c.Link.SetRule(nil)
	c.Link.Release(1, 0)     // reordered, and one is a duplicate
	r := c.AskOrder(id, cmd) // the customer retries: OK, or ALREADY_DONE if the saga ended first
	if r.Code != pb.OrderCode_ORDER_CODE_ALREADY_DONE {
		wantCode(t, r, pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_RESERVED)
	}
	skuIs(t, c, "A", 8, 2, 0)
	skuIs(t, c, "B", 4, 1, 0)
}

// A paid order crashes before its commits are acknowledged: the new
// instance sends them again and the units are sold exactly once.
func TestCheckoutRecoveredPaidOrderResendsCommits(t *testing.T) {
	c := newCheckout(t, map[string]int64{"A": 10})
	id := actors.KeyedOrderID("c-1", "k-paid")
	c.AskOrder(id, placeCmd(id, "A", 3))
	c.Link.SetRule(func(m testkit.LinkMessage) testkit.LinkAction {
		if m.Step == pb.SKUStep_SKU_STEP_COMMIT {
			return testkit.Drop
		}
		return testkit.Deliver
	})
	payCmd := &pb.PayOrder{OrderId: id, PaymentRef: "p"}
	pay := c.AskOrderAsync(id, payCmd) // answered once the SKU has sold the units
	c.Eventually("commit sent", func() bool { return len(c.Link.Seen()) >= 2 })
	c.Link.SetRule(nil)
	c.CrashOrder(id)
	if r, err := pay.Result(); err != nil || r.Code != pb.OrderCode_ORDER_CODE_UNAVAILABLE {
		t.Fatalf("the pay held by the crashed instance: %v %v, want UNAVAILABLE", r, err)
	}
	wantCode(t, c.AskOrder(id, payCmd), pb.OrderCode_ORDER_CODE_ALREADY_DONE, pb.OrderStatus_ORDER_STATUS_PAID)
	skuIs(t, c, "A", 7, 0, 3)
	settled(t, c, id)
}

// A pay or cancel answers only once its SKUs agree: a SKU read right after
// the answer shows the move (read-your-writes covers the SKUs too).
func TestPayAndCancelAnswerOnceTheSKUsAgree(t *testing.T) {
	c := newCheckout(t, map[string]int64{"A": 100, "B": 100})
	for i := range 20 {
		id := actors.KeyedOrderID("c-1", fmt.Sprint("ryw-", i))
		wantCode(t, c.AskOrder(id, placeCmd(id, "A", 1, "B", 2)), pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_RESERVED)
		wantCode(t, c.AskOrder(id, &pb.PayOrder{OrderId: id, PaymentRef: "p"}), pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_PAID)
		if v := c.AskSKU("B", &pb.GetStock{}).View; v.Sold != 2 || v.Reserved != 0 {
			t.Fatalf("order %d: B right after pay: %v", i, v)
		}
		wantCode(t, c.AskOrder(id, &pb.CancelOrder{OrderId: id}), pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_CANCELLED)
		if v := c.AskSKU("B", &pb.GetStock{}).View; v.Sold != 0 || v.Available != 100 {
			t.Fatalf("order %d: B right after cancel: %v", i, v)
		}
	}
}

func TestCheckoutExpiryReleasesOnce(t *testing.T) {
	c := newCheckout(t, map[string]int64{"A": 10})
	id := actors.KeyedOrderID("c-1", "k-exp")
	c.AskOrder(id, placeCmd(id, "A", 4))
	c.Advance(orderTTL*time.Second - time.Nanosecond)
	wantCode(t, c.AskOrder(id, &pb.GetOrder{OrderId: id}), pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_RESERVED)
	c.Advance(time.Nanosecond)
	wantCode(t, c.AskOrder(id, &pb.GetOrder{OrderId: id}), pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_EXPIRED)
	skuIs(t, c, "A", 10, 0, 0)
	settled(t, c, id)
	c.Advance(time.Hour)
	releases := 0
	for _, ev := range c.SKUEvents("A") {
		if ev.GetReleased() != nil {
			releases++
		}
	}
	if releases != 1 {
		t.Fatalf("%d releases, want 1", releases)
	}
	if r := c.AskOrder(id, &pb.PayOrder{OrderId: id, PaymentRef: "p"}); r.Code != pb.OrderCode_ORDER_CODE_EXPIRED {
		t.Fatalf("pay after expiry: %v", r.Code)
	}
}

// A pay at expires_at is refused although no tick has expired the order.
func TestCheckoutPayAtExpiresAtBeforeTheTick(t *testing.T) {
	c := newCheckout(t, map[string]int64{"A": 10})
	id := actors.KeyedOrderID("c-1", "k-late")
	c.AskOrder(id, placeCmd(id, "A", 4))
	c.Clock.Advance(orderTTL * time.Second) // no ticks
	r := c.AskOrder(id, &pb.PayOrder{OrderId: id, PaymentRef: "p"})
	wantCode(t, r, pb.OrderCode_ORDER_CODE_EXPIRED, pb.OrderStatus_ORDER_STATUS_EXPIRED)
	skuIs(t, c, "A", 10, 0, 0)
}

func TestCheckoutCancelPaidOrderReturnsUnits(t *testing.T) {
	c := newCheckout(t, map[string]int64{"A": 10, "B": 2})
	id := actors.KeyedOrderID("c-1", "k-cancel")
	c.AskOrder(id, placeCmd(id, "A", 4, "B", 2))
	c.AskOrder(id, &pb.PayOrder{OrderId: id, PaymentRef: "p"})
	wantCode(t, c.AskOrder(id, &pb.CancelOrder{OrderId: id}), pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_CANCELLED)
	skuIs(t, c, "A", 10, 0, 0)
	skuIs(t, c, "B", 2, 0, 0)
	settled(t, c, id)
	wantCode(t, c.AskOrder(id, &pb.CancelOrder{OrderId: id}), pb.OrderCode_ORDER_CODE_ALREADY_DONE, pb.OrderStatus_ORDER_STATUS_CANCELLED)
}

// The order expires while B's reservation is still on its way; the release
// overtakes it and leaves a tombstone, so the late reservation is refused
// and nothing stays reserved.
func TestCheckoutReleaseOvertakesReservation(t *testing.T) {
	c := newCheckout(t, map[string]int64{"A": 10, "B": 5})
	c.Link.SetRule(func(m testkit.LinkMessage) testkit.LinkAction {
		if m.SKU == "B" && m.Step == pb.SKUStep_SKU_STEP_RESERVE {
			return testkit.Hold
		}
		return testkit.Deliver
	})
	id := actors.KeyedOrderID("c-1", "k-overtake")
	done := c.PlaceOrderAsync(placeCmd(id, "A", 2, "B", 1))
	c.Eventually("reserve B held", func() bool { return len(c.Link.Held()) == 1 })
	c.Advance(orderTTL * time.Second)
	r := <-done
	if r == nil || r.Code != pb.OrderCode_ORDER_CODE_EXPIRED {
		t.Fatalf("got %v, want EXPIRED", r)
	}
	settled(t, c, id)
	c.Link.ReleaseAll()
	skuIs(t, c, "A", 10, 0, 0)
	skuIs(t, c, "B", 5, 0, 0)
	c.Eventually("late reserve answered", func() bool {
		for _, ev := range c.SKUEvents("B") {
			if ev.GetReserved() != nil {
				return false
			}
		}
		return len(c.Link.Seen()) >= 4
	})
}

// Recovery reads the latest snapshot plus the events after it.
func TestCheckoutRecoversFromSnapshots(t *testing.T) {
	c := testkit.NewCheckout(t, actors.OrderConfig{SnapshotEvery: 2})
	c.AskSKU("A", &pb.Restock{OpId: "r", Quantity: 10})
	id := actors.KeyedOrderID("c-1", "k-snap")
	c.AskOrder(id, placeCmd(id, "A", 3))
	c.AskOrder(id, &pb.PayOrder{OrderId: id, PaymentRef: "p"})
	skuIs(t, c, "A", 7, 0, 3)
	settled(t, c, id)
	c.Eventually("a snapshot", func() bool {
		seq, _, _ := c.Journal.LoadSnapshot("order/" + id)
		return seq >= 2
	})
	c.CrashOrder(id)
	wantCode(t, c.AskOrder(id, &pb.ShipOrder{OrderId: id}), pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_SHIPPED)
	if got := c.OrderState(id); got.Status != pb.OrderStatus_ORDER_STATUS_SHIPPED || !actors.OrderSettled(got) {
		t.Fatalf("recovered %v", got.Status)
	}
}

// After a node restart nothing but the journal's wake index brings back an
// order whose saga is in flight or that can still expire: the node's
// waker activates the ones whose wake time has passed.
func TestCheckoutWakeIndexBringsBackOpenOrders(t *testing.T) {
	c := newCheckout(t, map[string]int64{"A": 10, "B": 10})
	done := actors.KeyedOrderID("c-1", "k-done")
	c.AskOrder(done, placeCmd(done, "A", 1))
	c.AskOrder(done, &pb.PayOrder{OrderId: done, PaymentRef: "p"})
	settled(t, c, done)

	paid := actors.KeyedOrderID("c-1", "k-paid")
	c.AskOrder(paid, placeCmd(paid, "A", 2))
	c.Link.SetRule(func(m testkit.LinkMessage) testkit.LinkAction {
		if m.Step == pb.SKUStep_SKU_STEP_COMMIT && m.OrderID == paid {
			return testkit.Drop
		}
		return testkit.Deliver
	})
	c.AskOrderAsync(paid, &pb.PayOrder{OrderId: paid, PaymentRef: "p"}) // held until its commit is acknowledged
	unpaid := actors.KeyedOrderID("c-1", "k-unpaid")
	c.AskOrder(unpaid, placeCmd(unpaid, "B", 3))
	c.Eventually("commit sent", func() bool {
		for _, m := range c.Link.Seen() {
			if m.OrderID == paid && m.Step == pb.SKUStep_SKU_STEP_COMMIT {
				return true
			}
		}
		return false
	})
	c.StopOrder(paid)
	c.StopOrder(unpaid)
	c.Link.SetRule(nil)

	if w := c.Journal.Wake("order/" + done); w != 0 {
		t.Fatalf("a paid order that owes nothing has wake time %d", w)
	}
	if w := c.Journal.Wake("order/" + paid); w == 0 || w > c.Clock.Now().UnixNano() {
		t.Fatalf("a paid order owing its commit has wake time %d, want one already due", w)
	}
	unpaidState := c.OrderState(unpaid)
	if w := c.Journal.Wake("order/" + unpaid); w != unpaidState.ExpiresAt {
		t.Fatalf("an unpaid order has wake time %d, want its expiry %d", w, unpaidState.ExpiresAt)
	}
	if n, err := c.Orders.WakeDue(c.Clock.Now()); n != 1 || err != nil {
		t.Fatalf("woke %d (%v) before the expiry, want only the paid order", n, err)
	}
	skuIs(t, c, "A", 7, 0, 3) // the paid order's commit went out again
	c.StopOrder(paid)
	c.Clock.Advance(orderTTL * time.Second)
	if n, err := c.Orders.WakeDue(c.Clock.Now()); n != 1 || err != nil {
		t.Fatalf("woke %d (%v) after the expiry, want the unpaid order", n, err)
	}
	skuIs(t, c, "B", 10, 0, 0) // the unpaid one expired and released
	c.Eventually("no order due any more", func() bool {
		n := 0
		c.Journal.Due(c.Clock.Now().UnixNano(), 100, func(id string, _ int64) bool {
			n += strings.Count(id, "order/")
			return true
		})
		return n == 0
	})
}

// AskNew skips reading the journal for an ID it trusts to be new. Were the
// ID not new after all, the journal refuses the fresh actor's first append
// and the actor reloads: the order and its SKU are as before, nothing is
// applied twice.
func TestAskNewOnAnExistingIDFallsBackToTheJournal(t *testing.T) {
	c := newCheckout(t, map[string]int64{"A": 5})
	id := testOrderID(t, c)
	if r := c.AskOrder(id, placeCmd(id, "A", 2)); r.Code != pb.OrderCode_ORDER_CODE_OK {
		t.Fatalf("place: %v", r)
	}
	c.StopOrder(id)

	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	r, err := c.Orders.AskNew(ctx, id, placeCmd(id, "A", 2))
	if err != nil {
		t.Fatal(err)
	}
	if r.Code != pb.OrderCode_ORDER_CODE_UNAVAILABLE && r.Code != pb.OrderCode_ORDER_CODE_ALREADY_DONE {
		t.Fatalf("AskNew on an existing order: %v", r)
	}
	if got := c.AskOrder(id, &pb.GetOrder{OrderId: id}); got.Order.GetStatus() != pb.OrderStatus_ORDER_STATUS_RESERVED {
		t.Fatalf("after the collision: %v", got)
	}
	skuIs(t, c, "A", 3, 2, 0)
	if n := len(c.OrderEvents(id)); n == 0 || c.OrderEvents(id)[0].GetPlaced() == nil {
		t.Fatalf("journal: %d events", n)
	}
}

func testOrderID(t *testing.T, c *testkit.Checkout) string {
	t.Helper()
	id, err := actors.NewOrderID(c.Clock.Now(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// A settled order passivates without writing a snapshot (its journal is a
// handful of events) and comes back from the journal on the next request.
func TestSettledOrderPassivatesAndReturns(t *testing.T) {
	c := testkit.NewCheckout(t, actors.OrderConfig{PassivateAfter: 50 * time.Millisecond})
	c.AskSKU("A", &pb.Restock{OpId: "r", Quantity: 5})
	id := testOrderID(t, c)
	c.AskOrder(id, placeCmd(id, "A", 2))
	if r := c.AskOrder(id, &pb.PayOrder{OrderId: id, PaymentRef: "p"}); r.Code != pb.OrderCode_ORDER_CODE_OK {
		t.Fatalf("pay: %v", r)
	}
	c.Eventually("order passivated", func() bool {
		_, alive := c.System.ProcessRegistry.GetLocal("order/" + id)
		return !alive
	})
	if seq, _, _ := c.Journal.LoadSnapshot("order/" + id); seq != 0 {
		t.Fatalf("a short order wrote a snapshot at %d", seq)
	}
	if r := c.AskOrder(id, &pb.GetOrder{OrderId: id}); r.Order.GetStatus() != pb.OrderStatus_ORDER_STATUS_PAID || r.Order.GetPaymentRef() != "p" {
		t.Fatalf("after reactivation: %v", r)
	}
	skuIs(t, c, "A", 3, 0, 2)
}

// A checkout answers reserved before its last events are durable. When
// that tail write fails, the order reloads as reserving and re-establishes
// its reservations; a read, payment or cancellation meanwhile waits for
// it instead of seeing the internal status or being refused.
func TestFailedTailWriteIsInvisibleToClients(t *testing.T) {
	c := newCheckout(t, map[string]int64{"A": 10, "B": 10})
	c.Journal.SetFlushDelay(200 * time.Millisecond) // room to inject the failure
	id := actors.KeyedOrderID("c-1", "tail")
	wantCode(t, c.AskOrder(id, placeCmd(id, "A", 2, "B", 1)), pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_RESERVED)
	c.Journal.FailNext(errTestJournal)
	// The GET's answer waits for the tail it reads, so it comes back
	// once the failed write has been handled.
	if r := c.AskOrder(id, &pb.GetOrder{OrderId: id}); r.Code != pb.OrderCode_ORDER_CODE_UNAVAILABLE {
		t.Fatalf("GET that depended on the failed tail: %v, want UNAVAILABLE (was the tail durable before the failure was injected?)", r)
	}
	c.Journal.SetFlushDelay(0)
	if s := c.OrderState(id); s.Status != pb.OrderStatus_ORDER_STATUS_RESERVING {
		t.Fatalf("journal after the failed tail: %v, want reserving", s.Status)
	}
	wantCode(t, c.AskOrder(id, &pb.GetOrder{OrderId: id}), pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_RESERVED)
	wantCode(t, c.AskOrder(id, &pb.PayOrder{OrderId: id, PaymentRef: "p"}), pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_PAID)
	skuIs(t, c, "A", 8, 0, 2)
	skuIs(t, c, "B", 9, 0, 1)
}

// A read and a payment that reach an order still re-establishing its
// reservations after a crash wait for them, and the payment succeeds.
func TestPayWaitsForARecoveringReservation(t *testing.T) {
	c := newCheckout(t, map[string]int64{"A": 10, "B": 5})
	c.Link.SetRule(func(m testkit.LinkMessage) testkit.LinkAction {
		if m.SKU == "B" {
			return testkit.Hold
		}
		return testkit.Deliver
	})
	id := actors.KeyedOrderID("c-1", "recovering")
	first := c.PlaceOrderAsync(placeCmd(id, "A", 2, "B", 1))
	c.Eventually("reserve B held", func() bool { return len(c.Link.Held()) == 1 })
	c.CrashOrder(id)
	<-first
	c.Eventually("reserve B sent again", func() bool { return len(c.Link.Held()) == 2 })

	ask := func(cmd any) <-chan *pb.OrderResult {
		out := make(chan *pb.OrderResult, 1)
		go func() {
			r, err := c.TryAskOrder(id, cmd)
			if err != nil {
				t.Errorf("%T: %v", cmd, err)
			}
			out <- r
		}()
		return out
	}
	get := ask(&pb.GetOrder{OrderId: id})
	pay := ask(&pb.PayOrder{OrderId: id, PaymentRef: "p"})
	select {
	case r := <-get:
		t.Fatalf("GET answered while the order was reserving: %v", r)
	case r := <-pay:
		t.Fatalf("pay answered while the order was reserving: %v", r)
	case <-time.After(100 * time.Millisecond):
	}
	c.Link.SetRule(nil)
	c.Link.ReleaseAll()
	// The two race each other: the read sees reserved or paid, never reserving.
	if r := <-get; r.GetCode() != pb.OrderCode_ORDER_CODE_OK || (r.GetOrder().GetStatus() != pb.OrderStatus_ORDER_STATUS_RESERVED &&
		r.GetOrder().GetStatus() != pb.OrderStatus_ORDER_STATUS_PAID) {
		t.Fatalf("GET: %v", r)
	}
	wantCode(t, <-pay, pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_PAID)
	skuIs(t, c, "A", 8, 0, 2)
	skuIs(t, c, "B", 4, 0, 1)
}

var errTestJournal = errors.New("injected journal failure")

// A line over the customer's purchase limit refuses the whole order, like
// out-of-stock: nothing stays reserved, the answer names the line and the
// limit, a keyed retry replays it, and a cancellation frees the customer's
// units again.
func TestCheckoutPurchaseLimit(t *testing.T) {
	c := newCheckout(t, map[string]int64{"A": 10, "B": 10})
	if r := c.AskSKU("B", &pb.SetPurchaseLimit{PerCustomer: 2}); r.Outcome != pb.Outcome_OUTCOME_APPLIED || r.View.PerCustomerLimit != 2 {
		t.Fatalf("set limit: %v", r)
	}
	first := actors.KeyedOrderID("c-1", "first")
	wantCode(t, c.AskOrder(first, placeCmd(first, "A", 2, "B", 2)), pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_RESERVED)

	over := actors.KeyedOrderID("c-1", "over")
	r := c.AskOrder(over, placeCmd(over, "A", 1, "B", 1))
	wantCode(t, r, pb.OrderCode_ORDER_CODE_LIMIT_EXCEEDED, pb.OrderStatus_ORDER_STATUS_REJECTED)
	if r.Sku != "B" || r.Limit != 2 {
		t.Fatalf("names %s limit %d, want B and 2", r.Sku, r.Limit)
	}
	settled(t, c, over)
	skuIs(t, c, "A", 8, 2, 0) // the A line of the refused order was released
	if again := c.AskOrder(over, placeCmd(over, "A", 1, "B", 1)); again.Code != pb.OrderCode_ORDER_CODE_LIMIT_EXCEEDED || again.Limit != 2 {
		t.Fatalf("keyed retry: %v", again)
	}
	other := actors.KeyedOrderID("c-2", "other")
	cmd := placeCmd(other, "B", 2)
	cmd.Customer = "c-2"
	wantCode(t, c.AskOrder(other, cmd), pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_RESERVED)

	// Paid units keep counting; a cancellation after payment returns them
	// and the customer may buy again.
	wantCode(t, c.AskOrder(first, &pb.PayOrder{OrderId: first, PaymentRef: "p"}), pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_PAID)
	settled(t, c, first)
	retry := actors.KeyedOrderID("c-1", "after-pay")
	wantCode(t, c.AskOrder(retry, placeCmd(retry, "B", 1)), pb.OrderCode_ORDER_CODE_LIMIT_EXCEEDED, pb.OrderStatus_ORDER_STATUS_REJECTED)
	wantCode(t, c.AskOrder(first, &pb.CancelOrder{OrderId: first}), pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_CANCELLED)
	settled(t, c, first)
	again := actors.KeyedOrderID("c-1", "after-cancel")
	wantCode(t, c.AskOrder(again, placeCmd(again, "B", 2)), pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_RESERVED)
	if got := c.SKUState("B").CustomerUnits("c-1"); got != 2 {
		t.Fatalf("c-1 counts %d units of B, want 2", got)
	}
}

// A checkout answers reserved before its last events are durable; after
// WaitDurable the journal shows reserved, every time.
func TestWaitDurableShowsWhatTheOrderAnswered(t *testing.T) {
	c := newCheckout(t, map[string]int64{"A": 1000})
	c.Journal.SetFlushDelay(2 * time.Millisecond) // leave the tail in flight when the answer comes
	for i := range 20 {
		id := actors.KeyedOrderID("c-1", fmt.Sprint("wait-", i))
		wantCode(t, c.AskOrder(id, placeCmd(id, "A", 1)), pb.OrderCode_ORDER_CODE_OK, pb.OrderStatus_ORDER_STATUS_RESERVED)
		c.WaitDurable(id)
		if s := c.OrderState(id); s.Status != pb.OrderStatus_ORDER_STATUS_RESERVED {
			t.Fatalf("order %d after WaitDurable: %v in the journal", i, s.Status)
		}
	}
	c.WaitSKUDurable("A")
	if s := c.SKUState("A"); s.Reserved != 20 {
		t.Fatalf("SKU after WaitSKUDurable: %d reserved in the journal, want 20", s.Reserved)
	}
}
