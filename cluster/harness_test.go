package cluster

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/orderengine/orderengine/cluster/memnet"
)

// Timing of the in-process cluster tests: short enough that a crash is
// noticed in about a second, long enough not to flap on a loaded 2-core
// machine running the race detector.
const (
	testPartitions  = 64
	leaveTimeout    = 10 * time.Second
	testRejoin      = 300 * time.Millisecond
	testPushPull    = 300 * time.Millisecond
	convergeTimeout = 20 * time.Second
	pollInterval    = 20 * time.Millisecond
)

func fastMemberlist(mc *memberlist.Config) {
	mc.ProbeInterval = 250 * time.Millisecond
	mc.ProbeTimeout = 200 * time.Millisecond
	mc.GossipInterval = 50 * time.Millisecond
	mc.SuspicionMult = 4
	// A lone node gets no confirmations of its suspicions; with four or
	// more members it would wait the maximum, 6x the minimum by default.
	mc.SuspicionMaxTimeoutMult = 2
	mc.TCPTimeout = 500 * time.Millisecond
	mc.GossipToTheDeadTime = 2 * time.Second
}

// guardedWriter drops writes once the test is over: memberlist's
// goroutines may still log while they wind down after Shutdown.
type guardedWriter struct {
	w      io.Writer
	closed atomic.Bool
}

func (g *guardedWriter) Write(p []byte) (int, error) {
	if g.closed.Load() {
		return len(p), nil
	}
	return g.w.Write(p)
}

// testCluster is a cluster of nodes on one memnet network.
type testCluster struct {
	t     *testing.T
	net   *memnet.Network
	log   *slog.Logger
	mu    sync.Mutex
	nodes map[string]*testNode
	// Handoff: a transport between the nodes started with startH, their
	// stores by name (kept across restarts), and what they served.
	hnet   *handoffNet
	stores map[string]*memStore
	serves *serveLog
}

// testNode is one incarnation of a node, with every table it adopted.
type testNode struct {
	name   string
	gen    uint64
	tr     *memnet.Transport
	node   *Node
	store  *memStore // with handoff
	mu     sync.Mutex
	tables []Table
}

func (tn *testNode) history() []Table {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	return slices.Clone(tn.tables)
}

func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	out := &guardedWriter{w: t.Output()}
	t.Cleanup(func() { out.closed.Store(true) })
	c := &testCluster{
		t:      t,
		net:    memnet.New(1),
		log:    slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn})),
		nodes:  map[string]*testNode{},
		hnet:   newHandoffNet(),
		stores: map[string]*memStore{},
		serves: newServeLog(),
	}
	t.Cleanup(c.stopAll)
	return c
}

type nodeOpt func(*Config)

// start starts a node named name at generation gen, on addr when it is not
// empty (a restart), joining seeds (none: it creates the cluster).
func (c *testCluster) start(name string, gen uint64, addr string, seeds []string, opts ...nodeOpt) *testNode {
	c.t.Helper()
	var tr *memnet.Transport
	if addr == "" {
		tr = c.net.NewTransport()
	} else {
		var err error
		if tr, err = c.net.NewTransportAt(addr); err != nil {
			c.t.Fatal(err)
		}
	}
	tn := &testNode{name: name, gen: gen, tr: tr}
	cfg := Config{
		Name:             name,
		Generation:       gen,
		RemoteAddress:    "remote-" + name + ":1",
		Partitions:       testPartitions,
		Seeds:            seeds,
		Transport:        tr,
		RejoinInterval:   testRejoin,
		PushPullInterval: testPushPull,
		Memberlist:       fastMemberlist,
		Logger:           c.log,
		OnTable: func(t Table) {
			tn.mu.Lock()
			tn.tables = append(tn.tables, t)
			tn.mu.Unlock()
		},
	}
	for _, o := range opts {
		o(&cfg)
	}
	n, err := Start(cfg)
	if err != nil {
		tr.Shutdown()
		c.t.Fatalf("start %s: %v", name, err)
	}
	tn.node = n
	c.mu.Lock()
	if old := c.nodes[name]; old != nil {
		c.checkHistory(old)
	}
	c.nodes[name] = tn
	c.mu.Unlock()
	return tn
}

// stop stops a node: gracefully (Leave first) or as a crash.
func (c *testCluster) stop(tn *testNode, graceful bool) {
	c.t.Helper()
	if graceful {
		if err := tn.node.Leave(leaveTimeout); err != nil {
			c.t.Errorf("%s: leave: %v", tn.name, err)
		}
	} else {
		// The network loses it first, as in a crash.
		c.hnet.unregister(tn.name)
		tn.tr.Shutdown()
	}
	if err := tn.node.Shutdown(); err != nil {
		c.t.Errorf("%s: shutdown: %v", tn.name, err)
	}
	if tn.store != nil {
		c.hnet.unregister(tn.name)
		c.serves.stopped(tn.name)
	}
}

func (c *testCluster) stopAll() {
	c.mu.Lock()
	nodes := make([]*testNode, 0, len(c.nodes))
	for _, tn := range c.nodes {
		nodes = append(nodes, tn)
	}
	c.mu.Unlock()
	for _, tn := range nodes {
		tn.tr.Resume()
		tn.node.Shutdown()
		if tn.store != nil {
			c.serves.stopped(tn.name)
		}
		c.checkHistory(tn)
	}
	for _, e := range c.serves.errors() {
		c.t.Error(e)
	}
}

// checkHistory checks the tables one incarnation adopted, in order:
// within a partition the epoch never goes down, and within an epoch the
// holder never changes and the state only moves forward.
func (c *testCluster) checkHistory(tn *testNode) {
	c.t.Helper()
	h := tn.history()
	for i := 1; i < len(h); i++ {
		for p := range h[i].Partitions {
			prev, cur := h[i-1].Partitions[p], h[i].Partitions[p]
			switch {
			case cur.Epoch < prev.Epoch:
				c.t.Errorf("%s: partition %d went from epoch %d to %d", tn.name, p, prev.Epoch, cur.Epoch)
			case cur.Epoch == prev.Epoch && prev.Epoch > 0 && cur.Holder != prev.Holder:
				c.t.Errorf("%s: partition %d changed holder within epoch %d: %v to %v", tn.name, p, cur.Epoch, prev.Holder, cur.Holder)
			case cur.Epoch == prev.Epoch && cur.State < prev.State:
				c.t.Errorf("%s: partition %d went back from %v to %v at epoch %d", tn.name, p, prev.State, cur.State, cur.Epoch)
			}
		}
		for holder, n := range handingOff(h[i]) {
			if n > DefaultHandoffsMax {
				c.t.Errorf("%s: %v hands off %d partitions at once, more than %d", tn.name, holder, n, DefaultHandoffsMax)
			}
		}
		for name, g := range h[i-1].Tombstones {
			if h[i].Tombstones[name] < g {
				c.t.Errorf("%s: tombstone of %s went down", tn.name, name)
			}
		}
	}
	if v := tn.node.View(); v.Conflicts != 0 {
		c.t.Errorf("%s: %d equal-epoch conflicts", tn.name, v.Conflicts)
	}
}

// handingOff counts the partitions each holder is handing off in t.
func handingOff(t Table) map[Holder]int {
	out := map[Holder]int{}
	for _, a := range t.Partitions {
		if a.State == StateHandingOff {
			out[a.Holder]++
		}
	}
	return out
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(convergeTimeout)
	for {
		err := cond()
		if err == nil {
			t.Logf("%s: after %v", what, convergeTimeout-time.Until(deadline))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, convergeTimeout, err)
		}
		time.Sleep(pollInterval)
	}
}

// converged checks that live agree: each is ready, sees exactly live as
// alive members (and every name in gone as not alive), and has the same
// table as the others; every partition has exactly one holder, which is
// live or in gone, and views report it serving or unavailable
// accordingly.
func converged(live []*testNode, gone ...string) error {
	if len(live) == 0 {
		return fmt.Errorf("no live nodes")
	}
	liveGen := map[string]uint64{}
	for _, tn := range live {
		liveGen[tn.name] = tn.gen
	}
	views := make([]View, len(live))
	for i, tn := range live {
		views[i] = tn.node.View()
	}
	first := views[0]
	for i, tn := range live {
		v := views[i]
		if !v.Ready {
			return fmt.Errorf("%s is not ready", tn.name)
		}
		alive := map[string]bool{}
		for _, m := range v.Members {
			if m.Alive {
				alive[m.Name] = true
				if liveGen[m.Name] != m.Meta.Generation {
					return fmt.Errorf("%s sees %s alive at generation %d", tn.name, m.Name, m.Meta.Generation)
				}
			}
		}
		for name := range liveGen {
			if !alive[name] {
				return fmt.Errorf("%s does not see %s alive", tn.name, name)
			}
		}
		for _, name := range gone {
			if alive[name] {
				return fmt.Errorf("%s sees %s alive", tn.name, name)
			}
		}
		if !v.Table.Equal(first.Table) {
			return fmt.Errorf("tables of %s and %s differ", live[0].name, tn.name)
		}
		for p := range v.Table.Partitions {
			a := v.Assignment(p)
			_, isLive := liveGen[a.Holder.Name]
			switch {
			case a.Epoch == 0:
				return fmt.Errorf("%s: partition %d has no holder", tn.name, p)
			case isLive && a.Holder.Generation == liveGen[a.Holder.Name] && a.State != StateServing:
				return fmt.Errorf("%s: partition %d of live %v is %v", tn.name, p, a.Holder, a.State)
			case (!isLive || a.Holder.Generation != liveGen[a.Holder.Name]) && a.State != StateUnavailable:
				return fmt.Errorf("%s: partition %d of gone %v is %v", tn.name, p, a.Holder, a.State)
			}
		}
	}
	// Exactly one live node claims each partition held by a live node.
	for p := range first.Table.Partitions {
		claims := 0
		for _, v := range views {
			if v.Serving(p) {
				claims++
			}
		}
		if _, isLive := liveGen[first.Table.Partitions[p].Holder.Name]; isLive && claims != 1 {
			return fmt.Errorf("partition %d is served by %d nodes", p, claims)
		}
		if claims > 1 {
			return fmt.Errorf("partition %d is served by %d nodes", p, claims)
		}
	}
	return nil
}

// startThree starts a, which creates the cluster, and b and c, which join
// through it, and waits until they agree.
func (c *testCluster) startThree() (a, b, d *testNode) {
	c.t.Helper()
	a = c.start("a", 1, "", nil)
	b = c.start("b", 1, "", seedsOf(a))
	d = c.start("c", 1, "", seedsOf(a))
	eventually(c.t, "join", func() error { return converged([]*testNode{a, b, d}) })
	return a, b, d
}

func seedsOf(nodes ...*testNode) []string {
	var s []string
	for _, n := range nodes {
		s = append(s, n.tr.Addr())
	}
	return s
}

func waitReady(t *testing.T, nodes ...*testNode) {
	t.Helper()
	for _, tn := range nodes {
		select {
		case <-tn.node.Ready():
		case <-time.After(convergeTimeout):
			t.Fatalf("%s not ready within %v", tn.name, convergeTimeout)
		}
	}
}
