package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

const (
	testChunkBytes     = 64 << 10
	testHandoffTimeout = 10 * time.Second
)

// payload is partition p's data in the handoff tests: a few KiB that
// differ per partition.
func payload(p int) []byte {
	rng := rand.New(rand.NewPCG(uint64(p), 7))
	b := make([]byte, 3000+37*p)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// startH starts a node with handoff on its store (the one it had before,
// on a restart, with its saved table), and connects it to the others.
func (c *testCluster) startH(name string, gen uint64, addr string, seeds []string, opts ...nodeOpt) *testNode {
	c.t.Helper()
	c.mu.Lock()
	store := c.stores[name]
	if store == nil {
		store = newMemStore(testChunkBytes)
		c.stores[name] = store
	}
	c.mu.Unlock()
	store.reopen()
	start, stop := c.serves.hooks(name, store)
	h := func(cfg *Config) {
		cfg.Store, cfg.Handoff = store, c.hnet.transport(name)
		cfg.StartServing, cfg.StopServing = start, stop
		cfg.HandoffTimeout = testHandoffTimeout
		cfg.Table = store.savedTable()
	}
	tn := c.start(name, gen, addr, seeds, append([]nodeOpt{h}, opts...)...)
	tn.store = store
	c.hnet.register(tn.node)
	return tn
}

// startFirstH starts the cluster's first node with fill(p), or
// payload(p) when fill is nil, stored for every partition.
func (c *testCluster) startFirstH(name string, fill func(int) []byte, opts ...nodeOpt) *testNode {
	if fill == nil {
		fill = payload
	}
	store := newMemStore(testChunkBytes)
	for p := range testPartitions {
		store.data[p] = fill(p)
	}
	c.mu.Lock()
	c.stores[name] = store
	c.mu.Unlock()
	return c.startH(name, 1, "", nil, opts...)
}

// settled checks that live have converged with every partition at its
// desired holder, served there and nowhere else, with its data intact, and
// that no node keeps data or an import of a partition it does not hold.
func (c *testCluster) settled(live ...*testNode) error {
	if err := converged(live); err != nil {
		return err
	}
	names := make([]string, len(live))
	for i, tn := range live {
		names[i] = tn.name
	}
	want := Desired(names, testPartitions)
	table := live[0].node.View().Table
	for p, a := range table.Partitions {
		if a.Holder.Name != want[p] {
			return fmt.Errorf("partition %d at %v, desired %s", p, a.Holder, want[p])
		}
		if node, e, n := c.serves.server(p); n != 1 || node != a.Holder.Name || e != a.Epoch {
			return fmt.Errorf("partition %d served by %d nodes (%s at %d), table says %v at %d", p, n, node, e, a.Holder, a.Epoch)
		}
		for _, tn := range live {
			d, im, ok := tn.store.get(p)
			switch {
			case tn.name == a.Holder.Name && !bytes.Equal(d, payload(p)):
				return fmt.Errorf("partition %d at %s: %d bytes, want %d", p, tn.name, len(d), len(payload(p)))
			case tn.name != a.Holder.Name && (ok || im.epoch != 0):
				return fmt.Errorf("partition %d: %s keeps %d bytes (import %+v) of it", p, tn.name, len(d), im)
			}
		}
	}
	return nil
}

func moved(before, after Table) int {
	n := 0
	for p := range before.Partitions {
		if before.Partitions[p].Holder != after.Partitions[p].Holder {
			n++
		}
	}
	return n
}

// A node that joins takes its share, about a third of the partitions when
// it is the third, each one moved once, intact, by handoff.
func TestHandoffOnJoin(t *testing.T) {
	c := newTestCluster(t)
	a := c.startFirstH("a", nil)
	b := c.startH("b", 1, "", seedsOf(a))
	eventually(t, "b takes its share", func() error { return c.settled(a, b) })
	before := a.node.View().Table

	d := c.startH("c", 1, "", seedsOf(a))
	eventually(t, "c takes its share", func() error { return c.settled(a, b, d) })
	after := a.node.View().Table
	got := moved(before, after)
	if got < testPartitions/6 || got > testPartitions/2 {
		t.Errorf("%d of %d partitions moved to the third node", got, testPartitions)
	}
	for p := range after.Partitions {
		if before.Partitions[p].Holder != after.Partitions[p].Holder && after.Partitions[p].Epoch != before.Partitions[p].Epoch+1 {
			t.Errorf("partition %d moved from epoch %d to %d", p, before.Partitions[p].Epoch, after.Partitions[p].Epoch)
		}
	}
	var started, completed uint64
	for _, tn := range []*testNode{a, b, d} {
		s := tn.node.HandoffStats()
		started += s.Started
		completed += s.Completed
		if s.GivenUp != 0 || s.InFlight != 0 {
			t.Errorf("%s: %+v", tn.name, s)
		}
	}
	t.Logf("moved %d partitions to c; %d handoffs in all, %d completed", got, started, completed)
	// Only the holder's journal takes writes.
	for p, asg := range after.Partitions {
		for _, tn := range []*testNode{a, b, d} {
			err := tn.store.write(p, nil)
			if held := tn.name == asg.Holder.Name; held != (err == nil) {
				t.Errorf("partition %d held by %v: a write at %s: %v", p, asg.Holder, tn.name, err)
			}
		}
	}
}

// A node that leaves gracefully hands every partition off before it goes.
func TestHandoffOnLeave(t *testing.T) {
	c := newTestCluster(t)
	a := c.startFirstH("a", nil)
	b := c.startH("b", 1, "", seedsOf(a))
	d := c.startH("c", 1, "", seedsOf(a))
	eventually(t, "three settle", func() error { return c.settled(a, b, d) })

	before := map[*testNode]HandoffStats{a: a.node.HandoffStats(), b: b.node.HandoffStats()}
	c.stop(d, true) // Leave reports an error if anything is left
	if held := d.node.View().Table.Held(d.node.Self()); len(held) != 0 {
		t.Fatalf("c left holding %v", held)
	}
	// c said it was leaving before it moved anything, so a and b never
	// tried to hand it back what they received (and gave up, bumping
	// epochs, when c refused).
	for _, n := range []*testNode{a, b} {
		s, was := n.node.HandoffStats(), before[n]
		if s.GivenUp != was.GivenUp || s.Started != was.Started {
			t.Errorf("%s began %d handoffs and gave up %d while c left", n.node.Self().Name, s.Started-was.Started, s.GivenUp-was.GivenUp)
		}
	}
	eventually(t, "two settle", func() error {
		if err := converged([]*testNode{a, b}, "c"); err != nil {
			return err
		}
		return c.settled(a, b)
	})

	// The last node cannot hand anything off; it says so and leaves.
	c.stop(b, true)
	if err := a.node.Leave(time.Second); !errors.Is(err, ErrHandoffIncomplete) {
		t.Fatalf("the last node's Leave: %v", err)
	}
}

// A holder that cannot save the handing-off mark does not begin the
// handoff: it keeps serving, and moves the partitions once saves work.
func TestHandoffWaitsForDurableMark(t *testing.T) {
	c := newTestCluster(t)
	a := c.startFirstH("a", nil)
	a.store.setFailSave(func(t Table) error {
		if len(handingOff(t)) > 0 {
			return errors.New("disk full")
		}
		return nil
	})
	b := c.startH("b", 1, "", seedsOf(a))
	eventually(t, "b joins", func() error { return converged([]*testNode{a, b}) })
	time.Sleep(3 * handoffRetryInterval)
	for p := range testPartitions {
		if node, e, n := c.serves.server(p); n != 1 || node != "a" || e != 1 {
			t.Fatalf("partition %d served by %d (%s at %d) while no mark could be saved", p, n, node, e)
		}
	}
	if s := a.node.HandoffStats(); s.Started != 0 {
		t.Fatalf("handoffs begun without a durable mark: %+v", s)
	}
	if saved := a.store.savedTable(); len(handingOff(*saved)) != 0 {
		t.Fatal("a handing-off mark was saved")
	}
	a.store.setFailSave(nil)
	eventually(t, "b takes its share", func() error { return c.settled(a, b) })
}

// Every chunk is delayed, so that handoffs overlap: a node never has more
// than HandoffsMax partitions handing off (checkHistory checks every
// table), and reaches it.
func TestHandoffRateLimit(t *testing.T) {
	c := newTestCluster(t)
	c.hnet.setFaults(nil, nil, 30*time.Millisecond)
	a := c.startFirstH("a", nil)
	b := c.startH("b", 1, "", seedsOf(a))
	eventually(t, "b takes its share", func() error { return c.settled(a, b) })
	peak := 0
	for _, tb := range a.history() {
		peak = max(peak, handingOff(tb)[a.node.Self()])
	}
	if peak != DefaultHandoffsMax {
		t.Errorf("at most %d handoffs at once, want %d", peak, DefaultHandoffsMax)
	}
}

// The ack of each last chunk is lost once: the holder asks whether the
// import is complete, learns that it is, and commits without streaming
// again.
func TestHandoffLostAck(t *testing.T) {
	c := newTestCluster(t)
	var mu sync.Mutex
	lost := map[int]bool{}
	c.hnet.setFaults(nil, func(_, _ string, ch Chunk) error {
		mu.Lock()
		defer mu.Unlock()
		if ch.Last && !lost[ch.Partition] {
			lost[ch.Partition] = true
			return errors.New("ack lost")
		}
		return nil
	}, 0)
	a := c.startFirstH("a", nil)
	b := c.startH("b", 1, "", seedsOf(a))
	eventually(t, "b takes its share", func() error { return c.settled(a, b) })
	s := a.node.HandoffStats()
	mu.Lock()
	n := uint64(len(lost))
	mu.Unlock()
	if s.Failed != n || s.GivenUp != 0 || s.Completed != n || s.Started != n {
		t.Fatalf("stats %+v after losing %d acks", s, n)
	}
}

// A target that never takes the partition: the holder gives up at the
// timeout and serves it again itself, at the next epoch, and the target
// drops what it had imported.
func TestHandoffGivesUp(t *testing.T) {
	c := newTestCluster(t)
	c.hnet.setFaults(nil, func(_, _ string, ch Chunk) error {
		if ch.Seq == 1 {
			return errors.New("ack lost")
		}
		return nil
	}, 0)
	c.hnet.refuseAsk["b"] = true
	twoChunks := func(p int) []byte { return append(payload(p), make([]byte, testChunkBytes)...) }
	a := c.startFirstH("a", twoChunks, func(cfg *Config) { cfg.HandoffTimeout = time.Second })
	b := c.startH("b", 1, "", seedsOf(a))
	eventually(t, "a gives up and serves again, b drops its import", func() error {
		if s := a.node.HandoffStats(); s.GivenUp == 0 || s.Completed != 0 {
			return fmt.Errorf("stats %+v", s)
		}
		for p, asg := range a.node.View().Table.Partitions {
			if asg.Epoch != 2 || asg.State != StateServing {
				continue
			}
			node, e, n := c.serves.server(p)
			if n != 1 || node != "a" || e != 2 {
				return fmt.Errorf("partition %d given up, served by %d (%s at %d)", p, n, node, e)
			}
			if _, im, ok := b.store.get(p); ok || im.epoch != 0 {
				return fmt.Errorf("b keeps partition %d (%+v)", p, im)
			}
			return nil
		}
		return errors.New("no partition given up and served")
	})
}

// How long handing off a partition of 10 MiB takes in process: from the
// holder marking it handing off to the commit, and the time nobody serves
// it.
func TestHandoffTenMiB(t *testing.T) {
	c := newTestCluster(t)
	want := Desired([]string{"a", "b"}, testPartitions)
	big := slices.Index(want, "b")
	data := make([]byte, 10<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	a := c.startFirstH("a", func(p int) []byte {
		if p == big {
			return data
		}
		return nil
	})
	var mu sync.Mutex
	var first, acked time.Time
	chunks := 0
	c.hnet.setFaults(func(_, _ string, ch Chunk) error {
		if ch.Partition == big && ch.Seq == 0 {
			mu.Lock()
			first = time.Now()
			mu.Unlock()
		}
		return nil
	}, func(_, _ string, ch Chunk) error {
		if ch.Partition == big {
			mu.Lock()
			chunks++
			if ch.Last {
				acked = time.Now()
			}
			mu.Unlock()
		}
		return nil
	}, 0)
	start := time.Now()
	b := c.startH("b", 1, "", seedsOf(a))
	eventually(t, "b serves the big partition", func() error {
		if node, _, _ := c.serves.server(big); node != "b" {
			return errors.New("not yet")
		}
		return nil
	})
	total := time.Since(start)
	gap, _ := c.serves.gap(big, "a", "b")
	got, _, _ := b.store.get(big)
	if !bytes.Equal(got, data) {
		t.Fatalf("b has %d bytes, not a's 10 MiB", len(got))
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("10 MiB partition in %d chunks: streamed in %v; served by nobody for %v; b's start to b serving it %v",
		chunks, acked.Sub(first), gap, total)
}
