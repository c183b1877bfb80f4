package actors_test

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderengine/orderengine/actors/pb"
	"github.com/orderengine/orderengine/actors/testkit"
)

// BenchmarkReserveHotSKU measures in-process ReserveStock throughput on one
// SKU: 256 concurrent callers, each request answered only once durable.
// "flush=0" uses an in-memory journal that completes at once; "flush=1ms"
// one whose every flush takes a millisecond, like a synced disk write. The
// second shows the group commit: throughput stays far above 1 000/s.
// "limit=on" puts a purchase limit on the SKU (never reached, 1 000
// customers), side by side with the same run without one.
//
//	go test -run '^$' -bench ReserveHotSKU ./actors/
func BenchmarkReserveHotSKU(b *testing.B) {
	for _, delay := range []time.Duration{0, time.Millisecond} {
		for _, limit := range []bool{false, true} {
			b.Run(fmt.Sprintf("flush=%v/limit=%v", delay, map[bool]string{false: "off", true: "on"}[limit]), func(b *testing.B) {
				benchmarkReserveHotSKU(b, delay, limit)
			})
		}
	}
}

func benchmarkReserveHotSKU(b *testing.B, delay time.Duration, limit bool) {
	k := testkit.New(b)
	k.Journal.SetFlushDelay(delay)
	k.AskSKU("HOT", &pb.Restock{OpId: "r", Quantity: 1_000_000_000})
	if limit {
		k.AskSKU("HOT", &pb.SetPurchaseLimit{PerCustomer: 1_000_000_000})
	}
	dl := k.Clock.Now().Add(time.Hour).UnixNano()
	var n atomic.Int64
	flushes := k.Journal.Flushes()
	b.SetParallelism(max(1, 256/runtime.GOMAXPROCS(0))) // 256 callers
	b.ResetTimer()
	b.RunParallel(func(pb_ *testing.PB) {
		for pb_.Next() {
			i := n.Add(1)
			id := fmt.Sprint("o", i)
			res := k.AskSKU("HOT", &pb.ReserveStock{OrderId: id, Quantity: 1, DeadlineUnixNano: dl, Customer: fmt.Sprint("c", i%1000)})
			if res.Outcome != pb.Outcome_OUTCOME_APPLIED {
				b.Errorf("%s: %v", id, res.Outcome)
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reserves/s")
	b.ReportMetric(float64(b.N)/float64(max(1, k.Journal.Flushes()-flushes)), "reserves/flush")
}
