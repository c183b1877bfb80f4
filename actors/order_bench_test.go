package actors_test

import (
	"crypto/rand"
	"fmt"
	"runtime"
	"testing"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
	"github.com/orderengine/orderengine/actors/testkit"
)

// BenchmarkCheckout measures in-process checkout throughput: 256
// concurrent customers each place an order (a new order actor, a journaled
// OrderPlaced, a ReserveStock per line in parallel, a journaled
// OrderReserved) and wait for its answer. Lines are drawn from 64 SKUs with
// ample stock; the journal is in memory and completes flushes at once.
//
//	go test -run '^$' -bench Checkout ./actors/
func BenchmarkCheckout(b *testing.B) {
	const skus = 64
	for _, lines := range []int{1, 5} {
		b.Run(fmt.Sprintf("lines=%d", lines), func(b *testing.B) {
			c := testkit.NewCheckout(b, actors.OrderConfig{})
			for i := range skus {
				c.AskSKU(fmt.Sprint("S", i), &pb.Restock{OpId: "r", Quantity: 1_000_000_000})
			}
			b.SetParallelism(max(1, 256/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(p *testing.PB) {
				for n := 0; p.Next(); n++ {
					id, err := actors.NewOrderID(c.Clock.Now(), rand.Reader)
					if err != nil {
						b.Fatal(err)
					}
					cmd := &pb.PlaceOrder{OrderId: id, Customer: "c"}
					for l := range lines {
						cmd.Items = append(cmd.Items, &pb.OrderLine{Sku: fmt.Sprint("S", (n*7+l*13+len(id))%skus), Quantity: 1})
					}
					res, err := c.TryAskOrder(id, cmd)
					if err != nil || res.Code != pb.OrderCode_ORDER_CODE_OK {
						b.Errorf("%s: %v %v", id, res, err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
		})
	}
}
