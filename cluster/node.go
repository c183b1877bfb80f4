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

	wake     chan struct{} // the table or membership changed: reconcile
	stats    handoffCounters
	changeMu sync.Mutex // serialises saving and adopting tables this node makes
	saved    *Table     // the table last saved; changeMu guards it
	importMu sync.Mutex // serialises imports with drops

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	stop   sync.Once

	// cached is the View that View returns until something it shows
	// changes; every change, made under mu, clears it (invalidateLocked).
	// The router asks for the view on every request.
	cached atomic.Pointer[View]

	mu        sync.Mutex
	table     Table
	members   map[string]*memberRecord
	conflicts int
	leaving   bool // Leave is handing the partitions off
	// receivedFrom names, per partition, the node whose handoff this node
	// completed last (importMu guards it); the handoff loop does not hand
	// the partition straight back to it (see takeOver).
	receivedFrom map[int]string
	left         bool
}

type memberRecord struct {
	Member
	deadSince time.Time
	left      bool // gone by its own Leave, not declared dead
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
		wake:    make(chan struct{}, 1),
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
	if cfg.Store != nil {
		n.wg.Add(1)
		go n.runHandoffLoop()
	}
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

// markReady is called with n.mu held, or before the node runs.
func (n *Node) markReady() {
	n.readyOne.Do(func() { close(n.ready) })
	n.invalidateLocked()
}

// invalidateLocked drops the cached view; n.mu is held.
func (n *Node) invalidateLocked() { n.cached.Store(nil) }

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

// View returns the node's current picture of the cluster. It is shared
// between callers until the picture changes: treat its slices and map as
// read-only.
func (n *Node) View() View {
	if v := n.cached.Load(); v != nil {
		return *v
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	v := View{Self: n.self, Ready: n.isReady(), Table: n.table.Clone(), Conflicts: n.conflicts}
	v.Members = make([]Member, 0, len(n.members))
	for _, m := range n.members {
		v.Members = append(v.Members, m.Member)
	}
	sortMembers(v.Members)
	n.cached.Store(&v)
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
	if name == n.self.Name {
		return fmt.Errorf("cluster: a node cannot forget itself")
	}
	var gone Holder
	err := n.change(func(t Table) (Table, error) {
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.left {
			return t, ErrStopped
		}
		gone = Holder{Name: name}
		if m, ok := n.members[name]; ok {
			if m.Alive {
				return t, fmt.Errorf("%w: %s", ErrMemberAlive, name)
			}
			gone.Generation = m.Meta.Generation
		}
		for _, a := range t.Partitions {
			if a.Holder.Name == name {
				gone.Generation = max(gone.Generation, a.Holder.Generation)
			}
		}
		if gone.Generation == 0 {
			return t, fmt.Errorf("%w: %s", ErrUnknownNode, name)
		}
		live := []Holder{n.self}
		for _, m := range n.members {
			if m.Alive && m.Name != n.self.Name && m.Meta.ClusterID == t.ClusterID && m.Meta.Generation > 0 {
				live = append(live, Holder{m.Name, m.Meta.Generation})
			}
		}
		out, err := t.Forget(gone, live)
		if err == nil {
			n.log.Warn("node forgotten", "forgotten", gone.String(), "partitions", len(t.Held(gone)))
		}
		return out, err
	})
	if err != nil {
		return err
	}
	signal(n.pushNow)
	return nil
}

// change makes a new table from the node's current one with edit, saves
// it through the Store (when there is one) and only then adopts it, so
// that nothing this node makes is gossiped before it is durable. Tables
// learnt meanwhile are merged in, not lost. edit is called without n.mu.
func (n *Node) change(edit func(Table) (Table, error)) error {
	n.changeMu.Lock()
	defer n.changeMu.Unlock()
	n.mu.Lock()
	cur := n.table.Clone()
	n.mu.Unlock()
	next, err := edit(cur)
	if err != nil {
		return err
	}
	if n.cfg.Store != nil {
		if err := n.cfg.Store.SaveTable(next.Clone()); err != nil {
			return fmt.Errorf("cluster: save table: %w", err)
		}
		n.saved = &next
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	merged, _, err := n.table.Merge(next)
	if err != nil {
		return err // next came from n.table: cannot happen
	}
	if !merged.Equal(n.table) {
		n.adoptLocked(merged)
	}
	return nil
}

// persist saves the node's current table through the Store when it
// differs from the last one saved, and returns it. Saves are serialised
// with change's, so the saved table only ever grows.
func (n *Node) persist() (Table, error) {
	n.changeMu.Lock()
	defer n.changeMu.Unlock()
	n.mu.Lock()
	t := n.table.Clone()
	n.mu.Unlock()
	if n.saved != nil && n.saved.Equal(t) {
		return t, nil
	}
	if err := n.cfg.Store.SaveTable(t.Clone()); err != nil {
		return t, fmt.Errorf("cluster: save table: %w", err)
	}
	n.saved = &t
	return t, nil
}

// adoptLocked makes t the node's table; n.mu is held.
func (n *Node) adoptLocked(t Table) {
	n.table = t
	n.invalidateLocked()
	if n.cfg.OnTable != nil {
		n.cfg.OnTable(t.Clone())
	}
	signal(n.changed)
	signal(n.wake)
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Leave hands every partition this node holds to its desired holder
// among the other live members, waiting up to timeout for that, and then
// tells the other members that this node is leaving, waiting up to
// timeout again for that to go out; Shutdown follows. Without a Store the
// partitions stay this node's (unavailable meanwhile). Partitions not
// handed off in time stay this node's too, and the error says how many;
// the node leaves anyway.
func (n *Node) Leave(timeout time.Duration) error {
	n.mu.Lock()
	if n.left || n.leaving {
		n.mu.Unlock()
		return ErrStopped
	}
	n.leaving = true
	n.invalidateLocked()
	n.mu.Unlock()
	// Say so before anything moves: the others leave a leaving member out
	// of placement, or they would try to hand back each partition they
	// receive from it (and give up, at a new epoch, when it refuses).
	if err := n.ml.UpdateNode(leaveAnnounceWait); err != nil {
		n.log.Debug("leaving announced without confirmation", "err", err)
	}
	var errs []error
	if n.cfg.Store != nil {
		errs = append(errs, n.drain(timeout))
	}
	n.mu.Lock()
	n.left = true
	n.mu.Unlock()
	if err := n.ml.Leave(timeout); err != nil {
		errs = append(errs, fmt.Errorf("cluster: leave: %w", err))
	}
	return errors.Join(errs...)
}

// drain waits until this node holds no partition, or timeout passes, or
// there is no other member to take them.
func (n *Node) drain(timeout time.Duration) error {
	signal(n.wake)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	poll := time.NewTicker(leavePollInterval)
	defer poll.Stop()
	for {
		n.mu.Lock()
		held := len(n.table.Held(n.self))
		n.mu.Unlock()
		if held == 0 {
			return nil
		}
		if len(n.livePeers()) == 0 {
			return fmt.Errorf("%w: %d, and no other member to take them", ErrHandoffIncomplete, held)
		}
		select {
		case <-deadline.C:
			return fmt.Errorf("%w: %d after %v", ErrHandoffIncomplete, held, timeout)
		case <-n.ctx.Done():
			return ErrStopped
		case <-poll.C:
		}
	}
}

// livePeers returns the other live members of this node's cluster that
// could take partitions.
func (n *Node) livePeers() []Member {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []Member
	for _, m := range n.members {
		if n.eligibleLocked(m.Member) {
			out = append(out, m.Member)
		}
	}
	sortMembers(out)
	return out
}

func (n *Node) eligibleLocked(m Member) bool {
	return m.Alive && !m.Meta.Leaving && m.Name != n.self.Name && m.Meta.ClusterID != "" && m.Meta.ClusterID == n.table.ClusterID &&
		m.Meta.Generation > 0 && m.Meta.Partitions == len(n.table.Partitions) &&
		!n.table.Tombstoned(Holder{m.Name, m.Meta.Generation})
}

// member returns h as a live member, when it is one.
func (n *Node) member(h Holder) (Member, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	m, ok := n.members[h.Name]
	if !ok || !n.eligibleLocked(m.Member) || m.Meta.Generation != h.Generation {
		return Member{}, false
	}
	return m.Member, true
}

// goneForGood reports whether h will never take a partition: it left
// gracefully, its name is alive at another generation, or it was
// forgotten. A member declared dead may come back.
func (n *Node) goneForGood(h Holder) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.table.Tombstoned(h) {
		return true
	}
	m, ok := n.members[h.Name]
	return ok && (m.Alive && m.Meta.Generation != h.Generation || !m.Alive && m.left && m.Meta.Generation == h.Generation)
}

// desired returns each partition's desired holder over t among the live
// members (this node included unless it is leaving), and those members
// other than this node by name.
func (n *Node) desired(t Table) ([]string, map[string]Member) {
	peers := n.livePeers()
	n.mu.Lock()
	leaving := n.leaving
	n.mu.Unlock()
	byName := make(map[string]Member, len(peers))
	names := make([]string, 0, len(peers)+1)
	if !leaving {
		names = append(names, n.self.Name)
	}
	for _, m := range peers {
		byName[m.Name] = m
		names = append(names, m.Name)
	}
	return Desired(names, len(t.Partitions)), byName
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
