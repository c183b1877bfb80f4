package actors

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/actors/pb"
)

// encodeAt freezes s, encodes it as the actor would at `at`, and thaws.
func encodeAt(t testing.TB, s *SKUState, at time.Time, rules SKURules) []byte {
	t.Helper()
	f := s.freeze(at.UnixNano(), rules)
	defer s.holds.thaw()
	b, err := f.encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The hand-written encoding decodes to what Snapshot builds, and back to
// an equal state.
func TestSKUSnapshotEncoding(t *testing.T) {
	s := skuWith(t)
	s.Step(&pb.ReleaseReservation{OrderId: "o-tomb", Reason: pb.ReleaseReason_RELEASE_REASON_REJECTED, DeadlineUnixNano: -5}, testNow, DefaultSKURules)
	s.Step(&pb.ReserveStock{OrderId: "o-far", Quantity: 1, DeadlineUnixNano: 1 << 62}, testNow, DefaultSKURules)
	s.Step(&pb.SetPurchaseLimit{PerCustomer: 3}, testNow, DefaultSKURules)
	s.Step(&pb.ReserveStock{OrderId: "o-lim", Quantity: 2, DeadlineUnixNano: 1 << 62, Customer: "c-1"}, testNow, DefaultSKURules)
	if s.CustomerUnits("c-1") != 2 {
		t.Fatalf("c-1 counts %d units, want 2", s.CustomerUnits("c-1"))
	}
	b := encodeAt(t, s, testNow, DefaultSKURules)
	got := &pb.SKUSnapshot{}
	if err := proto.Unmarshal(b, got); err != nil {
		t.Fatal(err)
	}
	back, err := DecodeSKUSnapshot("A-1", b)
	if err != nil {
		t.Fatal(err)
	}
	if want := s.Snapshot(); !proto.Equal(back.Snapshot(), want) || len(got.Holds) != s.HoldCount() || len(got.Ops) != 3 {
		t.Fatalf("encoded %v\nwant %v", back.Snapshot(), want)
	}
	std, _ := proto.MarshalOptions{Deterministic: true}.Marshal(got)
	if !bytes.Equal(std, b) {
		t.Fatal("the encoding differs from proto's for the same message")
	}
}

// A snapshot leaves out what may be forgotten at its time.
func TestSKUSnapshotOmitsForgettableRecords(t *testing.T) {
	s := skuWith(t) // settled at testNow, deadlines a minute later
	later := at(DefaultSKURules.DedupWindow)
	back, err := DecodeSKUSnapshot("A-1", encodeAt(t, s, later, DefaultSKURules))
	if err != nil {
		t.Fatal(err)
	}
	if back.HoldCount() != 1 || back.Reserved != 3 || back.Sold != 2 {
		t.Fatalf("restored %v with %d holds, want only the reservation", back.View(), back.HoldCount())
	}
	if _, ok := back.OpOf("r1", false); !ok {
		t.Fatal("operation dropped within its retention")
	}
}

// A frozen view does not see the writes made after it: every page they
// touch is copied first.
func TestSKUFrozenViewIgnoresLaterWrites(t *testing.T) {
	s := NewSKUState("F")
	s.Step(&pb.Restock{OpId: "r", Quantity: 1_000_000}, testNow, DefaultSKURules)
	n := 3*holdPageSlots + 7
	for i := range n {
		s.Step(&pb.ReserveStock{OrderId: fmt.Sprint("o", i), Quantity: 2, DeadlineUnixNano: at(time.Minute).UnixNano()}, testNow, DefaultSKURules)
	}
	want := encodeAt(t, s, testNow, DefaultSKURules)
	f := s.freeze(testNow.UnixNano(), DefaultSKURules)
	for i := 0; i < n; i += 3 {
		s.Step(&pb.CommitReservation{OrderId: fmt.Sprint("o", i)}, testNow, DefaultSKURules)
		s.Step(&pb.ReleaseReservation{OrderId: fmt.Sprint("o", i+1)}, testNow, DefaultSKURules)
		s.Step(&pb.ReserveStock{OrderId: fmt.Sprint("new", i), Quantity: 1, DeadlineUnixNano: at(time.Hour).UnixNano()}, testNow, DefaultSKURules)
	}
	s.Step(&pb.SweepReservations{}, at(time.Hour), DefaultSKURules) // releases and forgets many
	got, err := f.encode()
	s.holds.thaw()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the frozen view changed (err %v)", err)
	}
	if err := s.CheckHolds(); err != nil {
		t.Fatal(err)
	}
}

func TestSKUSnapshotValidation(t *testing.T) {
	valid := func() *pb.SKUSnapshot {
		return &pb.SKUSnapshot{SchemaVersion: skuSchemaVersion, Sku: "V", Sequence: 3, Available: 5, Sold: 2, Restocked: 10, Known: true,
			Holds: []*pb.Hold{
				{OrderId: "a", Quantity: 3, State: pb.HoldState_HOLD_STATE_RESERVED, DeadlineUnixNano: 9},
				{OrderId: "b", Quantity: 2, State: pb.HoldState_HOLD_STATE_COMMITTED, SettledUnixNano: 4},
				{OrderId: "c", State: pb.HoldState_HOLD_STATE_RELEASED, ReleaseReason: pb.ReleaseReason_RELEASE_REASON_REJECTED},
			},
			Ops: []*pb.SKUOp{{OpId: "r", Quantity: 10, AtUnixNano: 1}},
		}
	}
	tests := []struct {
		name  string
		spoil func(*pb.SKUSnapshot)
	}{
		{"old schema", func(s *pb.SKUSnapshot) { s.SchemaVersion = 1 }},
		{"another sku", func(s *pb.SKUSnapshot) { s.Sku = "W" }},
		{"reserved does not add up", func(s *pb.SKUSnapshot) { s.Holds[0].Quantity = 4 }},
		{"commits exceed sold", func(s *pb.SKUSnapshot) { s.Holds[1].Quantity = 3 }},
		{"order twice", func(s *pb.SKUSnapshot) { s.Holds[2].OrderId = "a" }},
		{"no order ID", func(s *pb.SKUSnapshot) { s.Holds[2].OrderId = "" }},
		{"no state", func(s *pb.SKUSnapshot) { s.Holds[2].State = 0 }},
		{"unknown reason", func(s *pb.SKUSnapshot) { s.Holds[2].ReleaseReason = 17 }},
		{"reason on a commit", func(s *pb.SKUSnapshot) { s.Holds[1].ReleaseReason = 1 }},
		{"quantity beyond 32 bits", func(s *pb.SKUSnapshot) { s.Holds[2].Quantity = 1 << 40 }},
		{"empty hold", func(s *pb.SKUSnapshot) { s.Holds[2] = nil }},
		{"operation twice", func(s *pb.SKUSnapshot) { s.Ops = append(s.Ops, s.Ops[0]) }},
		{"operation without quantity", func(s *pb.SKUSnapshot) { s.Ops[0].Quantity = 0 }},
		{"not conserved", func(s *pb.SKUSnapshot) { s.Available = 6 }},
	}
	if _, err := skuStateFromSnapshot("V", valid()); err != nil {
		t.Fatalf("valid snapshot refused: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := valid()
			tt.spoil(snap)
			if _, err := skuStateFromSnapshot("V", snap); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// After a million settled orders, with a fake clock moving 60 ms per
// order (a sustained 17 orders per second on one SKU for 17 hours), the
// snapshot holds only the orders of the last max(TTL + grace, window),
// about 57 bytes each: what a SKU keeps is bounded by its traffic in a
// window, not by its history. The bound is rate times window: at 1 ms per
// order the last 17 minutes hold a million orders' worth of records, and
// must, since each of them may still be retried.
func TestSKUSnapshotBoundedAfterAMillionOrders(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("a million orders take seconds (minutes with -race)")
	}
	const (
		orders  = 1_000_000
		step    = 60 * time.Millisecond
		ttl     = 15 * time.Minute
		maxSize = 1 << 20
	)
	rules := DefaultSKURules
	s := NewSKUState("BIG")
	s.Step(&pb.Restock{OpId: "r", Quantity: stockQuantityMax}, testNow, rules)
	now := testNow
	for i := range orders {
		now = now.Add(step)
		id := fmt.Sprintf("o_01J%023d", i)
		if _, r := s.Step(&pb.ReserveStock{OrderId: id, Quantity: 1, DeadlineUnixNano: now.Add(ttl).UnixNano()}, now, rules); r.Outcome != pb.Outcome_OUTCOME_APPLIED {
			t.Fatalf("order %d: %v", i, r)
		}
		var settle any = &pb.CommitReservation{OrderId: id}
		if i%3 == 1 {
			settle = &pb.ReleaseReservation{OrderId: id, Reason: pb.ReleaseReason_RELEASE_REASON_CANCELLED}
		}
		s.Step(settle, now, rules)
		if i%3 == 2 {
			s.Step(&pb.ReturnStock{OrderId: id, Quantity: 1, OwedSinceUnixNano: now.UnixNano()}, now, rules)
		}
		if i%20 == 0 { // a sweep tick every second
			s.Step(&pb.SweepReservations{}, now, rules)
		}
	}
	b := encodeAt(t, s, now, rules)
	kept := int((max(ttl+rules.Grace, rules.DedupWindow)) / step)
	t.Logf("%d orders over %v: %d holds kept (bound %d), snapshot %d bytes", orders, now.Sub(testNow), s.HoldCount(), kept, len(b))
	if s.HoldCount() > kept+skuPruneMax || len(b) > maxSize {
		t.Fatalf("%d holds kept, snapshot %d bytes; want at most %d and %d", s.HoldCount(), len(b), kept+skuPruneMax, maxSize)
	}
	// Once the last window has passed, nothing of the million is left but
	// the counters: the sweeps drop skuPruneMax records each.
	now = now.Add(max(ttl+rules.Grace, rules.DedupWindow))
	for range kept/skuPruneMax + 2 {
		s.Step(&pb.SweepReservations{}, now, rules)
	}
	if b := encodeAt(t, s, now, rules); s.HoldCount() != 0 || len(b) > 1<<10 {
		t.Fatalf("after the window: %d holds, snapshot %d bytes", s.HoldCount(), len(b))
	}
	if v := s.View(); v.Sold != orders-orders/3-(orders+1)/3 || v.Reserved != 0 {
		t.Fatalf("counters after forgetting: %v", v)
	}
}

// TestSKUHoldMemory measures the Go heap one live reservation costs, with
// order IDs as long as real ones (28 bytes, stored in 32): about 95 bytes
// here, 102 at a million (BenchmarkSKUHoldMemory), where the index map
// happens to sit just after a growth. The bound leaves room for that.
func TestSKUHoldMemory(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	const bytesPerHoldMax = 120
	perHold, _ := holdMemory(100_000)
	t.Logf("%.1f bytes of heap per live reservation, 32 of them the order ID", perHold)
	if perHold > bytesPerHoldMax {
		t.Fatalf("%.1f bytes per live reservation, want at most %d", perHold, bytesPerHoldMax)
	}
}

// holdMemory returns the heap bytes per reservation of a SKU holding n,
// and the state (kept alive through the measurement).
func holdMemory(n int) (float64, *SKUState) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := NewSKUState("M")
	s.apply(1, &pb.SKUEvent{Body: &pb.SKUEvent_Restocked{Restocked: &pb.StockRestocked{OpId: "r", Quantity: stockQuantityMax}}})
	for i := range n {
		s.apply(uint64(i+2), &pb.SKUEvent{Body: &pb.SKUEvent_Reserved{Reserved: &pb.StockReserved{
			OrderId: fmt.Sprintf("o_01J%023d", i), Quantity: 1, DeadlineUnixNano: testNow.Add(time.Duration(i) * time.Millisecond).UnixNano()}}})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n), s
}

// A catalogue of many SKUs with a few holds each must not cost a whole
// page of hold records per SKU: pages start small and grow.
func TestSKUWithFewHoldsIsSmall(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	const (
		skus           = 10_000
		bytesPerSKUMax = 2 << 10
	)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	states := make([]*SKUState, skus)
	for i := range states {
		s := NewSKUState(fmt.Sprint("S-", i))
		s.Step(&pb.Restock{OpId: "r", Quantity: 10}, testNow, DefaultSKURules)
		s.Step(&pb.ReserveStock{OrderId: fmt.Sprintf("o_01J%023d", i), Quantity: 1,
			DeadlineUnixNano: testNow.Add(time.Hour).UnixNano()}, testNow, DefaultSKURules)
		states[i] = s
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perSKU := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / skus
	runtime.KeepAlive(states)
	t.Logf("%.0f bytes of heap per SKU with one hold", perSKU)
	if perSKU > bytesPerSKUMax {
		t.Fatalf("%.0f bytes per SKU with one hold, want at most %d", perSKU, bytesPerSKUMax)
	}
}
