package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
	"github.com/orderengine/orderengine/gateway"
)

// Kinds of routed identity: the prefix of their actor name and journal
// identity ("sku/tea", "order/…").
const (
	kindSKU   = "sku"
	kindOrder = "order"
)

// router is what a cluster member needs from cluster.Router: a request to
// an identity's actor on whichever node serves it, and an actor's message
// to one (its answer comes back to the sending actor).
type router interface {
	Ask(ctx context.Context, kind, id string, msg proto.Message) (proto.Message, error)
	Send(sender actor.SenderContext, kind, id string, msg proto.Message) error
	Serves(kind, id string) bool
}

// routing is a cluster member's way to its identities' actors.
type routing struct {
	router     router
	errUnavail error // the router's "holder down or moving" error
	log        *slog.Logger
}

// servesOrder reports whether the order's actor lives on this node now.
func (r *routing) servesOrder(id string) bool { return r.router.Serves(kindOrder, id) }

func (r *routing) askSKU(ctx context.Context, sku string, cmd proto.Message) (*pb.StockResult, error) {
	return routedAsk[*pb.StockResult](ctx, r, kindSKU, sku, cmd)
}

func (r *routing) askOrder(ctx context.Context, id string, cmd proto.Message, _ bool) (*pb.OrderResult, error) {
	return routedAsk[*pb.OrderResult](ctx, r, kindOrder, id, cmd)
}

// routedAsk asks the actor of (kind, id) wherever it lives and expects an
// answer of type R.
func routedAsk[R proto.Message](ctx context.Context, r *routing, kind, id string, cmd proto.Message) (R, error) {
	var zero R
	reply, err := r.router.Ask(ctx, kind, id, cmd)
	if err != nil {
		return zero, r.askError(err)
	}
	res, ok := reply.(R)
	if !ok {
		return zero, fmt.Errorf("%w: %T from %s %s", actors.ErrUnexpectedReply, reply, kind, id)
	}
	return res, nil
}

// askError turns the router's refusals into the gateway's 503.
func (r *routing) askError(err error) error {
	if errors.Is(err, r.errUnavail) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", gateway.ErrUnavailable, err)
	}
	return askError(err)
}

// RequestSKU implements actors.OrderSKULink across the cluster. A command
// the router cannot deliver now is dropped: the order sends it again when
// it is overdue.
func (r *routing) RequestSKU(ctx actor.Context, sku string, msg proto.Message) {
	if err := r.router.Send(ctx, kindSKU, sku, msg); err != nil {
		r.log.Debug("SKU command not sent; the order retries it", "sku", sku, "err", err)
	}
}

var _ actors.OrderSKULink = (*routing)(nil)
