package actors_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
	"github.com/orderengine/orderengine/actors/testkit"
)

// soakCustomer is what one customer was told.
type soakCustomer struct {
	id              string
	placed          *pb.OrderResult
	paid, cancelled bool
}

// TestCheckoutSoak runs the real actors, concurrently, through the faults
// the simulation models: the link drops, duplicates and holds SKU commands
// and answers, actors crash, the clock jumps. After the faults stop and the
// sagas settle, the SKUs' stock is conserved, orders and SKUs agree, and
// every customer's confirmed move is where the order ended. Scheduling is
// not deterministic here; the seed fixes the faults and the workload.
func TestCheckoutSoak(t *testing.T) {
	const (
		skus, workers = 8, 6
		seed          = 42
	)
	perWorker := 40
	if testing.Short() {
		perWorker = 5
	}
	// Request timeouts stay long: protoactor writes a future's result
	// without its lock, so a reply that lands as the future times out is a
	// data race (harmless here: a timed-out answer is ignored and the
	// command is sent again, but -race reports it).
	c := testkit.NewCheckout(t, actors.OrderConfig{TickInterval: 5 * time.Millisecond})
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := range skus {
		c.AskSKU(fmt.Sprint("S", i), &pb.Restock{OpId: "r", Quantity: 20 + rng.Int64N(40)})
	}
	c.Link.SetRule(func(testkit.LinkMessage) testkit.LinkAction { // called under the link's lock
		switch r := rng.IntN(100); {
		case r < 8:
			return testkit.Drop
		case r < 16:
			return testkit.DropReply
		case r < 24:
			return testkit.Duplicate
		}
		return testkit.Deliver
	})

	stop := make(chan struct{})
	var chaos sync.WaitGroup
	chaos.Go(func() { // the clock moves, ticks wake the orders, actors crash
		crng := rand.New(rand.NewPCG(seed, 2))
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			c.Clock.Advance(time.Second)
			c.Tick()
			if ids := c.OrderIDs(); crng.IntN(3) == 0 && len(ids) > 0 {
				c.CrashOrder(ids[crng.IntN(len(ids))])
			}
			if crng.IntN(3) == 0 {
				c.CrashSKU(fmt.Sprint("S", crng.IntN(skus)))
			}
		}
	})

	customers := make([][]*soakCustomer, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			wrng := rand.New(rand.NewPCG(seed, uint64(10+w)))
			for i := range perWorker {
				customers[w] = append(customers[w], soakCheckout(c, wrng, fmt.Sprintf("w%d-%d", w, i), skus))
			}
		})
	}
	wg.Wait()
	close(stop)
	chaos.Wait()

	// Heal: every message arrives, held ones too; the sagas settle.
	c.Link.SetRule(nil)
	c.Link.ReleaseAll()
	c.Eventually("every saga settled", func() bool {
		c.Clock.Advance(time.Second)
		c.Tick()
		for _, id := range c.OrderIDs() {
			if !c.Settled(id) {
				return false
			}
		}
		return true
	})
	c.Advance(time.Hour) // every TTL and the SKUs' grace run out
	for _, id := range c.OrderIDs() {
		settled(t, c, id)
	}
	soakCheck(t, c, skus, customers)
	c.Eventually("no order has a wake time left", func() bool {
		n := 0
		c.Journal.Due(math.MaxInt64, 1000, func(id string, _ int64) bool {
			n += strings.Count(id, "order/")
			return true
		})
		return n == 0
	})
}

// soakCheckout is one customer: place (retried, idempotent on the key),
// then maybe pay or cancel, each retried until it gets a real answer.
func soakCheckout(c *testkit.Checkout, rng *rand.Rand, key string, skus int) *soakCustomer {
	id := actors.KeyedOrderID("soak", key)
	cmd := &pb.PlaceOrder{OrderId: id, Customer: "soak", TtlSeconds: 30 + rng.Int64N(60)}
	for _, s := range rng.Perm(skus)[:1+rng.IntN(3)] {
		cmd.Items = append(cmd.Items, &pb.OrderLine{Sku: fmt.Sprint("S", s), Quantity: 1 + rng.Int64N(3)})
	}
	cu := &soakCustomer{id: id}
	cu.placed = soakAsk(c, id, cmd)
	if cu.placed == nil || cu.placed.Code != pb.OrderCode_ORDER_CODE_OK {
		return cu
	}
	switch r := rng.IntN(10); {
	case r < 5:
		res := soakAsk(c, id, &pb.PayOrder{OrderId: id, PaymentRef: "p-" + key})
		cu.paid = res != nil && (res.Code == pb.OrderCode_ORDER_CODE_OK || res.Code == pb.OrderCode_ORDER_CODE_ALREADY_DONE)
		if cu.paid && rng.IntN(3) == 0 {
			res = soakAsk(c, id, &pb.CancelOrder{OrderId: id})
			cu.cancelled = res != nil && (res.Code == pb.OrderCode_ORDER_CODE_OK || res.Code == pb.OrderCode_ORDER_CODE_ALREADY_DONE)
		}
	case r < 7:
		res := soakAsk(c, id, &pb.CancelOrder{OrderId: id})
		cu.cancelled = res != nil && (res.Code == pb.OrderCode_ORDER_CODE_OK || res.Code == pb.OrderCode_ORDER_CODE_ALREADY_DONE)
	}
	return cu
}

// soakAsk retries a command until it gets an answer that is not
// UNAVAILABLE, or gives up after a few attempts (nil).
func soakAsk(c *testkit.Checkout, id string, cmd any) *pb.OrderResult {
	for range 20 {
		res, err := c.TryAskOrder(id, cmd)
		if err == nil && res.Code != pb.OrderCode_ORDER_CODE_UNAVAILABLE {
			return res
		}
	}
	return nil
}

func soakCheck(t *testing.T, c *testkit.Checkout, skus int, customers [][]*soakCustomer) {
	t.Helper()
	sold := map[string]int64{}
	var counts [9]int
	for _, cs := range customers {
		for _, cu := range cs {
			o := c.OrderState(cu.id)
			counts[o.Status]++
			paidish := o.Status == pb.OrderStatus_ORDER_STATUS_PAID || o.Status == pb.OrderStatus_ORDER_STATUS_SHIPPED ||
				o.Status == pb.OrderStatus_ORDER_STATUS_COMPLETED
			switch {
			case cu.cancelled && o.Status != pb.OrderStatus_ORDER_STATUS_CANCELLED:
				t.Errorf("%s: cancel confirmed, order %v", cu.id, o.Status)
			case cu.paid && !cu.cancelled && !paidish:
				t.Errorf("%s: pay confirmed, order %v", cu.id, o.Status)
			case cu.placed != nil && cu.placed.Code == pb.OrderCode_ORDER_CODE_OUT_OF_STOCK && o.Status != pb.OrderStatus_ORDER_STATUS_REJECTED:
				t.Errorf("%s: told out of stock, order %v", cu.id, o.Status)
			}
			for _, l := range o.Lines {
				h, _ := c.SKUState(l.SKU).HoldOf(cu.id)
				switch {
				case paidish:
					sold[l.SKU] += l.Quantity
					if h.GetState() != pb.HoldState_HOLD_STATE_COMMITTED {
						t.Errorf("%s %v: line %s hold %v, want committed", cu.id, o.Status, l.SKU, h.GetState())
					}
				case h.GetState() == pb.HoldState_HOLD_STATE_RESERVED || h.GetState() == pb.HoldState_HOLD_STATE_COMMITTED:
					t.Errorf("%s %v: line %s still holds %v", cu.id, o.Status, l.SKU, h.GetState())
				}
			}
		}
	}
	for i := range skus {
		sku := fmt.Sprint("S", i)
		s := c.SKUState(sku)
		if err := s.CheckHolds(); err != nil {
			t.Error(err)
		}
		if s.Sold != sold[sku] || s.Reserved != 0 {
			t.Errorf("%s: sold %d reserved %d, paid orders account for %d sold", sku, s.Sold, s.Reserved, sold[sku])
		}
		if live := c.AskSKU(sku, &pb.GetStock{}).View; live.Available != s.Available || live.Sold != s.Sold {
			t.Errorf("%s: live view %v differs from the journal", sku, live)
		}
	}
	t.Logf("statuses: %v", counts)
}
