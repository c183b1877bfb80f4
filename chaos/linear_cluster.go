package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// The linearizability check on a cluster: the one-node history's clients
// and operations (linear.go), each request sent through the gateway of a
// member chosen at random among those up, while one member is SIGKILLed
// and restarted and another is SIGSTOPped and resumed. The SKUs are
// spread so that every member holds at least one, so every fault falls on
// some SKU's partition and on some requests' gateway.
//
// The history runs in phases of operations, so that each fault happens
// with operations in flight however fast the clients are: the first fifth
// of the operations runs on a settled cluster; at killAt the victim is
// SIGKILLed, and the operations up to killUntil run while it is down and
// restarting (a client that gets that far first waits until the victim
// is up again); the operations up to pauseAt run while the cluster
// settles again; at pauseAt the second member is SIGSTOPped, and the
// operations up to pauseUntil run while it is paused; the rest once it is
// resumed. The cluster must then settle, and a read of every SKU taken
// once no view changes ends the history.

// Fractions of a cluster history's operations at which its faults start,
// and up to which operations run while they last.
const (
	clusterKillAtPercent     = 20
	clusterKillUntilPercent  = 50
	clusterPauseAtPercent    = 60
	clusterPauseUntilPercent = 90
)

// faultWaitPoll is how often the fault driver looks at the operation count.
const faultWaitPoll = 5 * time.Millisecond

// ClusterLinearConfig shapes one history recorded against a cluster.
type ClusterLinearConfig struct {
	// Ops, Clients, SKUs (spread over the members, one each at least), Seed, Strict, Think
	// and Backoff as for one node; Kills and RequestTimeout are unused:
	// one member is killed, and the members' clients have their timeout.
	LinearConfig
	// Tag names the history's SKUs and prefixes its Idempotency-Keys, so
	// that histories recorded on one cluster do not meet.
	Tag string
	// Down is how long the killed member stays down before its restart;
	// Pause how long the paused one stays stopped. A pause past the
	// engine's request timeout makes requests for its partitions answer
	// 503 while they wait in its sockets.
	Down, Pause time.Duration
}

// ClusterHistory is what RecordClusterHistory recorded and did.
type ClusterHistory struct {
	Rec            *Recorder
	SKUs           map[string]string // each SKU's holder on the settled cluster before the history
	Killed, Paused string            // the members the faults hit
	Faults         []FaultEvent      // the harness's actions during the history
	Took           time.Duration     // from the first restock to the last settled read
}

// Placement says which member held each SKU, as "sku@node ...".
func (h *ClusterHistory) Placement() string {
	skus := make([]string, 0, len(h.SKUs))
	for sku := range h.SKUs {
		skus = append(skus, sku)
	}
	slices.Sort(skus)
	var b strings.Builder
	for _, sku := range skus {
		fmt.Fprintf(&b, "%s@%s ", sku, h.SKUs[sku])
	}
	return strings.TrimSpace(b.String())
}

// FaultCounts counts the history's faults by kind ("1 sigkill, ...").
func (h *ClusterHistory) FaultCounts() string {
	n := map[string]int{}
	var kinds []string
	for _, e := range h.Faults {
		if n[e.What] == 0 {
			kinds = append(kinds, e.What)
		}
		n[e.What]++
	}
	var parts []string
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%d %s", n[k], k))
	}
	return strings.Join(parts, ", ")
}

// OpsDuring counts the history's operations called while node was
// between the fault events from and to ("sigkill", "restart"; "sigstop",
// "sigcont"), and how many of them have an unknown outcome.
func (h *ClusterHistory) OpsDuring(node, from, to string) (ops, unknown int) {
	var start, end time.Time
	for _, e := range h.Faults {
		switch {
		case e.Node == node && e.What == from && start.IsZero():
			start = e.At
		case e.Node == node && e.What == to && !start.IsZero() && end.IsZero():
			end = e.At
		}
	}
	if start.IsZero() || end.IsZero() {
		return 0, 0
	}
	h.Rec.mu.Lock()
	defer h.Rec.mu.Unlock()
	lo, hi := int64(start.Sub(h.Rec.start)), int64(end.Sub(h.Rec.start))
	for _, op := range h.Rec.ops {
		if op.Call >= lo && op.Call < hi {
			ops++
			if op.Return == neverReturned {
				unknown++
			}
		}
	}
	return ops, unknown
}

// RecordClusterHistory records one history against c, settled with at
// least two members up, killing one member and pausing another (chosen by
// cfg.Seed) during it. It returns what it recorded even on an error: an
// answer outside the contract, a fault the harness could not inject, or a
// cluster that did not settle.
func RecordClusterHistory(ctx context.Context, c *Cluster, cfg ClusterLinearConfig) (*ClusterHistory, error) {
	h := &ClusterHistory{Rec: NewRecorder(), SKUs: map[string]string{}}
	if cfg.Ops < 10 || cfg.Clients < 1 {
		return h, fmt.Errorf("history of %d operations with %d clients: want 10 operations and a client at least", cfg.Ops, cfg.Clients)
	}
	view, err := c.Settle(ctx)
	if err != nil {
		return h, err
	}
	up := c.Up()
	if len(up) < 2 {
		return h, fmt.Errorf("%d members up: a kill and a pause of another want two at least", len(up))
	}
	skus, err := spreadSKUs(cfg.Tag, max(cfg.SKUs, len(up)), up, view)
	if err != nil {
		return h, err
	}
	holders := view.Holders()
	for _, sku := range skus {
		h.SKUs[sku] = holders[PartitionOf("sku", sku, c.Partitions())]
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0xfa))
	order := rng.Perm(len(up))
	victim, paused := up[order[0]], up[order[1]]
	h.Killed, h.Paused = victim.Name, paused.Name
	began := time.Now()
	defer func() {
		h.Took = time.Since(began)
		for _, e := range c.Events() {
			if !e.At.Before(began) {
				h.Faults = append(h.Faults, e)
			}
		}
	}()

	b := newOpBarrier(cfg.Ops * clusterKillUntilPercent / 100)
	r := &linearRun{cfg: cfg.LinearConfig, rec: h.Rec, gate: newGate(), skus: skus, keys: cfg.Tag + "-",
		route: func() *Client { return randomUp(c).Client }}
	r.admit = b.wait
	if err := r.restockAll(ctx); err != nil {
		return h, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var faultErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		f := clusterFaults{c: c, r: r, b: b, ops: cfg.Ops}
		if faultErr = f.run(ctx, victim, paused, cfg.Down, cfg.Pause); faultErr != nil {
			cancel() // the clients would wait at the barrier for ever
		}
	})
	clientErr := r.runClients(ctx)
	wg.Wait()
	if faultErr != nil || clientErr != nil {
		return h, errors.Join(faultErr, clientErr)
	}
	if _, err := c.Settle(ctx); err != nil {
		return h, fmt.Errorf("after the history: %w", err)
	}
	if err := r.settledReads(ctx, randomUp(c).Client); err != nil {
		return h, err
	}
	return h, r.contractErr()
}

// randomUp picks a member up at random (the first member when none is:
// its request fails and the client goes on). The clients share it, so it
// draws from math/rand/v2's own source, which is safe for that.
func randomUp(c *Cluster) *Member {
	up := c.Up()
	if len(up) == 0 {
		return c.Members()[0]
	}
	return up[rand.IntN(len(up))]
}

// spreadSKUs names n SKUs tag-0, tag-1, ... on partitions of their own,
// held in view by each member in turn, so that every member holds
// n/len(members) of them or one more.
func spreadSKUs(tag string, n int, members []*Member, view ClusterView) ([]string, error) {
	holders := view.Holders()
	candidates := DistinctSKUs(tag, view.Partitions, view.Partitions)
	var skus []string
	for i := range n {
		m := members[i%len(members)]
		j := slices.IndexFunc(candidates, func(s string) bool {
			return holders[PartitionOf("sku", s, view.Partitions)] == m.Name
		})
		if j < 0 {
			return nil, fmt.Errorf("%s holds no partition left for a SKU: %s", m.Name, describeHolders(view))
		}
		skus = append(skus, candidates[j])
		candidates = slices.Delete(candidates, j, j+1)
	}
	return skus, nil
}

// opBarrier holds operations past a limit back until the fault driver
// raises it.
type opBarrier struct {
	mu      sync.Mutex
	limit   int
	changed chan struct{} // closed when limit changes
}

func newOpBarrier(limit int) *opBarrier {
	return &opBarrier{limit: limit, changed: make(chan struct{})}
}

// wait returns once operation i is within the limit, or ctx's error.
func (b *opBarrier) wait(ctx context.Context, i int) error {
	for {
		b.mu.Lock()
		limit, ch := b.limit, b.changed
		b.mu.Unlock()
		if i <= limit {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// raise lets the operations up to limit through.
func (b *opBarrier) raise(limit int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.limit = limit
	close(b.changed)
	b.changed = make(chan struct{})
}

// clusterFaults drives a cluster history's faults by its operation count.
type clusterFaults struct {
	c   *Cluster
	r   *linearRun
	b   *opBarrier
	ops int
}

// reached waits until the clients have taken operation n.
func (f *clusterFaults) reached(ctx context.Context, n int) error {
	for int(f.r.next.Load()) < n {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(faultWaitPoll):
		}
	}
	return nil
}

func (f *clusterFaults) run(ctx context.Context, victim, paused *Member, down, pause time.Duration) error {
	at := func(percent int) int { return f.ops * percent / 100 }
	if err := f.reached(ctx, at(clusterKillAtPercent)); err != nil {
		return err
	}
	exited, err := f.c.Kill(victim)
	if err != nil {
		return err
	}
	sleep(ctx, time.Until(exited.Add(down)))
	if err := f.c.Restart(ctx, victim); err != nil {
		return err
	}
	f.b.raise(at(clusterPauseAtPercent))
	if _, err := f.c.Settle(ctx); err != nil {
		return fmt.Errorf("after %s's restart: %w", victim.Name, err)
	}
	if err := f.reached(ctx, at(clusterPauseAtPercent)); err != nil {
		return err
	}
	if err := f.c.Pause(paused); err != nil {
		return err
	}
	f.b.raise(at(clusterPauseUntilPercent))
	sleep(ctx, pause)
	if err := f.c.Resume(paused); err != nil {
		return err
	}
	f.b.raise(f.ops)
	return nil
}
