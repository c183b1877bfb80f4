package actors_test

import (
	"testing"
	"time"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
	"github.com/orderengine/orderengine/actors/testkit"
)

// storageFull is what the Badger journal refuses a write with when its
// volume is below the reserve (persistence.ErrStorageFull).
type storageFull struct{}

func (storageFull) Error() string     { return "storage full: 1.0 MiB free on the data volume" }
func (storageFull) StorageFull() bool { return true }

// A SKU whose append is refused for a full volume answers UNAVAILABLE
// saying so, keeps its durable state, and takes the command once the
// journal accepts writes again.
func TestSKUAppendRefusedForStorage(t *testing.T) {
	k := testkit.New(t)
	k.AskSKU("A", &pb.Restock{OpId: "r", Quantity: 5})
	k.Journal.FailNext(storageFull{})
	res := k.AskSKU("A", &pb.ReserveStock{OrderId: "o1", Quantity: 2, DeadlineUnixNano: deadline(k)})
	if res.Outcome != pb.Outcome_OUTCOME_UNAVAILABLE || !actors.IsStorageFull(res.Detail) {
		t.Fatalf("reserve refused for storage: %v, want UNAVAILABLE with a storage-full detail", res)
	}
	if v := k.AskSKU("A", &pb.GetStock{}).View; v.Available != 5 || v.Reserved != 0 {
		t.Fatalf("after the refusal the SKU shows %v, want the durable state", v)
	}
	res = k.AskSKU("A", &pb.ReserveStock{OrderId: "o1", Quantity: 2, DeadlineUnixNano: deadline(k)})
	if res.Outcome != pb.Outcome_OUTCOME_APPLIED || res.View.Available != 3 {
		t.Fatalf("reserve once writes resume: %v", res)
	}
}

// An order whose OrderPlaced is refused for a full volume answers
// UNAVAILABLE saying so and leaves nothing reserved; the same checkout
// succeeds once writes resume. The order sends its reservations while
// OrderPlaced is being written, but on one node they go to the same
// journal, which refuses everything while the volume is full (it resumes
// only a memtable above its reserve): the test refuses both writes in one
// flush.
func TestCheckoutPlaceRefusedForStorage(t *testing.T) {
	c := newCheckout(t, map[string]int64{"A": 10})
	id := actors.KeyedOrderID("c-1", "k-full")
	c.Journal.Pause()
	done := c.PlaceOrderAsync(placeCmd(id, "A", 2))
	c.Eventually("the order's and the SKU's writes", func() bool { return c.Journal.Pending() == 2 })
	c.Journal.FailNext(storageFull{})
	c.Journal.Resume()
	r := <-done
	if r.Code != pb.OrderCode_ORDER_CODE_UNAVAILABLE || !actors.IsStorageFull(r.Detail) {
		t.Fatalf("place refused for storage: %v, want UNAVAILABLE with a storage-full detail", r)
	}
	skuIs(t, c, "A", 10, 0, 0)
	// A retry may still meet the SKU's late refusal and be told so again;
	// clients retry a 503.
	c.Eventually("the checkout once writes resume", func() bool {
		return placedOnce(c.AskOrder(id, placeCmd(id, "A", 2)))
	})
	skuIs(t, c, "A", 8, 2, 0)
}

// placedOnce reports whether r is a checkout's success, first or replayed.
func placedOnce(r *pb.OrderResult) bool {
	return (r.Code == pb.OrderCode_ORDER_CODE_OK || r.Code == pb.OrderCode_ORDER_CODE_ALREADY_DONE) &&
		r.GetOrder().GetStatus() == pb.OrderStatus_ORDER_STATUS_RESERVED
}

// When the order is placed but a SKU's reservation is refused for a full
// volume, the checkout's caller is told at once that storage is full (not
// left waiting for its timeout), and the saga finishes once writes
// resume, reserving exactly once.
func TestCheckoutReserveRefusedForStorage(t *testing.T) {
	c := newCheckout(t, map[string]int64{"A": 10})
	c.Link.SetRule(func(testkit.LinkMessage) testkit.LinkAction { return testkit.Hold })
	id := actors.KeyedOrderID("c-1", "k-sku-full")
	done := c.PlaceOrderAsync(placeCmd(id, "A", 2))
	// Once OrderPlaced is durable, the SKU's append is the next flush.
	c.Eventually("OrderPlaced durable and the reservation held", func() bool {
		return len(c.Journal.Events("order/"+id)) > 0 && len(c.Link.Held()) == 1
	})
	c.Journal.FailNext(storageFull{})
	c.Link.SetRule(func(testkit.LinkMessage) testkit.LinkAction { return testkit.Deliver })
	c.Link.ReleaseAll()
	select {
	case r := <-done:
		if r.Code != pb.OrderCode_ORDER_CODE_UNAVAILABLE || !actors.IsStorageFull(r.Detail) {
			t.Fatalf("checkout whose reservation was refused: %v, want UNAVAILABLE with a storage-full detail", r)
		}
	case <-time.After(c.Timeout):
		t.Fatal("the checkout's caller was not told that storage is full")
	}
	skuIs(t, c, "A", 10, 0, 0)
	c.Advance(time.Second) // past the first backoff: the reserve goes again
	skuIs(t, c, "A", 8, 2, 0)
	if r := c.AskOrder(id, placeCmd(id, "A", 2)); !placedOnce(r) {
		t.Fatalf("the checkout after the saga finished: %v", r)
	}
}
