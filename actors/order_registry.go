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

// NewOrders returns the order actors of reg's node. cfg.SKUs defaults to
// reg.
func NewOrders(reg *Registry, cfg OrderConfig) *Orders {
	if cfg.SKUs == nil {
		cfg.SKUs = reg
	}
	return &Orders{reg: reg, cfg: cfg.withDefaults()}
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
