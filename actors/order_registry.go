package actors

import (
	"context"
	"fmt"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/orderengine/orderengine/actors/pb"
)

// Orders finds the actor of an order ID on this node and activates it on
// first use, next to a Registry's SKU actors. (It may fold into Registry;
// it is separate so the order actor could be built beside the SKU actor.)
type Orders struct {
	reg *Registry
	cfg OrderConfig
}

// NewOrders returns the order actors of reg's node and starts the node's
// order index. cfg.Skus defaults to reg.
func NewOrders(reg *Registry, cfg OrderConfig) *Orders {
	if cfg.Skus == nil {
		cfg.Skus = reg
	}
	cfg = cfg.withDefaults()
	j := cfg.Journal
	cfg.Index = reg.activate(orderIndexID, func() *actor.Props { return orderIndexProps(j) })
	return &Orders{reg: reg, cfg: cfg}
}

// RecoverOpen activates every order the index holds as open: those whose
// saga still owes a SKU something and those that can still expire. Each
// recovers from the journal and finishes its saga. The node calls it once
// at start, after the journal is open; it returns how many it woke.
func (o *Orders) RecoverOpen(ctx context.Context) (int, error) {
	ids, err := o.OpenOrders(ctx)
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		o.Send(id, &pb.RetryOrderSaga{})
	}
	return len(ids), nil
}

// OpenOrders returns the IDs the index holds as open, sorted.
func (o *Orders) OpenOrders(ctx context.Context) ([]string, error) {
	reply, err := o.reg.ask(ctx, func() *actor.PID { return o.cfg.Index }, &pb.ListOpenOrders{})
	if err != nil {
		return nil, err
	}
	res, ok := reply.(*pb.OrderIndexResult)
	if !ok || !res.Ok {
		return nil, fmt.Errorf("list open orders: %v", reply)
	}
	return res.OrderIds, nil
}

// PID returns the PID of the order's actor, activating it if needed.
func (o *Orders) PID(orderID string) *actor.PID {
	return o.reg.activate(orderActorName(orderID), func() *actor.Props { return OrderProps(orderID, o.cfg) })
}

func orderActorName(orderID string) string { return "order/" + orderID }

// Ask sends a command to an order actor and waits for its OrderResult
// until ctx is done. Every order command is idempotent, so a request that
// met a passivating actor is sent again to its next activation. A
// PlaceOrder is answered when its saga ends.
func (o *Orders) Ask(ctx context.Context, orderID string, cmd any) (*pb.OrderResult, error) {
	return o.askVia(ctx, orderID, func() *actor.PID { return o.PID(orderID) }, cmd)
}

func (o *Orders) askVia(ctx context.Context, orderID string, pid func() *actor.PID, cmd any) (*pb.OrderResult, error) {
	reply, err := o.reg.ask(ctx, pid, cmd)
	if err != nil {
		return nil, err
	}
	res, ok := reply.(*pb.OrderResult)
	if !ok {
		return nil, fmt.Errorf("%w: %T from order %s", ErrUnexpectedReply, reply, orderID)
	}
	return res, nil
}

// AskNew is Ask for an order ID that was just generated (NewOrderID): its
// actor starts empty without reading the journal, which would find
// nothing. A checkout without an idempotency key is one.
func (o *Orders) AskNew(ctx context.Context, orderID string, cmd any) (*pb.OrderResult, error) {
	pid := func() *actor.PID {
		return o.reg.activate(orderActorName(orderID), func() *actor.Props { return orderProps(orderID, o.cfg, true) })
	}
	return o.askVia(ctx, orderID, pid, cmd)
}

// Send delivers a message to an order actor without waiting: ticks such
// as ExpireOrder and RetryOrderSaga, or an injected StockAnswered in tests.
func (o *Orders) Send(orderID string, msg any) {
	o.reg.system.Root.Send(o.PID(orderID), msg)
}
