package gateway

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// blockingEngine holds every engine call until release is closed, and
// reports each call on entered.
func blockingEngine() (hookEngine, chan string, chan struct{}) {
	entered, release := make(chan string, 64), make(chan struct{})
	return hookEngine{newFakeEngine(), func(ctx context.Context, op string) error {
		entered <- op
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}, entered, release
}

// fill starts n requests that block in the engine and waits until all are
// inside it. The returned wait collects their responses.
func fill(t *testing.T, ts *testServer, entered chan string, rs ...req) func() []resp {
	t.Helper()
	out := make([]resp, len(rs))
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Go(func() { out[i] = ts.do(r) })
	}
	for range rs {
		select {
		case <-entered:
		case <-time.After(10 * time.Second):
			t.Fatal("requests did not reach the engine")
		}
	}
	return func() []resp { wg.Wait(); return out }
}

func TestAdmissionInFlightMax(t *testing.T) {
	eng, entered, release := blockingEngine()
	ts := newTestServer(t, eng, func(c *Config) { c.InFlightMax = 3; c.RequestTimeout = 20 * time.Second })
	wait := fill(t, ts, entered, get("/v1/skus/A"), get("/v1/skus/B"), get("/v1/orders/"+validID))
	start := time.Now()
	r := ts.do(post("/v1/orders", placeBody(`[{"sku":"C","quantity":1}]`)))
	wantProblem(t, r, 429, "overloaded", "")
	wantProblem(t, ts.do(post("/v1/orders/"+validID+"/cancel", "")), 429, "overloaded", "")
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("429 took %v", d)
	}
	// Requests that fail validation never take a slot, and operations
	// endpoints need none.
	wantProblem(t, ts.do(get("/v1/skus/a%20b")), 422, "invalid-field", "sku")
	if r := ts.do(get("/healthz")); r.status != 200 {
		t.Fatalf("healthz under load: %d", r.status)
	}
	close(release)
	for _, r := range wait() {
		if r.status == 429 || r.status >= 500 {
			t.Fatalf("admitted request got %d %s", r.status, r.body)
		}
	}
	if ts.srv.admit.inFlight.Load() != 0 {
		t.Fatalf("in flight after all answered: %d", ts.srv.admit.inFlight.Load())
	}
	restock(ts, "C", "1")
	if r := ts.do(post("/v1/orders", placeBody(`[{"sku":"C","quantity":1}]`))); r.status != 201 {
		t.Fatalf("after release: %d %s", r.status, r.body)
	}
}

func TestAdmissionSKUQueueMax(t *testing.T) {
	eng, entered, release := blockingEngine()
	ts := newTestServer(t, eng, func(c *Config) { c.SKUQueueMax = 2; c.RequestTimeout = 20 * time.Second })
	wait := fill(t, ts, entered,
		get("/v1/skus/HOT"),
		post("/v1/orders", placeBody(`[{"sku":"COLD","quantity":1},{"sku":"HOT","quantity":1}]`)))
	wantProblem(t, ts.do(post("/v1/skus/HOT/restock", `{"quantity":1}`).admin()), 429, "overloaded", "")
	wantProblem(t, ts.do(post("/v1/orders", placeBody(`[{"sku":"OTHER","quantity":1},{"sku":"HOT","quantity":1}]`))), 429, "overloaded", "")
	// The refused checkout gave back OTHER's slot: OTHER takes two more.
	wait2 := fill(t, ts, entered, get("/v1/skus/OTHER"), get("/v1/skus/OTHER"))
	wantProblem(t, ts.do(get("/v1/skus/OTHER")), 429, "overloaded", "")
	// COLD has one slot taken and one free.
	wait3 := fill(t, ts, entered, get("/v1/skus/COLD"))
	close(release)
	wait()
	wait2()
	wait3()
	if r := ts.do(get("/metrics")); !strings.Contains(string(r.body), `orderengine_http_shed_total{reason="sku_queue"} 3`) {
		t.Fatalf("shed metric: %s", r.body)
	}
	for i := range ts.srv.admit.shards {
		if n := len(ts.srv.admit.shards[i].n); n != 0 {
			t.Fatalf("shard %d keeps %d SKUs", i, n)
		}
	}
}

func TestSlowEngineTimesOut(t *testing.T) {
	eng, _, release := blockingEngine() // entered has room for the 3 calls
	defer close(release)
	const timeout = 100 * time.Millisecond
	ts := newTestServer(t, eng, func(c *Config) { c.RequestTimeout = timeout })
	for _, r := range []req{
		get("/v1/skus/A"),
		post("/v1/orders", placeBody(`[{"sku":"A","quantity":1}]`)),
		post("/v1/orders/"+validID+"/pay", `{"payment_ref":"p"}`),
	} {
		start := time.Now()
		got := ts.do(r)
		d := time.Since(start)
		wantProblem(t, got, 503, "unavailable", "")
		if d < timeout || d > timeout+3*time.Second {
			t.Fatalf("503 after %v, timeout %v", d, timeout)
		}
	}
}
