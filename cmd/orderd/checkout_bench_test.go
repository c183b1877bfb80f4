package main

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
	"github.com/orderengine/orderengine/gateway"
)

// BenchmarkCheckoutInProcess places one-line orders through the engine the
// gateway calls, on the node's actors and a real Badger journal, from 64
// concurrent callers: everything of a checkout but HTTP. Its allocs/op
// and B/op are the allocations per checkout (the gateway's own are in
// gateway's BenchmarkCheckoutHandler); checkouts/s is noisy on a shared
// machine, the allocations are not.
//
//	go test -run '^$' -bench CheckoutInProcess -benchmem ./cmd/orderd/
func BenchmarkCheckoutInProcess(b *testing.B) {
	for _, hot := range []bool{true, false} {
		b.Run(map[bool]string{true: "hot", false: "uniform"}[hot], func(b *testing.B) {
			benchmarkCheckout(b, hot)
		})
	}
}

func benchmarkCheckout(b *testing.B, hot bool) {
	const skus = 1000
	e, reg := newTestEngine(b, actors.OrderConfig{})
	ctx := context.Background()
	for i := range skus {
		if _, err := e.Restock(ctx, fmt.Sprint("S-", i), 1_000_000_000, ""); err != nil {
			b.Fatal(err)
		}
	}
	var n atomic.Int64
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(p *testing.PB) {
		for p.Next() {
			i := n.Add(1)
			sku := "S-0"
			if !hot {
				sku = fmt.Sprint("S-", i%skus)
			}
			_, err := e.PlaceOrder(ctx, gateway.PlaceOrderRequest{Customer: "c", TTL: 15 * time.Minute,
				Items: []gateway.Item{{SKU: sku, Quantity: 1}}})
			if err != nil {
				b.Errorf("checkout %d: %v", i, err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checkouts/s")
	if _, err := reg.AskSKU(ctx, "S-0", &pb.GetStock{}); err != nil { // the SKUs are still there
		b.Fatal(err)
	}
}
