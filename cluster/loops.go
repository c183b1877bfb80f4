package cluster

import (
	"bytes"
	"slices"
	"strings"
	"time"
)

// eventLoop is the one goroutine that applies membership events and
// publishes the node's metadata when its table changes. Shutdown stops it.
func (n *Node) eventLoop() {
	defer n.wg.Done()
	var published []byte
	for {
		select {
		case <-n.ctx.Done():
			return
		case e := <-n.events:
			n.applyEvent(e)
		case <-n.changed:
			published = n.publishMeta(published)
		}
		if n.overflow.Swap(false) {
			n.log.Warn("membership events overflowed; re-reading the member list")
			n.resync()
		}
	}
}

func (n *Node) applyEvent(e memberEvent) {
	meta, err := DecodeMeta(e.meta)
	if err != nil {
		n.log.Warn("member metadata refused", "member", e.name, "err", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.recordLocked(e.name, e.addr, meta, e.alive)
	if m := n.members[e.name]; m != nil {
		m.left = e.left
	}
	n.invalidateLocked()
	signal(n.wake)
}

// recordLocked updates what the node knows of a member; n.mu is held.
func (n *Node) recordLocked(name, addr string, meta Meta, alive bool) {
	m, ok := n.members[name]
	if !ok {
		if len(n.members) >= membersMax {
			n.log.Warn("too many members to remember; ignoring one", "member", name, "max", membersMax)
			return
		}
		m = &memberRecord{}
		n.members[name] = m
	}
	if m.Alive && !alive {
		m.deadSince = n.cfg.Now()
	}
	m.Member = Member{Name: name, Addr: addr, Meta: meta, Alive: alive}
	n.invalidateLocked()
	if alive {
		m.left = false
	}
	if alive && name != n.self.Name {
		n.log.Debug("member alive", "member", name, "addr", addr)
	} else if !alive {
		n.log.Info("member gone", "member", name, "addr", addr)
	}
}

// resync re-reads memberlist's member list after events were dropped.
func (n *Node) resync() {
	alive := map[string]bool{}
	for _, node := range n.ml.Members() {
		alive[node.Name] = true
		meta, err := DecodeMeta(node.Meta)
		if err != nil {
			n.log.Warn("member metadata refused", "member", node.Name, "err", err)
		}
		n.mu.Lock()
		n.recordLocked(node.Name, node.Address(), meta, true)
		n.mu.Unlock()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for name, m := range n.members {
		if m.Alive && !alive[name] {
			n.recordLocked(name, m.Addr, m.Meta, false)
		}
	}
}

// publishMeta gossips the node's metadata when it differs from what was
// last published, and returns what is published now.
func (n *Node) publishMeta(published []byte) []byte {
	b, err := n.encodeMeta()
	if err != nil || bytes.Equal(b, published) {
		return published
	}
	// The only error is the wait's timeout: the update is queued anyway.
	err = n.ml.UpdateNode(metaBroadcastWait)
	n.log.Debug("metadata published", "bytes", len(b), "err", err)
	return b
}

// rejoinLoop joins the seeds until the node is ready, and then, every
// RejoinInterval, the seeds and the members it saw die: memberlist only
// exchanges state with members it thinks alive, so without this the two
// sides of a healed network partition, or a node that was paused past its
// peers' patience, would never merge again. When this node made a new
// epoch it also pushes its table to every live member at once. Shutdown
// stops it.
func (n *Node) rejoinLoop() {
	defer n.wg.Done()
	retry := min(n.cfg.RejoinInterval, joinRetryIntervalMax)
	wait := n.cfg.RejoinInterval
	if !n.isReady() {
		wait = 0
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		push := false
		select {
		case <-n.ctx.Done():
			return
		case <-timer.C:
		case <-n.pushNow:
			push = true
		}
		if targets := n.rejoinTargets(push); len(targets) > 0 {
			joined, err := n.ml.Join(targets)
			n.log.Debug("re-joined", "targets", len(targets), "joined", joined, "err", err)
		}
		wait = n.cfg.RejoinInterval
		if !n.isReady() {
			wait = retry
		}
		timer.Reset(wait)
	}
}

// rejoinTargets returns the addresses to join: the seeds, the dead members
// worth trying again, and with push every live member; at most
// rejoinTargetsMax of them. It forgets dead members that hold nothing and
// died more than deadRetention ago.
func (n *Node) rejoinTargets(push bool) []string {
	self := n.addr
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.cfg.Now()
	var dead, alive []*memberRecord
	for name, m := range n.members {
		switch {
		case name == n.self.Name:
		case m.Alive:
			alive = append(alive, m)
		case now.Sub(m.deadSince) > deadRetention && len(n.table.Held(Holder{name, m.Meta.Generation})) == 0:
			delete(n.members, name)
			n.invalidateLocked()
		default:
			dead = append(dead, m)
		}
	}
	// The most recently dead first: the likeliest to be back.
	slices.SortFunc(dead, func(a, b *memberRecord) int { return b.deadSince.Compare(a.deadSince) })
	targets := make([]string, 0, rejoinTargetsMax)
	add := func(addr string) {
		if addr != "" && addr != self && len(targets) < rejoinTargetsMax && !slices.Contains(targets, addr) {
			targets = append(targets, addr)
		}
	}
	for _, s := range n.cfg.Seeds {
		add(s)
	}
	for _, m := range dead {
		add(m.Addr)
	}
	if push {
		for _, m := range alive {
			add(m.Addr)
		}
	}
	return targets
}

func sortMembers(ms []Member) {
	slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
}
