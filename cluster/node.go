package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Node is one member of a cluster.
type Node struct {
	cfg  Config
	self Holder
	log  *slog.Logger
	ml   *memberlist.Memberlist
	// addr is this node's gossip address, read once at start: memberlist
	// hands out pointers into its own node records, which its goroutines
	// rewrite (UpdateNode), so reading them later would race.
	addr string

	events   chan memberEvent
	overflow atomic.Bool   // events were dropped; re-read the member list
	changed  chan struct{} // the table changed: publish metadata
	pushNow  chan struct{} // this node made a new epoch: push the table
	ready    chan struct{}
	readyOne sync.Once

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	stop   sync.Once

	mu        sync.Mutex
	table     Table
	members   map[string]*memberRecord
	conflicts int
	left      bool
}

type memberRecord struct {
	Member
	deadSince time.Time
}

// Errors of a running Node.
var (
	ErrNotReady    = errors.New("cluster: node has not exchanged state with a peer yet")
	ErrMemberAlive = errors.New("cluster: member is alive")
	ErrUnknownNode = errors.New("cluster: unknown node")
	ErrStopped     = errors.New("cluster: node stopped")
)

// Start starts a member: it creates a new cluster when cfg has no seeds and
// no table, and otherwise joins its seeds in the background until one
// answers (Ready tells when).
func Start(cfg Config) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg:     cfg,
		self:    Holder{Name: cfg.Name, Generation: cfg.Generation},
		log:     cfg.Logger.With("node", cfg.Name),
		events:  make(chan memberEvent, eventsMax),
		changed: make(chan struct{}, 1),
		pushNow: make(chan struct{}, 1),
		ready:   make(chan struct{}),
		members: map[string]*memberRecord{},
	}
	switch {
	case cfg.Table != nil:
		n.table = cfg.Table.Clone()
	case len(cfg.Seeds) == 0:
		id, err := newClusterID()
		if err != nil {
			return nil, err
		}
		n.table = Bootstrap(id, n.self, cfg.Partitions)
		n.log.Info("cluster created", "cluster", id, "partitions", cfg.Partitions)
	default:
		n.table = NewTable(cfg.Partitions)
	}
	if len(cfg.Seeds) == 0 {
		n.markReady()
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	ml, err := memberlist.Create(n.memberlistConfig())
	if err != nil {
		n.cancel()
		return nil, fmt.Errorf("cluster: start memberlist: %w", err)
	}
	n.ml = ml
	n.addr = ml.LocalNode().Address() // before any goroutine of ours updates it
	n.wg.Add(2)
	go n.eventLoop()
	go n.rejoinLoop()
	return n, nil
}

func newClusterID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("cluster: mint cluster ID: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func (n *Node) memberlistConfig() *memberlist.Config {
	mc := memberlist.DefaultLANConfig()
	mc.Name = n.cfg.Name
	mc.BindAddr, mc.BindPort = n.cfg.BindAddr, n.cfg.BindPort
	mc.AdvertiseAddr, mc.AdvertisePort = n.cfg.AdvertiseAddr, n.cfg.AdvertisePort
	if mc.AdvertisePort == 0 {
		mc.AdvertisePort = n.cfg.BindPort
	}
	mc.SecretKey = n.cfg.SecretKey
	mc.Label = n.cfg.Label
	mc.Transport = n.cfg.Transport
	mc.PushPullInterval = n.cfg.PushPullInterval
	mc.Logger = newMemberlistLogger(n.log)
	d := delegate{n}
	mc.Delegate, mc.Events, mc.Alive, mc.Merge = d, d, d, d
	if n.cfg.Memberlist != nil {
		n.cfg.Memberlist(mc)
	}
	return mc
}

// Ready is closed once the node may serve: at once for a node without
// seeds, otherwise after its first exchange of state with a peer.
func (n *Node) Ready() <-chan struct{} { return n.ready }

func (n *Node) markReady() {
	n.readyOne.Do(func() { close(n.ready) })
}

func (n *Node) isReady() bool {
	select {
	case <-n.ready:
		return true
	default:
		return false
	}
}

// LocalAddr is the node's memberlist address (host:port), for others'
// seeds: with BindPort 0 the port is only known here.
func (n *Node) LocalAddr() string { return n.addr }

// Self is the node's name and generation.
func (n *Node) Self() Holder { return n.self }

// View returns the node's current picture of the cluster.
func (n *Node) View() View {
	n.mu.Lock()
	defer n.mu.Unlock()
	v := View{Self: n.self, Ready: n.isReady(), Table: n.table.Clone(), Conflicts: n.conflicts}
	v.Members = make([]Member, 0, len(n.members))
	for _, m := range n.members {
		v.Members = append(v.Members, m.Member)
	}
	sortMembers(v.Members)
	return v
}

// Forget is the operator's decision that a dead node is not coming back
// with its data: its generation is tombstoned, so it is refused as a
// member until its data directory is created anew, and its partitions
// are reassigned, empty, at their next epoch to their desired holders
// among the live members. It refuses a node that is alive in this node's
// view; an operator must make sure that it is really down.
func (n *Node) Forget(name string) error {
	if !n.isReady() {
		return ErrNotReady
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.left {
		return ErrStopped
	}
	if name == n.self.Name {
		return fmt.Errorf("cluster: a node cannot forget itself")
	}
	gone := Holder{Name: name}
	if m, ok := n.members[name]; ok {
		if m.Alive {
			return fmt.Errorf("%w: %s", ErrMemberAlive, name)
		}
		gone.Generation = m.Meta.Generation
	}
	for _, a := range n.table.Partitions {
		if a.Holder.Name == name {
			gone.Generation = max(gone.Generation, a.Holder.Generation)
		}
	}
	if gone.Generation == 0 {
		return fmt.Errorf("%w: %s", ErrUnknownNode, name)
	}
	live := []Holder{n.self}
	for _, m := range n.members {
		if m.Alive && m.Name != n.self.Name && m.Meta.ClusterID == n.table.ClusterID && m.Meta.Generation > 0 {
			live = append(live, Holder{m.Name, m.Meta.Generation})
		}
	}
	t, err := n.table.Forget(gone, live)
	if err != nil {
		return err
	}
	n.log.Warn("node forgotten", "forgotten", gone.String(), "partitions", len(n.table.Held(gone)))
	n.adoptLocked(t)
	signal(n.pushNow)
	return nil
}

// adoptLocked makes t the node's table; n.mu is held.
func (n *Node) adoptLocked(t Table) {
	n.table = t
	if n.cfg.OnTable != nil {
		n.cfg.OnTable(t.Clone())
	}
	signal(n.changed)
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Leave tells the other members that this node is leaving, waiting up to
// timeout for that to go out; Shutdown follows. Its partitions stay its
// own (unavailable meanwhile): handing them off before leaving is the
// caller's job.
func (n *Node) Leave(timeout time.Duration) error {
	n.mu.Lock()
	if n.left {
		n.mu.Unlock()
		return ErrStopped
	}
	n.left = true
	n.mu.Unlock()
	if err := n.ml.Leave(timeout); err != nil {
		return fmt.Errorf("cluster: leave: %w", err)
	}
	return nil
}

// Shutdown stops the node without telling anyone, as a crash would, and
// waits for its goroutines. Call Leave first for a graceful exit.
func (n *Node) Shutdown() error {
	var err error
	n.stop.Do(func() {
		n.mu.Lock()
		n.left = true
		n.mu.Unlock()
		n.cancel()
		if e := n.ml.Shutdown(); e != nil {
			err = fmt.Errorf("cluster: shutdown: %w", e)
		}
		n.wg.Wait()
	})
	return err
}
