package actors

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/actors/pb"
)

// The one record a one-line checkout writes for its order leaves the state
// the saga's three events leave, down to the status time; only the
// sequence differs.
func TestOrderCheckedOutIsTheSagasReservation(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, limit := range []int64{0, 3} { // with and without a purchase limit
		s := NewOrderState("o-1")
		place := &pb.PlaceOrder{OrderId: "o-1", Customer: "c-1", TtlSeconds: 60, ForgetRejection: true,
			Items: []*pb.OrderLine{{Sku: "A", Quantity: 2}}}
		events := s.Step(place, now).Events
		events = append(events, s.Step(&pb.StockAnswered{Sku: "A", Step: pb.SKUStep_SKU_STEP_RESERVE,
			Outcome: pb.Outcome_OUTCOME_APPLIED, Available: 5, Limit: limit, Hold: pb.HoldState_HOLD_STATE_RESERVED}, now).Events...)
		if s.Status != pb.OrderStatus_ORDER_STATUS_RESERVED || len(events) != 3 {
			t.Fatalf("saga: %v after %d events", s.Status, len(events))
		}
		ev := checkedOut(events[0], now)
		// Through the codec, as the journal stores it.
		decoded, err := DecodeOrderEvent(encodeOrderEvent(ev))
		if err != nil {
			t.Fatal(err)
		}
		folded := NewOrderState("o-1")
		folded.apply(1, decoded)
		want, got := s.Snapshot(), folded.Snapshot()
		want.Sequence = 1
		if !proto.Equal(want, got) {
			t.Fatalf("folded state\n%v\nwant\n%v", got, want)
		}
		if err := folded.Check(); err != nil {
			t.Fatal(err)
		}
		// The SKU's turn answers from the placed state moved on in place.
		inTurn := NewOrderState("o-1")
		inTurn.Step(place, now)
		inTurn.reserveAll()
		inTurn.StatusAt = ev.AtUnixNano
		if got := inTurn.Snapshot(); !proto.Equal(want, got) {
			t.Fatalf("state in the SKU's turn\n%v\nwant\n%v", got, want)
		}
	}
}
