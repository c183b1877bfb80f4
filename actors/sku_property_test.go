package actors

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/actors/pb"
)

var (
	skuSeeds = flag.Int("sku.seeds", 200, "random command sequences in TestSKUProperty")
	skuSeed  = flag.Uint64("sku.seed", 0, "run only this seed of TestSKUProperty (0: all)")
)

// propRules has short windows, so that a few hundred steps cross them many
// times; propForever is the same SKU with forgetting turned off.
var (
	propRules   = SKURules{Grace: 30 * time.Second, DedupWindow: 2 * time.Minute, OpRetention: 5 * time.Minute}
	propForever = SKURules{Grace: 30 * time.Second, DedupWindow: 100 * 365 * 24 * time.Hour, OpRetention: 100 * 365 * 24 * time.Hour}
)

const propSteps = 400

// TestSKUProperty runs random command sequences that follow the rules of
// SKUState (orders that reserve, pay, cancel, expire and return, with
// duplicates and retries within the dedup window of when each command
// became owed) against four SKUs, and checks after every command:
//
//   - the SKU that forgets and one that never forgets give the same outcome,
//     view and hold, and journal the same events: forgetting changes no
//     answer;
//   - from the middle on, a SKU restored from a snapshot taken there and one
//     replayed from the journal's events give exactly the live SKU's
//     replies and events;
//   - every state passes CheckHolds (apply checks conservation on every
//     event), and at the end, once everything forgettable is dropped, the
//     live, restored and replayed states are equal.
//
// Reproduce a failure with go test ./actors -run TestSKUProperty -sku.seed=N.
func TestSKUProperty(t *testing.T) {
	first, last := uint64(1), uint64(*skuSeeds)
	if *skuSeed != 0 {
		first, last = *skuSeed, *skuSeed
	}
	if testing.Short() {
		last = min(last, first+40)
	}
	for seed := first; seed <= last; seed++ {
		if err := runSKUSequence(seed, propSteps); err != nil {
			t.Fatalf("seed %d: %v\nreproduce: go test ./actors -run TestSKUProperty -sku.seed=%d", seed, err, seed)
		}
	}
}

// propWorld is one random run: the SKUs under test and the orders and
// operations that drive them.
type propWorld struct {
	rng   *rand.Rand
	now   time.Time
	rules [2]SKURules // forgetting, never forgetting
	live  *SKUState   // forgets
	ref   *SKUState   // never forgets
	// restored and replayed join at the middle of the run.
	restored, replayed *SKUState
	journal            []*pb.SKUEvent
	orders             []*propOrder
	ops                []propSend
	nextID             int
	// strays: from the middle on, the SKUs also apply commands that break
	// the rules; the SKU that never forgets leaves then, since its answers
	// may differ from there on.
	strays bool
}

type propStage int

const (
	propPlaced propStage = iota
	propHeld
	propPaid
	propClosed
)

type propOrder struct {
	id       string
	customer string
	placed   int64
	qty      int64
	deadline int64
	stage    propStage
	owed     *propSend  // the command the order owes and has not had answered
	sent     []propSend // answered commands, which the network may deliver again
	paid     bool
	// returnOwed is when its return became owed (zero: never).
	returnOwed time.Time
}

type propSend struct {
	cmd    any
	owedAt time.Time
}

func runSKUSequence(seed uint64, steps int) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	w := &propWorld{rng: rng, now: testNow, live: NewSKUState("P"), ref: NewSKUState("P"), strays: seed%2 == 0}
	sweepMax := 1 + rng.IntN(4)
	w.rules = [2]SKURules{propRules, propForever}
	w.rules[0].SweepMax, w.rules[1].SweepMax = sweepMax, sweepMax
	w.deliver(&pb.Restock{OpId: "first", Quantity: 40})
	for i := range steps {
		if i == steps/2 {
			if err := w.fork(); err != nil {
				return err
			}
		}
		if rng.IntN(10) == 0 {
			w.now = w.now.Add(time.Duration(rng.IntN(180)) * time.Second)
		} else {
			w.now = w.now.Add(time.Duration(rng.IntN(15)) * time.Second)
		}
		if err := w.step(); err != nil {
			return fmt.Errorf("step %d at %v: %w", i, w.now.Sub(testNow), err)
		}
		for _, s := range w.states() {
			if err := s.CheckHolds(); err != nil {
				return fmt.Errorf("step %d: %w", i, err)
			}
		}
	}
	return w.finish()
}

func (w *propWorld) states() []*SKUState {
	out := []*SKUState{w.live}
	if w.ref != nil {
		out = append(out, w.ref)
	}
	if w.restored != nil {
		out = append(out, w.restored, w.replayed)
	}
	return out
}

// step does one random thing.
func (w *propWorld) step() error {
	switch w.rng.IntN(15) {
	case 0, 1, 2:
		return w.place()
	case 3, 4, 5:
		return w.deliverOwed()
	case 6, 7:
		return w.duplicate()
	case 8, 9:
		w.progress()
		return nil
	case 10:
		_, err := w.deliver(&pb.SweepReservations{})
		return err
	case 11:
		_, err := w.deliver(&pb.GetStock{})
		return err
	case 12, 13:
		return w.probe()
	default:
		return w.operation()
	}
}

// place starts an order. One in ten loses its saga race: its release
// (a rejection) overtakes its reservation, which arrives later.
func (w *propWorld) place() error {
	w.nextID++
	o := &propOrder{id: fmt.Sprint("o", w.nextID), qty: int64(1 + w.rng.IntN(4)),
		customer: fmt.Sprint("c", w.rng.IntN(5)), placed: w.now.UnixNano(),
		deadline: w.now.Add(time.Duration(10+w.rng.IntN(240)) * time.Second).UnixNano()}
	reserve := propSend{&pb.ReserveStock{OrderId: o.id, Quantity: o.qty, DeadlineUnixNano: o.deadline, Customer: o.customer}, w.now}
	if w.rng.IntN(10) == 0 {
		o.stage = propClosed
		o.owed = &propSend{&pb.ReleaseReservation{OrderId: o.id, Reason: pb.ReleaseReason_RELEASE_REASON_REJECTED, DeadlineUnixNano: o.deadline}, w.now}
		o.sent = append(o.sent, reserve)
	} else {
		o.owed = &reserve
	}
	w.orders = append(w.orders, o)
	return nil
}

// deliverOwed delivers an order's owed command, or gives it up once its
// dedup window has passed (a real order would too: the rules promise
// nothing later).
func (w *propWorld) deliverOwed() error {
	o := w.pickOrder(func(o *propOrder) bool { return o.owed != nil })
	if o == nil {
		return nil
	}
	send := *o.owed
	o.owed = nil
	if w.now.Sub(send.owedAt) >= w.rules[0].DedupWindow {
		return nil
	}
	r, err := w.deliver(send.cmd)
	if err != nil {
		return err
	}
	o.sent = append(o.sent, send)
	ok := r.Outcome == pb.Outcome_OUTCOME_APPLIED || r.Outcome == pb.Outcome_OUTCOME_ALREADY_DONE
	_, reserve := send.cmd.(*pb.ReserveStock)
	_, commit := send.cmd.(*pb.CommitReservation)
	switch {
	case reserve && ok:
		o.stage = propHeld
	case commit && ok:
		o.stage, o.paid = propPaid, true
	default:
		o.stage = propClosed
	}
	return nil
}

// duplicate delivers again a command an order sent, within the dedup
// window of when it became owed.
func (w *propWorld) duplicate() error {
	o := w.pickOrder(func(o *propOrder) bool { return len(o.sent) > 0 })
	if o == nil {
		return nil
	}
	send := o.sent[w.rng.IntN(len(o.sent))]
	limit := send.owedAt.Add(w.rules[0].DedupWindow)
	if _, reserve := send.cmd.(*pb.ReserveStock); reserve {
		// A reservation may come again until its deadline plus grace
		// (after that it is refused for its deadline), and a little later.
		limit = time.Unix(0, o.deadline).Add(w.rules[0].Grace + 30*time.Second)
	}
	if !w.now.Before(limit) {
		return nil
	}
	_, err := w.deliver(send.cmd)
	return err
}

// progress moves an order whose last command was answered: pay, cancel or
// expire a held order, return a paid one.
func (w *propWorld) progress() {
	o := w.pickOrder(func(o *propOrder) bool { return o.owed == nil && (o.stage == propHeld || o.stage == propPaid) })
	if o == nil {
		return
	}
	deadline := time.Unix(0, o.deadline)
	switch {
	case o.stage == propPaid:
		if o.returnOwed.IsZero() { // else a stray return cancelled it already
			o.returnOwed = w.now
		}
		o.owed = &propSend{&pb.ReturnStock{OrderId: o.id, Quantity: o.qty, DeadlineUnixNano: o.deadline,
			OwedSinceUnixNano: o.returnOwed.UnixNano(), Customer: o.customer, PlacedUnixNano: o.placed}, o.returnOwed}
	case !w.now.After(deadline) && w.rng.IntN(3) > 0:
		o.owed = &propSend{&pb.CommitReservation{OrderId: o.id}, w.now}
	case !w.now.After(deadline):
		o.owed = &propSend{&pb.ReleaseReservation{OrderId: o.id, Reason: pb.ReleaseReason_RELEASE_REASON_CANCELLED, DeadlineUnixNano: o.deadline}, w.now}
	default: // expired at its deadline
		o.owed = &propSend{&pb.ReleaseReservation{OrderId: o.id, Reason: pb.ReleaseReason_RELEASE_REASON_EXPIRED, DeadlineUnixNano: o.deadline}, deadline}
	}
}

// probe sends a command that need not follow the rules (any order, any
// time). In strays mode the SKUs apply it; otherwise the live, restored
// and replayed SKUs only decide it. Either way they must agree: they keep
// different records for a while (each forgets on its own schedule), but a
// record one of them may forget is forgotten for every decision, and
// apply treats a record it meets that the decision did not see as
// replaced.
func (w *propWorld) probe() error {
	if w.restored == nil || len(w.orders) == 0 {
		return nil
	}
	cmd := w.strayCommand(w.orders[w.rng.IntN(len(w.orders))])
	if w.strays {
		_, err := w.deliver(cmd)
		return err
	}
	var first skuDecision
	for i, s := range []*SKUState{w.live, w.restored, w.replayed} {
		d := decideSKU(skuTurn{s: s, at: s.advance(w.now), rules: w.rules[0].withDefaults()}, cmd)
		if i == 0 {
			first = d
			continue
		}
		if err := sameAnswer(first.reply, d.reply, true); err != nil {
			return fmt.Errorf("probe %T %v: copy %d answers otherwise: %w", cmd, cmd, i, err)
		}
		if err := sameEvents(first.events, d.events); err != nil {
			return fmt.Errorf("probe %T %v: copy %d decides otherwise: %w", cmd, cmd, i, err)
		}
	}
	return nil
}

// strayCommand is a command for o that may come at any time: late
// duplicates, a reservation with another deadline, a commit or release
// out of turn. A return names the true time it became owed (a fresh one
// if o never returned), which is what the order actor sends; and only a
// paid order returns, so that sold keeps covering the committed records.
func (w *propWorld) strayCommand(o *propOrder) any {
	switch w.rng.IntN(4) {
	case 0:
		return &pb.ReserveStock{OrderId: o.id, Quantity: o.qty, DeadlineUnixNano: o.deadline + int64(w.rng.IntN(2))*int64(time.Hour),
			Customer: o.customer}
	case 1:
		return &pb.CommitReservation{OrderId: o.id}
	case 2:
		return &pb.ReleaseReservation{OrderId: o.id, DeadlineUnixNano: o.deadline}
	}
	if !o.paid {
		return &pb.GetStock{}
	}
	if o.returnOwed.IsZero() {
		o.returnOwed = w.now
	}
	return &pb.ReturnStock{OrderId: o.id, Quantity: o.qty, OwedSinceUnixNano: o.returnOwed.UnixNano(),
		Customer: o.customer, PlacedUnixNano: o.placed}
}

// operation sends a new restock or remove, or repeats one within the
// operation retention, or sets the purchase limit (0 to 5, 0 removing it).
func (w *propWorld) operation() error {
	if w.rng.IntN(4) == 0 {
		_, err := w.deliver(&pb.SetPurchaseLimit{PerCustomer: int64(w.rng.IntN(6))})
		return err
	}
	if len(w.ops) > 0 && w.rng.IntN(2) == 0 {
		op := w.ops[w.rng.IntN(len(w.ops))]
		if w.now.Sub(op.owedAt) < w.rules[0].OpRetention {
			_, err := w.deliver(op.cmd)
			return err
		}
	}
	w.nextID++
	var cmd any = &pb.Restock{OpId: fmt.Sprint("op", w.nextID), Quantity: int64(1 + w.rng.IntN(12))}
	if w.rng.IntN(3) == 0 {
		cmd = &pb.Remove{OpId: fmt.Sprint("op", w.nextID), Quantity: int64(1 + w.rng.IntN(3))}
	}
	w.ops = append(w.ops, propSend{cmd, w.now})
	_, err := w.deliver(cmd)
	return err
}

func (w *propWorld) pickOrder(ok func(*propOrder) bool) *propOrder {
	for range 8 {
		if len(w.orders) == 0 {
			return nil
		}
		// Recent orders are the busy ones, but an old one may return its
		// units long after the SKU forgot it.
		i := len(w.orders) - 1 - w.rng.IntN(min(len(w.orders), 40))
		if w.rng.IntN(4) == 0 {
			i = w.rng.IntN(len(w.orders))
		}
		if ok(w.orders[i]) {
			return w.orders[i]
		}
	}
	return nil
}

// deliver runs cmd on every SKU and compares what they say. A reservation
// applied under a purchase limit must have fit in it, and one refused for
// the limit must not have.
func (w *propWorld) deliver(cmd any) (*pb.StockResult, error) {
	limit, before := w.live.Limit, int64(0)
	reserve, _ := cmd.(*pb.ReserveStock)
	if reserve != nil {
		before = w.live.CustomerUnits(reserve.Customer)
	}
	events, reply := w.live.Step(cmd, w.now, w.rules[0])
	if reserve != nil && reply.Outcome == pb.Outcome_OUTCOME_APPLIED && limit > 0 && before+reserve.Quantity > limit {
		return nil, fmt.Errorf("reservation of %d for %s applied with %d counted against a limit of %d",
			reserve.Quantity, reserve.Customer, before, limit)
	}
	if reserve != nil && reply.Outcome == pb.Outcome_OUTCOME_LIMIT_EXCEEDED && (limit == 0 || before+reserve.Quantity <= limit) {
		return nil, fmt.Errorf("reservation of %d for %s refused with %d counted against a limit of %d",
			reserve.Quantity, reserve.Customer, before, limit)
	}
	if w.ref != nil {
		refEvents, refReply := w.ref.Step(cmd, w.now, w.rules[1])
		if err := sameAnswer(reply, refReply, false); err != nil {
			return nil, fmt.Errorf("%T %v: forgetting changed the answer: %w", cmd, cmd, err)
		}
		if err := sameEvents(events, refEvents); err != nil {
			return nil, fmt.Errorf("%T %v: forgetting changed the events: %w", cmd, cmd, err)
		}
	}
	if w.restored != nil {
		for name, s := range map[string]*SKUState{"restored": w.restored, "replayed": w.replayed} {
			ev, r := s.Step(cmd, w.now, w.rules[0])
			if err := sameAnswer(reply, r, true); err != nil {
				return nil, fmt.Errorf("%T %v: the %s SKU answers otherwise: %w", cmd, cmd, name, err)
			}
			if err := sameEvents(events, ev); err != nil {
				return nil, fmt.Errorf("%T %v: the %s SKU journals otherwise: %w", cmd, cmd, name, err)
			}
		}
	}
	w.journal = append(w.journal, events...)
	return reply, nil
}

// fork starts the restored SKU from a snapshot taken now, the way the
// actor takes one, and the replayed SKU from every event so far.
func (w *propWorld) fork() error {
	f := w.live.freeze(w.live.advance(w.now), w.rules[0])
	b, err := f.encode()
	w.live.holds.thaw()
	if err != nil {
		return err
	}
	if w.restored, err = DecodeSKUSnapshot("P", b); err != nil {
		return err
	}
	w.replayed = NewSKUState("P")
	for i, ev := range w.journal {
		back, err := DecodeSKUEvent(encodeSKUEvent(ev))
		if err != nil {
			return err
		}
		w.replayed.apply(uint64(i+1), back)
	}
	if w.strays {
		w.ref = nil
	}
	return nil
}

// finish drops everything forgettable from the three copies of the live
// state and compares them whole.
func (w *propWorld) finish() error {
	if w.restored == nil {
		return nil
	}
	for _, s := range []*SKUState{w.live, w.restored, w.replayed} {
		s.prune(s.advance(w.now), w.rules[0].withDefaults(), math.MaxInt)
	}
	if !proto.Equal(w.live.Snapshot(), w.restored.Snapshot()) {
		return fmt.Errorf("restored state differs:\n live %v\n restored %v", w.live.Snapshot(), w.restored.Snapshot())
	}
	if !proto.Equal(w.live.Snapshot(), w.replayed.Snapshot()) {
		return fmt.Errorf("replayed state differs:\n live %v\n replayed %v", w.live.Snapshot(), w.replayed.Snapshot())
	}
	return nil
}

// sameAnswer compares two replies: all of them, or (exact false) what
// forgetting must not change: outcome, view and hold.
func sameAnswer(a, b *pb.StockResult, exact bool) error {
	if exact || a == nil || b == nil {
		if !proto.Equal(a, b) {
			return fmt.Errorf("%v vs %v", a, b)
		}
		return nil
	}
	if a.Outcome != b.Outcome || a.Hold != b.Hold || !proto.Equal(a.View, b.View) {
		return fmt.Errorf("%v vs %v", a, b)
	}
	return nil
}

func sameEvents(a, b []*pb.SKUEvent) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d events vs %d", len(a), len(b))
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return fmt.Errorf("event %d: %v vs %v", i, a[i], b[i])
		}
	}
	return nil
}
