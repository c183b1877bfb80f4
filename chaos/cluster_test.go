package chaos

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The multi-process cluster tests run real orderd processes on 127.0.0.1
// and take minutes, so they run only when asked: -cluster, or
// ORDERENGINE_CLUSTER_TESTS=1 (make test-cluster sets the flag).
var (
	clusterTests      = flag.Bool("cluster", false, "run the multi-process cluster tests (TestCluster*); also ORDERENGINE_CLUSTER_TESTS=1")
	clusterPartitions = flag.Int("cluster.partitions", 64, "partitions of the clusters the tests start")
	clusterBenchTime  = flag.Duration("cluster.throughput-duration", 10*time.Second, "length of each throughput measurement of TestClusterThroughput")
	clusterSettle     = flag.Duration("cluster.settle", settleWaitMax, "how long a cluster may take to settle (every partition serving) after a change")
	clusterMinRatio   = flag.Float64("cluster.min-ratio", 0, "fail TestClusterThroughput below this ratio of three nodes to one (0: only report it)")
)

const clusterToken = "chaos-admin-token"

// needCluster skips unless the cluster tests were asked for.
func needCluster(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs several orderd processes")
	}
	if !*clusterTests && os.Getenv("ORDERENGINE_CLUSTER_TESTS") != "1" {
		t.Skip("multi-process cluster test: run with -cluster or ORDERENGINE_CLUSTER_TESTS=1 (make test-cluster)")
	}
}

// startCluster builds orderd and starts a cluster of n nodes, killed at
// the end of the test; a failed test logs each node's output.
func startCluster(t *testing.T, n int) *Cluster {
	t.Helper()
	bin, err := buildOrderd()
	if err != nil {
		t.Fatal(err)
	}
	c := NewCluster(ClusterConfig{Bin: bin, Dir: t.TempDir(), Token: clusterToken, Partitions: *clusterPartitions,
		RequestTimeout: 10 * time.Second, SettleWaitMax: *clusterSettle, Log: t.Output()})
	t.Cleanup(func() {
		if err := c.Shutdown(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			for _, m := range c.Members() {
				t.Logf("%s output (last 8 KiB):\n%s", m.Name, m.logs.Tail(8<<10))
			}
		}
	})
	if err := c.Start(t.Context(), n); err != nil {
		t.Fatal(err)
	}
	return c
}

// checkpoint runs one and fails the test on what it found; err stops it.
func checkpoint(t *testing.T, r *ClusterRun, step string) *StepReport {
	t.Helper()
	rep, err := r.Checkpoint(t.Context(), step)
	if err != nil {
		t.Fatalf("checkpoint %q: %v", step, err)
	}
	t.Log("\n" + rep.String())
	if !rep.OK() {
		path, err := r.SaveLedger(*historyDir)
		t.Errorf("step %q found losses, oversell, breaches, overlaps or wrong answers (above); the ledger is in %s (%v)", step, path, err)
	}
	return rep
}

// loadFor lets the workload run for d.
func loadFor(t *testing.T, d time.Duration) { sleep(t.Context(), d) }

// The harness and the run's checks on one plain node (no cluster): the
// workload, a pause, a SIGKILL and restart (whose probe has no other
// gateway to go through, so it is reported as a problem), checkpoints
// that read everything back, and the serve log of a node that logs no
// partitions. It keeps the cluster tests' own machinery honest until the
// cluster runs them.
func TestClusterHarnessOnOneNode(t *testing.T) {
	needCluster(t)
	bin, err := buildOrderd()
	if err != nil {
		t.Fatal(err)
	}
	c := NewCluster(ClusterConfig{Bin: bin, Dir: t.TempDir(), Token: clusterToken, Partitions: *clusterPartitions,
		RequestTimeout: 10 * time.Second, Single: true, Log: t.Output()})
	t.Cleanup(func() { _ = c.Shutdown() })
	if err := c.Start(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	r := NewClusterRun(c, SoakConfig{Clients: 4, Seed: uint64(time.Now().UnixNano()), RequestTimeout: 10 * time.Second,
		MultiLinePercent: 50, LinesMax: 3}, DistinctSKUs("S", 4, c.Partitions()))
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	loadFor(t, 2*time.Second)
	checkpoint(t, r, "steady")
	view, _ := c.Settle(t.Context())
	n1 := c.Member("n1")
	if err := r.Pause(t.Context(), n1, view, time.Second); err != nil {
		t.Fatal(err)
	}
	loadFor(t, time.Second)
	checkpoint(t, r, "paused")
	if err := r.Kill(t.Context(), n1, view, time.Second); err != nil {
		t.Fatal(err)
	}
	loadFor(t, time.Second)
	rep := checkpoint(t, r, "killed")
	if len(rep.Problems) == 0 {
		t.Error("the probe through another gateway, which one node does not have, went unreported")
	}
	last, err := r.Finish(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + last.String())
	if !last.OK() || last.Orders == 0 {
		t.Error("the last checkpoint found problems, or no orders (above)")
	}
	logs, _ := c.ServeLogs()
	if len(logs) != 2 || logs[0].Killed.IsZero() {
		t.Errorf("serve logs of two processes, the first killed, want; got %+v", logs)
	}
}

// The cluster's part of the promises under one SIGKILL, short enough for
// make test: three nodes under the soak's workload
// through all gateways, one node killed and restarted; nothing lost,
// oversold or broken, the dead node's partitions answer 503 meanwhile, and
// no two nodes ever serve one partition.
func TestClusterSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster smoke test: not with -short")
	}
	c := startCluster(t, 3)
	r := NewClusterRun(c, SoakConfig{Clients: 8, Seed: uint64(time.Now().UnixNano()), RequestTimeout: 10 * time.Second,
		MultiLinePercent: 40, LinesMax: 3}, DistinctSKUs("S", 6, c.Partitions()))
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	loadFor(t, 3*time.Second)
	view, err := c.Settle(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Kill(t.Context(), c.Member("n2"), view, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	loadFor(t, 2*time.Second)
	checkpoint(t, r, "n2 SIGKILLed and restarted")
	rep, err := r.Finish(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.String())
	if !rep.OK() {
		t.Error("the last checkpoint found problems (above)")
	}
}

// The multi-process test: three nodes under a mixed load (keyed
// restocks and removes, keyed checkouts of one to three lines on SKUs of
// different partitions, pays, cancels, reads) through all gateways at
// random, then (a) a fourth node joins, (b) one leaves with SIGTERM, (c)
// one is SIGKILLed and restarted, (d) one is SIGSTOPped for 10 s and
// resumed. After each, once every partition serves again, the workload
// stops and everything is read back and checked: every 201 order exists
// with an allowed status, no SKU oversold, stock conserved per SKU and
// held by its orders, a down node's partitions answered 503 through the
// other gateways and nothing else, no request hung past its timeout, and
// no two nodes served one partition at once.
func TestClusterSteps(t *testing.T) {
	needCluster(t)
	ctx := t.Context()
	c := startCluster(t, 3)
	r := NewClusterRun(c, SoakConfig{Clients: 8, Seed: uint64(time.Now().UnixNano()), RequestTimeout: 10 * time.Second,
		MultiLinePercent: 40, LinesMax: 3}, DistinctSKUs("S", 8, c.Partitions()))
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	loadFor(t, 3*time.Second)
	checkpoint(t, r, "three nodes")

	t.Log("(a) a fourth node joins")
	if _, err := c.Add(ctx); err != nil {
		t.Fatal(err)
	}
	loadFor(t, 2*time.Second)
	checkpoint(t, r, "n4 joined")

	t.Log("(b) n2 leaves with SIGTERM")
	if err := c.Term(ctx, c.Member("n2")); err != nil {
		t.Fatal(err)
	}
	loadFor(t, 2*time.Second)
	checkpoint(t, r, "n2 left (SIGTERM)")

	t.Log("(c) n1, the founder, is SIGKILLed and restarted")
	view, err := c.Settle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Kill(ctx, c.Member("n1"), view, 4*time.Second); err != nil {
		t.Fatal(err)
	}
	loadFor(t, 2*time.Second)
	checkpoint(t, r, "n1 SIGKILLed and restarted")

	t.Log("(d) n4 is SIGSTOPped for 10 s and resumed")
	if view, err = c.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Pause(ctx, c.Member("n4"), view, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	loadFor(t, 2*time.Second)
	checkpoint(t, r, "n4 paused 10 s")

	rep, err := r.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.String())
	if !rep.OK() {
		t.Error("the last checkpoint found problems (above)")
	}
	ivs, handoffs, _ := c.CheckServing()
	t.Logf("serve log: %d intervals, %d handoffs in all", len(ivs), len(handoffs))
}

// Multi-line orders whose SKUs sit on partitions of different nodes, the
// node holding one of the SKUs (and some of the orders) SIGKILLed under
// load and restarted: afterwards every SKU's reserved and sold units are
// exactly those of its reserved and paid orders' lines, and stock is
// conserved.
func TestClusterCrossNodeCheckout(t *testing.T) {
	needCluster(t)
	ctx := t.Context()
	c := startCluster(t, 3)
	view, err := c.Settle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// One SKU on each node, the victim's first (the hot one, half of all
	// lines), and every order of two or three lines.
	holders := view.Holders()
	victim := c.Member("n2")
	var skus []string
	for _, n := range []string{"n2", "n1", "n3"} {
		sku := SKUHeldBy("X"+n, n, holders)
		if sku == "" {
			t.Fatalf("%s holds no partition: %v", n, describeHolders(view))
		}
		skus = append(skus, sku)
	}
	t.Logf("SKUs %v on partitions held by n2, n1, n3", skus)
	r := NewClusterRun(c, SoakConfig{Clients: 8, Seed: uint64(time.Now().UnixNano()), RequestTimeout: 10 * time.Second,
		MultiLinePercent: 100, LinesMax: 3}, skus)
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	loadFor(t, 4*time.Second)
	if err := r.Kill(ctx, victim, view, 4*time.Second); err != nil {
		t.Fatal(err)
	}
	loadFor(t, 3*time.Second)
	rep := checkpoint(t, r, "n2 (holding "+skus[0]+") SIGKILLed and restarted")
	if rep.CrossNode == 0 {
		t.Error("no order placed across nodes: the test checked nothing of what it is for")
	}
	last, err := r.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + last.String())
	if !last.OK() {
		t.Error("the last checkpoint found problems (above)")
	}
}

// Checkout throughput of a three-node loopback cluster relative to one
// node, measured in one run with the same client for the same time:
// closed-loop unkeyed one-line checkouts over many SKUs, sent through
// every gateway in turn. The issue asks for at least 0.9; this reports
// the ratio (and fails below -cluster.min-ratio when that is set).
func TestClusterThroughput(t *testing.T) {
	needCluster(t)
	bin, err := buildOrderd()
	if err != nil {
		t.Fatal(err)
	}
	skus := DistinctSKUs("T", 256, *clusterPartitions)
	const workers = 64

	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	one := NewNode(bin, filepath.Join(t.TempDir(), "single"), addr, clusterToken)
	if err := one.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = one.Kill() })
	oneRate, oneOther := measureCheckouts(t, []*Client{NewClient(one.Base(), clusterToken, 10*time.Second)}, skus, workers)
	if err := one.Kill(); err != nil {
		t.Error(err)
	}

	c := startCluster(t, 3)
	var clients []*Client
	for _, m := range c.Members() {
		clients = append(clients, m.Client)
	}
	threeRate, threeOther := measureCheckouts(t, clients, skus, workers)
	ratio := threeRate / oneRate
	t.Logf("checkouts/s over %v with %d workers: one node %.0f (%d other answers), three nodes %.0f (%d other answers): ratio %.2f (the issue wants >= 0.9)",
		*clusterBenchTime, workers, oneRate, oneOther, threeRate, threeOther, ratio)
	if ratio < *clusterMinRatio {
		t.Errorf("three nodes reach %.2f of one node's checkout rate, below -cluster.min-ratio %.2f", ratio, *clusterMinRatio)
	}
}

// measureCheckouts restocks skus through clients[0], then runs workers
// closed loops of checkouts for *clusterBenchTime, request i through
// clients[i%len], and returns 201s per second and how many answers were
// anything else.
func measureCheckouts(t *testing.T, clients []*Client, skus []string, workers int) (float64, int64) {
	t.Helper()
	for _, sku := range skus {
		if a := clients[0].Do(t.Context(), "POST", "/v1/skus/"+sku+"/restock", map[string]any{"quantity": 1_000_000_000}, true); a.Outcome != Done {
			t.Fatalf("restock %s: %d %v %v", sku, a.Status, a.Body, a.Err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), *clusterBenchTime)
	defer cancel()
	var ok, other, next atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for ctx.Err() == nil {
				i := next.Add(1)
				body := map[string]any{"customer": fmt.Sprint("c-", i), "items": []line{{SKU: skus[rng.IntN(len(skus))], Qty: 1}}}
				a := clients[int(i)%len(clients)].Do(ctx, "POST", "/v1/orders", body, false)
				switch {
				case a.Status == 201:
					ok.Add(1)
				case ctx.Err() == nil:
					other.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return float64(ok.Load()) / time.Since(began).Seconds(), other.Load()
}
