package actors

import (
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/actors/pb"
)

func orderSnapshotsEqual(a, b *pb.OrderSnapshot) bool { return proto.Equal(a, b) }

func orderCheckOwed(t *testing.T, s *OrderState, want []OrderSKUCommand) {
	t.Helper()
	got := OrderOwed(s)
	if len(got) != len(want) {
		t.Fatalf("owed %v, want %v", got, want)
	}
	for i := range got {
		if got[i].SKU != want[i].SKU || got[i].Step != want[i].Step || !proto.Equal(got[i].Msg, want[i].Msg) {
			t.Fatalf("owed[%d] = %v %v %v, want %v %v %v", i, got[i].SKU, got[i].Step, got[i].Msg, want[i].SKU, want[i].Step, want[i].Msg)
		}
	}
	if OrderSettled(s) != (len(want) == 0) {
		t.Fatal("OrderSettled disagrees with OrderOwed")
	}
}

func orderStepAll(t *testing.T, s *OrderState, at time.Time, cmds ...any) []*pb.OrderEvent {
	t.Helper()
	var all []*pb.OrderEvent
	for _, c := range cmds {
		all = append(all, s.Step(c, at).Events...)
		if err := s.Check(); err != nil {
			t.Fatal(err)
		}
	}
	return all
}

func TestOrderSagaHappyPath(t *testing.T) {
	s := NewOrderState(orderTestID)
	at := orderTestT0
	orderStepAll(t, s, at, orderTestPlace())
	dl := s.ExpiresAt
	orderCheckOwed(t, s, []OrderSKUCommand{
		{"A", reserveStep, &pb.ReserveStock{OrderId: orderTestID, Quantity: 2, DeadlineUnixNano: dl, Customer: "c-1"}},
		{"B", reserveStep, &pb.ReserveStock{OrderId: orderTestID, Quantity: 1, DeadlineUnixNano: dl, Customer: "c-1"}},
	})
	orderStepAll(t, s, at, orderAnswer("B", reserveStep, orderApplied, 0))
	if s.Status != pb.OrderStatus_ORDER_STATUS_RESERVING {
		t.Fatalf("status %v after one of two lines", s.Status)
	}
	evs := orderStepAll(t, s, at, orderAnswer("A", reserveStep, orderDone, 0))
	if len(evs) != 2 || evs[1].GetReserved() == nil || s.Status != pb.OrderStatus_ORDER_STATUS_RESERVED {
		t.Fatalf("events %v status %v, want LineReserved+OrderReserved", evs, s.Status)
	}
	orderCheckOwed(t, s, nil)
	if r := OrderPlaceOutcome(s, false); r.Code != pb.OrderCode_ORDER_CODE_OK {
		t.Fatalf("place outcome %v", r.Code)
	}
	orderStepAll(t, s, at, &pb.PayOrder{OrderId: orderTestID, PaymentRef: "p"})
	orderCheckOwed(t, s, []OrderSKUCommand{
		{"A", commitStep, &pb.CommitReservation{OrderId: orderTestID}},
		{"B", commitStep, &pb.CommitReservation{OrderId: orderTestID}},
	})
	orderStepAll(t, s, at,
		orderAnswer("A", commitStep, orderUnavailable, 0), // not an answer: retried
		orderAnswer("B", commitStep, orderApplied, 0),
		orderAnswer("B", commitStep, orderDone, 0), // duplicate
	)
	orderCheckOwed(t, s, []OrderSKUCommand{{"A", commitStep, &pb.CommitReservation{OrderId: orderTestID}}})
	orderStepAll(t, s, at, orderAnswer("A", commitStep, orderDone, 0))
	orderCheckOwed(t, s, nil)
}

// The 409 names the first refused line in request order, whatever order
// the answers arrive in, and the saga waits for every answer first.
func TestOrderSagaRejectsFirstRefusedLineInRequestOrder(t *testing.T) {
	s := NewOrderState(orderTestID)
	cmd := orderTestPlace()
	cmd.Items = append(cmd.Items, &pb.OrderLine{Sku: "C", Quantity: 7})
	at := orderTestT0
	orderStepAll(t, s, at, cmd,
		orderAnswer("C", reserveStep, orderInsufficient, 4),
		orderAnswer("A", reserveStep, orderInsufficient, 1),
	)
	if s.Status != pb.OrderStatus_ORDER_STATUS_RESERVING {
		t.Fatalf("decided %v before every line answered", s.Status)
	}
	orderStepAll(t, s, at, orderAnswer("B", reserveStep, orderApplied, 0))
	r := OrderPlaceOutcome(s, false)
	if s.Status != pb.OrderStatus_ORDER_STATUS_REJECTED || r.Code != pb.OrderCode_ORDER_CODE_OUT_OF_STOCK || r.Sku != "A" || r.Available != 1 {
		t.Fatalf("status %v outcome %v %s/%d, want rejected naming A/1", s.Status, r.Code, r.Sku, r.Available)
	}
	// The release names the reservation's deadline, which bounds how long
	// a SKU that never saw the order keeps the tombstone.
	release := &pb.ReleaseReservation{OrderId: orderTestID, Reason: pb.ReleaseReason_RELEASE_REASON_REJECTED, DeadlineUnixNano: s.ExpiresAt}
	orderCheckOwed(t, s, []OrderSKUCommand{{"B", releaseStep, release}})
	orderStepAll(t, s, at, orderAnswer("B", releaseStep, orderApplied, 0))
	orderCheckOwed(t, s, nil)

	// A duplicated ReserveStock for A took stock after its refusal: its
	// late answer makes the order release A too.
	orderStepAll(t, s, at, orderAnswer("A", reserveStep, orderApplied, 0))
	orderCheckOwed(t, s, []OrderSKUCommand{{"A", releaseStep, release}})
	orderStepAll(t, s, at, orderAnswer("A", releaseStep, orderApplied, 0), orderAnswer("A", reserveStep, orderDone, 0))
	orderCheckOwed(t, s, nil)
	if r := OrderPlaceOutcome(s, true); r.Sku != "A" || r.Available != 1 {
		t.Fatal("the replayed outcome changed")
	}
}

func TestOrderSagaExpiresWhileReserving(t *testing.T) {
	s := NewOrderState(orderTestID)
	orderStepAll(t, s, orderTestT0, orderTestPlace(), orderAnswer("A", reserveStep, orderApplied, 0))
	late := time.Unix(0, s.ExpiresAt)
	// The last answer arrives at expires_at: the order expires instead of
	// becoming reserved.
	orderStepAll(t, s, late, orderAnswer("B", reserveStep, orderUnavailable, 0), &pb.ExpireOrder{})
	if s.Status != pb.OrderStatus_ORDER_STATUS_EXPIRED {
		t.Fatalf("status %v", s.Status)
	}
	release := &pb.ReleaseReservation{OrderId: orderTestID, Reason: pb.ReleaseReason_RELEASE_REASON_EXPIRED, DeadlineUnixNano: s.ExpiresAt}
	orderCheckOwed(t, s, []OrderSKUCommand{{"A", releaseStep, release}, {"B", releaseStep, release}})
	// B never got the reservation: the SKU answers UNKNOWN and keeps a
	// tombstone; the late ReserveStock is refused with CONFLICT.
	orderStepAll(t, s, late, orderAnswer("B", releaseStep, orderUnknown, 0), orderAnswer("A", releaseStep, orderApplied, 0),
		orderAnswer("B", reserveStep, orderConflictOut, 0))
	orderCheckOwed(t, s, nil)
	if r := OrderPlaceOutcome(s, true); r.Code != pb.OrderCode_ORDER_CODE_EXPIRED {
		t.Fatalf("place outcome %v, want EXPIRED", r.Code)
	}
}

func TestOrderSagaCancelAfterPayCommitsThenReturns(t *testing.T) {
	s := orderIn(t, "paid")
	at := orderTestT0.Add(2 * time.Second)
	orderStepAll(t, s, at, orderAnswer("A", commitStep, orderApplied, 0), &pb.CancelOrder{OrderId: orderTestID})
	// A return carries what a SKU that forgot the commit needs: the
	// quantity, the deadline, and since when it is owed (the cancellation).
	ret := func(sku string) *pb.ReturnStock {
		return &pb.ReturnStock{OrderId: orderTestID, Quantity: s.line(sku).Quantity, DeadlineUnixNano: s.ExpiresAt,
			OwedSinceUnixNano: at.UnixNano(), Customer: "c-1", PlacedUnixNano: s.CreatedAt}
	}
	orderCheckOwed(t, s, []OrderSKUCommand{
		{"A", returnStep, ret("A")},
		{"B", commitStep, &pb.CommitReservation{OrderId: orderTestID}},
	})
	orderStepAll(t, s, at, orderAnswer("B", commitStep, orderApplied, 0), orderAnswer("A", returnStep, orderApplied, 0),
		orderAnswer("A", releaseStep, orderApplied, 0)) // a stray answer changes nothing
	orderCheckOwed(t, s, []OrderSKUCommand{{"B", returnStep, ret("B")}})
	orderStepAll(t, s, at, orderAnswer("B", returnStep, orderDone, 0))
	orderCheckOwed(t, s, nil)
}

func TestOrderSagaRefusedCommitIsAnAlarmNotALoop(t *testing.T) {
	s := orderIn(t, "paid")
	evs := orderStepAll(t, s, orderTestT0, orderAnswer("A", commitStep, orderConflictOut, 0), orderAnswer("B", commitStep, orderApplied, 0))
	if evs[0].GetLineFailed() == nil {
		t.Fatalf("events %v, want LineFailed first", evs)
	}
	orderCheckOwed(t, s, nil)
	if s.Status != pb.OrderStatus_ORDER_STATUS_PAID {
		t.Fatalf("status %v", s.Status)
	}
}

// TestOrderProperties drives random command sequences, answers included,
// and checks after every step that the state fits together, that decide
// did not change it, that replaying the events gives the same state, that
// a snapshot round-trips, and that a repeated move changes nothing.
func TestOrderProperties(t *testing.T) {
	seeds := 300
	if testing.Short() {
		seeds = 30
	}
	for seed := range seeds {
		orderPropertyRun(t, uint64(seed))
		if t.Failed() {
			t.Fatalf("seed %d failed; reproduce with -run TestOrderProperties (seed %d)", seed, seed)
		}
	}
}

func orderPropertyRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x0de7))
	s := NewOrderState(orderTestID)
	var journal []*pb.OrderEvent
	at := orderTestT0
	skus := []string{"A", "B", "C"}
	outcomes := []pb.Outcome{orderApplied, orderDone, orderInsufficient, orderUnknown, orderConflictOut, orderUnavailable}
	mostlyOK := []pb.Outcome{orderApplied, orderApplied, orderApplied, orderDone, orderInsufficient, orderUnavailable}
	steps := []pb.SKUStep{reserveStep, commitStep, releaseStep, returnStep}
	for range 60 {
		at = at.Add(time.Duration(rng.IntN(1500)) * time.Millisecond)
		if rng.IntN(40) == 0 {
			at = at.Add(orderTestTTL * time.Second)
		}
		var cmd any
		switch rng.IntN(10) {
		case 0:
			cmd = orderTestPlace()
		case 1:
			cmd = &pb.PayOrder{OrderId: orderTestID, PaymentRef: []string{"p1", "p2"}[rng.IntN(2)]}
		case 2:
			cmd = &pb.CancelOrder{OrderId: orderTestID}
		case 3:
			cmd = &pb.ShipOrder{OrderId: orderTestID}
		case 4:
			cmd = &pb.CompleteOrder{OrderId: orderTestID}
		case 5:
			cmd = &pb.ExpireOrder{}
		case 6, 7:
			// Answer something the order owes, mostly with success.
			if owed := OrderOwed(s); len(owed) > 0 {
				o := owed[rng.IntN(len(owed))]
				cmd = &pb.StockAnswered{Sku: o.SKU, Step: o.Step, Outcome: mostlyOK[rng.IntN(len(mostlyOK))]}
				break
			}
			fallthrough
		default:
			cmd = &pb.StockAnswered{Sku: skus[rng.IntN(len(skus))], Step: steps[rng.IntN(len(steps))],
				Outcome: outcomes[rng.IntN(len(outcomes))], Available: rng.Int64N(5)}
		}
		before := s.Snapshot()
		d := decideOrder(s, cmd, at)
		if !proto.Equal(before, s.Snapshot()) {
			t.Fatalf("seed %d: decide %T changed the state", seed, cmd)
		}
		d = s.Step(cmd, at)
		journal = append(journal, d.Events...)
		if err := s.Check(); err != nil {
			t.Fatalf("seed %d after %T: %v", seed, cmd, err)
		}
		replayed := NewOrderState(orderTestID)
		for i, ev := range journal {
			b := encodeOrderEvent(ev)
			dec, err := DecodeOrderEvent(b)
			if err != nil {
				t.Fatal(err)
			}
			replayed.apply(uint64(i+1), dec)
		}
		if !proto.Equal(replayed.Snapshot(), s.Snapshot()) {
			t.Fatalf("seed %d: replay differs from live state", seed)
		}
		b, _ := proto.Marshal(s.Snapshot())
		if s.Status != pb.OrderStatus_ORDER_STATUS_UNSPECIFIED {
			back, err := DecodeOrderSnapshot(orderTestID, b)
			if err != nil || !proto.Equal(back.Snapshot(), s.Snapshot()) {
				t.Fatalf("seed %d: snapshot round trip: %v", seed, err)
			}
		}
		if d.Reply != nil && d.Reply.Code == pb.OrderCode_ORDER_CODE_OK && len(d.Events) > 0 {
			if _, place := cmd.(*pb.PlaceOrder); !place {
				again := decideOrder(s, cmd, at)
				if len(again.Events) != 0 || again.Reply.Code != pb.OrderCode_ORDER_CODE_ALREADY_DONE {
					t.Fatalf("seed %d: repeating %T gave %v", seed, cmd, again.Reply.Code)
				}
			}
		}
	}
}
