package actors

import (
	"fmt"
	"testing"
	"time"

	"github.com/orderengine/orderengine/actors/pb"
)

var testNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// skuWith returns a SKU restocked with 10 units, holding: o-res (3,
// reserved), o-com (2, committed), o-rel (1, released by its order), o-exp
// (4, released by safety expiry) and o-ret (1, returned).
func skuWith(t *testing.T) *SKUState {
	t.Helper()
	s := NewSKUState("A-1")
	dl := testNow.Add(time.Minute).UnixNano()
	for _, cmd := range []any{
		&pb.Restock{OpId: "r1", Quantity: 10},
		&pb.Remove{OpId: "m1", Quantity: 0 + 1},
		&pb.Restock{OpId: "r2", Quantity: 1},
		&pb.ReserveStock{OrderId: "o-res", Quantity: 3, DeadlineUnixNano: dl},
		&pb.ReserveStock{OrderId: "o-com", Quantity: 2, DeadlineUnixNano: dl},
		&pb.CommitReservation{OrderId: "o-com"},
		&pb.ReserveStock{OrderId: "o-rel", Quantity: 1, DeadlineUnixNano: dl},
		&pb.ReleaseReservation{OrderId: "o-rel", Reason: pb.ReleaseReason_RELEASE_REASON_CANCELLED},
		&pb.ReserveStock{OrderId: "o-exp", Quantity: 4, DeadlineUnixNano: dl},
		&pb.ReleaseReservation{OrderId: "o-exp", Reason: pb.ReleaseReason_RELEASE_REASON_SAFETY_EXPIRY},
		&pb.ReserveStock{OrderId: "o-ret", Quantity: 1, DeadlineUnixNano: dl},
		&pb.CommitReservation{OrderId: "o-ret"},
		&pb.ReturnStock{OrderId: "o-ret"},
	} {
		if _, r := s.Step(cmd, testNow, DefaultSKURules); r.Outcome != pb.Outcome_OUTCOME_APPLIED {
			t.Fatalf("setup %T: %v %s", cmd, r.Outcome, r.Detail)
		}
	}
	// available 10-1+1-3-2 = 5, reserved 3, sold 2
	return s
}

func TestDecideSKU(t *testing.T) {
	const (
		applied      = pb.Outcome_OUTCOME_APPLIED
		done         = pb.Outcome_OUTCOME_ALREADY_DONE
		insufficient = pb.Outcome_OUTCOME_INSUFFICIENT
		unknown      = pb.Outcome_OUTCOME_UNKNOWN_RESERVATION
		conflict     = pb.Outcome_OUTCOME_CONFLICT
		invalid      = pb.Outcome_OUTCOME_INVALID
	)
	dl := testNow.Add(time.Minute).UnixNano()
	tests := []struct {
		name       string
		give       any
		wantResult pb.Outcome
		wantEvents int
		wantView   [3]int64 // available, reserved, sold after the command
		wantHold   pb.HoldState
	}{
		{"restock new op", &pb.Restock{OpId: "r3", Quantity: 5}, applied, 1, [3]int64{10, 3, 2}, 0},
		{"restock repeat", &pb.Restock{OpId: "r1", Quantity: 10}, done, 0, [3]int64{5, 3, 2}, 0},
		{"restock op reused with other quantity", &pb.Restock{OpId: "r1", Quantity: 9}, conflict, 0, [3]int64{5, 3, 2}, 0},
		{"restock zero", &pb.Restock{OpId: "r4", Quantity: 0}, invalid, 0, [3]int64{5, 3, 2}, 0},
		{"restock negative", &pb.Restock{OpId: "r4", Quantity: -3}, invalid, 0, [3]int64{5, 3, 2}, 0},
		{"restock too many", &pb.Restock{OpId: "r4", Quantity: stockQuantityMax + 1}, invalid, 0, [3]int64{5, 3, 2}, 0},
		{"restock without op id", &pb.Restock{Quantity: 1}, invalid, 0, [3]int64{5, 3, 2}, 0},
		{"remove available", &pb.Remove{OpId: "m2", Quantity: 5}, applied, 1, [3]int64{0, 3, 2}, 0},
		{"remove more than available", &pb.Remove{OpId: "m2", Quantity: 6}, insufficient, 0, [3]int64{5, 3, 2}, 0},
		{"remove repeat", &pb.Remove{OpId: "m1", Quantity: 1}, done, 0, [3]int64{5, 3, 2}, 0},
		{"remove op reused", &pb.Remove{OpId: "m1", Quantity: 2}, conflict, 0, [3]int64{5, 3, 2}, 0},
		{"remove zero", &pb.Remove{OpId: "m3", Quantity: 0}, invalid, 0, [3]int64{5, 3, 2}, 0},
		{"reserve", &pb.ReserveStock{OrderId: "o-new", Quantity: 5, DeadlineUnixNano: dl}, applied, 1, [3]int64{0, 8, 2}, pb.HoldState_HOLD_STATE_RESERVED},
		{"reserve more than available", &pb.ReserveStock{OrderId: "o-new", Quantity: 6, DeadlineUnixNano: dl}, insufficient, 0, [3]int64{5, 3, 2}, 0},
		{"reserve repeat", &pb.ReserveStock{OrderId: "o-res", Quantity: 3, DeadlineUnixNano: dl}, done, 0, [3]int64{5, 3, 2}, pb.HoldState_HOLD_STATE_RESERVED},
		{"reserve repeat other quantity", &pb.ReserveStock{OrderId: "o-res", Quantity: 2, DeadlineUnixNano: dl}, conflict, 0, [3]int64{5, 3, 2}, pb.HoldState_HOLD_STATE_RESERVED},
		{"reserve after commit", &pb.ReserveStock{OrderId: "o-com", Quantity: 2, DeadlineUnixNano: dl}, done, 0, [3]int64{5, 3, 2}, pb.HoldState_HOLD_STATE_COMMITTED},
		{"reserve after release", &pb.ReserveStock{OrderId: "o-rel", Quantity: 1, DeadlineUnixNano: dl}, conflict, 0, [3]int64{5, 3, 2}, pb.HoldState_HOLD_STATE_RELEASED},
		{"reserve after return", &pb.ReserveStock{OrderId: "o-ret", Quantity: 1, DeadlineUnixNano: dl}, conflict, 0, [3]int64{5, 3, 2}, pb.HoldState_HOLD_STATE_RETURNED},
		{"reserve zero", &pb.ReserveStock{OrderId: "o-new", Quantity: 0, DeadlineUnixNano: dl}, invalid, 0, [3]int64{5, 3, 2}, 0},
		{"reserve without order", &pb.ReserveStock{Quantity: 1, DeadlineUnixNano: dl}, invalid, 0, [3]int64{5, 3, 2}, 0},
		{"commit reserved", &pb.CommitReservation{OrderId: "o-res"}, applied, 1, [3]int64{5, 0, 5}, pb.HoldState_HOLD_STATE_COMMITTED},
		{"commit repeat", &pb.CommitReservation{OrderId: "o-com"}, done, 0, [3]int64{5, 3, 2}, pb.HoldState_HOLD_STATE_COMMITTED},
		{"commit unknown", &pb.CommitReservation{OrderId: "o-none"}, unknown, 0, [3]int64{5, 3, 2}, 0},
		{"commit released by order", &pb.CommitReservation{OrderId: "o-rel"}, conflict, 0, [3]int64{5, 3, 2}, pb.HoldState_HOLD_STATE_RELEASED},
		{"commit after safety expiry takes units again", &pb.CommitReservation{OrderId: "o-exp"}, applied, 1, [3]int64{1, 3, 6}, pb.HoldState_HOLD_STATE_COMMITTED},
		{"commit returned", &pb.CommitReservation{OrderId: "o-ret"}, conflict, 0, [3]int64{5, 3, 2}, pb.HoldState_HOLD_STATE_RETURNED},
		{"release reserved", &pb.ReleaseReservation{OrderId: "o-res"}, applied, 1, [3]int64{8, 0, 2}, pb.HoldState_HOLD_STATE_RELEASED},
		{"release repeat", &pb.ReleaseReservation{OrderId: "o-rel"}, done, 0, [3]int64{5, 3, 2}, pb.HoldState_HOLD_STATE_RELEASED},
		{"release unknown leaves tombstone", &pb.ReleaseReservation{OrderId: "o-none"}, unknown, 1, [3]int64{5, 3, 2}, pb.HoldState_HOLD_STATE_RELEASED},
		{"release committed", &pb.ReleaseReservation{OrderId: "o-com"}, conflict, 0, [3]int64{5, 3, 2}, pb.HoldState_HOLD_STATE_COMMITTED},
		{"release without order", &pb.ReleaseReservation{}, invalid, 0, [3]int64{5, 3, 2}, 0},
		{"return committed", &pb.ReturnStock{OrderId: "o-com"}, applied, 1, [3]int64{7, 3, 0}, pb.HoldState_HOLD_STATE_RETURNED},
		{"return repeat", &pb.ReturnStock{OrderId: "o-ret"}, done, 0, [3]int64{5, 3, 2}, pb.HoldState_HOLD_STATE_RETURNED},
		{"return reserved", &pb.ReturnStock{OrderId: "o-res"}, conflict, 0, [3]int64{5, 3, 2}, pb.HoldState_HOLD_STATE_RESERVED},
		{"return unknown without quantity", &pb.ReturnStock{OrderId: "o-none"}, invalid, 0, [3]int64{5, 3, 2}, 0},
		{"return unknown owed long ago", &pb.ReturnStock{OrderId: "o-none", Quantity: 2, OwedSinceUnixNano: testNow.Add(-time.Hour).UnixNano()}, conflict, 0, [3]int64{5, 3, 2}, 0},
		{"return unknown beyond sold", &pb.ReturnStock{OrderId: "o-none", Quantity: 3, OwedSinceUnixNano: testNow.UnixNano()}, conflict, 0, [3]int64{5, 3, 2}, 0},
		{"return with other quantity", &pb.ReturnStock{OrderId: "o-com", Quantity: 1}, conflict, 0, [3]int64{5, 3, 2}, pb.HoldState_HOLD_STATE_COMMITTED},
		{"return owed in the SKU's future", &pb.ReturnStock{OrderId: "o-com", Quantity: 2, OwedSinceUnixNano: testNow.Add(time.Second).UnixNano()}, pb.Outcome_OUTCOME_UNAVAILABLE, 0, [3]int64{5, 3, 2}, 0},
		{"return without order", &pb.ReturnStock{Quantity: 1}, invalid, 0, [3]int64{5, 3, 2}, 0},
		{"reserve past deadline plus grace", &pb.ReserveStock{OrderId: "o-new", Quantity: 1, DeadlineUnixNano: testNow.Add(-DefaultSKURules.Grace).UnixNano()}, conflict, 0, [3]int64{5, 3, 2}, 0},
		{"reserve repeat past deadline plus grace", &pb.ReserveStock{OrderId: "o-res", Quantity: 3, DeadlineUnixNano: 1}, conflict, 0, [3]int64{5, 3, 2}, 0},
		{"release with unknown reason", &pb.ReleaseReservation{OrderId: "o-res", Reason: 9}, invalid, 0, [3]int64{5, 3, 2}, 0},
		{"get", &pb.GetStock{}, applied, 0, [3]int64{5, 3, 2}, 0},
		{"unknown command", &pb.SKUView{}, invalid, 0, [3]int64{5, 3, 2}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := skuWith(t)
			before := s.Sequence
			events, r := s.Step(tt.give, testNow, DefaultSKURules)
			if r.Outcome != tt.wantResult {
				t.Fatalf("outcome %v (%s), want %v", r.Outcome, r.Detail, tt.wantResult)
			}
			if len(events) != tt.wantEvents || s.Sequence != before+uint64(tt.wantEvents) {
				t.Fatalf("%d events, sequence %d->%d; want %d events", len(events), before, s.Sequence, tt.wantEvents)
			}
			got := [3]int64{r.View.Available, r.View.Reserved, r.View.Sold}
			if got != tt.wantView {
				t.Fatalf("view %v, want %v", got, tt.wantView)
			}
			if r.Hold != tt.wantHold {
				t.Fatalf("hold %v, want %v", r.Hold, tt.wantHold)
			}
			if err := s.CheckHolds(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRemoveOnNeverRestockedSKU(t *testing.T) {
	s := NewSKUState("B")
	_, r := s.Step(&pb.Remove{OpId: "m", Quantity: 1}, testNow, DefaultSKURules)
	if r.Outcome != pb.Outcome_OUTCOME_INSUFFICIENT || r.View.Available != 0 || r.View.Known {
		t.Fatalf("got %v", r)
	}
}

func TestLateReserveAfterTombstoneIsRefused(t *testing.T) {
	s := skuWith(t)
	dl := testNow.Add(time.Minute).UnixNano()
	s.Step(&pb.ReleaseReservation{OrderId: "o-late", Reason: pb.ReleaseReason_RELEASE_REASON_REJECTED, DeadlineUnixNano: dl}, testNow, DefaultSKURules)
	_, r := s.Step(&pb.ReserveStock{OrderId: "o-late", Quantity: 1, DeadlineUnixNano: dl}, testNow, DefaultSKURules)
	if r.Outcome != pb.Outcome_OUTCOME_CONFLICT || r.View.Reserved != 3 {
		t.Fatalf("late reserve after release: %v", r)
	}
}

func TestSweepReleasesExpiredReservationsBoundedPerTurn(t *testing.T) {
	rules := SKURules{Grace: time.Minute, SweepMax: 3}
	s := NewSKUState("C")
	s.Step(&pb.Restock{OpId: "r", Quantity: 100}, testNow, rules)
	for i := range 5 {
		dl := testNow.Add(time.Duration(i) * time.Second).UnixNano()
		s.Step(&pb.ReserveStock{OrderId: string(rune('a' + i)), Quantity: 1, DeadlineUnixNano: dl}, testNow, rules)
	}
	s.Step(&pb.ReserveStock{OrderId: "late", Quantity: 1, DeadlineUnixNano: testNow.Add(time.Hour).UnixNano()}, testNow, rules)

	if ev, _ := s.Step(&pb.SweepReservations{}, testNow.Add(59*time.Second), rules); len(ev) != 0 {
		t.Fatalf("swept %d before deadline+grace", len(ev))
	}
	ev, r := s.Step(&pb.SweepReservations{}, testNow.Add(2*time.Minute), rules)
	if r != nil || len(ev) != 3 {
		t.Fatalf("first sweep: %d events, reply %v; want 3 and none", len(ev), r)
	}
	if got := ev[0].GetReleased().OrderId; got != "a" {
		t.Fatalf("earliest deadline first: got %s", got)
	}
	ev, _ = s.Step(&pb.SweepReservations{}, testNow.Add(2*time.Minute), rules)
	if len(ev) != 2 || s.Reserved != 1 || s.Available != 99 {
		t.Fatalf("second sweep: %d events, reserved %d available %d", len(ev), s.Reserved, s.Available)
	}
	if h, _ := s.HoldOf("a"); h.GetReleaseReason() != pb.ReleaseReason_RELEASE_REASON_SAFETY_EXPIRY {
		t.Fatalf("hold %v", h)
	}
}

func TestApplyPanicsOnBrokenInvariant(t *testing.T) {
	s := NewSKUState("D")
	defer func() {
		if recover() == nil {
			t.Fatal("reserving stock that is not there did not panic")
		}
	}()
	s.apply(1, &pb.SKUEvent{SchemaVersion: skuSchemaVersion, Body: &pb.SKUEvent_Reserved{Reserved: &pb.StockReserved{OrderId: "o", Quantity: 1}}})
}

// The purchase limit counts each customer's units in live reservations
// and purchases; it refuses what would go over and nothing else.
func TestPurchaseLimit(t *testing.T) {
	s := NewSKUState("L")
	dl := testNow.Add(time.Minute).UnixNano()
	placed := testNow.UnixNano()
	reserve := func(order, customer string, qty int64) *pb.ReserveStock {
		return &pb.ReserveStock{OrderId: order, Quantity: qty, DeadlineUnixNano: dl, Customer: customer}
	}
	steps := []struct {
		give  any
		want  pb.Outcome
		units map[string]int64 // counted after the command
	}{
		{&pb.Restock{OpId: "r", Quantity: 20}, pb.Outcome_OUTCOME_APPLIED, nil},
		{reserve("o1", "c1", 2), pb.Outcome_OUTCOME_APPLIED, nil}, // no limit: nothing counted
		{&pb.SetPurchaseLimit{PerCustomer: -1}, pb.Outcome_OUTCOME_INVALID, nil},
		{&pb.SetPurchaseLimit{PerCustomer: 3}, pb.Outcome_OUTCOME_APPLIED, map[string]int64{"c1": 2}},
		{&pb.SetPurchaseLimit{PerCustomer: 3}, pb.Outcome_OUTCOME_ALREADY_DONE, map[string]int64{"c1": 2}},
		{reserve("o2", "c1", 2), pb.Outcome_OUTCOME_LIMIT_EXCEEDED, map[string]int64{"c1": 2}},
		{reserve("o2", "c1", 1), pb.Outcome_OUTCOME_APPLIED, map[string]int64{"c1": 3}},
		{reserve("o2", "c1", 1), pb.Outcome_OUTCOME_ALREADY_DONE, map[string]int64{"c1": 3}}, // a retry is not counted twice
		{reserve("o3", "c2", 3), pb.Outcome_OUTCOME_APPLIED, map[string]int64{"c1": 3, "c2": 3}},
		{reserve("o4", "", 5), pb.Outcome_OUTCOME_APPLIED, map[string]int64{"c1": 3, "c2": 3}}, // no customer: not counted
		{&pb.ReleaseReservation{OrderId: "o1", Reason: pb.ReleaseReason_RELEASE_REASON_CANCELLED}, pb.Outcome_OUTCOME_APPLIED,
			map[string]int64{"c1": 1, "c2": 3}},
		{&pb.CommitReservation{OrderId: "o2"}, pb.Outcome_OUTCOME_APPLIED, map[string]int64{"c1": 1, "c2": 3}}, // paid units keep counting
		{reserve("o5", "c1", 3), pb.Outcome_OUTCOME_LIMIT_EXCEEDED, map[string]int64{"c1": 1, "c2": 3}},
		{reserve("o5", "c1", 2), pb.Outcome_OUTCOME_APPLIED, map[string]int64{"c1": 3, "c2": 3}},
		{&pb.ReturnStock{OrderId: "o2", Customer: "c1", PlacedUnixNano: placed, OwedSinceUnixNano: placed}, pb.Outcome_OUTCOME_APPLIED,
			map[string]int64{"c1": 2, "c2": 3}},
		{&pb.SetPurchaseLimit{PerCustomer: 1}, pb.Outcome_OUTCOME_APPLIED, map[string]int64{"c1": 2, "c2": 3}}, // lowering touches nothing
		{reserve("o6", "c3", 2), pb.Outcome_OUTCOME_LIMIT_EXCEEDED, map[string]int64{"c1": 2, "c2": 3}},
		{reserve("o6", "c3", 1), pb.Outcome_OUTCOME_APPLIED, map[string]int64{"c1": 2, "c2": 3, "c3": 1}},
		{&pb.SetPurchaseLimit{PerCustomer: 0}, pb.Outcome_OUTCOME_APPLIED, nil},
		{reserve("o7", "c3", 9), pb.Outcome_OUTCOME_APPLIED, nil},
	}
	for i, st := range steps {
		_, r := s.Step(st.give, testNow, DefaultSKURules)
		if r.Outcome != st.want {
			t.Fatalf("step %d %T %v: %v %s, want %v", i, st.give, st.give, r.Outcome, r.Detail, st.want)
		}
		if r.View.PerCustomerLimit != s.Limit {
			t.Fatalf("step %d: view limit %d, state %d", i, r.View.PerCustomerLimit, s.Limit)
		}
		if s.CountedCustomers() != len(st.units) {
			t.Fatalf("step %d: %d customers counted, want %v", i, s.CountedCustomers(), st.units)
		}
		for c, n := range st.units {
			if got := s.CustomerUnits(c); got != n {
				t.Fatalf("step %d: %s counts %d, want %d", i, c, got, n)
			}
		}
		if err := s.CheckHolds(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
}

// BenchmarkSKUStepReserve is the pure cost of deciding and applying one
// reservation, with and without a purchase limit on the SKU.
//
//	go test -run '^$' -bench SKUStepReserve ./actors/
func BenchmarkSKUStepReserve(b *testing.B) {
	for _, limit := range []int64{0, 1_000_000_000} {
		b.Run(fmt.Sprintf("limit=%d", limit), func(b *testing.B) {
			s := NewSKUState("B")
			s.Step(&pb.Restock{OpId: "r", Quantity: stockQuantityMax}, testNow, DefaultSKURules)
			s.Step(&pb.SetPurchaseLimit{PerCustomer: limit}, testNow, DefaultSKURules)
			dl := testNow.Add(time.Hour).UnixNano()
			cmds := make([]*pb.ReserveStock, b.N)
			for i := range cmds {
				cmds[i] = &pb.ReserveStock{OrderId: fmt.Sprint("o", i), Quantity: 1, DeadlineUnixNano: dl, Customer: fmt.Sprint("c", i%1000)}
			}
			b.ResetTimer()
			for _, c := range cmds {
				if _, r := s.Step(c, testNow, DefaultSKURules); r.Outcome != pb.Outcome_OUTCOME_APPLIED {
					b.Fatal(r.Outcome)
				}
			}
		})
	}
}
