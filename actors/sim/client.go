package sim

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
)

// Timing of the customers.
const (
	// clientTimeout is how long a customer waits for an answer before
	// sending the same request again (a gateway timeout and a retry).
	clientTimeout = 3 * time.Second
	// clientHop is the delay between customer and order actor; that link
	// does not lose messages (but a crash loses unsent replies).
	clientHop = time.Millisecond
	// orderLinesSimMax bounds the lines of a simulated order.
	orderLinesSimMax = 5
	// orderTTLSimMax bounds the TTL of a simulated order.
	orderTTLSimMax = 120 * time.Second
)

// client is one customer with one order, and the oracle of what it was
// told.
type client struct {
	w     *world
	id    string // order ID
	place *pb.PlaceOrder
	busy  bool // a request is outstanding or an action is planned
	req   int  // number of the latest request; older replies are late
	cmd   proto.Message

	first     *pb.OrderResult // first outcome of the PlaceOrder
	expiresAt int64
	paid      bool // a pay was confirmed
	cancelled bool // a cancel was confirmed
	// unkeyed: the checkout has no idempotency key. With the real shells
	// its ID is fresh (its actor starts without reading the journal), a
	// rejection forgets itself, and the customer does not repeat it: one
	// that times out or is answered UNAVAILABLE gives up (gaveUp), as a
	// client of the HTTP API would, which has no ID to repeat it with.
	unkeyed, gaveUp bool
	// inTurn: an unkeyed one-line checkout sent to its SKU's actor,
	// which decides it in one turn (actors.Checkout), as the node's
	// gateway sends those; the others go to the order's actor.
	inTurn bool
}

func (w *world) newClient(i int) {
	w.placed++
	n := 1 + w.rng.IntN(orderLinesSimMax)
	place := &pb.PlaceOrder{Customer: fmt.Sprintf("c%d", i%50), TtlSeconds: 10 + w.rng.Int64N(int64(orderTTLSimMax/time.Second)-9)}
	for _, j := range w.rng.Perm(len(w.skuIDs))[:n] {
		place.Items = append(place.Items, &pb.OrderLine{Sku: w.skuIDs[j], Quantity: 1 + w.rng.Int64N(3)})
	}
	keyed := w.rng.IntN(2) == 0
	if keyed {
		place.OrderId = actors.KeyedOrderID(place.Customer, fmt.Sprint("key-", i))
	} else {
		id, err := actors.NewOrderID(w.now, w.entropy)
		if err != nil {
			panic(err)
		}
		place.OrderId = id
	}
	c := &client{w: w, id: place.OrderId, place: place, busy: true, unkeyed: !keyed && w.shells != nil}
	if c.unkeyed {
		place.ForgetRejection = true // as the gateway asks of an unkeyed checkout
		c.inTurn = n == 1 && w.rng.IntN(2) == 0
		if c.inTurn {
			w.report.InTurn++
		}
	}
	if w.shells != nil {
		w.orderIDs = append(w.orderIDs, c.id)
	}
	w.clients = append(w.clients, c)
	c.request(place)
}

// request sends cmd and resends it after clientTimeout without an answer.
func (c *client) request(cmd proto.Message) {
	w := c.w
	c.req++
	req := c.req
	c.cmd = cmd
	once := c.unkeyed && cmd == proto.Message(c.place)
	switch {
	case once && c.inTurn:
		w.shells.checkout(c.place, func(res *pb.OrderResult) { c.answered(req, cmd, res) })
	case w.shells != nil:
		w.shells.ask(c.id, cmd, once, func(res *pb.OrderResult) { c.answered(req, cmd, res) })
	default:
		o := w.orderNode(c.id)
		w.after(clientHop, func() {
			o.handle(cmd, func(res *pb.OrderResult) {
				w.after(clientHop, func() { c.answered(req, cmd, res) })
			})
		})
	}
	w.after(clientTimeout, func() {
		switch {
		case c.req != req || !c.busy:
		case once:
			c.giveUp()
		default:
			c.request(cmd)
		}
	})
}

// giveUp ends an unkeyed checkout whose outcome the customer never learnt.
func (c *client) giveUp() {
	c.req++
	c.gaveUp, c.busy = true, false
	c.w.report.GaveUp++
}

func (c *client) fail(format string, args ...any) {
	panic(fmt.Sprintf("order %s: ", c.id) + fmt.Sprintf(format, args...))
}

// answered checks a reply and takes the customer's next step.
func (c *client) answered(req int, cmd proto.Message, res *pb.OrderResult) {
	if res.Code == pb.OrderCode_ORDER_CODE_INVALID || res.Code == pb.OrderCode_ORDER_CODE_NOT_FOUND {
		c.fail("%T answered %v: %s", cmd, res.Code, res.Detail)
	}
	if p, ok := cmd.(*pb.PlaceOrder); ok && p == c.place {
		c.checkPlace(res)
	}
	if req == c.req && res.Code == pb.OrderCode_ORDER_CODE_UNAVAILABLE && c.unkeyed && cmd == proto.Message(c.place) {
		c.giveUp()
		return
	}
	if req != c.req || res.Code == pb.OrderCode_ORDER_CODE_UNAVAILABLE {
		return // a late answer, or one the timeout will retry
	}
	c.req++ // no retry of this request
	switch cmd.(type) {
	case *pb.PlaceOrder:
		if cmd != proto.Message(c.place) {
			if res.Code != pb.OrderCode_ORDER_CODE_IDEMPOTENCY_KEY_REUSED {
				c.fail("same id, other request: %v", res.Code)
			}
			c.planUnpaid()
			return
		}
		if res.Code != pb.OrderCode_ORDER_CODE_OK && res.Code != pb.OrderCode_ORDER_CODE_ALREADY_DONE {
			c.busy = false
			return
		}
		c.expiresAt = res.Order.ExpiresAtUnixNano
		c.w.report.Reserved++
		if c.w.rng.IntN(10) == 0 {
			other := proto.Clone(c.place).(*pb.PlaceOrder)
			other.TtlSeconds++
			c.request(other)
			return
		}
		c.planUnpaid()
	case *pb.PayOrder:
		switch res.Code {
		case pb.OrderCode_ORDER_CODE_OK, pb.OrderCode_ORDER_CODE_ALREADY_DONE:
			c.paid = true
			c.planPaid()
		case pb.OrderCode_ORDER_CODE_EXPIRED:
			c.busy = false
		default:
			c.fail("pay answered %v (%s)", res.Code, res.Detail)
		}
	case *pb.CancelOrder:
		switch {
		case res.Code == pb.OrderCode_ORDER_CODE_OK || res.Code == pb.OrderCode_ORDER_CODE_ALREADY_DONE:
			c.cancelled = true
		case res.OrderStatus != pb.OrderStatus_ORDER_STATUS_EXPIRED:
			c.fail("cancel answered %v in %v", res.Code, res.OrderStatus)
		}
		c.busy = false
	case *pb.ShipOrder:
		c.okOrFail(res)
		c.after(func() { c.request(&pb.CompleteOrder{OrderId: c.id}) }, 10*time.Second, 0.5)
	case *pb.CompleteOrder:
		c.okOrFail(res)
		c.busy = false
	}
}

func (c *client) okOrFail(res *pb.OrderResult) {
	if res.Code != pb.OrderCode_ORDER_CODE_OK && res.Code != pb.OrderCode_ORDER_CODE_ALREADY_DONE {
		c.fail("answered %v (%s)", res.Code, res.Detail)
	}
}

// checkPlace compares every answer to the PlaceOrder with the first.
func (c *client) checkPlace(res *pb.OrderResult) {
	if res.Code == pb.OrderCode_ORDER_CODE_UNAVAILABLE {
		return
	}
	if c.first == nil {
		c.first = res
		return
	}
	same := func(code pb.OrderCode) pb.OrderCode {
		if code == pb.OrderCode_ORDER_CODE_ALREADY_DONE {
			return pb.OrderCode_ORDER_CODE_OK
		}
		return code
	}
	if same(res.Code) != same(c.first.Code) || res.Sku != c.first.Sku || res.Available != c.first.Available {
		c.fail("a repeated checkout answered %v %s/%d, the first %v %s/%d",
			res.Code, res.Sku, res.Available, c.first.Code, c.first.Sku, c.first.Available)
	}
}

// planUnpaid decides what the customer does with a reserved order: pay,
// cancel (both sometimes too late), or walk away and let it expire.
func (c *client) planUnpaid() {
	ttl := time.Duration(c.place.TtlSeconds) * time.Second
	wait := time.Duration(c.w.rng.Int64N(int64(ttl * 11 / 10)))
	switch r := c.w.rng.Float64(); {
	case r < 0.6:
		c.w.after(wait, func() { c.request(&pb.PayOrder{OrderId: c.id, PaymentRef: "pay-" + c.id[len(c.id)-6:]}) })
	case r < 0.75:
		c.w.after(wait, func() { c.request(&pb.CancelOrder{OrderId: c.id}) })
	default:
		c.busy = false
	}
}

// planPaid ships some paid orders and cancels others.
func (c *client) planPaid() {
	switch r := c.w.rng.Float64(); {
	case r < 0.4:
		c.after(func() { c.request(&pb.ShipOrder{OrderId: c.id}) }, 10*time.Second, 1)
	case r < 0.55:
		c.after(func() { c.request(&pb.CancelOrder{OrderId: c.id}) }, 10*time.Second, 1)
	default:
		c.busy = false
	}
}

// after runs fn within up to d with probability p, or ends the client.
func (c *client) after(fn func(), d time.Duration, p float64) {
	if c.w.rng.Float64() >= p {
		c.busy = false
		return
	}
	c.w.after(time.Duration(c.w.rng.Int64N(int64(d))), fn)
}
