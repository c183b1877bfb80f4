package memnet

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Transport is one node's memberlist.Transport on a Network.
type Transport struct {
	net     *Network
	addr    string
	ip      net.IP
	port    int
	packets chan *memberlist.Packet
	streams chan net.Conn
	wake    chan struct{} // the deliver goroutine has something to look at
	done    chan struct{} // closed by Shutdown
	wg      sync.WaitGroup

	mu      sync.Mutex
	inbox   []delivery    // packets not yet due or held while paused
	resumed chan struct{} // closed while the node is not paused
	conns   map[net.Conn]struct{}
	closed  bool
}

type delivery struct {
	at     time.Time
	packet *memberlist.Packet
}

var _ memberlist.Transport = (*Transport)(nil)

// errShutdown is returned by a transport used after Shutdown.
var errShutdown = errors.New("memnet: transport shut down")

// Addr returns the transport's address, for memberlist's Join.
func (t *Transport) Addr() string { return t.addr }

// FinalAdvertiseAddr implements memberlist.Transport: the node's own address.
func (t *Transport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return t.ip, t.port, nil
}

// Pause freezes the node as SIGSTOP would, as far as its peers can tell:
// its sends and dials wait until Resume, packets for it wait in its
// inbox, and dials to it wait until it resumes or they time out. Streams
// already open keep working.
func (t *Transport) Pause() {
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-t.resumed:
		t.resumed = make(chan struct{})
	default:
	}
}

// Resume undoes Pause.
func (t *Transport) Resume() {
	t.mu.Lock()
	select {
	case <-t.resumed:
	default:
		close(t.resumed)
	}
	t.mu.Unlock()
	t.poke()
}

func (t *Transport) whenResumed() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.resumed
}

// waitResumed blocks while the node is paused; it fails once the
// transport is shut down or the deadline channel fires.
func (t *Transport) waitResumed(deadline <-chan time.Time) error {
	select {
	case <-t.whenResumed():
		return nil
	case <-t.done:
		return errShutdown
	case <-deadline:
		return fmt.Errorf("%w: %s is paused", ErrUnreachable, t.addr)
	}
}

func (t *Transport) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// WriteTo implements memberlist.Transport. A packet that the network
// drops is reported sent, as UDP does.
func (t *Transport) WriteTo(b []byte, addr string) (time.Time, error) {
	if err := t.waitResumed(nil); err != nil {
		return time.Time{}, err
	}
	now := time.Now()
	dst, delay, ok := t.net.route(t.addr, addr)
	if !ok {
		return now, nil
	}
	p := &memberlist.Packet{Buf: append([]byte(nil), b...), From: t.udpAddr(), Timestamp: now}
	dst.enqueue(delivery{at: now.Add(delay), packet: p})
	return now, nil
}

func (t *Transport) udpAddr() net.Addr { return &net.UDPAddr{IP: t.ip, Port: t.port} }

func (t *Transport) enqueue(d delivery) {
	t.mu.Lock()
	if t.closed || len(t.inbox) >= inboxPacketsMax {
		t.mu.Unlock()
		return
	}
	t.inbox = append(t.inbox, d)
	t.mu.Unlock()
	t.poke()
}

// deliver hands due packets to memberlist while the node is not paused.
// It is the transport's one goroutine; Shutdown stops it.
func (t *Transport) deliver() {
	defer t.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var wait <-chan time.Time
		t.mu.Lock()
		paused := false
		select {
		case <-t.resumed:
		default:
			paused = true
		}
		now := time.Now()
		var due []*memberlist.Packet
		if !paused {
			kept := t.inbox[:0]
			next := time.Time{}
			for _, d := range t.inbox {
				if !d.at.After(now) {
					due = append(due, d.packet)
					continue
				}
				kept = append(kept, d)
				if next.IsZero() || d.at.Before(next) {
					next = d.at
				}
			}
			clear(t.inbox[len(kept):])
			t.inbox = kept
			if !next.IsZero() {
				timer.Reset(next.Sub(now))
				wait = timer.C
			}
		}
		t.mu.Unlock()
		for _, p := range due {
			select {
			case t.packets <- p:
			default: // memberlist is not keeping up: drop, as a full socket buffer would
			}
		}
		select {
		case <-t.done:
			return
		case <-t.wake:
		case <-wait:
		}
	}
}

// PacketCh implements memberlist.Transport.
func (t *Transport) PacketCh() <-chan *memberlist.Packet { return t.packets }

// StreamCh implements memberlist.Transport.
func (t *Transport) StreamCh() <-chan net.Conn { return t.streams }

// DialTimeout implements memberlist.Transport.
func (t *Transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	if err := t.waitResumed(deadline.C); err != nil {
		return nil, err
	}
	dst, delay, ok := t.net.route(t.addr, addr)
	if !ok {
		return nil, fmt.Errorf("%w: %s from %s", ErrUnreachable, addr, t.addr)
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-t.done:
			return nil, errShutdown
		}
	}
	if err := dst.waitResumed(deadline.C); err != nil {
		return nil, err
	}
	client, server := net.Pipe()
	c, s := t.track(pipeConn{client, t.tcpAddr(), dst.tcpAddr()}), dst.track(pipeConn{server, dst.tcpAddr(), t.tcpAddr()})
	if c != nil && s != nil {
		select {
		case dst.streams <- s:
			return c, nil
		case <-dst.done:
		case <-t.done:
		case <-deadline.C:
		}
	}
	for _, end := range []net.Conn{c, s, client, server} {
		if end != nil {
			end.Close()
		}
	}
	return nil, fmt.Errorf("%w: %s did not accept", ErrUnreachable, addr)
}

func (t *Transport) tcpAddr() net.Addr { return &net.TCPAddr{IP: t.ip, Port: t.port} }

// track records a stream end so that Shutdown can close it; it returns nil
// when the transport is already shut down.
func (t *Transport) track(c pipeConn) net.Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	tc := &trackedConn{pipeConn: c, t: t}
	t.conns[tc] = struct{}{}
	return tc
}

// Shutdown implements memberlist.Transport. It is also how a test crashes
// a node: everything in flight to or from it is lost, its open streams
// close, and its address becomes free for a restart.
func (t *Transport) Shutdown() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.done)
	conns := t.conns
	t.conns = nil
	t.inbox = nil
	t.mu.Unlock()
	for c := range conns {
		c.Close()
	}
	t.net.remove(t)
	t.wg.Wait()
	return nil
}

// pipeConn is one end of a net.Pipe that reports TCP addresses.
type pipeConn struct {
	net.Conn
	local, remote net.Addr
}

func (c pipeConn) LocalAddr() net.Addr  { return c.local }
func (c pipeConn) RemoteAddr() net.Addr { return c.remote }

type trackedConn struct {
	pipeConn
	t *Transport
}

func (c *trackedConn) Close() error {
	c.t.mu.Lock()
	delete(c.t.conns, c)
	c.t.mu.Unlock()
	return c.pipeConn.Close()
}
