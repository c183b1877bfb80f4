package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/persistence"
)

// fence is the journal's per-partition write fence.
type fence interface {
	Hold(p int, epoch uint64) error
	Drain(p int) error
	Release(p int) error
}

// servedPartitions is a cluster member's record of the partitions it
// serves, and the one place that starts and stops serving one: it opens
// and closes the journal's fence and the registry's activation gate in
// the order that keeps two nodes from serving a partition at once.
//
// Starting: the fence first, then the gate, so nothing activated can
// find its writes refused. Stopping: the gate first (no new activation),
// then the partition's resident actors stop (their last writes commit),
// then the fence (nothing of the partition can commit afterwards).
//
// Every start and stop is logged ("partition serving", "partition
// stopped", with node, partition and epoch): the cluster tests read these
// lines to check that no two nodes ever served one partition at once.
type servedPartitions struct {
	node    string
	n       int
	epochs  []atomic.Uint64 // epoch served; 0 while not served
	journal fence
	skus    *actors.Registry
	log     *slog.Logger
	mu      sync.Mutex // serializes starts and stops
}

func newServedPartitions(node string, n int, journal fence, skus *actors.Registry, log *slog.Logger) *servedPartitions {
	return &servedPartitions{node: node, n: n, epochs: make([]atomic.Uint64, n), journal: journal, skus: skus, log: log}
}

// partitionOf is the partition of an actor name (its journal identity).
func (s *servedPartitions) partitionOf(name string) int { return persistence.Partition(name, s.n) }

// admit is the registry's activation gate.
func (s *servedPartitions) admit(name string) bool {
	return s.epochs[s.partitionOf(name)].Load() != 0
}

// count returns how many partitions are served.
func (s *servedPartitions) count() int {
	n := 0
	for i := range s.epochs {
		if s.epochs[i].Load() != 0 {
			n++
		}
	}
	return n
}

// start serves p at epoch.
func (s *servedPartitions) start(p int, epoch uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epochs[p].Load() == epoch {
		return nil
	}
	if err := s.journal.Hold(p, epoch); err != nil {
		return fmt.Errorf("serve partition %d at epoch %d: %w", p, epoch, err)
	}
	s.epochs[p].Store(epoch)
	s.log.Info("partition serving", "node", s.node, "partition", p, "epoch", epoch)
	return nil
}

// stop stops serving p and returns once nothing of it can be written.
func (s *servedPartitions) stop(ctx context.Context, p int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	epoch := s.epochs[p].Load()
	if epoch == 0 {
		return nil
	}
	s.epochs[p].Store(0)
	stopped, err := s.skus.StopWhere(ctx, func(name string) bool { return s.partitionOf(name) == p })
	// The stopped actors' last snapshots are on their way: let them
	// commit. The fence goes up even if some actor did not stop in time:
	// a write it makes afterwards is refused, never committed behind the
	// handoff.
	derr := s.journal.Drain(p)
	rerr := s.journal.Release(p)
	s.log.Info("partition stopped", "node", s.node, "partition", p, "epoch", epoch, "actors", stopped)
	if err = errors.Join(err, derr, rerr); err != nil {
		return fmt.Errorf("stop partition %d: %w", p, err)
	}
	return nil
}
