package cluster

import (
	"sync"
	"time"
)

// Defaults and limits of the per-peer circuit breakers.
const (
	// DefaultBreakerFailuresMax is how many requests to one peer in a row
	// may time out before its breaker opens.
	DefaultBreakerFailuresMax = 3
	// DefaultBreakerCoolDown is how long an open breaker fails requests at
	// once before it lets one through to probe the peer.
	DefaultBreakerCoolDown = time.Second
	// breakerPeersMax bounds the peers the breakers remember; beyond it,
	// closed breakers with no failures are forgotten (they are the
	// default state anyway).
	breakerPeersMax = 1024
)

// BreakerState is where one peer's circuit breaker stands.
type BreakerState uint8

const (
	// BreakerClosed: requests to the peer go through.
	BreakerClosed BreakerState = iota
	// BreakerOpen: requests to the peer fail at once until the cool-down
	// has passed.
	BreakerOpen
	// BreakerHalfOpen: the cool-down has passed; one request probes the
	// peer while the others fail at once.
	BreakerHalfOpen
)

func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half-open"
	}
	return "breaker-state(?)"
}

// breakers holds one circuit breaker per peer, keyed by the peer's remote
// address. A breaker opens when the peer's remote endpoint terminates
// (trip) or after failuresMax timeouts in a row; while open, allow refuses
// at once. After coolDown one request is let through as a probe: its
// success closes the breaker, its failure opens it again.
//
// Each closed breaker also has a channel, down, that is closed when the
// breaker trips, so that requests in flight to a peer whose endpoint
// terminated fail then rather than at their own timeouts.
type breakers struct {
	failuresMax int
	coolDown    time.Duration
	now         func() time.Time
	// onOpen, when set, is called (under the lock; it must be quick) each
	// time a breaker opens.
	onOpen func(addr string)

	mu    sync.Mutex
	peers map[string]*peerBreaker
}

type peerBreaker struct {
	state    BreakerState
	failures int
	openedAt time.Time
	// probing is true while the one request admitted in half-open state
	// is outstanding.
	probing bool
	down    chan struct{}
}

func newBreakers(failuresMax int, coolDown time.Duration, now func() time.Time) *breakers {
	return &breakers{failuresMax: failuresMax, coolDown: coolDown, now: now, peers: map[string]*peerBreaker{}}
}

// ticket is one admitted request to a peer. Exactly one of success,
// failure or cancel must be called when it ends.
type ticket struct {
	b     *breakers
	addr  string
	probe bool
	// down is closed if the peer's endpoint terminates meanwhile.
	down <-chan struct{}
}

// allow admits a request to addr, or reports false when the peer's breaker
// is open (or half-open with its probe already outstanding).
func (b *breakers) allow(addr string) (ticket, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	pb := b.peerLocked(addr)
	switch pb.state {
	case BreakerOpen:
		if b.now().Sub(pb.openedAt) < b.coolDown {
			return ticket{}, false
		}
		pb.state = BreakerHalfOpen
		pb.probing = false
		fallthrough
	case BreakerHalfOpen:
		if pb.probing {
			return ticket{}, false
		}
		pb.probing = true
		return ticket{b: b, addr: addr, probe: true, down: pb.down}, true
	}
	return ticket{b: b, addr: addr, down: pb.down}, true
}

// refusing reports whether addr's breaker is open with its cool-down still
// running: the check for fire-and-forget sends, which take no ticket since
// nothing tells whether they arrived. After the cool-down they go through
// even while a probe decides: a send to a peer that is still dead costs
// nothing but a retry of its saga, and a node whose only traffic to a peer
// is sends would otherwise never reach it again.
func (b *breakers) refusing(addr string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	pb, ok := b.peers[addr]
	return ok && pb.state == BreakerOpen && b.now().Sub(pb.openedAt) < b.coolDown
}

// state reports addr's breaker state as allow would find it now.
func (b *breakers) state(addr string) BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	pb, ok := b.peers[addr]
	if !ok {
		return BreakerClosed
	}
	if pb.state == BreakerOpen && b.now().Sub(pb.openedAt) >= b.coolDown {
		return BreakerHalfOpen
	}
	return pb.state
}

// trip opens addr's breaker at once: its remote endpoint terminated.
// Requests in flight to it see their down channel closed.
func (b *breakers) trip(addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.openLocked(addr, b.peerLocked(addr))
}

// success records that a request admitted by t got its answer.
func (t ticket) success() {
	b := t.b
	b.mu.Lock()
	defer b.mu.Unlock()
	pb := b.peerLocked(t.addr)
	pb.failures = 0
	if t.probe && pb.state == BreakerHalfOpen {
		pb.state = BreakerClosed
		pb.probing = false
	}
}

// failure records that a request admitted by t timed out.
func (t ticket) failure() {
	b := t.b
	b.mu.Lock()
	defer b.mu.Unlock()
	pb := b.peerLocked(t.addr)
	switch {
	case t.probe && pb.state == BreakerHalfOpen:
		b.openLocked(t.addr, pb)
	case pb.state == BreakerClosed:
		pb.failures++
		if pb.failures >= b.failuresMax {
			b.openLocked(t.addr, pb)
		}
	}
}

// cancel records that a request admitted by t ended without telling
// anything about the peer (its caller gave up, or the peer's endpoint
// terminated, which trip has recorded). A probe's slot is freed.
func (t ticket) cancel() {
	if !t.probe {
		return
	}
	b := t.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if pb := b.peerLocked(t.addr); pb.state == BreakerHalfOpen {
		pb.probing = false
	}
}

func (b *breakers) peerLocked(addr string) *peerBreaker {
	pb, ok := b.peers[addr]
	if ok {
		return pb
	}
	if len(b.peers) >= breakerPeersMax {
		for a, p := range b.peers {
			if p.state == BreakerClosed && p.failures == 0 {
				delete(b.peers, a)
			}
		}
	}
	pb = &peerBreaker{down: make(chan struct{})}
	b.peers[addr] = pb
	return pb
}

// openLocked opens pb (again), failing the requests in flight to it: its
// down channel is closed and replaced, so that requests admitted later
// (probes) wait on a fresh one.
func (b *breakers) openLocked(addr string, pb *peerBreaker) {
	pb.state = BreakerOpen
	pb.openedAt = b.now()
	pb.failures = 0
	pb.probing = false
	close(pb.down)
	pb.down = make(chan struct{})
	if b.onOpen != nil {
		b.onOpen(addr)
	}
}
