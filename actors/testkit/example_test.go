package testkit_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
	"github.com/orderengine/orderengine/actors/testkit"
)

// Restock a SKU, reserve against it, read the reply and the journal, then
// crash the actor and see it come back from the journal. In a test, pass
// t instead of a standalone TB.
func Example() {
	tb := testkit.Standalone()
	defer tb.Close()
	k := testkit.New(tb)

	k.AskSKU("A-1", &pb.Restock{OpId: "restock-1", Quantity: 10})
	res := k.AskSKU("A-1", &pb.ReserveStock{OrderId: "o-1", Quantity: 3,
		DeadlineUnixNano: k.Clock.Now().Add(15 * time.Minute).UnixNano()})
	fmt.Println(res.Outcome, "available", res.View.Available, "reserved", res.View.Reserved)
	fmt.Println(len(k.SKUEvents("A-1")), "events journaled")

	k.CrashSKU("A-1")
	again := k.AskSKU("A-1", &pb.ReserveStock{OrderId: "o-1", Quantity: 3,
		DeadlineUnixNano: k.Clock.Now().Add(15 * time.Minute).UnixNano()})
	fmt.Println("retry after crash:", again.Outcome, "reserved", again.View.Reserved)
	// Output:
	// OUTCOME_APPLIED available 7 reserved 3
	// 2 events journaled
	// retry after crash: OUTCOME_ALREADY_DONE reserved 3
}

// A checkout's saga reaches the SKUs through the Link, which here holds
// back the reservation on B: the order waits, and the test looks at what
// it sent before letting the command through.
func ExampleCheckout_link() {
	tb := testkit.Standalone()
	defer tb.Close()
	c := testkit.NewCheckout(tb, actors.OrderConfig{})
	c.AskSKU("A", &pb.Restock{OpId: "restock-a", Quantity: 5})
	c.AskSKU("B", &pb.Restock{OpId: "restock-b", Quantity: 5})

	c.Link.SetRule(func(m testkit.LinkMessage) testkit.LinkAction {
		if m.SKU == "B" {
			return testkit.Hold
		}
		return testkit.Deliver
	})
	place := c.AskOrderAsync("o-1", &pb.PlaceOrder{OrderId: "o-1", Customer: "alice",
		Items: []*pb.OrderLine{{Sku: "A", Quantity: 2}, {Sku: "B", Quantity: 1}}})
	c.Eventually("the reservation on B held", func() bool { return len(c.Link.Held()) == 1 })
	held := c.Link.Held()[0]
	fmt.Println("held:", held.Step, held.SKU, "for", held.OrderID, "- answered yet:", place.Ready())

	c.Link.ReleaseAll()
	res := place.Wait()
	fmt.Println(res.Code, res.Order.Status)
	// Output:
	// held: SKU_STEP_RESERVE B for o-1 - answered yet: false
	// ORDER_CODE_OK ORDER_STATUS_RESERVED
}

// A paused journal holds every write back, so a command is not answered
// until Resume; FailNext makes the next flush fail, and the caller is told
// UNAVAILABLE: nothing it asked for happened, and a retry is safe.
func ExampleJournal_Pause() {
	tb := testkit.Standalone()
	defer tb.Close()
	k := testkit.New(tb)

	k.Journal.Pause()
	call := k.AskSKUAsync("A-1", &pb.Restock{OpId: "restock-1", Quantity: 10})
	k.Eventually("the restock waits for the journal", func() bool { return k.Journal.Pending() == 1 })
	fmt.Println("answered while paused:", call.Ready())
	k.Journal.Resume()
	fmt.Println("after Resume:", call.Wait().Outcome)

	k.Journal.FailNext(errors.New("disk full"))
	failed := k.AskSKU("A-1", &pb.Restock{OpId: "restock-2", Quantity: 5})
	fmt.Println("failed flush:", failed.Outcome)
	retried := k.AskSKU("A-1", &pb.Restock{OpId: "restock-2", Quantity: 5})
	fmt.Println("retry:", retried.Outcome, "available", retried.View.Available)
	// Output:
	// answered while paused: false
	// after Resume: OUTCOME_APPLIED
	// failed flush: OUTCOME_UNAVAILABLE
	// retry: OUTCOME_APPLIED available 15
}

// Time moves only when the test says so. A reservation the SKU holds is
// released once the clock passes its deadline plus the grace period; an
// unpaid order expires at its TTL and gives its stock back.
func ExampleCheckout_Advance() {
	tb := testkit.Standalone()
	defer tb.Close()
	c := testkit.NewCheckout(tb, actors.OrderConfig{})
	c.AskSKU("A", &pb.Restock{OpId: "restock-a", Quantity: 5})

	res := c.AskOrder("o-1", &pb.PlaceOrder{OrderId: "o-1", Customer: "alice", TtlSeconds: 60,
		Items: []*pb.OrderLine{{Sku: "A", Quantity: 2}}})
	fmt.Println(res.Order.Status, "available", c.AskSKU("A", &pb.GetStock{}).View.Available)

	c.Advance(61 * time.Second)
	fmt.Println(c.AskOrder("o-1", &pb.GetOrder{OrderId: "o-1"}).Order.Status)
	c.Eventually("the stock back", func() bool { return c.AskSKU("A", &pb.GetStock{}).View.Available == 5 })
	fmt.Println("available", c.AskSKU("A", &pb.GetStock{}).View.Available)
	// Output:
	// ORDER_STATUS_RESERVED available 3
	// ORDER_STATUS_EXPIRED
	// available 5
}

// Order IDs follow the engine's conventions: "o_" and a ULID. A checkout
// with an idempotency key gets actors.KeyedOrderID, so a retry reaches the
// same order and gets the same answer, and the key with another basket is
// refused; one without a key gets a fresh, time-ordered ID from an
// OrderIDSource. Every command names its order again, and must name the
// one it is sent to.
func ExampleCheckout_orderIDs() {
	tb := testkit.Standalone()
	defer tb.Close()
	c := testkit.NewCheckout(tb, actors.OrderConfig{})
	c.AskSKU("A", &pb.Restock{OpId: "restock-a", Quantity: 5})
	basket := []*pb.OrderLine{{Sku: "A", Quantity: 1}}

	id := actors.KeyedOrderID("alice", "checkout-key-1")
	fmt.Println(actors.ParseOrderID(id) == nil, actors.IsKeyedOrderID(id))
	first := c.AskOrder(id, &pb.PlaceOrder{OrderId: id, Customer: "alice", Items: basket})
	again := c.AskOrder(id, &pb.PlaceOrder{OrderId: id, Customer: "alice", Items: basket})
	other := c.AskOrder(id, &pb.PlaceOrder{OrderId: id, Customer: "alice",
		Items: []*pb.OrderLine{{Sku: "A", Quantity: 2}}})
	fmt.Println(first.Code, again.Code, other.Code)

	ids := actors.NewOrderIDSource(c.Clock, rand.NewChaCha8([32]byte{})) // crypto/rand.Reader in production
	fresh, _ := ids.Next()
	fmt.Println(actors.ParseOrderID(fresh) == nil, actors.IsKeyedOrderID(fresh))
	wrong := c.AskOrder(fresh, &pb.PayOrder{OrderId: id, PaymentRef: "pay-1"})
	fmt.Println(wrong.Code)
	// Output:
	// true true
	// ORDER_CODE_OK ORDER_CODE_ALREADY_DONE ORDER_CODE_IDEMPOTENCY_KEY_REUSED
	// true false
	// ORDER_CODE_INVALID
}
