// Package memnet is an in-memory network for memberlist, for tests of
// clusters inside one process. Unlike memberlist's MockNetwork it can cut,
// drop and delay traffic on each directed link, pause a node, and close a
// node's transport as a crash does, and nothing in it blocks forever on a
// peer that has stopped.
//
// Addresses are "127.0.0.1:port" strings handed out by the Network; no
// socket is opened. Packets are delivered through a bounded inbox per node
// and dropped when it is full, as UDP would. A stream is a net.Pipe whose
// dial fails on a cut link, on a dropped draw, or when the peer is gone.
package memnet

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Limits of the simulated network.
const (
	// inboxPacketsMax bounds the packets waiting for one node (delayed,
	// held while it is paused, or not yet read); more are dropped.
	inboxPacketsMax = 1024
	// streamsPendingMax bounds streams accepted for a node and not yet
	// taken by memberlist.
	streamsPendingMax = 64
	firstPort         = 20000
)

// ErrUnreachable is returned by a dial over a cut link, to a node that is
// gone, or when the dial was drawn to be dropped.
var ErrUnreachable = errors.New("memnet: unreachable")

// Link is the behaviour of one direction between two nodes.
type Link struct {
	// Cut drops every packet and refuses every stream.
	Cut bool
	// DropRate is the share of packets dropped and of stream dials refused,
	// 0 to 1.
	DropRate float64
	// Delay holds every packet and stream dial this long.
	Delay time.Duration
}

type link struct{ from, to string }

// Network connects the transports made from it.
type Network struct {
	mu       sync.Mutex
	nodes    map[string]*Transport
	links    map[link]Link
	rng      *rand.Rand
	nextPort int
}

// New returns an empty network whose drops are drawn from seed.
func New(seed uint64) *Network {
	return &Network{
		nodes:    map[string]*Transport{},
		links:    map[link]Link{},
		rng:      rand.New(rand.NewPCG(seed, seed^0x5eed)),
		nextPort: firstPort,
	}
}

// NewTransport returns a transport at a new address.
func (n *Network) NewTransport() *Transport {
	n.mu.Lock()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(n.nextPort))
	n.nextPort++
	n.mu.Unlock()
	t, err := n.NewTransportAt(addr)
	if err != nil {
		panic(err) // a fresh address cannot be taken
	}
	return t
}

// NewTransportAt returns a transport at addr, which must not be in use: a
// node that crashed may come back at its old address.
func (n *Network) NewTransportAt(addr string) (*Transport, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("memnet: %w", err)
	}
	ip := net.ParseIP(host)
	port, err := strconv.Atoi(portStr)
	if ip == nil || err != nil {
		return nil, fmt.Errorf("memnet: address %q is not ip:port", addr)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.nodes[addr]; ok {
		return nil, fmt.Errorf("memnet: address %s in use", addr)
	}
	t := &Transport{
		net:     n,
		addr:    addr,
		ip:      ip,
		port:    port,
		packets: make(chan *memberlist.Packet, inboxPacketsMax),
		streams: make(chan net.Conn, streamsPendingMax),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		resumed: closedChan(),
		conns:   map[net.Conn]struct{}{},
	}
	n.nodes[addr] = t
	t.wg.Add(1)
	go t.deliver()
	return t, nil
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// SetLink sets the behaviour of the link from one address to another.
func (n *Network) SetLink(from, to string, l Link) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if l == (Link{}) {
		delete(n.links, link{from, to})
		return
	}
	n.links[link{from, to}] = l
}

// Cut cuts both directions between a and b.
func (n *Network) Cut(a, b string) {
	n.SetLink(a, b, Link{Cut: true})
	n.SetLink(b, a, Link{Cut: true})
}

// Partition cuts every link between a node of one side and a node of the
// other.
func (n *Network) Partition(one, other []string) {
	for _, a := range one {
		for _, b := range other {
			n.Cut(a, b)
		}
	}
}

// HealAll restores every link.
func (n *Network) HealAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.links)
}

// route returns the destination of a packet or dial from one address to
// another, its delay, and whether it gets through.
func (n *Network) route(from, to string) (*Transport, time.Duration, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	dst, ok := n.nodes[to]
	l := n.links[link{from, to}]
	if !ok || l.Cut || (l.DropRate > 0 && n.rng.Float64() < l.DropRate) {
		return nil, 0, false
	}
	return dst, l.Delay, true
}

func (n *Network) remove(t *Transport) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nodes[t.addr] == t {
		delete(n.nodes, t.addr)
	}
}
