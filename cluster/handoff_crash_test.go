package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The holder crashes after streaming a partition and before its commit is
// saved. On restart it asks its peers, finds the import complete, commits,
// and exactly one copy serves.
func TestHandoffHolderCrashBeforeCommit(t *testing.T) {
	c := newTestCluster(t)
	a := c.startFirstH("a", nil)
	var streamed atomic.Int64
	streamed.Store(-1)
	c.hnet.setFaults(nil, func(_, to string, ch Chunk) error {
		if ch.Last && to == "b" {
			streamed.CompareAndSwap(-1, int64(ch.Partition))
		}
		return nil
	}, 0)
	a.store.setFailSave(func(t Table) error {
		for _, asg := range t.Partitions {
			if asg.Holder.Name == "b" {
				return errors.New("disk gone")
			}
		}
		return nil
	})
	addr := a.tr.Addr()
	b := c.startH("b", 1, "", seedsOf(a))
	eventually(t, "a partition streamed to b", func() error {
		if streamed.Load() < 0 {
			return errors.New("not yet")
		}
		return nil
	})
	c.stop(a, false)
	p := int(streamed.Load())
	if got := a.store.savedTable().Partitions[p]; got.State != StateHandingOff || got.Holder.Name != "a" {
		t.Fatalf("partition %d saved as %+v", p, got)
	}
	if _, im, _ := b.store.get(p); !im.complete {
		t.Fatalf("b's import of %d: %+v", p, im)
	}
	a2 := c.startH("a", 1, addr, seedsOf(b))
	eventually(t, "both settle", func() error { return c.settled(a2, b) })
	if got := b.node.View().Table.Partitions[p]; got.Epoch != 2 {
		t.Errorf("partition %d at %+v, want b at epoch 2 (committed, not given up)", p, got)
	}
}

// The holder crashes in the middle of a stream. On restart its peers say
// they have no complete import, so it gives up, serves the partition at
// the next epoch, and hands it off again from there; the receiver drops
// the half it had.
func TestHandoffHolderCrashMidStream(t *testing.T) {
	c := newTestCluster(t)
	twoChunks := func(p int) []byte { return append(payload(p), make([]byte, testChunkBytes)...) }
	a := c.startFirstH("a", twoChunks)
	cut := make(chan int, 1)
	var once sync.Once
	c.hnet.setFaults(nil, func(_, to string, ch Chunk) error {
		if ch.Seq != 0 {
			return nil
		}
		lose := false
		once.Do(func() {
			lose = true
			c.hnet.unregister("a") // a is gone before the ack reaches it
			cut <- ch.Partition
		})
		if lose {
			return errors.New("sender crashed")
		}
		return nil
	}, 0)
	addr := a.tr.Addr()
	b := c.startH("b", 1, "", seedsOf(a))
	var p int
	select {
	case p = <-cut:
	case <-time.After(convergeTimeout):
		t.Fatal("nothing streamed to b")
	}
	c.stop(a, false)
	if _, im, _ := b.store.get(p); im.complete || im.epoch != 2 {
		t.Fatalf("b's import of %d: %+v", p, im)
	}
	a2 := c.startH("a", 1, addr, seedsOf(b))
	eventually(t, "both settle", func() error {
		if err := converged([]*testNode{a2, b}); err != nil {
			return err
		}
		for p := range testPartitions {
			node, _, _ := c.serves.server(p)
			if got, _, _ := b.store.get(p); node == "b" && !bytes.Equal(got, twoChunks(p)) {
				return fmt.Errorf("b serves partition %d with %d bytes", p, len(got))
			}
		}
		if node, e, n := c.serves.server(p); n != 1 || node != "b" || e != 3 {
			return fmt.Errorf("partition %d served by %d (%s at %d), want b at 3", p, n, node, e)
		}
		return nil
	})
	if s := a2.node.HandoffStats(); s.GivenUp == 0 {
		t.Errorf("a's stats after restart: %+v", s)
	}
}

// A holder crashes mid-stream and an operator forgets it: the receiver is
// assigned the partition at the import's epoch, empty, and serves it
// empty rather than with the half it had received.
func TestHandoffForgetOvertakesImport(t *testing.T) {
	c := newTestCluster(t)
	twoChunks := func(p int) []byte { return append(payload(p), make([]byte, testChunkBytes)...) }
	a := c.startFirstH("a", twoChunks)
	cut := make(chan int, 1)
	var once sync.Once
	c.hnet.setFaults(nil, func(_, to string, ch Chunk) error {
		if ch.Seq != 0 {
			return nil
		}
		lose := false
		once.Do(func() {
			lose = true
			c.hnet.unregister("a")
			cut <- ch.Partition
		})
		if lose {
			return errors.New("sender crashed")
		}
		return nil
	}, 0)
	b := c.startH("b", 1, "", seedsOf(a))
	var p int
	select {
	case p = <-cut:
	case <-time.After(convergeTimeout):
		t.Fatal("nothing streamed to b")
	}
	c.stop(a, false)
	eventually(t, "crash noticed", func() error { return converged([]*testNode{b}, "a") })
	if err := b.node.Forget("a"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b serves everything", func() error {
		for q := range testPartitions {
			if node, _, n := c.serves.server(q); n != 1 || node != "b" {
				return fmt.Errorf("partition %d served by %d (%s)", q, n, node)
			}
		}
		return nil
	})
	if got, im, _ := b.store.get(p); len(got) != 0 || im.epoch != 0 {
		t.Fatalf("b serves partition %d with %d bytes of a half import (%+v)", p, len(got), im)
	}
}

// The receiver crashes once it has stored a partition's last chunk,
// before it acks. The holder keeps asking; the receiver comes back with
// the import, the holder commits, and the receiver serves.
func TestHandoffReceiverCrashAfterImport(t *testing.T) {
	c := newTestCluster(t)
	a := c.startFirstH("a", nil)
	crashed := make(chan int, 1)
	var once sync.Once
	c.hnet.setFaults(nil, func(_, to string, ch Chunk) error {
		if !ch.Last || to != "b" {
			return nil
		}
		lose := false
		once.Do(func() {
			lose = true
			c.hnet.unregister("b") // b is gone before its ack
			crashed <- ch.Partition
		})
		if lose {
			return errors.New("receiver crashed")
		}
		return nil
	}, 0)
	b := c.startH("b", 1, "", seedsOf(a))
	addr := b.tr.Addr()
	var p int
	select {
	case p = <-crashed:
	case <-time.After(convergeTimeout):
		t.Fatal("nothing streamed to b")
	}
	c.stop(b, false)
	if _, im, _ := b.store.get(p); !im.complete || im.epoch != 2 {
		t.Fatalf("b's import of %d: %+v", p, im)
	}
	b2 := c.startH("b", 1, addr, seedsOf(a))
	eventually(t, "both settle", func() error { return c.settled(a, b2) })
	if s := a.node.HandoffStats(); s.GivenUp != 0 || s.Failed == 0 {
		t.Errorf("a's stats: %+v", s)
	}
	if got := a.node.View().Table.Partitions[p]; got.Epoch != 2 || got.Holder.Name != "b" {
		t.Errorf("partition %d at %+v, want b at epoch 2", p, got)
	}
}
