package cluster

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/orderengine/orderengine/cluster/memnet"
)

// Three nodes converge on membership and on the first node's table.
func TestJoin(t *testing.T) {
	c := newTestCluster(t)
	a := c.start("a", 1, "", nil)
	b := c.start("b", 1, "", seedsOf(a))
	d := c.start("c", 1, "", seedsOf(b)) // through b, which learnt a
	waitReady(t, a, b, d)
	eventually(t, "join", func() error { return converged([]*testNode{a, b, d}) })
	v := d.node.View()
	for p := range v.Table.Partitions {
		if got := v.Table.Partitions[p]; got != (Assignment{Holder{"a", 1}, 1, StateServing}) {
			t.Fatalf("partition %d: %+v, want a at epoch 1", p, got)
		}
	}
	eventually(t, "metadata", func() error {
		for _, m := range d.node.View().Members {
			if m.Name == "a" && len(m.Meta.Held) == testPartitions && m.Meta.RemoteAddress == "remote-a:1" {
				return nil
			}
		}
		return fmt.Errorf("c does not see a's metadata: %+v", d.node.View().Members)
	})
}

// A node started with seeds serves nothing until it has exchanged state
// with a peer, and becomes ready by itself once one answers.
func TestNotReadyUntilExchange(t *testing.T) {
	c := newTestCluster(t)
	a := c.start("a", 1, "", nil)
	c.net.Cut(a.tr.Addr(), "127.0.0.1:20001") // the next transport's address
	b := c.start("b", 1, "", seedsOf(a))
	if b.tr.Addr() != "127.0.0.1:20001" {
		t.Fatalf("b is at %s", b.tr.Addr())
	}
	select {
	case <-b.node.Ready():
		t.Fatal("b is ready without having reached a peer")
	case <-time.After(3 * testRejoin):
	}
	v := b.node.View()
	for p := range v.Table.Partitions {
		if v.Serving(p) || v.Table.Partitions[p].Epoch != 0 {
			t.Fatalf("b claims partition %d before joining: %+v", p, v.Table.Partitions[p])
		}
	}
	if err := b.node.Forget("a"); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Forget on a node that is not ready: %v", err)
	}
	c.net.HealAll()
	waitReady(t, b)
	eventually(t, "join after heal", func() error { return converged([]*testNode{a, b}) })
}

// A node that leaves keeps its partitions, unavailable, until an operator
// forgets it; they then move to live nodes at the next epoch, and the
// forgotten incarnation is refused when it comes back. A new incarnation
// (a wiped data directory) joins.
func TestLeaveAndForget(t *testing.T) {
	c := newTestCluster(t)
	a, b, d := c.startThree()

	if err := b.node.Forget("a"); !errors.Is(err, ErrMemberAlive) {
		t.Fatalf("Forget of a live member: %v", err)
	}
	c.stop(a, true)
	eventually(t, "leave", func() error { return converged([]*testNode{b, d}, "a") })
	for p, asg := range b.node.View().Table.Partitions {
		if asg.Holder.Name != "a" || asg.Epoch != 1 {
			t.Fatalf("partition %d moved when its holder left: %+v", p, asg)
		}
	}

	if err := b.node.Forget("a"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "forget", func() error { return converged([]*testNode{b, d}, "a") })
	want := Desired([]string{"b", "c"}, testPartitions)
	for p, asg := range d.node.View().Table.Partitions {
		if asg.Epoch != 2 || asg.Holder.Name != want[p] || asg.State != StateServing {
			t.Fatalf("partition %d after forget: %+v, want %s at epoch 2", p, asg, want[p])
		}
	}

	// The forgotten incarnation is refused and never becomes ready.
	old := c.start("a", 1, "", seedsOf(b))
	select {
	case <-old.node.Ready():
		t.Fatal("a forgotten node was let back in")
	case <-time.After(5 * testRejoin):
	}
	c.stop(old, false)
	// A new incarnation joins and holds nothing.
	fresh := c.start("a", 2, "", seedsOf(b))
	eventually(t, "rejoin as a new generation", func() error { return converged([]*testNode{b, d, fresh}) })
	if held := fresh.node.View().Table.Held(fresh.node.Self()); len(held) != 0 {
		t.Fatalf("a new incarnation holds %v", held)
	}
}

// A crashed holder's partitions are unavailable, and stay its own, until it
// comes back with its data.
func TestCrashAndRestart(t *testing.T) {
	c := newTestCluster(t)
	a, b, d := c.startThree()

	addr := a.tr.Addr()
	c.stop(a, false)
	eventually(t, "crash noticed", func() error { return converged([]*testNode{b, d}, "a") })
	before := b.node.View().Table
	time.Sleep(3 * testRejoin) // re-join rounds and push/pulls pass; nothing may move
	if err := converged([]*testNode{b, d}, "a"); err != nil {
		t.Fatal(err)
	}
	if after := b.node.View().Table; !after.Equal(before) {
		t.Fatalf("the table changed while its holder was down")
	}

	// a comes back with its data (same generation) and learns from a peer
	// that it still holds every partition.
	a2 := c.start("a", 1, addr, seedsOf(b))
	eventually(t, "restart", func() error { return converged([]*testNode{a2, b, d}) })
	if held := a2.node.View().Table.Held(a2.node.Self()); len(held) != testPartitions {
		t.Fatalf("the restarted holder holds %d partitions", len(held))
	}
}

// The two sides of a network partition each see the other gone; a change
// made on one side meanwhile reaches the other after the heal, and the
// sides merge by their periodic re-joins (memberlist does not exchange
// state with members it thinks dead).
func TestNetworkPartitionAndHeal(t *testing.T) {
	c := newTestCluster(t)
	a, b, d := c.startThree()
	e := c.start("e", 1, "", seedsOf(a))
	eventually(t, "join", func() error { return converged([]*testNode{a, b, d, e}) })

	c.net.Partition(seedsOf(a), seedsOf(b, d, e))
	eventually(t, "majority side", func() error { return converged([]*testNode{b, d, e}, "a") })
	eventually(t, "minority side", func() error { return converged([]*testNode{a}, "b", "c", "e") })

	// On the majority side: e crashes and is forgotten, and a new node joins.
	c.stop(e, false)
	eventually(t, "crash on one side", func() error { return converged([]*testNode{b, d}, "a", "e") })
	if err := b.node.Forget("e"); err != nil {
		t.Fatal(err)
	}
	f := c.start("f", 1, "", seedsOf(d))
	eventually(t, "join on one side", func() error { return converged([]*testNode{b, d, f}, "a", "e") })

	c.net.HealAll()
	eventually(t, "heal", func() error { return converged([]*testNode{a, b, d, f}, "e") })
	if !a.node.View().Table.Tombstoned(Holder{"e", 1}) {
		t.Fatal("the forget made during the partition did not reach a")
	}
}

// A paused holder is declared dead and its partitions unavailable; when it
// resumes it rejoins by itself and serves them again.
func TestPauseAndResume(t *testing.T) {
	c := newTestCluster(t)
	a, b, d := c.startThree()

	a.tr.Pause()
	eventually(t, "pause noticed", func() error { return converged([]*testNode{b, d}, "a") })
	a.tr.Resume()
	eventually(t, "resume", func() error { return converged([]*testNode{a, b, d}) })
}

// Members must share P, the gossip key and the label.
func TestRefusesOtherClusters(t *testing.T) {
	c := newTestCluster(t)
	key := []byte("0123456789abcdef")
	secure := func(cfg *Config) { cfg.SecretKey, cfg.Label = key, "shop-1" }
	a := c.start("a", 1, "", nil, secure)
	b := c.start("b", 1, "", seedsOf(a), secure)
	eventually(t, "join with a key", func() error { return converged([]*testNode{a, b}) })

	others := []*testNode{
		c.start("no-key", 1, "", seedsOf(a)),
		c.start("other-key", 1, "", seedsOf(a), func(cfg *Config) { cfg.SecretKey, cfg.Label = []byte("fedcba9876543210"), "shop-1" }),
		c.start("other-label", 1, "", seedsOf(a), func(cfg *Config) { cfg.SecretKey, cfg.Label = key, "shop-2" }),
		c.start("other-p", 1, "", seedsOf(a), secure, func(cfg *Config) { cfg.Partitions = 32 }),
	}
	time.Sleep(5 * testRejoin)
	for _, o := range others {
		select {
		case <-o.node.Ready():
			t.Errorf("%s became ready", o.name)
		default:
		}
	}
	if err := converged([]*testNode{a, b}, "no-key", "other-key", "other-label", "other-p"); err != nil {
		t.Fatal(err)
	}
}

// Membership and the table converge over links that lose a fifth of their
// packets and dials and delay the rest, and a crash is still noticed.
func TestLossyLinks(t *testing.T) {
	c := newTestCluster(t)
	a := c.start("a", 1, "", nil)
	b := c.start("b", 1, "", seedsOf(a))
	d := c.start("c", 1, "", seedsOf(a))
	all := seedsOf(a, b, d)
	for _, from := range all {
		for _, to := range all {
			if from != to {
				c.net.SetLink(from, to, memnet.Link{DropRate: 0.2, Delay: 10 * time.Millisecond})
			}
		}
	}
	eventually(t, "join", func() error { return converged([]*testNode{a, b, d}) })
	c.stop(d, false)
	eventually(t, "crash noticed", func() error { return converged([]*testNode{a, b}, "c") })
	if err := a.node.Forget("c"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "forget", func() error { return converged([]*testNode{a, b}, "c") })
}

// When events overflow their channel, the event goroutine re-reads the
// member list: a member memberlist does not know is then marked gone.
func TestEventOverflowResyncs(t *testing.T) {
	c := newTestCluster(t)
	a := c.start("a", 1, "", nil)
	ghost := func(alive bool) error {
		for _, m := range a.node.View().Members {
			if m.Name == "ghost" && m.Alive == alive {
				return nil
			}
		}
		return fmt.Errorf("no ghost alive=%v in %+v", alive, a.node.View().Members)
	}
	a.node.events <- memberEvent{name: "ghost", addr: "127.0.0.1:1", alive: true}
	eventually(t, "event", func() error { return ghost(true) })
	a.node.overflow.Store(true)
	signal(a.node.changed)
	eventually(t, "resync", func() error { return ghost(false) })
}
