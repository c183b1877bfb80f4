package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
	"github.com/orderengine/orderengine/persistence"
)

// BenchmarkNodeMemory100kSKUs activates 100 000 SKU actors on the Badger
// journal (each restocked once, so each has state and a journal record)
// and reports the process's resident memory and the Go heap per SKU.
//
//	go test -run '^$' -bench NodeMemory -benchtime 1x ./cmd/orderd/
func BenchmarkNodeMemory100kSKUs(b *testing.B) {
	const skus = 100_000
	for range b.N {
		j, err := persistence.Open(b.TempDir(), persistence.DefaultOptions())
		if err != nil {
			b.Fatal(err)
		}
		system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
			return slog.New(slog.DiscardHandler)
		}))
		reg := actors.NewRegistry(system, actors.SKUConfig{Journal: j})
		runtime.GC()
		heapBefore, rssBefore := heapInUse(), residentBytes()

		var wg sync.WaitGroup
		for w := range 64 {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				for i := w; i < skus; i += 64 {
					res, err := reg.AskSKU(ctx, fmt.Sprint("SKU-", i), &pb.Restock{OpId: "r", Quantity: 100})
					if err != nil || res.Outcome != pb.Outcome_OUTCOME_APPLIED {
						b.Errorf("restock %d: %v %v", i, res, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if n, _ := reg.Count(); n != skus {
			b.Fatalf("%d SKU actors live, want %d", n, skus)
		}
		runtime.GC()
		heap, rss := heapInUse()-heapBefore, residentBytes()
		b.ReportMetric(float64(rss)/(1<<20), "rss-MiB")
		b.ReportMetric(float64(rss-rssBefore)/(1<<20), "rss-growth-MiB")
		b.ReportMetric(float64(heap)/skus, "heap-bytes/sku")
		system.Shutdown()
		j.Close()
	}
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// residentBytes reads VmRSS from /proc (Linux); 0 elsewhere.
func residentBytes() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		if f := bytes.Fields(line); len(f) >= 2 && string(f[0]) == "VmRSS:" {
			kb, _ := strconv.ParseUint(string(f[1]), 10, 64)
			return kb << 10
		}
	}
	return 0
}
