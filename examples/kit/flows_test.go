package kit_test

import (
	"errors"
	"testing"
	"time"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
	"github.com/orderengine/orderengine/actors/testkit"
)

const (
	reserved  = pb.OrderStatus_ORDER_STATUS_RESERVED
	paid      = pb.OrderStatus_ORDER_STATUS_PAID
	cancelled = pb.OrderStatus_ORDER_STATUS_CANCELLED
	expired   = pb.OrderStatus_ORDER_STATUS_EXPIRED
	rejected  = pb.OrderStatus_ORDER_STATUS_REJECTED
)

// The last units go to the first order; the next one is told which SKU ran
// out and how many it had.
func TestSoldOutSKU(t *testing.T) {
	c := shop(t, map[string]int64{"TICKET": 2})
	wantCode(t, c.AskOrder("o1", place("o1", "alice", line("TICKET", 2))), pb.OrderCode_ORDER_CODE_OK, reserved)
	r := c.AskOrder("o2", place("o2", "bob", line("TICKET", 1)))
	wantCode(t, r, pb.OrderCode_ORDER_CODE_OUT_OF_STOCK, rejected)
	if r.Sku != "TICKET" || r.Available != 0 {
		t.Fatalf("refused on %q with %d available, want TICKET with 0", r.Sku, r.Available)
	}
	wantStock(t, c, "TICKET", 0, 2, 0)
}

// One line that cannot be reserved rejects the whole order, and what the
// other lines had reserved goes back.
func TestMultiLineOrderIsAllOrNothing(t *testing.T) {
	c := shop(t, map[string]int64{"SHIRT": 5, "HAT": 1})
	r := c.AskOrder("o1", place("o1", "alice", line("SHIRT", 2), line("HAT", 2)))
	wantCode(t, r, pb.OrderCode_ORDER_CODE_OUT_OF_STOCK, rejected)
	if r.Sku != "HAT" || r.Available != 1 {
		t.Fatalf("refused on %q with %d available, want HAT with 1", r.Sku, r.Available)
	}
	c.Eventually("o1 owes its SKUs nothing", func() bool { return c.Settled("o1") })
	wantStock(t, c, "SHIRT", 5, 0, 0)
	wantStock(t, c, "HAT", 1, 0, 0)
}

// Paying moves the units to sold; cancelling a paid order returns them.
func TestPayThenCancel(t *testing.T) {
	c := shop(t, map[string]int64{"SHIRT": 5})
	wantCode(t, c.AskOrder("o1", place("o1", "alice", line("SHIRT", 2))), pb.OrderCode_ORDER_CODE_OK, reserved)
	wantCode(t, c.AskOrder("o1", &pb.PayOrder{OrderId: "o1", PaymentRef: "pay-1"}), pb.OrderCode_ORDER_CODE_OK, paid)
	wantStock(t, c, "SHIRT", 3, 0, 2)
	wantCode(t, c.AskOrder("o1", &pb.CancelOrder{OrderId: "o1"}), pb.OrderCode_ORDER_CODE_OK, cancelled)
	wantStock(t, c, "SHIRT", 5, 0, 0)
	if r := c.AskOrder("o1", &pb.PayOrder{OrderId: "o1", PaymentRef: "pay-1"}); r.Code != pb.OrderCode_ORDER_CODE_INVALID_TRANSITION {
		t.Fatalf("pay after cancel: %v, want INVALID_TRANSITION", r.Code)
	}
}

// An unpaid order expires when the fake clock passes its TTL, not a moment
// before, and its stock goes back.
func TestExpiryByTheFakeClock(t *testing.T) {
	c := shop(t, map[string]int64{"SHIRT": 5})
	wantCode(t, c.AskOrder("o1", &pb.PlaceOrder{OrderId: "o1", Customer: "alice", TtlSeconds: 60,
		Items: []*pb.OrderLine{line("SHIRT", 2)}}), pb.OrderCode_ORDER_CODE_OK, reserved)

	c.Advance(59 * time.Second)
	wantCode(t, c.AskOrder("o1", &pb.GetOrder{OrderId: "o1"}), pb.OrderCode_ORDER_CODE_OK, reserved)
	wantStock(t, c, "SHIRT", 3, 2, 0)

	c.Advance(time.Second)
	wantCode(t, c.AskOrder("o1", &pb.GetOrder{OrderId: "o1"}), pb.OrderCode_ORDER_CODE_OK, expired)
	wantStock(t, c, "SHIRT", 5, 0, 0)
	if r := c.AskOrder("o1", &pb.PayOrder{OrderId: "o1", PaymentRef: "pay-1"}); r.Code != pb.OrderCode_ORDER_CODE_EXPIRED {
		t.Fatalf("pay after expiry: %v, want EXPIRED", r.Code)
	}
}

// The order's actor crashes while a reservation is on its way; the
// restarted actor sends it again, and the SKU, which sees it twice,
// reserves once. Then a SKU crashes while a payment's commit is on its
// way, and recovers from its journal in time to take it.
func TestCrashMidFlow(t *testing.T) {
	c := shop(t, map[string]int64{"SHIRT": 5, "HAT": 5})
	holdTo := func(sku string) {
		c.Link.SetRule(func(m testkit.LinkMessage) testkit.LinkAction {
			if m.SKU == sku {
				return testkit.Hold
			}
			return testkit.Deliver
		})
	}

	holdTo("HAT")
	first := c.AskOrderAsync("o1", place("o1", "alice", line("SHIRT", 2), line("HAT", 1)))
	c.Eventually("the reservation on HAT held", func() bool { return len(c.Link.Held()) == 1 })
	c.CrashOrder("o1")
	if r, err := first.Result(); err != nil || r.Code != pb.OrderCode_ORDER_CODE_UNAVAILABLE {
		t.Fatalf("caller of the crashed order got %v, %v; want UNAVAILABLE", r, err)
	}
	c.Eventually("the restarted order sent it again", func() bool { return len(c.Link.Held()) == 2 })
	c.Link.SetRule(nil)
	c.Link.ReleaseAll()
	retry := c.AskOrder("o1", place("o1", "alice", line("SHIRT", 2), line("HAT", 1)))
	if retry.Code != pb.OrderCode_ORDER_CODE_OK && retry.Code != pb.OrderCode_ORDER_CODE_ALREADY_DONE ||
		retry.Order.Status != reserved {
		t.Fatalf("the customer's retry: %v %v, want a reserved order", retry.Code, retry.Order.GetStatus())
	}
	wantStock(t, c, "HAT", 4, 1, 0)

	// A pay answers once its SKUs have sold the units, so it waits while
	// the commit to SHIRT is held and the SKU crashes.
	holdTo("SHIRT")
	pay := c.AskOrderAsync("o1", &pb.PayOrder{OrderId: "o1", PaymentRef: "pay-1"})
	c.Eventually("the commit to SHIRT held", func() bool { return len(c.Link.Held()) == 1 })
	c.CrashSKU("SHIRT")
	c.Link.SetRule(nil)
	c.Link.ReleaseAll()
	wantCode(t, pay.Wait(), pb.OrderCode_ORDER_CODE_OK, paid)
	c.Eventually("o1 owes its SKUs nothing", func() bool { return c.Settled("o1") })
	wantStock(t, c, "SHIRT", 3, 0, 2)
	wantStock(t, c, "HAT", 4, 0, 1)
}

// While the journal is paused nothing is acknowledged, since an answer
// promises durability; once it resumes the checkout completes, however
// long the pause was: the SKU's answer is a message to the order, which
// no timeout throws away.
func TestPausedJournal(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		c := shop(t, map[string]int64{"SHIRT": 5, "HAT": 5})
		c.Journal.Pause()
		call := c.AskOrderAsync("o1", place("o1", "alice", line("SHIRT", 2)))
		call.ExpectNoReply(time.Second)
		c.Journal.Resume()
		wantCode(t, call.Wait(), pb.OrderCode_ORDER_CODE_OK, reserved)
		wantStock(t, c, "SHIRT", 3, 2, 0)

		c.Journal.Pause()
		long := c.AskOrderAsync("o2", place("o2", "bob", line("HAT", 1)))
		long.ExpectNoReply(8 * time.Second) // within the kit's 10 s timeout
		c.Journal.Resume()
		wantCode(t, long.Wait(), pb.OrderCode_ORDER_CODE_OK, reserved)
		wantStock(t, c, "HAT", 4, 1, 0)
	})
}

// A failed journal write is reported as UNAVAILABLE and changes nothing;
// the retry that follows applies once.
func TestFailingJournal(t *testing.T) {
	c := shop(t, map[string]int64{"SHIRT": 5})
	c.Journal.FailNext(errors.New("disk full"))
	if r := c.AskSKU("SHIRT", &pb.Restock{OpId: "delivery-7", Quantity: 10}); r.Outcome != pb.Outcome_OUTCOME_UNAVAILABLE {
		t.Fatalf("restock on a failing journal: %v, want UNAVAILABLE", r.Outcome)
	}
	wantStock(t, c, "SHIRT", 5, 0, 0)
	if r := c.AskSKU("SHIRT", &pb.Restock{OpId: "delivery-7", Quantity: 10}); r.Outcome != pb.Outcome_OUTCOME_APPLIED {
		t.Fatalf("retried restock: %v, want APPLIED", r.Outcome)
	}

	c.Journal.FailNext(errors.New("disk full"))
	wantCode(t, c.AskOrder("o1", place("o1", "alice", line("SHIRT", 2))), pb.OrderCode_ORDER_CODE_UNAVAILABLE, pb.OrderStatus_ORDER_STATUS_UNSPECIFIED)
	wantCode(t, c.AskOrder("o1", place("o1", "alice", line("SHIRT", 2))), pb.OrderCode_ORDER_CODE_OK, reserved)
	wantStock(t, c, "SHIRT", 13, 2, 0)
}

// Every command may be retried, and every order-to-SKU message may arrive
// twice: nothing applies twice.
func TestIdempotentRetries(t *testing.T) {
	c := shop(t, map[string]int64{"SHIRT": 5})
	if r := c.AskSKU("SHIRT", &pb.Restock{OpId: "opening-SHIRT", Quantity: 5}); r.Outcome != pb.Outcome_OUTCOME_ALREADY_DONE {
		t.Fatalf("restock retried: %v, want ALREADY_DONE", r.Outcome)
	}
	c.Link.SetRule(func(testkit.LinkMessage) testkit.LinkAction { return testkit.Duplicate })

	id := actors.KeyedOrderID("alice", "checkout-1") // what the gateway derives from an Idempotency-Key
	checkout := place(id, "alice", line("SHIRT", 2))
	wantCode(t, c.AskOrder(id, checkout), pb.OrderCode_ORDER_CODE_OK, reserved)
	wantCode(t, c.AskOrder(id, checkout), pb.OrderCode_ORDER_CODE_ALREADY_DONE, reserved)
	if r := c.AskOrder(id, place(id, "alice", line("SHIRT", 3))); r.Code != pb.OrderCode_ORDER_CODE_IDEMPOTENCY_KEY_REUSED {
		t.Fatalf("same key, other basket: %v, want IDEMPOTENCY_KEY_REUSED", r.Code)
	}
	wantStock(t, c, "SHIRT", 3, 2, 0)

	pay := &pb.PayOrder{OrderId: id, PaymentRef: "pay-1"}
	wantCode(t, c.AskOrder(id, pay), pb.OrderCode_ORDER_CODE_OK, paid)
	wantCode(t, c.AskOrder(id, pay), pb.OrderCode_ORDER_CODE_ALREADY_DONE, paid)
	if r := c.AskOrder(id, &pb.PayOrder{OrderId: id, PaymentRef: "pay-2"}); r.Code != pb.OrderCode_ORDER_CODE_INVALID_TRANSITION {
		t.Fatalf("paid again with another payment: %v, want INVALID_TRANSITION", r.Code)
	}
	c.Eventually("the order owes its SKU nothing", func() bool { return c.Settled(id) })
	wantStock(t, c, "SHIRT", 3, 0, 2)
	var dup int
	for _, m := range c.Link.Seen() {
		if m.OrderID == id {
			dup++
		}
	}
	if dup < 2 {
		t.Fatalf("the link saw %d commands for the order, want a reserve and a commit", dup)
	}
}
