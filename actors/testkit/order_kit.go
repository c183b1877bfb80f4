package testkit

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
)

// Checkout is a Kit with order actors beside the SKU actors. The order
// actors reach the SKUs through Link, so a test can drop, duplicate, delay
// and reorder the saga's commands; it can inject any message into either
// side, move the fake clock, and crash either side.
type Checkout struct {
	*Kit
	Orders *actors.Orders
	Link   *Link

	omu    sync.Mutex
	orders map[string]bool // orders the kit has talked to, for Advance
}

// NewCheckout starts a Checkout; cfg's journal, clock, link and logger are
// filled in by the kit.
func NewCheckout(t TB, cfg actors.OrderConfig, opts ...Option) *Checkout {
	t.Helper()
	k := New(t, opts...)
	c := &Checkout{Kit: k, orders: map[string]bool{}}
	c.Link = newLink(k.System, func(sku string) *actor.PID { return k.Registry.SKUPID(sku) }, k.Timeout)
	cfg.Journal, cfg.Clock, cfg.SKUs = k.Journal, k.Clock, c.Link
	k.mu.Lock()
	k.causes = append(k.causes, c.Link.hold, c.sagaOwes)
	k.mu.Unlock()
	if cfg.Logger == nil {
		cfg.Logger = k.Logger
	}
	c.Orders = actors.NewOrders(k.Registry, cfg)
	// Stop the order actors and the link before the kit stops the system
	// (cleanups run last-registered first): protoactor's Shutdown leaves
	// actors and their timers running, which slows every later test.
	t.Cleanup(c.stopAll)
	return c
}

// stopAll stops every order actor the kit knows and the link's proxies,
// and waits for them (bounded by Timeout).
func (c *Checkout) stopAll() {
	var futures []*actor.Future
	for _, id := range c.known() {
		// By name, not through Orders.PID: an order that passivated must
		// not be activated only to be stopped.
		futures = append(futures, c.System.Root.StopFuture(actor.NewPID(c.System.Address(), "order/"+id)))
	}
	futures = append(futures, c.Link.stopAll()...)
	deadline := time.Now().Add(c.Timeout)
	for _, f := range futures {
		if time.Until(deadline) <= 0 {
			return
		}
		_ = f.Wait() // a dead letter or a timeout: it is gone or going
	}
}

// untilDone is a slog.Handler that drops records once done is set.
type untilDone struct {
	slog.Handler
	done *atomic.Bool
}

func (h *untilDone) Handle(ctx context.Context, r slog.Record) error {
	if h.done.Load() {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h *untilDone) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &untilDone{Handler: h.Handler.WithAttrs(attrs), done: h.done}
}

func (h *untilDone) WithGroup(name string) slog.Handler {
	return &untilDone{Handler: h.Handler.WithGroup(name), done: h.done}
}

// AskOrder sends cmd to the order's actor and returns its reply, failing
// the test if none comes within Timeout or if an order actor would not
// answer cmd (see TryAskOrder). A PlaceOrder returns when its saga has
// ended. Call it from the test's goroutine.
//
// An order's actor is named by its order ID, and every command carries the
// ID again (PlaceOrder.OrderId, PayOrder.OrderId, ...); a command whose ID
// is not the actor's is answered INVALID. The engine's IDs are "o_" and a
// ULID: actors.KeyedOrderID(customer, idempotencyKey) for a checkout with
// an idempotency key (a retry reaches the same order), an
// actors.OrderIDSource otherwise. The actors take any ID of 1 to 128
// characters of [A-Za-z0-9._:-], so tests may use short ones.
func (c *Checkout) AskOrder(orderID string, cmd any) *pb.OrderResult {
	c.T.Helper()
	res, err := c.TryAskOrder(orderID, cmd)
	if err != nil {
		c.T.Fatalf("ask order %s %T: %v", orderID, cmd, err)
	}
	return res
}

// TryAskOrder is AskOrder returning the error instead of failing the test.
// Safe to call from any goroutine. A command an order actor does not answer
// (a *pb.ReserveStock, or a tick such as *pb.ExpireOrder, which SendOrder
// takes) is refused at once with an error wrapping ErrUnhandled; no answer
// within Timeout is an error wrapping actors.ErrTimeout that says what the
// kit saw.
func (c *Checkout) TryAskOrder(orderID string, cmd any) (*pb.OrderResult, error) {
	return c.orderAsk(orderID, cmd).try()
}

// AskOrderAsync sends cmd to the order's actor and returns at once; the
// Call gets the reply, or the error TryAskOrder would return. Safe from
// any goroutine.
func (c *Checkout) AskOrderAsync(orderID string, cmd any) *Call[*pb.OrderResult] {
	return c.orderAsk(orderID, cmd).async()
}

func (c *Checkout) orderAsk(orderID string, cmd any) request[*pb.OrderResult] {
	return request[*pb.OrderResult]{k: c.Kit, kind: orderKind, id: orderID, cmd: cmd,
		remember: func() { c.remember(orderID) }, ask: c.Orders.Ask}
}

// PlaceOrderAsync sends a PlaceOrder and returns at once; the channel gets
// the reply (nil when the request failed) when the saga ends. AskOrderAsync
// does the same for any command and keeps the error.
func (c *Checkout) PlaceOrderAsync(cmd *pb.PlaceOrder) <-chan *pb.OrderResult {
	out := make(chan *pb.OrderResult, 1)
	call := c.AskOrderAsync(cmd.OrderId, cmd)
	c.calls.Go(func() {
		res, _ := call.Result()
		out <- res
	})
	return out
}

// SendOrder delivers msg to the order's actor without waiting: a tick, or
// an injected StockAnswered that pretends to be a SKU's (late, duplicate)
// answer. A message an order actor does not handle fails the test at once.
func (c *Checkout) SendOrder(orderID string, msg any) {
	c.T.Helper()
	if err := orderKind.checkSend(msg); err != nil {
		c.T.Fatalf("send order %s: %v", orderID, err)
	}
	c.remember(orderID)
	c.Orders.Send(orderID, msg)
}

// remember activates the order's actor and records it for Advance and
// Tick. Activating first matters: protoactor registers an actor's name
// before its mailbox is ready, so a message sent by name while another
// goroutine is still spawning it races (see Registry.activate); Tick only
// sends to actors whose spawn has returned.
func (c *Checkout) remember(orderID string) {
	c.Orders.PID(orderID)
	c.omu.Lock()
	c.orders[orderID] = true
	c.omu.Unlock()
}

// OrderIDs returns the orders the kit has talked to, in no order.
func (c *Checkout) OrderIDs() []string { return c.known() }

// Tick sends ExpireOrder and RetryOrderSaga to every order the kit has
// talked to and returns without waiting; safe from any goroutine. Advance
// is Tick plus moving the clock, sweeping the SKUs and waiting.
func (c *Checkout) Tick() {
	for _, id := range c.known() {
		c.Orders.Send(id, &pb.ExpireOrder{})
		c.Orders.Send(id, &pb.RetryOrderSaga{})
	}
}

func (c *Checkout) known() []string {
	c.omu.Lock()
	defer c.omu.Unlock()
	ids := make([]string, 0, len(c.orders))
	for id := range c.orders {
		ids = append(ids, id)
	}
	return ids
}

// Advance moves the clock forward, sweeps the SKUs (Kit.Advance), wakes
// what the journal's wake index says is due (as a node's waker does), and
// wakes every order the kit has talked to with ExpireOrder and
// RetryOrderSaga, so that expiries and overdue SKU commands happen before
// the next step of the test (the SKU answers still arrive asynchronously:
// use Eventually to wait for their effect).
func (c *Checkout) Advance(d time.Duration) {
	c.T.Helper()
	c.Kit.Advance(d)
	c.WakeDue()
	for _, id := range c.known() {
		c.Orders.Send(id, &pb.ExpireOrder{})
		c.Orders.Send(id, &pb.RetryOrderSaga{})
		c.AskOrder(id, &pb.GetOrder{OrderId: id}) // answered after the ticks
	}
}

// WakeDue activates the actors whose wake time has passed on the kit's
// clock and that are not in memory, as a node's waker does every 200 ms
// (Orders.WakeDue), and returns how many it woke.
func (c *Checkout) WakeDue() int {
	c.T.Helper()
	n, err := c.Orders.WakeDue(c.Clock.Now())
	if err != nil {
		c.T.Fatalf("wake due actors: %v", err)
	}
	return n
}

// CrashOrder makes the order's actor panic. Its supervisor restarts it and
// the new instance recovers from the journal and re-sends whatever its
// saga still owes; callers waiting on it are answered UNAVAILABLE. Like
// CrashSKU it returns at once, and what is sent after it reaches the
// recovered instance.
func (c *Checkout) CrashOrder(orderID string) {
	c.System.Root.Send(c.Orders.PID(orderID), actors.Crash{})
}

// StopOrder stops the order's actor gracefully and waits, as a node
// shutdown does: nothing wakes it again but a message to it, or the wake
// index (Orders.WakeDue) once its wake time has passed.
func (c *Checkout) StopOrder(orderID string) {
	if err := c.System.Root.StopFuture(c.Orders.PID(orderID)).Wait(); err != nil {
		c.T.Fatalf("stop order %s: %v", orderID, err)
	}
}

// OrderEvents returns the order's durable events in order.
func (c *Checkout) OrderEvents(orderID string) []*pb.OrderEvent {
	c.T.Helper()
	var out []*pb.OrderEvent
	for i, b := range c.Journal.Events("order/" + orderID) {
		ev, err := actors.DecodeOrderEvent(b)
		if err != nil {
			c.T.Fatalf("order %s event %d: %v", orderID, i+1, err)
		}
		out = append(out, ev)
	}
	return out
}

// WaitDurable returns once the order's actor has nothing applied that its
// journal does not hold, so that OrderState and OrderEvents show what the
// actor last answered. A checkout answers "reserved" before its last
// events are durable; call this first to read them back. It also waits
// out a reservation saga in progress. It fails the test after the kit's
// timeout.
func (c *Checkout) WaitDurable(orderID string) {
	c.T.Helper()
	// A GET's answer leaves the actor only once every event applied before
	// it is durable, and only once the order is not reserving.
	c.AskOrder(orderID, &pb.GetOrder{OrderId: orderID})
}

// OrderState rebuilds the order's state from its journal: what a
// recovering actor would see. Events the actor applied may still be on
// their way to the journal; see WaitDurable.
func (c *Checkout) OrderState(orderID string) *actors.OrderState {
	c.T.Helper()
	s, _, err := actors.LoadOrderState(c.Journal, orderID)
	if err != nil {
		c.T.Fatalf("load order %s: %v", orderID, err)
	}
	return s
}

// sagaOwes says, for a timeout error on the named order, that its saga
// still owes SKU commands: a command whose answer was lost (held or
// dropped by the Link) is sent again only once the fake Clock passes its
// retry time.
func (c *Checkout) sagaOwes(name string) string {
	id, ok := strings.CutPrefix(name, "order/")
	if !ok {
		return ""
	}
	s, _, err := actors.LoadOrderState(c.Journal, id)
	if err != nil || actors.OrderSettled(s) {
		return ""
	}
	return fmt.Sprintf("order %s is %v in its journal and owes its SKUs commands; "+
		"one whose answer was lost is sent again only when the kit's Clock passes its retry time (Advance)", id, s.Status)
}

// Settled reports whether the order's durable state owes its SKUs nothing.
func (c *Checkout) Settled(orderID string) bool {
	return actors.OrderSettled(c.OrderState(orderID))
}
