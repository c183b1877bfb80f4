package cluster

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/orderengine/orderengine/cluster/pb"
)

// handoffActorName is the router actor's child that stores handoff chunks,
// so that a slow store does not hold up routing.
const handoffActorName = "handoff"

// routerActor is a node's router actor. For an Envelope it checks that the
// node serves the partition at the envelope's epoch, activates the actor
// and hands it the command with the envelope's sender as sender, so the
// reply goes straight back to the requester without passing through here.
// It answers NotMine or Unavailable otherwise, and never panics on what a
// peer sent.
type routerActor struct {
	r       *Router
	handoff *actor.PID
}

func (a *routerActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *pb.Envelope:
		a.r.stats.envelopesIn.Add(1)
		a.receiveEnvelope(ctx, m)
	case *pb.HandoffChunk:
		a.r.stats.handoffChunksIn.Add(1)
		ctx.Forward(a.handoff)
	case *pb.HandoffQuery:
		ctx.Forward(a.handoff)
	case *actor.Started:
		props := actor.PropsFromProducer(func() actor.Actor { return &handoffActor{r: a.r} })
		pid, err := ctx.SpawnNamed(props, handoffActorName)
		if err != nil {
			panic(fmt.Sprintf("cluster: spawning the handoff actor: %v", err))
		}
		a.handoff = pid
	case actor.SystemMessage, actor.AutoReceiveMessage:
	default:
		a.r.stats.unexpected.Add(1)
		a.r.log.Warn("router got an unexpected message", "type", fmt.Sprintf("%T", m), "sender", ctx.Sender())
	}
}

func (a *routerActor) receiveEnvelope(ctx actor.Context, env *pb.Envelope) {
	r := a.r
	if err := r.validEnvelope(env); err != nil {
		a.refuse(ctx, env, err)
		return
	}
	p := int(env.GetPartition())
	v := r.cfg.Views.View()
	if p >= len(v.Table.Partitions) || !v.Serving(p) || v.Table.Partitions[p].Epoch != env.GetEpoch() {
		var as Assignment
		if p < len(v.Table.Partitions) {
			as = v.Assignment(p)
		}
		r.stats.notMineSent.Add(1)
		ctx.Respond(&pb.NotMine{
			Partition: env.GetPartition(),
			Holder:    &pb.Holder{Name: as.Holder.Name, Generation: as.Holder.Generation},
			Epoch:     as.Epoch,
			State:     stateToProto(as.State),
		})
		return
	}
	command, err := decodeCommand(env.GetCommand())
	if err != nil {
		a.refuse(ctx, env, err)
		return
	}
	pid, err := r.cfg.Activate(env.GetKind(), env.GetId())
	if err != nil {
		a.refuse(ctx, env, fmt.Errorf("activating: %w", err))
		return
	}
	ctx.RequestWithCustomSender(pid, command, ctx.Sender())
}

// refuse answers Unavailable and logs why: a peer sent something this node
// cannot deliver although it serves the partition.
func (a *routerActor) refuse(ctx actor.Context, env *pb.Envelope, err error) {
	a.r.stats.unavailableSent.Add(1)
	a.r.log.Warn("router refused an envelope", "partition", env.GetPartition(), "kind", env.GetKind(),
		"id", env.GetId(), "sender", ctx.Sender(), "err", err)
	ctx.Respond(&pb.Unavailable{Detail: err.Error()})
}

func (r *Router) validEnvelope(env *pb.Envelope) error {
	kind, id := env.GetKind(), env.GetId()
	switch {
	case int(env.GetPartition()) >= r.cfg.Partitions:
		return fmt.Errorf("partition %d out of 0..%d", env.GetPartition(), r.cfg.Partitions-1)
	case kind == "" || len(kind) > KindBytesMax || !utf8.ValidString(kind):
		return fmt.Errorf("kind of %d bytes, want 1..%d of UTF-8", len(kind), KindBytesMax)
	case id == "" || len(id) > IDBytesMax || !utf8.ValidString(id):
		return fmt.Errorf("id of %d bytes, want 1..%d of UTF-8", len(id), IDBytesMax)
	case env.GetEpoch() == 0:
		return errors.New("epoch 0")
	}
	if p := r.cfg.Partition(kind, id); p != int(env.GetPartition()) {
		return fmt.Errorf("id %q is in partition %d here, not %d: do the nodes agree on P?", id, p, env.GetPartition())
	}
	return nil
}

// decodeCommand unpacks an envelope's command. It returns an error, and
// never panics, for a missing command, a type this binary does not link,
// or bytes that do not decode.
func decodeCommand(a *anypb.Any) (m proto.Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			m, err = nil, fmt.Errorf("decoding the command: panic: %v", p)
		}
	}()
	if a == nil {
		return nil, errors.New("no command")
	}
	m, err = a.UnmarshalNew()
	if err != nil {
		return nil, fmt.Errorf("decoding a command of type %q: %w", a.GetTypeUrl(), err)
	}
	return m, nil
}

func stateToProto(s State) pb.State {
	switch s {
	case StatePending:
		return pb.State_STATE_PENDING
	case StateServing:
		return pb.State_STATE_SERVING
	case StateHandingOff:
		return pb.State_STATE_HANDING_OFF
	}
	return pb.State_STATE_UNSPECIFIED
}

// handoffActor stores the handoff chunks the router actor forwards to it,
// one at a time, and acknowledges each to its sender.
type handoffActor struct{ r *Router }

func (a *handoffActor) Receive(ctx actor.Context) {
	var chunk *pb.HandoffChunk
	switch m := ctx.Message().(type) {
	case *pb.HandoffChunk:
		chunk = m
	case *pb.HandoffQuery:
		a.query(ctx, m)
		return
	default:
		return
	}
	ack := &pb.HandoffAck{Partition: chunk.GetPartition(), Epoch: chunk.GetEpoch(), Seq: chunk.GetSeq()}
	from := Holder{Name: chunk.GetFrom().GetName(), Generation: chunk.GetFrom().GetGeneration()}
	switch {
	case int(chunk.GetPartition()) >= a.r.cfg.Partitions:
		ack.Error = fmt.Sprintf("partition %d out of 0..%d", chunk.GetPartition(), a.r.cfg.Partitions-1)
	case len(chunk.GetData()) > HandoffChunkBytesMax:
		ack.Error = fmt.Sprintf("chunk of %d bytes, limit %d", len(chunk.GetData()), HandoffChunkBytesMax)
	case validHolder(from) != nil:
		ack.Error = fmt.Sprintf("from: %v", validHolder(from))
	default:
		if err := a.r.cfg.ReceiveHandoff(from, chunk); err != nil {
			ack.Error = err.Error()
		}
	}
	if ack.Error != "" {
		a.r.stats.handoffRefused.Add(1)
		a.r.log.Warn("handoff chunk refused", "partition", chunk.GetPartition(), "epoch", chunk.GetEpoch(),
			"seq", chunk.GetSeq(), "from", from, "err", ack.Error)
	}
	ctx.Respond(ack)
}

// query answers whether this node holds a complete import of a partition
// at an epoch.
func (a *handoffActor) query(ctx actor.Context, q *pb.HandoffQuery) {
	reply := &pb.HandoffQueryReply{Partition: q.GetPartition(), Epoch: q.GetEpoch()}
	if int(q.GetPartition()) >= a.r.cfg.Partitions {
		reply.Error = fmt.Sprintf("partition %d out of 0..%d", q.GetPartition(), a.r.cfg.Partitions-1)
	} else if done, err := a.r.cfg.HasImport(int(q.GetPartition()), q.GetEpoch()); err != nil {
		reply.Error = err.Error()
	} else {
		reply.Complete = done
	}
	ctx.Respond(reply)
}
