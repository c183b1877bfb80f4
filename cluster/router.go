package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/eventstream"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/orderengine/orderengine/cluster/pb"
)

// Limits of routing.
const (
	// RouterActorName is the name of every node's router actor: a node
	// reaches a peer's router at actor.NewPID(peerRemoteAddress, RouterActorName).
	RouterActorName = "router"
	// KindBytesMax and IDBytesMax bound an Envelope's kind and ID.
	KindBytesMax = 64
	IDBytesMax   = 256
	// HandoffChunkBytesMax bounds a HandoffChunk's data, well under gRPC's
	// default 4 MiB message limit that remote keeps.
	HandoffChunkBytesMax = 1 << 20
	// notMineRetriesMax is how many NotMine answers Ask retries after: the
	// design's "refresh the table and retry once".
	notMineRetriesMax = 1
	// deadLetterRetriesMax is how many dead-letter answers Ask retries
	// after: the holder's actor passivated between its activation and the
	// command's delivery, and a retry activates it again (commands are
	// idempotent).
	deadLetterRetriesMax = 3
	// viewChangeWaitMax is how long Ask waits, after a NotMine, for its
	// node's view of the partition to change before it retries anyway;
	// viewPollInterval is how often it looks.
	viewChangeWaitMax = 100 * time.Millisecond
	viewPollInterval  = 5 * time.Millisecond
)

// Errors of routing.
var (
	// ErrUnavailable means the partition of the identity cannot be served
	// now: its holder is not live, not serving, refused twice, is behind an
	// open circuit breaker, or did not answer in time. The gateway answers
	// 503; the command may be retried later.
	ErrUnavailable = errors.New("cluster: partition unavailable")
	// ErrHandoffRefused wraps the error text of a peer that refused a
	// handoff chunk.
	ErrHandoffRefused = errors.New("cluster: handoff chunk refused")
)

// ViewSource is what the router needs of a Node: its current view.
type ViewSource interface {
	View() View
}

// RouterConfig configures a Router. Everything but the breaker settings,
// Logger and Now is required.
type RouterConfig struct {
	// System is the node's actor system, with remote started already
	// (StartRemote).
	System *actor.ActorSystem
	// Views gives the node's current view of the cluster (a *Node).
	Views ViewSource
	// Partitions is P; Partition maps an identity (its kind and ID) to
	// 0..P-1 (the journal's persistence.Partition of the identity's
	// journal name, with P bound).
	Partitions int
	Partition  func(kind, id string) int
	// Activate returns the PID of the local actor of (kind, id),
	// activating it if needed; an error reports the partition unavailable.
	// The router actor calls it, so it must not block for long.
	Activate func(kind, id string) (*actor.PID, error)
	// LocalAsk asks the local actor of (kind, id): Ask's fast path when
	// this node serves the partition.
	LocalAsk func(ctx context.Context, kind, id string, msg proto.Message) (proto.Message, error)
	// ReceiveHandoff stores a chunk of a partition handed to this node;
	// its error is sent back to the sender. Chunks arrive one at a time,
	// in the order they were sent by each sender, on an actor of their own,
	// so a slow store does not hold up routing.
	ReceiveHandoff func(from Holder, chunk *pb.HandoffChunk) error
	// HasImport reports whether this node has stored the whole partition
	// p at epoch (a peer's QueryHandoff); nil answers false.
	HasImport func(p int, epoch uint64) (bool, error)
	// BreakerFailuresMax and BreakerCoolDown configure the per-peer
	// circuit breakers (DefaultBreakerFailuresMax, DefaultBreakerCoolDown
	// when 0).
	BreakerFailuresMax int
	BreakerCoolDown    time.Duration
	// Logger: slog.Default() when nil.
	Logger *slog.Logger
	// Now is the breakers' clock: time.Now when nil.
	Now func() time.Time
}

func (c RouterConfig) withDefaults() (RouterConfig, error) {
	if c.BreakerFailuresMax <= 0 {
		c.BreakerFailuresMax = DefaultBreakerFailuresMax
	}
	if c.BreakerCoolDown <= 0 {
		c.BreakerCoolDown = DefaultBreakerCoolDown
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.HasImport == nil {
		c.HasImport = func(int, uint64) (bool, error) { return false, nil }
	}
	switch {
	case c.System == nil || c.Views == nil || c.Partition == nil || c.Activate == nil ||
		c.LocalAsk == nil || c.ReceiveHandoff == nil:
		return c, fmt.Errorf("%w: router needs System, Views, Partition, Activate, LocalAsk and ReceiveHandoff", ErrConfig)
	case c.Partitions < 1 || c.Partitions > PartitionsMax:
		return c, fmt.Errorf("%w: %d partitions, want 1..%d", ErrConfig, c.Partitions, PartitionsMax)
	case !strings.Contains(c.System.Address(), ":"):
		return c, fmt.Errorf("%w: actor system address %q: start remote before the router", ErrConfig, c.System.Address())
	}
	return c, nil
}

// Router routes commands to the node that serves their identity's
// partition, over protoactor-go's remote. There is one per node: it runs
// the node's router actor, which receives the Envelopes that other nodes
// send and hands their commands to local actors, and it keeps a circuit
// breaker per peer, so that a crashed peer's partitions are reported
// unavailable at once rather than after a timeout per request.
type Router struct {
	cfg      RouterConfig
	system   *actor.ActorSystem
	log      *slog.Logger
	breakers *breakers
	pid      *actor.PID
	sub      *eventstream.Subscription
	stats    routerCounters
}

// NewRouter spawns the router actor (named RouterActorName) on cfg.System
// and starts watching remote's endpoint events for the breakers.
func NewRouter(cfg RouterConfig) (*Router, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Router{
		cfg:      cfg,
		system:   cfg.System,
		log:      cfg.Logger.With("component", "router"),
		breakers: newBreakers(cfg.BreakerFailuresMax, cfg.BreakerCoolDown, cfg.Now),
	}
	r.breakers.onOpen = func(addr string) {
		r.stats.breakerOpens.Add(1)
		r.log.Warn("circuit breaker opened", "peer", addr)
	}
	r.sub = r.system.EventStream.SubscribeWithPredicate(func(evt any) {
		ev := evt.(*remote.EndpointTerminatedEvent)
		r.breakers.trip(ev.Address)
	}, func(evt any) bool {
		_, ok := evt.(*remote.EndpointTerminatedEvent)
		return ok
	})
	props := actor.PropsFromProducer(func() actor.Actor { return &routerActor{r: r} })
	pid, err := r.system.Root.SpawnNamed(props, RouterActorName)
	if err != nil {
		r.system.EventStream.Unsubscribe(r.sub)
		return nil, fmt.Errorf("cluster: spawning the router actor: %w", err)
	}
	r.pid = pid
	return r, nil
}

// Close stops the router actor and its watch of remote's events.
func (r *Router) Close() error {
	r.system.EventStream.Unsubscribe(r.sub)
	if err := r.system.Root.StopFuture(r.pid).Wait(); err != nil {
		return fmt.Errorf("cluster: stopping the router actor: %w", err)
	}
	return nil
}

// PID is the router actor's PID.
func (r *Router) PID() *actor.PID { return r.pid }

// BreakerState reports the circuit breaker state of the peer at a remote
// address.
func (r *Router) BreakerState(addr string) BreakerState { return r.breakers.state(addr) }

// Ask sends msg to the actor of (kind, id) and waits for its reply until
// ctx is done. When this node serves the identity's partition it calls
// LocalAsk. Otherwise it sends an Envelope to the holder's router, which
// hands msg to the actor with this request as its sender, so that the reply
// comes straight back. An error wraps ErrUnavailable when the partition
// cannot be served now (see ErrUnavailable); it is returned at once when
// the holder is known to be down.
func (r *Router) Ask(ctx context.Context, kind, id string, msg proto.Message) (proto.Message, error) {
	p, err := r.partition(kind, id)
	if err != nil {
		return nil, err
	}
	var command *anypb.Any // packed once, when the first envelope goes out
	notMine, deadLetters := 0, 0
	for {
		v := r.cfg.Views.View()
		if v.Serving(p) {
			return r.cfg.LocalAsk(ctx, kind, id, msg)
		}
		t, err := r.route(v, p)
		if err != nil {
			return nil, err
		}
		if command == nil {
			if command, err = anypb.New(msg); err != nil {
				return nil, fmt.Errorf("cluster: packing a %T: %w", msg, err)
			}
		}
		env := &pb.Envelope{Partition: uint32(p), Epoch: t.assignment.Epoch, Kind: kind, Id: id, Command: command}
		r.stats.envelopesOut.Add(1)
		reply, err := r.request(ctx, t.addr, env)
		if err != nil {
			return nil, fmt.Errorf("partition %d at %v: %w", p, t.assignment.Holder, err)
		}
		switch m := reply.(type) {
		case *pb.NotMine:
			r.stats.notMineReceived.Add(1)
			if notMine++; notMine > notMineRetriesMax {
				return nil, r.unavailable(fmt.Errorf("%w: partition %d: not served at epoch %d by %v, which has it at epoch %d",
					ErrUnavailable, p, t.assignment.Epoch, t.assignment.Holder, m.GetEpoch()))
			}
			r.awaitViewChange(ctx, p, t.assignment)
			continue
		case *actor.DeadLetterResponse:
			if deadLetters++; deadLetters > deadLetterRetriesMax {
				return nil, r.unavailable(fmt.Errorf("%w: partition %d: dead letter at %v", ErrUnavailable, p, t.assignment.Holder))
			}
			r.stats.retries.Add(1)
			continue
		case *pb.Unavailable:
			return nil, r.unavailable(fmt.Errorf("%w: partition %d: %v says: %s", ErrUnavailable, p, t.assignment.Holder, m.GetDetail()))
		case proto.Message:
			return m, nil
		default:
			return nil, r.unavailable(fmt.Errorf("%w: partition %d: a reply of type %T", ErrUnavailable, p, reply))
		}
	}
}

// Serves reports whether this node serves the partition of (kind, id)
// now, so that Ask and Send would deliver to a local actor. A caller that
// names an identity itself (an unkeyed checkout's order) uses it to pick
// one that lives here, which saves a round trip to another node.
func (r *Router) Serves(kind, id string) bool {
	p := r.cfg.Partition(kind, id)
	return p >= 0 && p < r.cfg.Partitions && r.cfg.Views.View().Serving(p)
}

// Send delivers msg to the actor of (kind, id) on behalf of a local actor
// (sender), whose PID becomes the command's sender: the actor's reply goes
// straight to it. It never blocks: when the partition is unavailable or
// the holder's breaker is open it returns an error wrapping ErrUnavailable,
// and the caller retries later. A sending actor must expect, instead of
// its reply, a *pb.NotMine or *pb.Unavailable from the holder's router, or
// an *actor.DeadLetterResponse, and treat them as "retry later"; remote
// gives no other sign that a send was lost.
func (r *Router) Send(sender actor.SenderContext, kind, id string, msg proto.Message) error {
	p, err := r.partition(kind, id)
	if err != nil {
		return err
	}
	v := r.cfg.Views.View()
	if v.Serving(p) {
		pid, err := r.cfg.Activate(kind, id)
		if err != nil {
			return r.unavailable(fmt.Errorf("%w: activating %s %q: %w", ErrUnavailable, kind, id, err))
		}
		sender.Request(pid, msg)
		return nil
	}
	t, err := r.route(v, p)
	if err != nil {
		return err
	}
	if r.breakers.refusing(t.addr) {
		return r.unavailable(fmt.Errorf("%w: partition %d: circuit breaker open for %v at %s", ErrUnavailable, p, t.assignment.Holder, t.addr))
	}
	command, err := anypb.New(msg)
	if err != nil {
		return fmt.Errorf("cluster: packing a %T: %w", msg, err)
	}
	r.stats.envelopesOut.Add(1)
	sender.Request(actor.NewPID(t.addr, RouterActorName),
		&pb.Envelope{Partition: uint32(p), Epoch: t.assignment.Epoch, Kind: kind, Id: id, Command: command})
	return nil
}

// SendHandoff sends one chunk of a partition to the node to, the
// partition's next holder, and waits for its acknowledgement until ctx is
// done. chunk.From is set to this node when nil. An error wraps
// ErrUnavailable when to is not reachable, or ErrHandoffRefused with to's
// reason when it did not store the chunk.
func (r *Router) SendHandoff(ctx context.Context, to Holder, chunk *pb.HandoffChunk) error {
	if n := len(chunk.GetData()); n > HandoffChunkBytesMax {
		return fmt.Errorf("cluster: handoff chunk of %d bytes, limit %d", n, HandoffChunkBytesMax)
	}
	v := r.cfg.Views.View()
	if chunk.From == nil {
		chunk.From = &pb.Holder{Name: v.Self.Name, Generation: v.Self.Generation}
	}
	addr, ok := memberAddress(v, to)
	if !ok {
		return r.unavailable(fmt.Errorf("%w: handoff to %v: not a live member with an address", ErrUnavailable, to))
	}
	r.stats.handoffChunksOut.Add(1)
	reply, err := r.request(ctx, addr, chunk)
	if err != nil {
		return fmt.Errorf("handoff to %v: %w", to, err)
	}
	switch m := reply.(type) {
	case *pb.HandoffAck:
		if m.GetPartition() != chunk.GetPartition() || m.GetEpoch() != chunk.GetEpoch() || m.GetSeq() != chunk.GetSeq() {
			return fmt.Errorf("%w: handoff to %v: ack for %d/%d/%d, want %d/%d/%d", ErrUnavailable, to,
				m.GetPartition(), m.GetEpoch(), m.GetSeq(), chunk.GetPartition(), chunk.GetEpoch(), chunk.GetSeq())
		}
		if m.GetError() != "" {
			return fmt.Errorf("%w by %v: %s", ErrHandoffRefused, to, m.GetError())
		}
		return nil
	case *pb.Unavailable:
		return r.unavailable(fmt.Errorf("%w: handoff to %v: %s", ErrUnavailable, to, m.GetDetail()))
	default:
		return r.unavailable(fmt.Errorf("%w: handoff to %v: a reply of type %T", ErrUnavailable, to, reply))
	}
}

// QueryHandoff asks node to whether it has stored the whole partition
// p at epoch, and waits for the answer until ctx is done. An error wraps
// ErrUnavailable when to is not reachable.
func (r *Router) QueryHandoff(ctx context.Context, to Holder, p int, epoch uint64) (bool, error) {
	addr, ok := memberAddress(r.cfg.Views.View(), to)
	if !ok {
		return false, r.unavailable(fmt.Errorf("%w: handoff query to %v: not a live member with an address", ErrUnavailable, to))
	}
	reply, err := r.request(ctx, addr, &pb.HandoffQuery{Partition: uint32(p), Epoch: epoch})
	if err != nil {
		return false, fmt.Errorf("handoff query to %v: %w", to, err)
	}
	switch m := reply.(type) {
	case *pb.HandoffQueryReply:
		if m.GetError() != "" {
			return false, fmt.Errorf("%w by %v: %s", ErrHandoffRefused, to, m.GetError())
		}
		return m.GetComplete(), nil
	case *pb.Unavailable:
		return false, r.unavailable(fmt.Errorf("%w: handoff query to %v: %s", ErrUnavailable, to, m.GetDetail()))
	default:
		return false, r.unavailable(fmt.Errorf("%w: handoff query to %v: a reply of type %T", ErrUnavailable, to, reply))
	}
}

func (r *Router) partition(kind, id string) (int, error) {
	p := r.cfg.Partition(kind, id)
	if p < 0 || p >= r.cfg.Partitions {
		return 0, fmt.Errorf("cluster: partition %d of %q out of 0..%d", p, id, r.cfg.Partitions-1)
	}
	return p, nil
}

func (r *Router) unavailable(err error) error {
	r.stats.unavailable.Add(1)
	return err
}

// target is where a partition's commands go: its holder's assignment in
// this node's view and the holder's remote address.
type target struct {
	assignment Assignment
	addr       string
}

// route finds partition p's holder in v, or returns an error wrapping
// ErrUnavailable when it is not a live member serving p. It is only asked
// about partitions this node does not serve.
func (r *Router) route(v View, p int) (target, error) {
	a := v.Assignment(p)
	var why string
	switch {
	case a.Epoch == 0:
		why = "nobody holds it"
	case a.State != StateServing:
		why = fmt.Sprintf("%v is %v", a.Holder, a.State)
	case a.Holder == v.Self:
		why = "this node holds it but does not serve yet"
	}
	if why == "" {
		addr, ok := memberAddress(v, a.Holder)
		if ok {
			return target{assignment: a, addr: addr}, nil
		}
		why = fmt.Sprintf("%v has no remote address", a.Holder)
	}
	return target{}, r.unavailable(fmt.Errorf("%w: partition %d: %s", ErrUnavailable, p, why))
}

// memberAddress returns the remote address of h when it is a live member
// of v.
func memberAddress(v View, h Holder) (string, bool) {
	if !v.Live(h) {
		return "", false
	}
	i, ok := slices.BinarySearchFunc(v.Members, h.Name, func(m Member, name string) int {
		return strings.Compare(m.Name, name)
	})
	if !ok || v.Members[i].Meta.RemoteAddress == "" {
		return "", false
	}
	return v.Members[i].Meta.RemoteAddress, true
}

// awaitViewChange waits, at most viewChangeWaitMax, until this node's view
// of partition p differs from was: the table it routed with was stale, and
// gossip is likely to bring the newer one soon.
func (r *Router) awaitViewChange(ctx context.Context, p int, was Assignment) {
	deadline := time.NewTimer(viewChangeWaitMax)
	defer deadline.Stop()
	tick := time.NewTicker(viewPollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-tick.C:
			if r.cfg.Views.View().Assignment(p) != was {
				return
			}
		}
	}
}
