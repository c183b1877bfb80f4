package chaos

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"
)

var linearClusterOps = flag.Int("linear.cluster-ops", 400, "operations per history of TestLinearizableStockOnCluster")

// Shape of TestLinearizableStockOnCluster's histories.
const (
	clusterLinearClients = 8
	clusterLinearSKUs    = 6                      // two on each member, as the table falls
	clusterLinearThink   = 10 * time.Millisecond  // mean pause of a client between operations
	clusterLinearBackoff = 250 * time.Millisecond // after an unknown outcome (a 503 says to retry in 1 s)
	clusterLinearDown    = 2 * time.Second        // the killed member's time down
	clusterLinearPause   = 6 * time.Second        // past the engine's 5 s request timeout
	clusterLinearWaitMax = 5 * time.Minute        // one history, faults and settling included
)

// Concurrent restocks, removes, keyed checkouts, pays, cancels and reads,
// each through the gateway of a random live member of a three-node
// cluster, form a linearizable history of every SKU while one member is
// SIGKILLed and restarted and another SIGSTOPped past the request timeout
// and resumed; the SKUs sit on partitions of every member. The members'
// serve logs must show no two of them serving a partition at once.
func TestLinearizableStockOnCluster(t *testing.T) {
	needCluster(t)
	c := startCluster(t, 3)
	for h := range *linearHistories {
		seed := uint64(time.Now().UnixNano())
		ctx, cancel := context.WithTimeout(t.Context(), clusterLinearWaitMax)
		hist, err := RecordClusterHistory(ctx, c, ClusterLinearConfig{
			LinearConfig: LinearConfig{Ops: *linearClusterOps, Clients: clusterLinearClients, SKUs: clusterLinearSKUs,
				Seed: seed, Strict: *linearStrict, Think: clusterLinearThink, Backoff: clusterLinearBackoff},
			Tag: fmt.Sprint("LC", h), Down: clusterLinearDown, Pause: clusterLinearPause,
		})
		cancel()
		t.Logf("history %d (seed %d, %v): SKUs %s; %s SIGKILLed and restarted, %s paused %v; faults: %s",
			h, seed, hist.Took.Round(time.Millisecond), hist.Placement(), hist.Killed, hist.Paused, clusterLinearPause, hist.FaultCounts())
		downOps, downUnknown := hist.OpsDuring(hist.Killed, "sigkill", "restart")
		pausedOps, pausedUnknown := hist.OpsDuring(hist.Paused, "sigstop", "sigcont")
		t.Logf("history %d: %d operations called while %s was down (%d of unknown outcome), %d while %s was paused (%d)",
			h, downOps, hist.Killed, downUnknown, pausedOps, hist.Paused, pausedUnknown)
		if err != nil {
			t.Errorf("history %d: %v (what was recorded is checked all the same)", h, err)
		}
		began := time.Now()
		res, cerr := hist.Rec.Check(*historyDir)
		t.Logf("history %d: %v: %s (checked in %v)", h, hist.Rec.Stats(), res, time.Since(began).Round(time.Millisecond))
		if cerr != nil {
			t.Error(cerr)
		}
		if t.Failed() {
			break
		}
	}
	var waitMax time.Duration
	for _, m := range c.Members() {
		waitMax = max(waitMax, m.Client.WaitMax())
	}
	t.Logf("the longest any request waited: %v", waitMax.Round(time.Millisecond))
	ivs, handoffs, breaches := c.CheckServing()
	t.Logf("serve logs: %d intervals, %d handoffs, %d overlaps or other breaches", len(ivs), len(handoffs), len(breaches))
	for _, b := range breaches {
		t.Error(b)
	}
}
