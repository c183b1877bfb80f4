package cluster

import (
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// delegate is the node as memberlist sees it. memberlist calls these
// methods from its own goroutines, the event ones while holding its lock:
// they take only the node's own lock (which never waits on memberlist) and
// hand events to the event goroutine without blocking.
type delegate struct{ n *Node }

var (
	_ memberlist.Delegate      = delegate{}
	_ memberlist.EventDelegate = delegate{}
	_ memberlist.AliveDelegate = delegate{}
	_ memberlist.MergeDelegate = delegate{}
)

// NodeMeta implements memberlist.Delegate.
func (d delegate) NodeMeta(limit int) []byte {
	b, err := d.n.encodeMeta()
	if err != nil || len(b) > limit {
		// Config validation and the codec's bounds make this impossible.
		panic(fmt.Sprintf("cluster: metadata of %d bytes (limit %d): %v", len(b), limit, err))
	}
	return b
}

func (n *Node) encodeMeta() ([]byte, error) {
	n.mu.Lock()
	m := Meta{
		ClusterID:     n.table.ClusterID,
		Generation:    n.self.Generation,
		RemoteAddress: n.cfg.RemoteAddress,
		Partitions:    len(n.table.Partitions),
		Held:          n.table.Held(n.self),
		Leaving:       n.leaving,
	}
	n.mu.Unlock()
	return EncodeMeta(m)
}

// NotifyMsg implements memberlist.Delegate; the node sends no user
// messages.
func (delegate) NotifyMsg([]byte) {}

// GetBroadcasts implements memberlist.Delegate; the node broadcasts
// nothing: its table travels in push/pull state.
func (delegate) GetBroadcasts(int, int) [][]byte { return nil }

// LocalState implements memberlist.Delegate: the whole table.
func (d delegate) LocalState(bool) []byte {
	n := d.n
	n.mu.Lock()
	t := n.table.Clone()
	n.mu.Unlock()
	b, err := EncodeTable(t)
	if err != nil {
		// The node only adopts valid tables.
		panic(fmt.Sprintf("cluster: encode own table: %v", err))
	}
	return b
}

// MergeRemoteState implements memberlist.Delegate.
func (d delegate) MergeRemoteState(buf []byte, _ bool) {
	t, err := DecodeTable(buf)
	if err != nil {
		d.n.log.Warn("table from a peer refused", "err", err)
		return
	}
	d.n.mergeTable(t)
}

// mergeTable merges a peer's table into the node's. The first one from a
// peer that knows its cluster makes the node ready.
func (n *Node) mergeTable(remote Table) {
	n.mu.Lock()
	defer n.mu.Unlock()
	merged, conflicts, err := n.table.Merge(remote)
	if err != nil {
		n.log.Warn("table from a peer refused", "err", err)
		return
	}
	for _, c := range conflicts {
		n.conflicts++
		n.invalidateLocked()
		n.log.Error("two holders at one epoch: a bug; keeping one for every node alike",
			"partition", c.Partition, "epoch", c.Epoch, "kept", c.Kept.String(), "dropped", c.Dropped.String())
	}
	if !merged.Equal(n.table) {
		if merged.Tombstoned(n.self) && !n.table.Tombstoned(n.self) {
			n.log.Error("this node was forgotten: it serves nothing until its data directory is created anew")
		}
		n.adoptLocked(merged)
	}
	// A forgotten incarnation never becomes ready: its peers refuse it.
	if remote.ClusterID != "" && !merged.Tombstoned(n.self) {
		n.markReady()
	}
}

// NotifyAlive implements memberlist.AliveDelegate: members of another
// cluster, with another P, or forgotten are refused.
func (d delegate) NotifyAlive(peer *memberlist.Node) error {
	if peer.Name == d.n.self.Name {
		return nil
	}
	return d.n.admit(peer.Name, peer.Meta)
}

// NotifyMerge implements memberlist.MergeDelegate: a join that brings a
// member admit refuses fails whole.
func (d delegate) NotifyMerge(peers []*memberlist.Node) error {
	var errs []error
	for _, p := range peers {
		if p.Name == d.n.self.Name || p.State != memberlist.StateAlive {
			continue
		}
		errs = append(errs, d.n.admit(p.Name, p.Meta))
	}
	return errors.Join(errs...)
}

func (n *Node) admit(name string, meta []byte) error {
	m, err := DecodeMeta(meta)
	if err != nil {
		return fmt.Errorf("member %s: %w", name, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case m.Partitions != len(n.table.Partitions):
		return fmt.Errorf("member %s: %w: %d, here %d", name, ErrPartitionCount, m.Partitions, len(n.table.Partitions))
	case m.ClusterID != "" && n.table.ClusterID != "" && m.ClusterID != n.table.ClusterID:
		return fmt.Errorf("member %s: %w %s", name, ErrForeignCluster, m.ClusterID)
	case n.table.Tombstoned(Holder{name, m.Generation}):
		return fmt.Errorf("member %s at generation %d was forgotten", name, m.Generation)
	}
	return nil
}

// memberEvent is a membership change handed from memberlist's lock to the
// node's event goroutine.
type memberEvent struct {
	name  string
	addr  string
	meta  []byte
	alive bool
	// left: the member said it was leaving (memberlist marks a member
	// that announced its own death StateLeft, one declared dead by
	// others StateDead).
	left bool
}

// NotifyJoin implements memberlist.EventDelegate.
func (d delegate) NotifyJoin(node *memberlist.Node) { d.n.enqueue(node, true) }

// NotifyUpdate implements memberlist.EventDelegate.
func (d delegate) NotifyUpdate(node *memberlist.Node) { d.n.enqueue(node, true) }

// NotifyLeave implements memberlist.EventDelegate. A member that left
// gracefully is in StateLeft, one declared dead in StateDead.
func (d delegate) NotifyLeave(node *memberlist.Node) { d.n.enqueue(node, false) }

func (n *Node) enqueue(node *memberlist.Node, alive bool) {
	e := memberEvent{name: node.Name, addr: node.Address(), meta: append([]byte(nil), node.Meta...), alive: alive,
		left: !alive && node.State == memberlist.StateLeft}
	select {
	case n.events <- e:
	default:
		n.overflow.Store(true)
	}
}
