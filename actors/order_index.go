package actors

import (
	"fmt"
	"slices"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/actors/pb"
)

// The order index is one actor per node that knows which orders are open:
// their saga owes a SKU something, or they can still expire. Nothing else
// would wake such an order after the node restarts, and a paid order whose
// commits never arrive would see the SKU's safety expiry hand its units to
// someone else. An order is opened (durably) before its first SKU command
// and closed once it owes nothing and cannot expire; Orders.RecoverOpen
// activates every open order when the node starts.
const (
	orderIndexID = "order-index" // journal identity and actor name
	// orderIndexSnapshotEvery is the number of index events between
	// snapshots: two per order, so one snapshot per 5 000 orders.
	orderIndexSnapshotEvery = 10_000
)

// orderIndexState is the set of open orders.
type orderIndexState struct {
	sequence uint64
	open     map[string]struct{}
}

func newOrderIndexState() *orderIndexState {
	return &orderIndexState{open: map[string]struct{}{}}
}

func (s *orderIndexState) apply(seq uint64, ev *pb.OrderIndexEvent) {
	if seq != s.sequence+1 {
		panic(fmt.Sprintf("order index: event sequence %d after %d", seq, s.sequence))
	}
	switch b := ev.Body.(type) {
	case *pb.OrderIndexEvent_Opened:
		s.open[b.Opened.OrderId] = struct{}{}
	case *pb.OrderIndexEvent_Closed:
		delete(s.open, b.Closed.OrderId)
	default:
		panic(fmt.Sprintf("order index: event %d has no body", seq))
	}
	s.sequence = seq
}

// decideOrderIndex returns the events of one index command and its reply
// (nil for CloseOrder).
func decideOrderIndex(s *orderIndexState, cmd any) ([]*pb.OrderIndexEvent, *pb.OrderIndexResult) {
	switch c := cmd.(type) {
	case *pb.OpenOrder:
		if _, ok := s.open[c.OrderId]; ok || c.OrderId == "" {
			return nil, &pb.OrderIndexResult{Ok: c.OrderId != ""}
		}
		return []*pb.OrderIndexEvent{{SchemaVersion: orderSchemaVersion,
			Body: &pb.OrderIndexEvent_Opened{Opened: &pb.OrderOpened{OrderId: c.OrderId}}}}, &pb.OrderIndexResult{Ok: true}
	case *pb.CloseOrder:
		if _, ok := s.open[c.OrderId]; !ok {
			return nil, nil
		}
		return []*pb.OrderIndexEvent{{SchemaVersion: orderSchemaVersion,
			Body: &pb.OrderIndexEvent_Closed{Closed: &pb.OrderClosed{OrderId: c.OrderId}}}}, nil
	case *pb.ListOpenOrders:
		ids := make([]string, 0, len(s.open))
		for id := range s.open {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		return nil, &pb.OrderIndexResult{Ok: true, OrderIds: ids}
	}
	return nil, &pb.OrderIndexResult{Detail: fmt.Sprintf("unknown command %T", cmd)}
}

func (s *orderIndexState) snapshot() *pb.OrderIndexSnapshot {
	open := make([]string, 0, len(s.open))
	for id := range s.open {
		open = append(open, id)
	}
	slices.Sort(open)
	return &pb.OrderIndexSnapshot{SchemaVersion: orderSchemaVersion, Sequence: s.sequence, Open: open}
}

// loadOrderIndex rebuilds the index from its snapshot and the events after
// it, and returns the snapshot's sequence too.
func loadOrderIndex(j Journal) (*orderIndexState, uint64, error) {
	snapSeq, b, err := j.LoadSnapshot(orderIndexID)
	if err != nil {
		return nil, 0, fmt.Errorf("load order index snapshot: %w", err)
	}
	s := newOrderIndexState()
	if b != nil {
		snap := &pb.OrderIndexSnapshot{}
		if err := proto.Unmarshal(b, snap); err != nil {
			return nil, 0, fmt.Errorf("decode order index snapshot: %w", err)
		}
		if snap.SchemaVersion != orderSchemaVersion || snap.Sequence != snapSeq {
			return nil, 0, fmt.Errorf("order index snapshot: version %d sequence %d, want %d and %d",
				snap.SchemaVersion, snap.Sequence, orderSchemaVersion, snapSeq)
		}
		s.sequence = snap.Sequence
		for _, id := range snap.Open {
			s.open[id] = struct{}{}
		}
	}
	err = j.Replay(orderIndexID, s.sequence, func(seq uint64, b []byte) (err error) {
		ev := &pb.OrderIndexEvent{}
		if err := proto.Unmarshal(b, ev); err != nil {
			return fmt.Errorf("order index event %d: %w", seq, err)
		}
		if ev.SchemaVersion != orderSchemaVersion || ev.Body == nil {
			return fmt.Errorf("order index event %d: version %d or no body", seq, ev.SchemaVersion)
		}
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("order index event %d does not apply: %v", seq, r)
			}
		}()
		s.apply(seq, ev)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("replay order index: %w", err)
	}
	return s, snapSeq, nil
}

// orderIndexActor is the shell around orderIndexState, like the SKU
// actor's: apply at once, journal in batches, answer once durable.
type orderIndexActor struct {
	journal Journal
	state   *orderIndexState
	log     *durableLog
	carry   *restartCarry
	loadErr error
	// snapshotOpen is the number of open orders in the latest snapshot;
	// it spaces the next one.
	snapshotOpen uint64
}

func orderIndexProps(j Journal) *actor.Props {
	carry := &restartCarry{}
	return actor.PropsFromProducer(func() actor.Actor {
		return &orderIndexActor{journal: j, carry: carry, log: newDurableLog(orderIndexID, j, failedOrderIndexResult)}
	})
}

func failedOrderIndexResult(reply any, detail string) any {
	return &pb.OrderIndexResult{Detail: detail}
}

func (a *orderIndexActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		if !a.carry.waiting() {
			a.load(ctx)
		}
	case *actor.Restarting:
		a.carry.restarting(a.log)
		a.log.failAll(ctx, "order index restarted")
	case *actor.Stopping:
		a.log.failAll(ctx, "order index stopped")
	case *appendDone:
		if held, ok := a.carry.opened(m); ok {
			a.load(ctx)
			for _, e := range held {
				a.command(ctx, e.msg, e.sender)
			}
			return
		}
		if !a.log.appended(ctx, m) {
			a.load(ctx)
		}
		// Spaced by the size of the last snapshot as well, like a SKU's:
		// the snapshot carries every open order.
		if a.state != nil && a.log.snapshotDue(max(orderIndexSnapshotEvery, a.snapshotOpen)) {
			a.snapshotOpen = uint64(len(a.state.open))
			b, err := proto.Marshal(a.state.snapshot())
			if err != nil {
				panic("encode order index snapshot: " + err.Error())
			}
			a.log.saveSnapshot(b)
		}
	case *snapshotDone:
		a.log.snapshotSaved(m)
	case *pb.OpenOrder, *pb.CloseOrder, *pb.ListOpenOrders:
		a.command(ctx, m, ctx.Sender())
	}
}

func (a *orderIndexActor) command(ctx actor.Context, cmd any, sender *actor.PID) {
	if a.carry.waiting() {
		if !a.carry.hold(cmd, sender) && sender != nil {
			ctx.Send(sender, &pb.OrderIndexResult{Detail: "order index is recovering"})
		}
		return
	}
	if a.state == nil {
		a.load(ctx)
	}
	if a.state == nil {
		if sender != nil {
			ctx.Send(sender, &pb.OrderIndexResult{Detail: "order index unreadable: " + a.loadErr.Error()})
		}
		return
	}
	events, reply := decideOrderIndex(a.state, cmd)
	for _, ev := range events {
		a.state.apply(a.state.sequence+1, ev)
		b, err := proto.Marshal(ev)
		if err != nil {
			panic("encode order index event: " + err.Error())
		}
		a.log.record(b)
	}
	if reply != nil {
		a.log.reply(ctx, sender, reply)
	}
	a.log.flush()
}

func (a *orderIndexActor) load(ctx actor.Context) {
	state, snap, err := loadOrderIndex(a.journal)
	if err != nil {
		a.state, a.loadErr = nil, err
		return
	}
	a.state, a.loadErr = state, nil
	a.log.start(ctx, state.sequence, snap)
}
