package actors

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/orderengine/orderengine/actors/pb"
)

// The rules of what a SKU remembers (SKUState's comment), one table each.

var ruleTest = DefaultSKURules // grace 2m, dedup window 10m, op retention 24h

// at is a time relative to testNow.
func at(d time.Duration) time.Time { return testNow.Add(d) }

// stepOK runs a command that must get the given outcome.
func stepOK(t *testing.T, s *SKUState, cmd any, now time.Time, want pb.Outcome) *pb.StockResult {
	t.Helper()
	_, r := s.Step(cmd, now, ruleTest)
	if r.Outcome != want {
		t.Fatalf("%T %v at %v: %v (%s), want %v", cmd, cmd, now.Sub(testNow), r.Outcome, r.Detail, want)
	}
	return r
}

func restocked(t *testing.T, n int64) *SKUState {
	t.Helper()
	s := NewSKUState("R")
	stepOK(t, s, &pb.Restock{OpId: "r0", Quantity: n}, testNow, pb.Outcome_OUTCOME_APPLIED)
	return s
}

func TestSKURuleLateReserveIsRefused(t *testing.T) {
	grace := ruleTest.Grace
	tests := []struct {
		name     string
		deadline time.Duration // relative to the command's time
		want     pb.Outcome
	}{
		{"deadline ahead", time.Minute, pb.Outcome_OUTCOME_APPLIED},
		{"deadline passed, within grace", -grace + time.Nanosecond, pb.Outcome_OUTCOME_APPLIED},
		{"deadline plus grace is now", -grace, pb.Outcome_OUTCOME_CONFLICT},
		{"deadline plus grace passed", -grace - time.Hour, pb.Outcome_OUTCOME_CONFLICT},
		{"no deadline", time.Duration(-testNow.UnixNano()), pb.Outcome_OUTCOME_CONFLICT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := restocked(t, 5)
			r := stepOK(t, s, &pb.ReserveStock{OrderId: "o", Quantity: 1, DeadlineUnixNano: at(tt.deadline).UnixNano()}, testNow, tt.want)
			if tt.want == pb.Outcome_OUTCOME_CONFLICT && (r.Detail != "the reservation's deadline has passed" || s.HoldCount() != 0) {
				t.Fatalf("refusal %q left %d holds", r.Detail, s.HoldCount())
			}
		})
	}
}

// settle brings order "o" (reserved at testNow with deadline dl, 2 units)
// to a settled state at time `settled` and returns the state.
type settleCase struct {
	name     string
	deadline time.Duration
	settle   func(t *testing.T, s *SKUState, dl int64)
	settled  time.Duration // when it settled
	forget   time.Duration // when it may be forgotten: max(deadline+grace, settled+window)
}

func settleCases() []settleCase {
	w, g := ruleTest.DedupWindow, ruleTest.Grace
	reserve := func(t *testing.T, s *SKUState, dl int64) {
		stepOK(t, s, &pb.ReserveStock{OrderId: "o", Quantity: 2, DeadlineUnixNano: dl}, testNow, pb.Outcome_OUTCOME_APPLIED)
	}
	return []settleCase{
		{"committed, window decides", time.Minute, func(t *testing.T, s *SKUState, dl int64) {
			reserve(t, s, dl)
			stepOK(t, s, &pb.CommitReservation{OrderId: "o"}, at(30*time.Second), pb.Outcome_OUTCOME_APPLIED)
		}, 30 * time.Second, 30*time.Second + w},
		{"released, deadline decides", 30 * time.Minute, func(t *testing.T, s *SKUState, dl int64) {
			reserve(t, s, dl)
			stepOK(t, s, &pb.ReleaseReservation{OrderId: "o", Reason: pb.ReleaseReason_RELEASE_REASON_CANCELLED}, at(time.Minute), pb.Outcome_OUTCOME_APPLIED)
		}, time.Minute, 30*time.Minute + g},
		{"returned", time.Minute, func(t *testing.T, s *SKUState, dl int64) {
			reserve(t, s, dl)
			stepOK(t, s, &pb.CommitReservation{OrderId: "o"}, at(10*time.Second), pb.Outcome_OUTCOME_APPLIED)
			stepOK(t, s, &pb.ReturnStock{OrderId: "o", Quantity: 2, OwedSinceUnixNano: at(time.Minute).UnixNano()}, at(time.Minute), pb.Outcome_OUTCOME_APPLIED)
		}, time.Minute, time.Minute + w},
		{"released by the safety sweep", time.Minute, func(t *testing.T, s *SKUState, _ int64) {
			reserve(t, s, at(time.Minute).UnixNano())
			s.Step(&pb.SweepReservations{}, at(time.Minute+g), ruleTest)
		}, time.Minute + g, time.Minute + g + w},
		{"tombstone, deadline decides", 20 * time.Minute, func(t *testing.T, s *SKUState, dl int64) {
			stepOK(t, s, &pb.ReleaseReservation{OrderId: "o", DeadlineUnixNano: dl}, testNow, pb.Outcome_OUTCOME_UNKNOWN_RESERVATION)
		}, 0, 20*time.Minute + g},
		{"tombstone without a deadline", 0, func(t *testing.T, s *SKUState, _ int64) {
			stepOK(t, s, &pb.ReleaseReservation{OrderId: "o"}, at(time.Minute), pb.Outcome_OUTCOME_UNKNOWN_RESERVATION)
		}, time.Minute, time.Minute + w},
	}
}

// A settled hold is forgotten exactly at max(deadline + grace, settled +
// window): decisions stop seeing it then, whether or not it was dropped,
// and the next sweep drops it without touching a counter.
func TestSKURuleSettledHoldsAreForgottenOnTime(t *testing.T) {
	for _, tt := range settleCases() {
		t.Run(tt.name, func(t *testing.T) {
			s := restocked(t, 5)
			tt.settle(t, s, at(tt.deadline).UnixNano())
			h, ok := s.HoldOf("o")
			if !ok || h.SettledUnixNano != at(tt.settled).UnixNano() {
				t.Fatalf("settled hold %v, want settled at %v", h, tt.settled)
			}
			before := s.View()
			probe := &pb.ReleaseReservation{OrderId: "o", DeadlineUnixNano: at(tt.deadline).UnixNano()}
			rules := ruleTest.withDefaults()
			if d := decideSKU(skuTurn{s, at(tt.forget).UnixNano() - 1, rules}, probe); d.reply.Hold != h.State {
				t.Fatalf("just before its time the hold is not seen: %v", d.reply)
			}
			if d := decideSKU(skuTurn{s, at(tt.forget).UnixNano(), rules}, probe); d.reply.Outcome != pb.Outcome_OUTCOME_UNKNOWN_RESERVATION {
				t.Fatalf("at its time the hold is still seen: %v", d.reply)
			}
			s.Step(&pb.SweepReservations{}, at(tt.forget).Add(-time.Nanosecond), ruleTest)
			if _, ok := s.HoldOf("o"); !ok {
				t.Fatal("dropped before its time")
			}
			s.Step(&pb.SweepReservations{}, at(tt.forget), ruleTest)
			if _, ok := s.HoldOf("o"); ok {
				t.Fatal("not dropped at its time")
			}
			if after := s.View(); after.Available != before.Available || after.Sold != before.Sold || after.Reserved != before.Reserved {
				t.Fatalf("forgetting changed the counters: %v -> %v", before, after)
			}
			if err := s.CheckHolds(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A committed hold the SKU forgot can still be returned, with the
// command's quantity, while the return is recent; later, or without a
// quantity, it is refused, and it never applies twice.
func TestSKURuleReturnOfAForgottenHold(t *testing.T) {
	w := ruleTest.DedupWindow
	forgotten := func(t *testing.T) *SKUState {
		s := restocked(t, 10)
		stepOK(t, s, &pb.ReserveStock{OrderId: "o", Quantity: 3, DeadlineUnixNano: at(time.Minute).UnixNano()}, testNow, pb.Outcome_OUTCOME_APPLIED)
		stepOK(t, s, &pb.CommitReservation{OrderId: "o"}, testNow, pb.Outcome_OUTCOME_APPLIED)
		s.Step(&pb.SweepReservations{}, at(w), ruleTest)
		if _, ok := s.HoldOf("o"); ok {
			t.Fatal("committed hold not forgotten after the window")
		}
		return s
	}
	cancelled := at(2 * w) // the order is cancelled long after it was paid
	tests := []struct {
		name      string
		give      *pb.ReturnStock
		now       time.Time
		want      pb.Outcome
		wantSold  int64
		wantState pb.HoldState
	}{
		{"recent", &pb.ReturnStock{OrderId: "o", Quantity: 3, OwedSinceUnixNano: cancelled.UnixNano()}, cancelled.Add(w - 1), pb.Outcome_OUTCOME_APPLIED, 0, pb.HoldState_HOLD_STATE_RETURNED},
		{"owed a window ago", &pb.ReturnStock{OrderId: "o", Quantity: 3, OwedSinceUnixNano: cancelled.UnixNano()}, cancelled.Add(w), pb.Outcome_OUTCOME_CONFLICT, 3, 0},
		{"no quantity", &pb.ReturnStock{OrderId: "o", OwedSinceUnixNano: cancelled.UnixNano()}, cancelled, pb.Outcome_OUTCOME_INVALID, 3, 0},
		{"more than was sold", &pb.ReturnStock{OrderId: "o", Quantity: 4, OwedSinceUnixNano: cancelled.UnixNano()}, cancelled, pb.Outcome_OUTCOME_CONFLICT, 3, 0},
		{"owed in the SKU's future", &pb.ReturnStock{OrderId: "o", Quantity: 3, OwedSinceUnixNano: cancelled.Add(time.Second).UnixNano()}, cancelled, pb.Outcome_OUTCOME_UNAVAILABLE, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := forgotten(t)
			r := stepOK(t, s, tt.give, tt.now, tt.want)
			if r.View.Sold != tt.wantSold || r.Hold != tt.wantState {
				t.Fatalf("sold %d hold %v, want %d %v", r.View.Sold, r.Hold, tt.wantSold, tt.wantState)
			}
			if tt.want != pb.Outcome_OUTCOME_APPLIED {
				return
			}
			// Retries: remembered through the window, refused after it.
			stepOK(t, s, tt.give, tt.now, pb.Outcome_OUTCOME_ALREADY_DONE)
			stepOK(t, s, tt.give, cancelled.Add(w), pb.Outcome_OUTCOME_ALREADY_DONE) // the RETURNED record outlives owed_since + window
			r = stepOK(t, s, tt.give, tt.now.Add(w), pb.Outcome_OUTCOME_CONFLICT)
			if r.View.Sold != 0 || !strings.Contains(r.Detail, "too late") {
				t.Fatalf("late retry: %v", r)
			}
		})
	}
}

// A tombstone refuses the reservation it overtook until that reservation
// would be refused for its deadline anyway.
func TestSKURuleTombstoneLifetime(t *testing.T) {
	s := restocked(t, 5)
	dl := at(20 * time.Minute).UnixNano()
	stepOK(t, s, &pb.ReleaseReservation{OrderId: "o", Reason: pb.ReleaseReason_RELEASE_REASON_REJECTED, DeadlineUnixNano: dl}, testNow, pb.Outcome_OUTCOME_UNKNOWN_RESERVATION)
	late := &pb.ReserveStock{OrderId: "o", Quantity: 1, DeadlineUnixNano: dl}
	for _, step := range []time.Duration{time.Minute, 15 * time.Minute, 22*time.Minute - 1} {
		s.Step(&pb.SweepReservations{}, at(step), ruleTest)
		if r := stepOK(t, s, late, at(step), pb.Outcome_OUTCOME_CONFLICT); r.Hold != pb.HoldState_HOLD_STATE_RELEASED {
			t.Fatalf("at %v the tombstone is gone: %v", step, r)
		}
	}
	s.Step(&pb.SweepReservations{}, at(22*time.Minute), ruleTest)
	if s.HoldCount() != 0 {
		t.Fatal("tombstone kept past deadline plus grace")
	}
	if r := stepOK(t, s, late, at(22*time.Minute), pb.Outcome_OUTCOME_CONFLICT); r.Detail != "the reservation's deadline has passed" {
		t.Fatalf("late reservation after the tombstone: %v", r)
	}
}

func TestSKURuleOpRetention(t *testing.T) {
	r := ruleTest.OpRetention
	s := restocked(t, 5)
	stepOK(t, s, &pb.Remove{OpId: "r0", Quantity: 1}, testNow, pb.Outcome_OUTCOME_APPLIED) // its own name space
	stepOK(t, s, &pb.Restock{OpId: "r0", Quantity: 5}, at(r-1), pb.Outcome_OUTCOME_ALREADY_DONE)
	stepOK(t, s, &pb.Restock{OpId: "r0", Quantity: 4}, at(r-1), pb.Outcome_OUTCOME_CONFLICT)
	stepOK(t, s, &pb.Remove{OpId: "r0", Quantity: 1}, at(r-1), pb.Outcome_OUTCOME_ALREADY_DONE)
	s.Step(&pb.SweepReservations{}, at(r), ruleTest)
	if _, ok := s.OpOf("r0", false); ok {
		t.Fatal("restock ID kept past its retention")
	}
	// Past its retention an ID is new again: documented, not a bug.
	if r := stepOK(t, s, &pb.Restock{OpId: "r0", Quantity: 4}, at(r), pb.Outcome_OUTCOME_APPLIED); r.View.Available != 8 {
		t.Fatalf("view %v", r.View)
	}
}

// Forgetting is bounded per turn, and a record that may be forgotten is
// ignored by decisions even before a turn drops it.
func TestSKUPruneIsBoundedAndInvisible(t *testing.T) {
	s := restocked(t, 1)
	n := skuPruneMax + 100
	for i := range n {
		stepOK(t, s, &pb.ReleaseReservation{OrderId: fmt.Sprint("t", i)}, testNow, pb.Outcome_OUTCOME_UNKNOWN_RESERVATION)
	}
	if s.HoldCount() != n {
		t.Fatalf("%d holds, want %d", s.HoldCount(), n)
	}
	later := at(ruleTest.DedupWindow)
	// t0 is dropped by the command's own pruning; the last is not yet,
	// but no decision sees it.
	if h, ok := s.HoldOf(fmt.Sprint("t", n-1)); !ok || h.State != pb.HoldState_HOLD_STATE_RELEASED {
		t.Fatal("setup")
	}
	stepOK(t, s, &pb.ReleaseReservation{OrderId: fmt.Sprint("t", n-1)}, later, pb.Outcome_OUTCOME_UNKNOWN_RESERVATION)
	s.Step(&pb.SweepReservations{}, later, ruleTest)
	if got := s.HoldCount(); got < 100-skuPrunePerCommand || got > 101 {
		t.Fatalf("%d holds after one sweep; want about 100 (bounded by %d)", got, skuPruneMax)
	}
	s.Step(&pb.SweepReservations{}, later, ruleTest)
	if got := s.HoldCount(); got != 1 { // the tombstone just written
		t.Fatalf("%d holds after two sweeps", got)
	}
	if err := s.CheckHolds(); err != nil {
		t.Fatal(err)
	}
}

func TestSKUWakeAt(t *testing.T) {
	s := restocked(t, 10)
	if w := s.WakeAt(ruleTest); w != 0 {
		t.Fatalf("wake %d without reservations", w)
	}
	for i, d := range []time.Duration{5 * time.Minute, time.Minute, 3 * time.Minute} {
		stepOK(t, s, &pb.ReserveStock{OrderId: fmt.Sprint("o", i), Quantity: 1, DeadlineUnixNano: at(d).UnixNano()}, testNow, pb.Outcome_OUTCOME_APPLIED)
	}
	if w, want := s.WakeAt(ruleTest), at(time.Minute+ruleTest.Grace).UnixNano(); w != want {
		t.Fatalf("wake %d, want %d", w, want)
	}
	stepOK(t, s, &pb.CommitReservation{OrderId: "o1"}, testNow, pb.Outcome_OUTCOME_APPLIED)
	if w, want := s.WakeAt(ruleTest), at(3*time.Minute+ruleTest.Grace).UnixNano(); w != want {
		t.Fatalf("wake after commit %d, want %d", w, want)
	}
	stepOK(t, s, &pb.ReserveStock{OrderId: "far", Quantity: 1, DeadlineUnixNano: math.MaxInt64}, testNow, pb.Outcome_OUTCOME_APPLIED)
	stepOK(t, s, &pb.ReleaseReservation{OrderId: "o0"}, testNow, pb.Outcome_OUTCOME_APPLIED)
	stepOK(t, s, &pb.ReleaseReservation{OrderId: "o2"}, testNow, pb.Outcome_OUTCOME_APPLIED)
	if w := s.WakeAt(ruleTest); w != math.MaxInt64 {
		t.Fatalf("a far deadline plus grace wrapped: %d", w)
	}
}
