package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
	"github.com/orderengine/orderengine/gateway"
)

// engine is the gateway's Engine on top of this node's actors. It turns
// HTTP-level requests into actor commands and actor results back into the
// gateway's errors; it holds no state of its own.
type engine struct {
	node  atomic.Pointer[nodeActors] // nil until the journal is open
	clock actors.Clock
	// notReady says why there are no actors yet.
	notReady func() error
}

// nodeActors are what the engine asks, once the journal is open: the
// node's own actors and, on a cluster member, the router that asks the
// node holding an identity when it is not this one.
type nodeActors struct {
	skus   *actors.Registry
	orders *actors.Orders
	// routed is nil on a node that runs alone.
	routed *routing
}

// askSKU asks the SKU's actor, wherever it is.
func (n *nodeActors) askSKU(ctx context.Context, sku string, cmd proto.Message) (*pb.StockResult, error) {
	if n.routed != nil {
		return n.routed.askSKU(ctx, sku, cmd)
	}
	return n.skus.AskSKU(ctx, sku, cmd)
}

// askOrder asks the order's actor, wherever it is. fresh says the ID was
// just generated, so a local actor need not read the journal.
func (n *nodeActors) askOrder(ctx context.Context, id string, cmd proto.Message, fresh bool) (*pb.OrderResult, error) {
	switch {
	case n.routed != nil && fresh && n.routed.servesOrder(id):
		// Placed here by newOrderID: the actor starts empty, as on a
		// node of its own, without the journal read that Ask makes.
		return n.orders.AskNew(ctx, id, cmd)
	case n.routed != nil:
		return n.routed.askOrder(ctx, id, cmd, fresh)
	case fresh:
		return n.orders.AskNew(ctx, id, cmd)
	}
	return n.orders.Ask(ctx, id, cmd)
}

// actors returns the node's actors, or the 503 of a node that has none
// yet (its journal is not open).
func (e *engine) actors() (*nodeActors, error) {
	if n := e.node.Load(); n != nil {
		return n, nil
	}
	return nil, fmt.Errorf("%w: the node is not ready: %w", gateway.ErrUnavailable, e.notReady())
}

var _ gateway.Engine = (*engine)(nil)

func (e *engine) Restock(ctx context.Context, sku string, qty int64, key string) (gateway.SKUView, error) {
	return e.changeStock(ctx, sku, &pb.Restock{OpId: e.opID(key), Quantity: qty})
}

func (e *engine) Remove(ctx context.Context, sku string, qty int64, key string) (gateway.SKUView, error) {
	return e.changeStock(ctx, sku, &pb.Remove{OpId: e.opID(key), Quantity: qty})
}

// opID is the operation ID of a restock or remove: the client's
// Idempotency-Key (the SKU actor scopes it to the SKU and the operation),
// or a fresh unique ID, so that a request without a key always applies.
func (e *engine) opID(key string) string {
	if key != "" {
		return "key:" + key
	}
	id, err := actors.NewOrderID(e.clock.Now(), rand.Reader)
	if err != nil {
		panic(fmt.Sprintf("operation id: %v", err)) // crypto/rand does not fail
	}
	return "auto:" + id
}

func (e *engine) changeStock(ctx context.Context, sku string, cmd proto.Message) (gateway.SKUView, error) {
	n, err := e.actors()
	if err != nil {
		return gateway.SKUView{}, err
	}
	res, err := n.askSKU(ctx, sku, cmd)
	if err != nil {
		return gateway.SKUView{}, askError(err)
	}
	switch res.Outcome {
	case pb.Outcome_OUTCOME_APPLIED, pb.Outcome_OUTCOME_ALREADY_DONE:
		return skuView(res.View), nil
	case pb.Outcome_OUTCOME_INSUFFICIENT:
		return gateway.SKUView{}, &gateway.InsufficientStockError{SKU: sku, Available: res.View.GetAvailable()}
	case pb.Outcome_OUTCOME_CONFLICT:
		return gateway.SKUView{}, gateway.ErrIdempotencyKeyReused
	case pb.Outcome_OUTCOME_INVALID:
		return gateway.SKUView{}, &gateway.InvalidFieldError{Field: "quantity", Detail: res.Detail}
	default:
		return gateway.SKUView{}, unavailable(res.Outcome.String(), res.Detail)
	}
}

// SetLimit sets the SKU's purchase limit. Setting the limit in force is
// ALREADY_DONE, so a retry needs no key. A SKU never restocked may carry a
// limit, set before its sale opens.
func (e *engine) SetLimit(ctx context.Context, sku string, perCustomer int64) (gateway.SKUView, error) {
	n, err := e.actors()
	if err != nil {
		return gateway.SKUView{}, err
	}
	res, err := n.askSKU(ctx, sku, &pb.SetPurchaseLimit{PerCustomer: perCustomer})
	if err != nil {
		return gateway.SKUView{}, askError(err)
	}
	switch res.Outcome {
	case pb.Outcome_OUTCOME_APPLIED, pb.Outcome_OUTCOME_ALREADY_DONE:
		return skuView(res.View), nil
	case pb.Outcome_OUTCOME_INVALID:
		return gateway.SKUView{}, &gateway.InvalidFieldError{Field: "per_customer", Detail: res.Detail}
	default:
		return gateway.SKUView{}, unavailable(res.Outcome.String(), res.Detail)
	}
}

func (e *engine) SKU(ctx context.Context, sku string) (gateway.SKUView, error) {
	n, err := e.actors()
	if err != nil {
		return gateway.SKUView{}, err
	}
	res, err := n.askSKU(ctx, sku, &pb.GetStock{})
	if err != nil {
		return gateway.SKUView{}, askError(err)
	}
	switch {
	case res.Outcome != pb.Outcome_OUTCOME_APPLIED:
		return gateway.SKUView{}, unavailable(res.Outcome.String(), res.Detail)
	case !res.View.GetKnown():
		return gateway.SKUView{}, gateway.ErrNotFound
	}
	return skuView(res.View), nil
}

func (e *engine) PlaceOrder(ctx context.Context, req gateway.PlaceOrderRequest) (gateway.Order, error) {
	n, err := e.actors()
	if err != nil {
		return gateway.Order{}, err
	}
	var id string
	if req.IdempotencyKey != "" {
		id = actors.KeyedOrderID(req.Customer, req.IdempotencyKey)
	} else if id, err = e.newOrderID(n); err != nil {
		return gateway.Order{}, fmt.Errorf("order id: %w", err)
	}
	items := make([]*pb.OrderLine, len(req.Items))
	for i, it := range req.Items {
		items[i] = &pb.OrderLine{Sku: it.SKU, Quantity: it.Quantity}
	}
	cmd := &pb.PlaceOrder{OrderId: id, Customer: req.Customer, Items: items, TtlSeconds: int64(req.TTL / time.Second)}
	if req.IdempotencyKey != "" {
		res, err := n.askOrder(ctx, id, cmd, false)
		return e.orderResult(id, placed(res), err)
	}
	// Without a key a refusal leaves nothing behind: the order forgets
	// itself once it is rejected, and the 409 names no order.
	cmd.ForgetRejection = true
	if len(items) == 1 && n.routed == nil {
		// One line: the SKU's actor decides and journals the whole
		// checkout (actors.Checkout).
		res, err := n.skus.Checkout(ctx, cmd)
		if !errors.Is(err, actors.ErrCheckoutDeclined) {
			return e.orderResult("", placed(res), err)
		}
	}
	res, err := n.askOrder(ctx, id, cmd, true) // a fresh ID: no journal to read
	return e.orderResult("", placed(res), err)
}

// orderIDTriesMax bounds the fresh IDs newOrderID draws to find one that
// this cluster member serves. A member serving a share s of the
// partitions finds none with probability (1-s)^orderIDTriesMax: about
// 1e-11 for a third of them, 0.1 % for a tenth; the order then lives
// wherever its last ID falls, and is routed there.
const orderIDTriesMax = 64

// newOrderID names an unkeyed checkout's order. A cluster member draws IDs
// until one falls in a partition it serves: the order's actor is then
// local, and only its SKU commands may cross nodes, not the checkout
// itself. Choosing the partition costs an ID a few of its 80 random bits
// (log2 of P over the partitions served). A keyed order's ID is
// derived from its customer and key, so it cannot be placed.
func (e *engine) newOrderID(n *nodeActors) (string, error) {
	for range orderIDTriesMax - 1 {
		id, err := actors.NewOrderID(e.clock.Now(), rand.Reader)
		if err != nil || n.routed == nil || n.routed.servesOrder(id) {
			return id, err
		}
	}
	return actors.NewOrderID(e.clock.Now(), rand.Reader)
}

// placed is a checkout's answer as the API gives it. An order whose saga
// could not reserve its stock before its TTL ran out (its SKUs were
// unreachable meanwhile) answers EXPIRED; it exists and reads back
// expired, so the checkout is answered with it (201, status expired), the
// same for the first request and every replay, rather than as a refused
// move.
func placed(res *pb.OrderResult) *pb.OrderResult {
	if res != nil && res.Code == pb.OrderCode_ORDER_CODE_EXPIRED && res.Order != nil {
		return &pb.OrderResult{Code: pb.OrderCode_ORDER_CODE_OK, Order: res.Order}
	}
	return res
}

func (e *engine) Order(ctx context.Context, id string) (gateway.Order, error) {
	return e.orderCommand(ctx, id, &pb.GetOrder{OrderId: id})
}

func (e *engine) Pay(ctx context.Context, id, ref string) (gateway.Order, error) {
	return e.orderCommand(ctx, id, &pb.PayOrder{OrderId: id, PaymentRef: ref})
}

func (e *engine) Cancel(ctx context.Context, id string) (gateway.Order, error) {
	return e.orderCommand(ctx, id, &pb.CancelOrder{OrderId: id})
}

func (e *engine) Ship(ctx context.Context, id string) (gateway.Order, error) {
	return e.orderCommand(ctx, id, &pb.ShipOrder{OrderId: id})
}

func (e *engine) Complete(ctx context.Context, id string) (gateway.Order, error) {
	return e.orderCommand(ctx, id, &pb.CompleteOrder{OrderId: id})
}

func (e *engine) orderCommand(ctx context.Context, id string, cmd proto.Message) (gateway.Order, error) {
	n, err := e.actors()
	if err != nil {
		return gateway.Order{}, err
	}
	res, err := n.askOrder(ctx, id, cmd, false)
	return e.orderResult(id, res, err)
}

// orderResult maps an order actor's answer to the gateway's terms. id is
// the order a refusal names: "" for a checkout without a key, whose
// refused order forgets itself.
func (e *engine) orderResult(id string, res *pb.OrderResult, err error) (gateway.Order, error) {
	if err != nil {
		return gateway.Order{}, askError(err)
	}
	switch res.Code {
	case pb.OrderCode_ORDER_CODE_OK, pb.OrderCode_ORDER_CODE_ALREADY_DONE:
		return orderView(res.Order), nil
	case pb.OrderCode_ORDER_CODE_NOT_FOUND:
		return gateway.Order{}, gateway.ErrNotFound
	case pb.OrderCode_ORDER_CODE_OUT_OF_STOCK:
		return gateway.Order{}, &gateway.OutOfStockError{OrderID: id, SKU: res.Sku, Available: res.Available}
	case pb.OrderCode_ORDER_CODE_LIMIT_EXCEEDED:
		return gateway.Order{}, &gateway.LimitExceededError{OrderID: id, SKU: res.Sku, Limit: res.Limit}
	case pb.OrderCode_ORDER_CODE_INVALID_TRANSITION, pb.OrderCode_ORDER_CODE_EXPIRED:
		return gateway.Order{}, &gateway.InvalidTransitionError{Status: statusName(res.OrderStatus)}
	case pb.OrderCode_ORDER_CODE_IDEMPOTENCY_KEY_REUSED:
		return gateway.Order{}, gateway.ErrIdempotencyKeyReused
	case pb.OrderCode_ORDER_CODE_INVALID:
		return gateway.Order{}, &gateway.InvalidFieldError{Field: "items", Detail: res.Detail}
	default:
		return gateway.Order{}, unavailable(res.Code.String(), res.Detail)
	}
}

// askError maps a failed actor request: no answer in time is the
// gateway's 503, which tells the client to retry (every command is
// idempotent).
func askError(err error) error {
	if errors.Is(err, actors.ErrTimeout) || errors.Is(err, actors.ErrNotServed) {
		return fmt.Errorf("%w: %w", gateway.ErrUnavailable, err)
	}
	return err
}

// unavailable is an actor's UNAVAILABLE answer; one whose events the
// journal refused for a full volume is the gateway's ErrStorageFull too.
func unavailable(code, detail string) error {
	if actors.IsStorageFull(detail) {
		return fmt.Errorf("%w: %w: %s: %s", gateway.ErrUnavailable, gateway.ErrStorageFull, code, detail)
	}
	return fmt.Errorf("%w: %s: %s", gateway.ErrUnavailable, code, detail)
}

func skuView(v *pb.SKUView) gateway.SKUView {
	return gateway.SKUView{SKU: v.GetSku(), Available: v.GetAvailable(), Reserved: v.GetReserved(), Sold: v.GetSold(),
		PerCustomerLimit: v.GetPerCustomerLimit()}
}

func orderView(v *pb.OrderView) gateway.Order {
	items := make([]gateway.Item, len(v.GetItems()))
	for i, it := range v.GetItems() {
		items[i] = gateway.Item{SKU: it.Sku, Quantity: it.Quantity}
	}
	return gateway.Order{
		ID: v.GetId(), Status: statusName(v.GetStatus()), Customer: v.GetCustomer(), Items: items,
		CreatedAt: time.Unix(0, v.GetCreatedAtUnixNano()).UTC(), ExpiresAt: time.Unix(0, v.GetExpiresAtUnixNano()).UTC(),
		PaymentRef: v.GetPaymentRef(),
	}
}

// statusName turns ORDER_STATUS_RESERVED into "reserved", the API's name.
func statusName(s pb.OrderStatus) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "ORDER_STATUS_"))
}
