package actors_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
	"github.com/orderengine/orderengine/actors/testkit"
)

func deadline(k *testkit.Kit) int64 { return k.Clock.Now().Add(15 * time.Minute).UnixNano() }

// Hundreds of goroutines race for one SKU's stock through its actor:
// exactly stock of them succeed, and the journal agrees.
func TestConcurrentReservesNeverOversell(t *testing.T) {
	const stock, callers, perCaller = 100, 300, 3
	k := testkit.New(t)
	k.Journal.SetFlushDelay(200 * time.Microsecond)
	k.AskSKU("HOT", &pb.Restock{OpId: "r", Quantity: stock})

	var won, lost atomic.Int64
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := range perCaller {
				order := fmt.Sprintf("o-%d-%d", c, i)
				res, err := k.TryAskSKU("HOT", &pb.ReserveStock{OrderId: order, Quantity: 1, DeadlineUnixNano: deadline(k)})
				switch {
				case err != nil:
					t.Errorf("%s: %v", order, err)
				case res.Outcome == pb.Outcome_OUTCOME_APPLIED:
					won.Add(1)
				case res.Outcome == pb.Outcome_OUTCOME_INSUFFICIENT:
					lost.Add(1)
				default:
					t.Errorf("%s: outcome %v", order, res.Outcome)
				}
			}
		})
	}
	wg.Wait()
	if won.Load() != stock || lost.Load() != callers*perCaller-stock {
		t.Fatalf("%d reservations succeeded and %d failed; want %d and %d", won.Load(), lost.Load(), stock, callers*perCaller-stock)
	}
	v := k.AskSKU("HOT", &pb.GetStock{}).View
	if v.Available != 0 || v.Reserved != stock {
		t.Fatalf("view %v", v)
	}
	durable := k.SKUState("HOT")
	if durable.Available != 0 || durable.Reserved != stock || durable.HoldCount() != stock {
		t.Fatalf("journal says available %d reserved %d holds %d", durable.Available, durable.Reserved, durable.HoldCount())
	}
	if f := k.Journal.Flushes(); f >= stock+1 {
		t.Fatalf("%d flushes for %d reservations: the actor is not batching", f, stock)
	}
}

// No caller hears of success before its events are durable.
func TestNoReplyBeforeDurable(t *testing.T) {
	k := testkit.New(t)
	k.AskSKU("A", &pb.Restock{OpId: "r", Quantity: 5})
	k.Journal.Pause()

	replies := make(chan *pb.StockResult, 3)
	for i := range 3 {
		go func() {
			res, err := k.TryAskSKU("A", &pb.ReserveStock{OrderId: fmt.Sprint("o", i), Quantity: 1, DeadlineUnixNano: deadline(k)})
			if err != nil {
				t.Error(err)
			}
			replies <- res
		}()
	}
	waitFor(t, func() bool { return k.Journal.Pending() > 0 })
	select {
	case r := <-replies:
		t.Fatalf("a caller got %v while its events were not durable", r)
	case <-time.After(100 * time.Millisecond):
	}
	if n := len(k.SKUEvents("A")); n != 1 {
		t.Fatalf("%d durable events while paused, want only the restock", n)
	}
	k.Journal.Resume()
	for range 3 {
		if r := <-replies; r.Outcome != pb.Outcome_OUTCOME_APPLIED {
			t.Fatalf("after resume: %v", r)
		}
	}
	if n := len(k.SKUEvents("A")); n != 4 {
		t.Fatalf("%d durable events, want 4", n)
	}
}

// A failed flush fails the callers waiting on it, and the actor goes on
// from what is durable: the lost reservation is not in its state.
func TestFailedFlushFailsWaitersAndRecovers(t *testing.T) {
	k := testkit.New(t)
	k.AskSKU("A", &pb.Restock{OpId: "r", Quantity: 5})
	k.Journal.FailNext(errors.New("disk on fire"))

	res := k.AskSKU("A", &pb.ReserveStock{OrderId: "o1", Quantity: 2, DeadlineUnixNano: deadline(k)})
	if res.Outcome != pb.Outcome_OUTCOME_UNAVAILABLE {
		t.Fatalf("reserve during failed flush: %v", res)
	}
	if v := k.AskSKU("A", &pb.GetStock{}).View; v.Available != 5 || v.Reserved != 0 {
		t.Fatalf("after failed flush the actor shows %v, want the durable state", v)
	}
	res = k.AskSKU("A", &pb.ReserveStock{OrderId: "o1", Quantity: 2, DeadlineUnixNano: deadline(k)})
	if res.Outcome != pb.Outcome_OUTCOME_APPLIED || res.View.Available != 3 {
		t.Fatalf("retry after recovery: %v", res)
	}
	if n := len(k.SKUEvents("A")); n != 2 {
		t.Fatalf("%d durable events, want 2", n)
	}
}

// Under a slow journal, many callers share each flush, and every one that
// was told APPLIED is in the journal.
func TestSlowJournalBatchesAndLosesNothingAcknowledged(t *testing.T) {
	k := testkit.New(t)
	k.Journal.SetFlushDelay(2 * time.Millisecond)
	k.AskSKU("A", &pb.Restock{OpId: "r", Quantity: 1000})
	var acked sync.Map
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			id := fmt.Sprint("o", i)
			res, err := k.TryAskSKU("A", &pb.ReserveStock{OrderId: id, Quantity: 1, DeadlineUnixNano: deadline(k)})
			if err == nil && res.Outcome == pb.Outcome_OUTCOME_APPLIED {
				acked.Store(id, true)
			}
		})
	}
	wg.Wait()
	durable := k.SKUState("A")
	n := 0
	acked.Range(func(id, _ any) bool {
		n++
		if _, ok := durable.HoldOf(id.(string)); !ok {
			t.Errorf("acknowledged %s is not in the journal", id)
		}
		return true
	})
	if n != 200 {
		t.Fatalf("%d of 200 acknowledged", n)
	}
	if f := k.Journal.Flushes(); f > 100 {
		t.Fatalf("%d flushes for 200 reservations", f)
	}
}

// A crash loses what was applied but not durable, and nothing else.
func TestCrashRecoversFromJournal(t *testing.T) {
	k := testkit.New(t)
	k.AskSKU("A", &pb.Restock{OpId: "r", Quantity: 10})
	k.AskSKU("A", &pb.ReserveStock{OrderId: "o1", Quantity: 4, DeadlineUnixNano: deadline(k)})
	k.AskSKU("A", &pb.CommitReservation{OrderId: "o1"})
	before := k.AskSKU("A", &pb.GetStock{}).View

	k.CrashSKU("A")
	after := k.AskSKU("A", &pb.GetStock{}).View
	if after.Available != before.Available || after.Sold != before.Sold || after.Sold != 4 {
		t.Fatalf("after crash %v, before %v", after, before)
	}
	if r := k.AskSKU("A", &pb.CommitReservation{OrderId: "o1"}); r.Outcome != pb.Outcome_OUTCOME_ALREADY_DONE {
		t.Fatalf("idempotency lost in the crash: %v", r)
	}
}

// A reservation the order never settles is released by the SKU once the
// clock passes deadline plus grace.
func TestSafetyExpiryOnTheInjectedClock(t *testing.T) {
	k := testkit.New(t, testkit.WithSKUConfig(actors.SKUConfig{Rules: actors.SKURules{Grace: time.Minute, SweepMax: 10}}))
	k.AskSKU("A", &pb.Restock{OpId: "r", Quantity: 3})
	k.AskSKU("A", &pb.ReserveStock{OrderId: "o1", Quantity: 3, DeadlineUnixNano: k.Clock.Now().Add(time.Minute).UnixNano()})

	k.Advance(time.Minute + 30*time.Second)
	if v := k.AskSKU("A", &pb.GetStock{}).View; v.Reserved != 3 {
		t.Fatalf("released before deadline+grace: %v", v)
	}
	k.Advance(time.Minute)
	if v := k.AskSKU("A", &pb.GetStock{}).View; v.Reserved != 0 || v.Available != 3 {
		t.Fatalf("not released after deadline+grace: %v", v)
	}
	evs := k.SKUEvents("A")
	if got := evs[len(evs)-1].GetReleased().GetReason(); got != pb.ReleaseReason_RELEASE_REASON_SAFETY_EXPIRY {
		t.Fatalf("last event %v", evs[len(evs)-1])
	}
}

// An idle SKU passivates after a snapshot and comes back on its next
// message with its state.
func TestPassivationSnapshotsAndReactivates(t *testing.T) {
	k := testkit.New(t, testkit.WithSKUConfig(actors.SKUConfig{PassivateAfter: 50 * time.Millisecond, SnapshotEvery: 1000}))
	k.AskSKU("A", &pb.Restock{OpId: "r", Quantity: 10})
	k.AskSKU("A", &pb.Remove{OpId: "m", Quantity: 3})
	waitFor(t, func() bool {
		seq, _, _ := k.Journal.LoadSnapshot("sku/A")
		_, alive := k.System.ProcessRegistry.GetLocal("sku/A")
		return seq == 2 && !alive
	})
	if v := k.AskSKU("A", &pb.GetStock{}).View; v.Available != 7 {
		t.Fatalf("after reactivation %v", v)
	}
	if r := k.AskSKU("A", &pb.Remove{OpId: "m", Quantity: 3}); r.Outcome != pb.Outcome_OUTCOME_ALREADY_DONE {
		t.Fatalf("operation IDs lost across passivation: %v", r)
	}
}

func TestPeriodicSnapshots(t *testing.T) {
	k := testkit.New(t, testkit.WithSKUConfig(actors.SKUConfig{SnapshotEvery: 10}))
	for i := range 25 {
		k.AskSKU("A", &pb.Restock{OpId: fmt.Sprint("r", i), Quantity: 1})
	}
	// Snapshots are encoded off the actor's turn, so the second one is at
	// 20 or, if the first finished late, a little after.
	waitFor(t, func() bool { seq, _, _ := k.Journal.LoadSnapshot("sku/A"); return seq >= 20 })
	if s := k.SKUState("A"); s.Available != 25 || s.Sequence != 25 {
		t.Fatalf("snapshot plus tail gives available %d at %d", s.Available, s.Sequence)
	}
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 5s")
}

// A crash while a write is in flight: the reply waiting for that write
// left with it, so the caller gets the write's outcome once it lands, not
// the crash; a retry with the same order ID finds it without applying
// twice.
func TestCrashWithWriteInFlight(t *testing.T) {
	k := testkit.New(t)
	k.AskSKU("A", &pb.Restock{OpId: "r", Quantity: 10})
	k.Journal.Pause()
	inFlight := k.AskSKUAsync("A", &pb.ReserveStock{OrderId: "o2", Quantity: 2, DeadlineUnixNano: deadline(k)})
	waitFor(t, func() bool { return k.Journal.Pending() > 0 })
	k.CrashSKU("A")
	k.Journal.Resume() // the write that was in flight lands now
	if r := inFlight.Wait(); r.GetOutcome() != pb.Outcome_OUTCOME_APPLIED || r.View.Reserved != 2 {
		t.Fatalf("caller waiting through a crash got %v, want its reservation", r)
	}
	waitFor(t, func() bool { return k.Journal.Pending() == 0 })
	r := k.AskSKU("A", &pb.ReserveStock{OrderId: "o2", Quantity: 2, DeadlineUnixNano: deadline(k)})
	if r.Outcome != pb.Outcome_OUTCOME_ALREADY_DONE || r.View.Reserved != 2 || r.View.Available != 8 {
		t.Fatalf("retry after crash: %v", r)
	}
	if s := k.SKUState("A"); s.Reserved != 2 || s.Sequence != 2 {
		t.Fatalf("journal: reserved %d at %d", s.Reserved, s.Sequence)
	}
}

// An actor stopped while its write is in flight answers the reply that
// left with the write at once, UNAVAILABLE, as it answers every reply it
// still holds: if the write then fails, its notice finds no turn to answer
// it in, and the caller must not wait out its timeout.
func TestStopWithWriteInFlight(t *testing.T) {
	k := testkit.New(t)
	k.AskSKU("A", &pb.Restock{OpId: "r1", Quantity: 10})
	k.Journal.Pause()
	inFlight := k.AskSKUAsync("A", &pb.Restock{OpId: "r2", Quantity: 5})
	waitFor(t, func() bool { return k.Journal.Pending() > 0 })
	if err := k.System.Root.StopFuture(k.Registry.SKUPID("A")).Wait(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inFlight.Done():
		if r := inFlight.Wait(); r.GetOutcome() != pb.Outcome_OUTCOME_UNAVAILABLE || !strings.Contains(r.GetDetail(), "stopped") {
			t.Fatalf("caller of the stopped actor got %v, want UNAVAILABLE naming the stop", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the caller of a stopped actor got no answer while its write was in flight")
	}
	k.Journal.FailNext(errors.New("disk gone"))
	k.Journal.Resume()
	waitFor(t, func() bool { return k.Journal.Pending() == 0 })
	if v := k.AskSKU("A", &pb.GetStock{}).View; v.Available != 10 {
		t.Fatalf("after the failed write: %d available, want 10", v.Available)
	}
}

// Snapshots are spaced by the number of holds they carry, so a hot SKU's
// snapshot cost per event stays constant; recovery is still exact. They
// are taken off the actor's turn, so their exact sequences depend on
// timing; the spacing does not.
func TestSnapshotsAreSpacedByStateSize(t *testing.T) {
	j := &snapshotLog{Journal: testkit.NewJournal()}
	t.Cleanup(j.Close)
	system := actor.NewActorSystem()
	t.Cleanup(system.Shutdown)
	reg := actors.NewRegistry(system, actors.SKUConfig{Journal: j, Clock: testkit.NewClock(time.Unix(1e9, 0)), SnapshotEvery: 10})
	ask := func(cmd any) *pb.StockResult {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := reg.AskSKU(ctx, "A", cmd)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	ask(&pb.Restock{OpId: "r", Quantity: 1000})
	for i := range 50 {
		ask(&pb.ReserveStock{OrderId: fmt.Sprint("o", i), Quantity: 1, DeadlineUnixNano: time.Unix(1e9, 0).Add(time.Hour).UnixNano()})
	}
	waitFor(t, func() bool { return len(j.seqs()) >= 2 }) // the first snapshots run late on a busy machine
	seqs := j.seqs()
	// A fixed interval of 10 would have taken 5 snapshots. Spaced by the
	// size of the last one (seq-1 holds): 10, then at least 20, then at
	// least 39.
	if len(seqs) == 0 || len(seqs) > 3 {
		t.Fatalf("snapshots at %v", seqs)
	}
	for i := 1; i < len(seqs); i++ {
		if gap, want := seqs[i]-seqs[i-1], max(10, seqs[i-1]-1); gap < want {
			t.Fatalf("snapshots at %v: gap %d after a snapshot of %d holds", seqs, gap, seqs[i-1]-1)
		}
	}
	s, _, err := actors.LoadSKUState(j, "A")
	if err != nil || s.Sequence != 51 || s.Reserved != 50 || s.HoldCount() != 50 {
		t.Fatalf("recovered %v", err)
	}
}

// snapshotLog is a journal that records the sequences of the snapshots it
// is asked to save.
type snapshotLog struct {
	*testkit.Journal
	mu    sync.Mutex
	saved []uint64
}

func (j *snapshotLog) SaveSnapshot(id string, seq uint64, state []byte, done func(error)) {
	j.mu.Lock()
	j.saved = append(j.saved, seq)
	j.mu.Unlock()
	j.Journal.SaveSnapshot(id, seq, state, done)
}

func (j *snapshotLog) seqs() []uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.saved)
}

// 5000 callers race for 4000 units of one SKU through its actor, with a
// journal whose every flush takes 5 ms: the actor buffers thousands of
// reservations per flush, more than one append may carry, and splits them;
// exactly 4000 win and nobody is told UNAVAILABLE.
func TestFiveThousandReservesOnOneSKU(t *testing.T) {
	const stock, callers = 4000, 5000
	// 5 000 callers under the race detector on a loaded 2-core machine can
	// take longer than the kit's default timeout; this test is about
	// outcomes, not speed.
	k := testkit.New(t, testkit.WithTimeout(time.Minute))
	k.Journal.SetFlushDelay(5 * time.Millisecond)
	k.AskSKU("HOT", &pb.Restock{OpId: "r", Quantity: stock})
	var outcomes [8]atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for c := range callers {
		wg.Go(func() {
			<-start
			res, err := k.TryAskSKU("HOT", &pb.ReserveStock{OrderId: fmt.Sprint("o", c), Quantity: 1, DeadlineUnixNano: deadline(k)})
			if err != nil {
				t.Errorf("o%d: %v", c, err)
				return
			}
			outcomes[res.Outcome].Add(1)
		})
	}
	close(start)
	wg.Wait()
	applied, short := outcomes[pb.Outcome_OUTCOME_APPLIED].Load(), outcomes[pb.Outcome_OUTCOME_INSUFFICIENT].Load()
	if applied != stock || short != callers-stock {
		t.Fatalf("%d applied, %d insufficient, %d unavailable; want %d, %d, 0",
			applied, short, outcomes[pb.Outcome_OUTCOME_UNAVAILABLE].Load(), stock, callers-stock)
	}
	if s := k.SKUState("HOT"); s.Reserved != stock || s.HoldCount() != stock {
		t.Fatalf("journal: reserved %d, %d holds", s.Reserved, s.HoldCount())
	}
}

// The snapshot's encode runs off the actor's turn: while it is held back,
// the actor answers reads and writes.
func TestSnapshotEncodeDoesNotBlockTheActor(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	cfg := actors.WithSnapshotHook(actors.SKUConfig{SnapshotEvery: 3}, func() {
		entered <- struct{}{}
		<-release
	})
	k := testkit.New(t, testkit.WithSKUConfig(cfg))
	defer close(release)
	for i := range 3 {
		k.AskSKU("A", &pb.Restock{OpId: fmt.Sprint("r", i), Quantity: 1})
	}
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("no snapshot started")
	}
	if r := k.AskSKU("A", &pb.GetStock{}); r.View.Available != 3 {
		t.Fatalf("read during the encode: %v", r)
	}
	if r := k.AskSKU("A", &pb.ReserveStock{OrderId: "o", Quantity: 2, DeadlineUnixNano: deadline(k)}); r.Outcome != pb.Outcome_OUTCOME_APPLIED {
		t.Fatalf("write during the encode: %v", r)
	}
	if seq, _, _ := k.Journal.LoadSnapshot("sku/A"); seq != 0 {
		t.Fatalf("snapshot at %d before its encode finished", seq)
	}
	release <- struct{}{}
	waitFor(t, func() bool { seq, _, _ := k.Journal.LoadSnapshot("sku/A"); return seq == 3 })
	// The frozen state was not touched by the reservation made meanwhile.
	if s := k.SKUState("A"); s.Reserved != 2 || s.Available != 1 {
		t.Fatalf("snapshot plus tail: reserved %d available %d", s.Reserved, s.Available)
	}
}

// A SKU that holds reservations passivates like any other; the journal
// keeps its wake time (first deadline plus grace), and the sweep the
// node's waker sends then activates it and releases what is due.
func TestPassivatesWithReservationsAndWakes(t *testing.T) {
	rules := actors.SKURules{Grace: time.Minute, SweepMax: 10}
	k := testkit.New(t, testkit.WithSKUConfig(actors.SKUConfig{PassivateAfter: 50 * time.Millisecond, Rules: rules}))
	k.AskSKU("A", &pb.Restock{OpId: "r", Quantity: 5})
	dl := k.Clock.Now().Add(time.Minute)
	k.AskSKU("A", &pb.ReserveStock{OrderId: "o1", Quantity: 2, DeadlineUnixNano: dl.UnixNano()})
	k.AskSKU("A", &pb.ReserveStock{OrderId: "o2", Quantity: 1, DeadlineUnixNano: dl.Add(time.Hour).UnixNano()})
	waitFor(t, func() bool {
		_, alive := k.System.ProcessRegistry.GetLocal("sku/A")
		return !alive
	})
	if w, want := k.Journal.Wake("sku/A"), dl.Add(time.Minute).UnixNano(); w != want {
		t.Fatalf("wake %d, want %d", w, want)
	}
	k.Clock.Advance(2 * time.Minute)
	k.System.Root.Send(k.Registry.SKUPID("A"), &pb.SweepReservations{})
	if v := k.AskSKU("A", &pb.GetStock{}).View; v.Reserved != 1 || v.Available != 4 {
		t.Fatalf("after the wake-up sweep: %v", v)
	}
	waitFor(t, func() bool { return k.Journal.Wake("sku/A") == dl.Add(time.Hour+time.Minute).UnixNano() })
}

// Requests for SKUs that do not exist (a read, a refused remove or
// reservation) are answered and leave no actor behind: a flood of them
// must not grow the node's memory.
func TestUnknownSKUsLeaveNoActors(t *testing.T) {
	k := testkit.New(t, testkit.WithSKUConfig(actors.SKUConfig{UnknownPassivateAfter: 20 * time.Millisecond}))
	k.AskSKU("real", &pb.Restock{OpId: "r", Quantity: 5})
	for i := range 1000 {
		if r := k.AskSKU(fmt.Sprint("nope-", i), &pb.GetStock{}); r.View.Known {
			t.Fatalf("unknown SKU %d reads as known: %v", i, r)
		}
	}
	if r := k.AskSKU("ghost", &pb.Remove{OpId: "x", Quantity: 1}); r.Outcome != pb.Outcome_OUTCOME_INSUFFICIENT {
		t.Fatalf("remove on an unknown SKU: %v", r)
	}
	if r := k.AskSKU("ghost", &pb.ReserveStock{OrderId: "o", Quantity: 1,
		DeadlineUnixNano: k.Clock.Now().Add(time.Minute).UnixNano()}); r.Outcome != pb.Outcome_OUTCOME_INSUFFICIENT {
		t.Fatalf("reserve on an unknown SKU: %v", r)
	}
	until := time.Now().Add(10 * time.Second)
	for k.Registry.Resident() != 1 {
		if time.Now().After(until) {
			t.Fatalf("%d actors resident, want only the restocked SKU", k.Registry.Resident())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r := k.AskSKU("real", &pb.GetStock{}); r.View.Available != 5 {
		t.Fatalf("the real SKU: %v", r.View)
	}
	if n := len(k.SKUEvents("ghost")); n != 0 {
		t.Fatalf("an unknown SKU journaled %d events", n)
	}
}
