package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
	"github.com/orderengine/orderengine/persistence"
)

// BenchmarkRestartReady measures how long a node whose journal holds
// 1 000 000 orders, half of them still open (reserved, waiting for
// payment), takes from start to /readyz 200. Nothing may be loaded in bulk
// at start: the open orders come back through the wake index at their
// expiry, not at boot.
//
//	go test -run '^$' -bench RestartReady -benchtime 1x -timeout 30m ./cmd/orderd/
//
// RESTART_ORDERS (environment) changes the number of orders.
func BenchmarkRestartReady(b *testing.B) {
	orders := envInt("RESTART_ORDERS", 1_000_000)
	dir := b.TempDir()
	start := time.Now()
	fillJournal(b, filepath.Join(dir, "journal"), orders)
	b.Logf("journal with %d orders written in %v", orders, time.Since(start).Round(time.Millisecond))
	b.ResetTimer()
	for range b.N {
		ready := startAndWaitReady(b, dir)
		b.ReportMetric(ready.Seconds(), "s-to-ready")
	}
}

// fillJournal writes orders orders straight into a journal, as a node
// would have: every other one reserved and unpaid (its wake time its
// expiry, an hour away), the others cancelled.
func fillJournal(b *testing.B, dir string, orders int) {
	j, err := persistence.Open(dir, persistence.DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	now := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 512)
	for i := range orders {
		id := actors.KeyedOrderID("restart", fmt.Sprint(i))
		s := actors.NewOrderState(id)
		var events [][]byte
		step := func(cmd any) {
			for _, ev := range s.Step(cmd, now).Events {
				events = append(events, actors.EncodeOrderEvent(ev))
			}
		}
		step(&pb.PlaceOrder{OrderId: id, Customer: "restart", TtlSeconds: 3600,
			Items: []*pb.OrderLine{{Sku: fmt.Sprint("S-", i%1000), Quantity: 1}}})
		step(&pb.StockAnswered{Sku: fmt.Sprint("S-", i%1000), Step: pb.SKUStep_SKU_STEP_RESERVE, Outcome: pb.Outcome_OUTCOME_APPLIED})
		if i%2 == 1 {
			step(&pb.CancelOrder{OrderId: id})
			step(&pb.StockAnswered{Sku: fmt.Sprint("S-", i%1000), Step: pb.SKUStep_SKU_STEP_RELEASE, Outcome: pb.Outcome_OUTCOME_APPLIED})
		}
		sem <- struct{}{}
		wg.Add(1)
		j.Append(actors.OrderJournalID(id), 1, events, actors.OrderWakeAt(s, actors.DefaultOrderRetention), func(err error) {
			if err != nil {
				b.Error(err)
			}
			<-sem
			wg.Done()
		})
	}
	wg.Wait()
}

// startAndWaitReady runs orderd on dir until /readyz answers 200, returns
// how long that took, and stops it.
func startAndWaitReady(b *testing.B, dir string) time.Duration {
	addr := freeAddr(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- run(ctx, []string{"-data", dir, "-http", addr, "-admin-token", "t", "-log-level", "error"},
			io.Discard, io.Discard, func(string) string { return "" })
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		res, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return time.Since(start)
			}
		}
		select {
		case err := <-done:
			b.Fatalf("orderd stopped: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	b.Fatal("not ready within a minute")
	return 0
}

// envInt reads a positive integer from the environment, or returns def.
func envInt(name string, def int) int {
	var n int
	if _, err := fmt.Sscan(os.Getenv(name), &n); err != nil || n <= 0 {
		return def
	}
	return n
}
