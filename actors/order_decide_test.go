package actors

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/orderengine/orderengine/actors/pb"
)

var orderTestT0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

const orderTestTTL = 60 // seconds

var orderTestID = KeyedOrderID("c-1", "key-1")

func orderTestPlace() *pb.PlaceOrder {
	return &pb.PlaceOrder{OrderId: orderTestID, Customer: "c-1", TtlSeconds: orderTestTTL,
		Items: []*pb.OrderLine{{Sku: "A", Quantity: 2}, {Sku: "B", Quantity: 1}}}
}

func orderAnswer(sku string, step pb.SKUStep, outcome pb.Outcome, available int64) *pb.StockAnswered {
	return &pb.StockAnswered{Sku: sku, Step: step, Outcome: outcome, Available: available}
}

const (
	orderApplied      = pb.Outcome_OUTCOME_APPLIED
	orderDone         = pb.Outcome_OUTCOME_ALREADY_DONE
	orderInsufficient = pb.Outcome_OUTCOME_INSUFFICIENT
	orderUnknown      = pb.Outcome_OUTCOME_UNKNOWN_RESERVATION
	orderConflictOut  = pb.Outcome_OUTCOME_CONFLICT
	orderUnavailable  = pb.Outcome_OUTCOME_UNAVAILABLE
	reserveStep       = pb.SKUStep_SKU_STEP_RESERVE
	commitStep        = pb.SKUStep_SKU_STEP_COMMIT
	releaseStep       = pb.SKUStep_SKU_STEP_RELEASE
	returnStep        = pb.SKUStep_SKU_STEP_RETURN
)

// orderIn returns a state in the named status, reached through Step the
// way the actor gets there, at orderTestT0+1s.
func orderIn(t *testing.T, status string) *OrderState {
	t.Helper()
	s := NewOrderState(orderTestID)
	now := orderTestT0
	step := func(cmd any) {
		t.Helper()
		d := s.Step(cmd, now)
		if d.Reply != nil && d.Reply.Code != pb.OrderCode_ORDER_CODE_OK {
			t.Fatalf("setup %s: %T answered %v %s", status, cmd, d.Reply.Code, d.Reply.Detail)
		}
	}
	reserve := func() {
		step(orderAnswer("A", reserveStep, orderApplied, 0))
		step(orderAnswer("B", reserveStep, orderApplied, 0))
	}
	if status == "none" {
		return s
	}
	step(orderTestPlace())
	now = now.Add(time.Second)
	switch status {
	case "reserving":
	case "reserved":
		reserve()
	case "rejected":
		step(orderAnswer("A", reserveStep, orderApplied, 0))
		step(orderAnswer("B", reserveStep, orderInsufficient, 0))
	case "paid", "shipped", "completed", "cancelled-paid":
		reserve()
		step(&pb.PayOrder{OrderId: orderTestID, PaymentRef: "pay-1"})
		switch status {
		case "shipped":
			step(&pb.ShipOrder{OrderId: orderTestID})
		case "completed":
			step(&pb.ShipOrder{OrderId: orderTestID})
			step(&pb.CompleteOrder{OrderId: orderTestID})
		case "cancelled-paid":
			step(&pb.CancelOrder{OrderId: orderTestID})
		}
	case "cancelled":
		reserve()
		step(&pb.CancelOrder{OrderId: orderTestID})
	case "expired":
		reserve()
		now = orderTestT0.Add(orderTestTTL * time.Second)
		step(&pb.ExpireOrder{})
		now = orderTestT0.Add(time.Second)
	default:
		t.Fatalf("no status %q", status)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDecideOrderEveryStatusAndCommand is the status machine of API.md:
// every client command and tick against every status.
func TestDecideOrderEveryStatusAndCommand(t *testing.T) {
	other := orderTestPlace()
	other.Items[1].Quantity = 5
	atExpiry := orderTestT0.Add(orderTestTTL * time.Second)
	commands := []struct {
		name string
		give any
		at   time.Time
	}{
		{"place", orderTestPlace(), orderTestT0.Add(2 * time.Second)},
		{"place-other", other, orderTestT0.Add(2 * time.Second)},
		{"pay", &pb.PayOrder{OrderId: orderTestID, PaymentRef: "pay-1"}, orderTestT0.Add(2 * time.Second)},
		{"pay-other", &pb.PayOrder{OrderId: orderTestID, PaymentRef: "pay-2"}, orderTestT0.Add(2 * time.Second)},
		{"pay-late", &pb.PayOrder{OrderId: orderTestID, PaymentRef: "pay-1"}, atExpiry},
		{"cancel", &pb.CancelOrder{OrderId: orderTestID}, orderTestT0.Add(2 * time.Second)},
		{"ship", &pb.ShipOrder{OrderId: orderTestID}, orderTestT0.Add(2 * time.Second)},
		{"complete", &pb.CompleteOrder{OrderId: orderTestID}, orderTestT0.Add(2 * time.Second)},
		{"get", &pb.GetOrder{OrderId: orderTestID}, orderTestT0.Add(2 * time.Second)},
		{"get-late", &pb.GetOrder{OrderId: orderTestID}, atExpiry},
		{"expire-early", &pb.ExpireOrder{}, atExpiry.Add(-1)},
		{"expire", &pb.ExpireOrder{}, atExpiry},
		{"retry", &pb.RetryOrderSaga{}, orderTestT0.Add(2 * time.Second)},
	}
	// want[status] lists, per command above, "CODE>status": the reply code
	// (WAIT for a PlaceOrder answered when the saga ends, - for none) and
	// the status after the command.
	want := map[string][]string{
		"none": {"WAIT>reserving", "WAIT>reserving", "NOT_FOUND>none", "NOT_FOUND>none", "NOT_FOUND>none",
			"NOT_FOUND>none", "NOT_FOUND>none", "NOT_FOUND>none", "NOT_FOUND>none", "NOT_FOUND>none", "->none", "->none", "->none"},
		"reserving": {"WAIT>reserving", "IDEMPOTENCY_KEY_REUSED>reserving", "INVALID_TRANSITION>reserving",
			"INVALID_TRANSITION>reserving", "EXPIRED>expired", "INVALID_TRANSITION>reserving",
			"INVALID_TRANSITION>reserving", "INVALID_TRANSITION>reserving", "OK>reserving", "OK>expired",
			"->reserving", "->expired", "->reserving"},
		"reserved": {"ALREADY_DONE>reserved", "IDEMPOTENCY_KEY_REUSED>reserved", "OK>paid", "OK>paid",
			"EXPIRED>expired", "OK>cancelled", "INVALID_TRANSITION>reserved", "INVALID_TRANSITION>reserved",
			"OK>reserved", "OK>expired", "->reserved", "->expired", "->reserved"},
		"paid": {"ALREADY_DONE>paid", "IDEMPOTENCY_KEY_REUSED>paid", "ALREADY_DONE>paid", "INVALID_TRANSITION>paid",
			"ALREADY_DONE>paid", "OK>cancelled", "OK>shipped", "INVALID_TRANSITION>paid", "OK>paid", "OK>paid",
			"->paid", "->paid", "->paid"},
		"shipped": {"ALREADY_DONE>shipped", "IDEMPOTENCY_KEY_REUSED>shipped", "INVALID_TRANSITION>shipped",
			"INVALID_TRANSITION>shipped", "INVALID_TRANSITION>shipped", "INVALID_TRANSITION>shipped",
			"ALREADY_DONE>shipped", "OK>completed", "OK>shipped", "OK>shipped", "->shipped", "->shipped", "->shipped"},
		"completed": {"ALREADY_DONE>completed", "IDEMPOTENCY_KEY_REUSED>completed", "INVALID_TRANSITION>completed",
			"INVALID_TRANSITION>completed", "INVALID_TRANSITION>completed", "INVALID_TRANSITION>completed",
			"INVALID_TRANSITION>completed", "ALREADY_DONE>completed", "OK>completed", "OK>completed",
			"->completed", "->completed", "->completed"},
		"rejected": {"OUT_OF_STOCK>rejected", "IDEMPOTENCY_KEY_REUSED>rejected", "INVALID_TRANSITION>rejected",
			"INVALID_TRANSITION>rejected", "INVALID_TRANSITION>rejected", "INVALID_TRANSITION>rejected",
			"INVALID_TRANSITION>rejected", "INVALID_TRANSITION>rejected", "OK>rejected", "OK>rejected",
			"->rejected", "->rejected", "->rejected"},
		"cancelled": {"ALREADY_DONE>cancelled", "IDEMPOTENCY_KEY_REUSED>cancelled", "INVALID_TRANSITION>cancelled",
			"INVALID_TRANSITION>cancelled", "INVALID_TRANSITION>cancelled", "ALREADY_DONE>cancelled",
			"INVALID_TRANSITION>cancelled", "INVALID_TRANSITION>cancelled", "OK>cancelled", "OK>cancelled",
			"->cancelled", "->cancelled", "->cancelled"},
		"cancelled-paid": {"ALREADY_DONE>cancelled", "IDEMPOTENCY_KEY_REUSED>cancelled", "INVALID_TRANSITION>cancelled",
			"INVALID_TRANSITION>cancelled", "INVALID_TRANSITION>cancelled", "ALREADY_DONE>cancelled",
			"INVALID_TRANSITION>cancelled", "INVALID_TRANSITION>cancelled", "OK>cancelled", "OK>cancelled",
			"->cancelled", "->cancelled", "->cancelled"},
		"expired": {"ALREADY_DONE>expired", "IDEMPOTENCY_KEY_REUSED>expired", "EXPIRED>expired", "EXPIRED>expired",
			"EXPIRED>expired", "INVALID_TRANSITION>expired", "INVALID_TRANSITION>expired",
			"INVALID_TRANSITION>expired", "OK>expired", "OK>expired", "->expired", "->expired", "->expired"},
	}
	for status, wants := range want {
		if len(wants) != len(commands) {
			t.Fatalf("%s: %d wants for %d commands", status, len(wants), len(commands))
		}
		for i, c := range commands {
			t.Run(status+"/"+c.name, func(t *testing.T) {
				s := orderIn(t, status)
				before := s.Snapshot()
				d := decideOrder(s, c.give, c.at)
				if !orderSnapshotsEqual(before, s.Snapshot()) {
					t.Fatal("decideOrder changed the state")
				}
				got := orderOutcome(s.clone(), c.give, c.at)
				if got != wants[i] {
					t.Errorf("got %s, want %s", got, wants[i])
				}
				orderCheckReply(t, s, c.give, d)
			})
		}
	}
}

// orderOutcome steps a copy of the state and summarises the result as
// "CODE>status".
func orderOutcome(s *OrderState, cmd any, at time.Time) string {
	d := s.Step(cmd, at)
	code := "-"
	switch {
	case d.Wait:
		code = "WAIT"
	case d.Reply != nil:
		code = strings.TrimPrefix(d.Reply.Code.String(), "ORDER_CODE_")
	}
	st := "none"
	if s.Status != pb.OrderStatus_ORDER_STATUS_UNSPECIFIED {
		st = orderStatusName(s.Status)
	}
	return code + ">" + st
}

// orderCheckReply checks the extras a reply must carry.
func orderCheckReply(t *testing.T, s *OrderState, cmd any, d OrderDecision) {
	t.Helper()
	if d.Reply == nil {
		return
	}
	switch d.Reply.Code {
	case pb.OrderCode_ORDER_CODE_INVALID_TRANSITION, pb.OrderCode_ORDER_CODE_EXPIRED:
		if d.Reply.OrderStatus == pb.OrderStatus_ORDER_STATUS_UNSPECIFIED {
			t.Errorf("%v without order_status", d.Reply.Code)
		}
	case pb.OrderCode_ORDER_CODE_OUT_OF_STOCK:
		if d.Reply.Sku != "B" || d.Reply.Available != 0 {
			t.Errorf("out of stock names %q/%d, want B/0", d.Reply.Sku, d.Reply.Available)
		}
	}
}

func TestPlaceOrderValidation(t *testing.T) {
	many := make([]*pb.OrderLine, orderLinesMax+1)
	for i := range many {
		many[i] = &pb.OrderLine{Sku: fmt.Sprintf("S%d", i), Quantity: 1}
	}
	tests := []struct {
		name string
		give func(*pb.PlaceOrder)
		want string // part of the detail; "" means accepted
	}{
		{"ok", func(*pb.PlaceOrder) {}, ""},
		{"default ttl", func(c *pb.PlaceOrder) { c.TtlSeconds = 0 }, ""},
		{"ttl max", func(c *pb.PlaceOrder) { c.TtlSeconds = orderTTLSecondsMax }, ""},
		{"ttl too long", func(c *pb.PlaceOrder) { c.TtlSeconds = orderTTLSecondsMax + 1 }, "ttl_seconds"},
		{"ttl negative", func(c *pb.PlaceOrder) { c.TtlSeconds = -1 }, "ttl_seconds"},
		{"no customer", func(c *pb.PlaceOrder) { c.Customer = "" }, "customer"},
		{"bad customer", func(c *pb.PlaceOrder) { c.Customer = "a b" }, "customer"},
		{"no items", func(c *pb.PlaceOrder) { c.Items = nil }, "items"},
		{"101 items", func(c *pb.PlaceOrder) { c.Items = many }, "items"},
		{"100 items", func(c *pb.PlaceOrder) { c.Items = many[:100] }, ""},
		{"repeated sku", func(c *pb.PlaceOrder) { c.Items[1].Sku = "A" }, "items[1].sku repeats"},
		{"zero quantity", func(c *pb.PlaceOrder) { c.Items[0].Quantity = 0 }, "items[0].quantity"},
		{"quantity too big", func(c *pb.PlaceOrder) { c.Items[1].Quantity = orderLineQuantityMax + 1 }, "items[1].quantity"},
		{"bad sku", func(c *pb.PlaceOrder) { c.Items[1].Sku = "é" }, "items[1].sku"},
		{"other actor", func(c *pb.PlaceOrder) { c.OrderId = KeyedOrderID("c-2", "k") }, "not this actor's"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := orderTestPlace()
			tt.give(cmd)
			d := decideOrder(NewOrderState(orderTestID), cmd, orderTestT0)
			if tt.want == "" {
				if !d.Wait || len(d.Events) != 1 {
					t.Fatalf("got %v, want the order placed", d.Reply)
				}
				return
			}
			if d.Reply == nil || d.Reply.Code != pb.OrderCode_ORDER_CODE_INVALID || !strings.Contains(d.Reply.Detail, tt.want) {
				t.Fatalf("got %v, want INVALID about %q", d.Reply, tt.want)
			}
			if len(d.Events) != 0 {
				t.Fatal("a refused command made events")
			}
		})
	}
}

func TestPlaceOrderDefaultTTLIsTheSameRequest(t *testing.T) {
	s := NewOrderState(orderTestID)
	cmd := orderTestPlace()
	cmd.TtlSeconds = 0
	s.Step(cmd, orderTestT0)
	if got := time.Duration(s.ExpiresAt - s.CreatedAt); got != OrderTTLDefault {
		t.Fatalf("ttl %v, want %v", got, OrderTTLDefault)
	}
	again := orderTestPlace()
	again.TtlSeconds = int64(OrderTTLDefault / time.Second)
	if d := decideOrder(s, again, orderTestT0); !d.Wait {
		t.Fatalf("explicit default TTL is another request: %v", d.Reply)
	}
}

func TestPayAfterExpiryBeforeTheTick(t *testing.T) {
	s := orderIn(t, "reserved")
	at := time.Unix(0, s.ExpiresAt)
	d := s.Step(&pb.PayOrder{OrderId: orderTestID, PaymentRef: "pay-1"}, at)
	if d.Reply.Code != pb.OrderCode_ORDER_CODE_EXPIRED || s.Status != pb.OrderStatus_ORDER_STATUS_EXPIRED {
		t.Fatalf("got %v / %v, want EXPIRED and the order expired", d.Reply.Code, s.Status)
	}
	if d.Reply.Order.Status != pb.OrderStatus_ORDER_STATUS_EXPIRED {
		t.Fatalf("reply view says %v", d.Reply.Order.Status)
	}
	if len(d.Events) != 1 || d.Events[0].GetExpired() == nil {
		t.Fatalf("events %v, want one OrderExpired", d.Events)
	}
	if d := s.Step(&pb.ExpireOrder{}, at.Add(time.Second)); len(d.Events) != 0 {
		t.Fatal("a second expiry made events")
	}
	want := []OrderSKUCommand{
		{"A", releaseStep, &pb.ReleaseReservation{OrderId: orderTestID, Reason: pb.ReleaseReason_RELEASE_REASON_EXPIRED, DeadlineUnixNano: s.ExpiresAt}},
		{"B", releaseStep, &pb.ReleaseReservation{OrderId: orderTestID, Reason: pb.ReleaseReason_RELEASE_REASON_EXPIRED, DeadlineUnixNano: s.ExpiresAt}},
	}
	orderCheckOwed(t, s, want)
}
