package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Handoff moves a partition from its holder H at epoch e to its desired
// holder N, driven by H (handoff_loop.go runs it):
//
//  1. H saves (H, e, HandingOff) through its PartitionStore, then stops
//     the partition's actors (StopServing) and releases its journal fence
//     (Release): nothing of p commits at H after that.
//  2. H exports p's key range and sends it to N in Chunks; N imports them
//     durably as p's data at e+1 and acks each; the last chunk completes
//     the import.
//  3. H commits: it saves (N, e+1, Pending), adopts and pushes the table,
//     and drops its copy of p. Only H creates epoch e+1.
//  4. N, seeing (N, e+1, Pending) with its import at e+1 complete, holds
//     the fence at e+1, starts the actors (StartServing), and saves and
//     gossips (N, e+1, Serving).
//
// A failed attempt (a lost chunk or ack, N down) is retried: H first asks
// N whether it has p at e+1 complete (the ack may be all that was lost),
// and streams again if not. After HandoffTimeout H gives up: it saves
// (H, e+1, Serving) and serves p again itself, at a new epoch because a
// state never goes back within one. A holder that restarts with p handing
// off asks every live member whether it has p at e+1 complete, commits to
// the one that has, and gives up when all say no (or at the timeout). A
// node drops an import of p that its table has passed (p is at that epoch
// or later and not its own), and at start every incomplete one: the table,
// which only H changes at e+1, decides which copy serves, so at most one
// does, and p is unavailable from step 1 until step 4 or the give-up.

// Limits and defaults of handoff.
const (
	// DefaultHandoffsMax is how many partitions a node hands off at once.
	DefaultHandoffsMax = 2
	// DefaultHandoffTimeout is how long a holder keeps trying one handoff
	// before it gives up and serves the partition again itself.
	DefaultHandoffTimeout = 30 * time.Second
	// ChunkBytesMax bounds one chunk's data; a receiver refuses more.
	ChunkBytesMax = 1 << 20
	// handoffRetryInterval is how long a failed handoff attempt waits
	// before the next, and how often the handoff loop looks again at what
	// should move when nothing wakes it.
	handoffRetryInterval = 200 * time.Millisecond
	// leavePollInterval is how often Leave looks whether its partitions
	// are gone.
	leavePollInterval = 20 * time.Millisecond
	// leaveAnnounceWait bounds how long Leave waits for the news that the
	// node is leaving to go out before it starts handing off.
	leaveAnnounceWait = 500 * time.Millisecond
)

// Errors of handoff.
var (
	// ErrStaleChunk: the receiver's table is at the chunk's epoch or past
	// it, or the receiver holds the partition itself.
	ErrStaleChunk = errors.New("cluster: chunk for an epoch already decided")
	// ErrLeaving: the receiver is leaving and takes no partitions.
	ErrLeaving = errors.New("cluster: node is leaving")
	// ErrHandoffIncomplete: Leave ran out of time or of other members with
	// partitions still held.
	ErrHandoffIncomplete = errors.New("cluster: partitions not handed off")
	errPartitionChanged  = errors.New("cluster: partition changed meanwhile")
)

// Chunk is one piece of a partition's key range on its way to the
// partition's next holder.
type Chunk struct {
	Partition int
	// Epoch is the epoch the receiver will hold the partition at: the
	// sender's epoch plus one.
	Epoch uint64
	// From is the sender, for logs.
	From Holder
	// Seq numbers the chunks of one stream from 0. A stream that is tried
	// again starts again at 0.
	Seq uint64
	// Last marks the stream's final chunk (possibly empty): once it is
	// stored the import is complete.
	Last bool
	// Data is opaque to this package: what the sender's Export emitted.
	Data []byte
}

// PartitionStore is this node's side of the partitions' data: the
// journal. Handoff calls it from its own goroutines, never with the node's
// lock held.
type PartitionStore interface {
	// Hold lets writes of p commit from now on, fenced at epoch.
	Hold(p int, epoch uint64)
	// Release fences p off: no write of p commits after it returns.
	Release(p int)
	// Export calls emit with p's whole key range, consistent (p is
	// released), in chunks of at most ChunkBytesMax bytes, in an order
	// that is the same every time while p is released.
	Export(p int, emit func(chunk []byte) error) error
	// Import stores c durably as part of p's data at c.Epoch and returns
	// once it is stored. Seq 0 at an epoch above that of the store's
	// import of p, or of an incomplete one at the same epoch, begins a new
	// import that replaces whatever the store had of p. A chunk already
	// stored, or any chunk at the epoch of a complete import, changes
	// nothing and succeeds; one that would leave a gap, or at a lower
	// epoch, fails. The Last chunk marks the import complete.
	Import(c Chunk) error
	// Imported reports the epoch of the store's latest import of p and
	// whether it is complete; 0 when it has none.
	Imported(p int) (epoch uint64, complete bool, err error)
	// Drop deletes p's data and its import; it is cheap when the store
	// has nothing of p.
	Drop(p int) error
	// SaveTable stores t durably; the node reads it back at start through
	// Config.Table. A node saves every table it makes before it gossips
	// it, and every table it acts on before it acts.
	SaveTable(t Table) error
}

// HandoffTransport carries handoffs between nodes. Both calls return
// when the peer has answered, ctx is done, or the transport gives up; the
// real one sends protobuf requests over the actor system's remote to
// to.Meta.RemoteAddress, where they end in the peer's ReceiveChunk and
// HasImport.
type HandoffTransport interface {
	// SendChunk delivers c to peer to and returns nil once the peer has
	// stored it. After an error the chunk may or may not be stored. When
	// the peer refused it because it is leaving, the error must satisfy
	// errors.Is(err, ErrLeaving): the sender then gives up at once.
	SendChunk(ctx context.Context, to Member, c Chunk) error
	// HasImport asks peer to whether it has partition p completely
	// imported at epoch (or holds p at epoch already).
	HasImport(ctx context.Context, to Member, p int, epoch uint64) (bool, error)
}

// HandoffStats counts this node's handoffs since it started.
type HandoffStats struct {
	// Started, Completed and GivenUp count handoffs from this node;
	// recoveries after a restart count as started. Failed counts failed
	// attempts, which are retried.
	Started, Completed, Failed, GivenUp uint64
	// BytesSent and BytesReceived count chunk data.
	BytesSent, BytesReceived uint64
	// InFlight is how many partitions this node is handing off now.
	InFlight int
	// LastDuration is how long the last completed handoff took, from
	// marking the partition handing off to the commit.
	LastDuration time.Duration
}

type handoffCounters struct {
	started, completed, failed, givenUp atomic.Uint64
	bytesSent, bytesReceived            atomic.Uint64
	inFlight                            atomic.Int64
	lastDuration                        atomic.Int64
}

// HandoffStats returns a snapshot of the node's handoff counters.
func (n *Node) HandoffStats() HandoffStats {
	c := &n.stats
	return HandoffStats{
		Started: c.started.Load(), Completed: c.completed.Load(), Failed: c.failed.Load(), GivenUp: c.givenUp.Load(),
		BytesSent: c.bytesSent.Load(), BytesReceived: c.bytesReceived.Load(),
		InFlight: int(c.inFlight.Load()), LastDuration: time.Duration(c.lastDuration.Load()),
	}
}

// ReceiveChunk stores a chunk a peer hands off to this node; the
// transport calls it and acks the chunk when it returns nil. A chunk
// already stored, or one of a handoff already committed to this node,
// succeeds again.
func (n *Node) ReceiveChunk(c Chunk) error {
	if n.cfg.Store == nil {
		return fmt.Errorf("cluster: node takes no handoffs: no store")
	}
	if len(c.Data) > ChunkBytesMax {
		return fmt.Errorf("cluster: chunk of %d bytes, limit %d", len(c.Data), ChunkBytesMax)
	}
	n.importMu.Lock()
	defer n.importMu.Unlock()
	n.mu.Lock()
	left, leaving := n.left, n.leaving
	var a Assignment
	if c.Partition >= 0 && c.Partition < len(n.table.Partitions) {
		a = n.table.Partitions[c.Partition]
	}
	p := len(n.table.Partitions)
	n.mu.Unlock()
	switch {
	case c.Partition < 0 || c.Partition >= p:
		return fmt.Errorf("cluster: chunk of partition %d of %d", c.Partition, p)
	case left:
		return ErrStopped
	case a.Holder == n.self && a.Epoch == c.Epoch:
		return nil // the handoff was committed: this is a late copy
	case a.Holder == n.self || a.Epoch >= c.Epoch:
		return fmt.Errorf("%w: partition %d at epoch %d here (%v), chunk at %d", ErrStaleChunk, c.Partition, a.Epoch, a.Holder, c.Epoch)
	case leaving && c.Seq == 0:
		return ErrLeaving
	}
	if err := n.cfg.Store.Import(c); err != nil {
		return fmt.Errorf("cluster: import partition %d: %w", c.Partition, err)
	}
	n.stats.bytesReceived.Add(uint64(len(c.Data)))
	if c.Last {
		if n.receivedFrom == nil {
			n.receivedFrom = map[int]string{}
		}
		n.receivedFrom[c.Partition] = c.From.Name
		signal(n.wake) // the commit may already be here
	}
	return nil
}

// HasImport answers a holder's question whether this node has partition p
// completely imported at epoch, or holds it at that epoch already; the
// transport calls it.
func (n *Node) HasImport(p int, epoch uint64) (bool, error) {
	if n.cfg.Store == nil {
		return false, nil
	}
	n.importMu.Lock()
	defer n.importMu.Unlock()
	n.mu.Lock()
	if p < 0 || p >= len(n.table.Partitions) {
		n.mu.Unlock()
		return false, fmt.Errorf("cluster: partition %d of %d", p, len(n.table.Partitions))
	}
	a := n.table.Partitions[p]
	n.mu.Unlock()
	if a.Holder == n.self && a.Epoch == epoch {
		return true, nil
	}
	got, complete, err := n.cfg.Store.Imported(p)
	if err != nil {
		return false, err
	}
	return got == epoch && complete, nil
}

// dropStale deletes this node's data of p unless the store has an import
// of p above epoch, which a newer handoff to this node has begun. The
// import lock keeps chunks out meanwhile.
func (n *Node) dropStale(p int, epoch uint64) error {
	n.importMu.Lock()
	defer n.importMu.Unlock()
	got, _, err := n.cfg.Store.Imported(p)
	if err != nil {
		return err
	}
	if got > epoch {
		return nil
	}
	return n.cfg.Store.Drop(p)
}
