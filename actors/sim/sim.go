package sim

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
)

// Config sizes one run. Zero fields take the values of DefaultConfig.
type Config struct {
	Orders int // checkouts placed by the workload
	SKUs   int // SKUs they draw their lines from
	// Stock is the largest initial stock of a SKU; each gets 0 to Stock
	// units, so some lines are refused.
	Stock int64
	// DropRate and DupRate are the chances that a message between an
	// order and a SKU is lost or delivered twice; DelayMax is the largest
	// delivery delay, and random delays reorder messages.
	DropRate, DupRate float64
	DelayMax          time.Duration
	// CrashRate is the chance, per delivered message, that a random actor
	// crashes: its unjournaled events and unsent replies are lost and it
	// recovers from the journal.
	CrashRate float64
	// StallRate is the chance, per delivered message, that a random SKU
	// stops taking messages for up to StallMax (a GC pause, a slow disk, a
	// partition): sagas then outlive their TTL, and releases overtake
	// reservations.
	StallRate float64
	StallMax  time.Duration
	// ExpiryLagMax delays the expiry tick after expires_at by up to this
	// much (a busy timer wheel, a passivated actor), so that commands that
	// arrive in between meet an order that has expired but was not told.
	// The real shells' timers (expiry, retry, sweep, idle) are all late by
	// up to this much.
	ExpiryLagMax time.Duration
	// NodeCrashRate is the chance, per delivered message, that the whole
	// node dies and restarts (real shells only): every actor, message and
	// timer is lost, and of the journal writes not yet acknowledged a
	// seed-chosen prefix survives.
	NodeCrashRate float64
	// JournalFailRate is the chance that a group commit of the journal
	// fails (real shells only); a third of the failures are a full volume.
	JournalFailRate float64
	// Model runs the model of the shells (the pure cores plus a model of
	// their durable log) instead of the real SKU and order actors.
	Model bool
}

// DefaultConfig is a run of moderate size with harsh faults.
var DefaultConfig = Config{
	Orders: 1000, SKUs: 24, Stock: 300,
	DropRate: 0.08, DupRate: 0.08, DelayMax: 40 * time.Millisecond, CrashRate: 0.002,
	StallRate: 0.0005, StallMax: 40 * time.Second, ExpiryLagMax: 3 * time.Second,
	NodeCrashRate: 0.0005, JournalFailRate: 0.01,
}

func (c Config) withDefaults() Config {
	d := DefaultConfig
	if c.Orders > 0 {
		d.Orders = c.Orders
	}
	if c.SKUs > 0 {
		d.SKUs = c.SKUs
	}
	if c.Stock > 0 {
		d.Stock = c.Stock
	}
	if c.DropRate > 0 || c.DupRate > 0 || c.DelayMax > 0 || c.CrashRate > 0 || c.StallRate > 0 || c.ExpiryLagMax > 0 ||
		c.NodeCrashRate > 0 || c.JournalFailRate > 0 {
		d.DropRate, d.DupRate, d.DelayMax, d.CrashRate = c.DropRate, c.DupRate, c.DelayMax, c.CrashRate
		d.StallRate, d.StallMax, d.ExpiryLagMax = c.StallRate, c.StallMax, c.ExpiryLagMax
		d.NodeCrashRate, d.JournalFailRate = c.NodeCrashRate, c.JournalFailRate
	}
	d.Model = c.Model
	return d
}

// Report counts what a run did.
type Report struct {
	Orders, Reserved, Rejected, Paid, Cancelled, Expired, Completed int
	// ExpiredReserving counts orders whose saga outlived their TTL.
	ExpiredReserving                               int
	Messages, Dropped, Duplicated, Crashes, Stalls int
	// NodeCrashes, JournalFailures and Activations count what only the
	// real shells go through: node deaths, failed group commits, and
	// actor activations (first use, after passivation, after a crash).
	NodeCrashes, JournalFailures, Activations int
	// StaleHolds counts reservations a duplicated ReserveStock made after
	// the order had been refused on that SKU and whose answer was lost:
	// the order cannot know of them, and the SKU's safety expiry releases
	// them (checked).
	StaleHolds int
	// GaveUp counts unkeyed checkouts whose customer never learnt the
	// outcome (real shells only).
	GaveUp int
	// InTurn counts the one-line checkouts sent to their SKU's actor
	// (actors.Checkout) rather than to the order's (real shells only).
	InTurn  int
	SimTime time.Duration
}

// add sums the counts of r2 into r.
func (r *Report) add(r2 Report) {
	r.Orders += r2.Orders
	r.Reserved += r2.Reserved
	r.Rejected += r2.Rejected
	r.Paid += r2.Paid
	r.Cancelled += r2.Cancelled
	r.Expired += r2.Expired
	r.Completed += r2.Completed
	r.ExpiredReserving += r2.ExpiredReserving
	r.Messages += r2.Messages
	r.Dropped += r2.Dropped
	r.Duplicated += r2.Duplicated
	r.Crashes += r2.Crashes
	r.Stalls += r2.Stalls
	r.NodeCrashes += r2.NodeCrashes
	r.JournalFailures += r2.JournalFailures
	r.Activations += r2.Activations
	r.StaleHolds += r2.StaleHolds
	r.GaveUp += r2.GaveUp
	r.InTurn += r2.InTurn
	r.SimTime += r2.SimTime
}

func (r Report) String() string {
	return fmt.Sprintf("orders %d (reserved %d, rejected %d, paid %d, cancelled %d, expired %d (%d while reserving), completed %d); "+
		"messages %d, dropped %d, duplicated %d, crashes %d, stalls %d, node crashes %d, journal failures %d, activations %d, "+
		"stale holds %d, gave up %d, checkouts in the sku's turn %d; simulated %v",
		r.Orders, r.Reserved, r.Rejected, r.Paid, r.Cancelled, r.Expired, r.ExpiredReserving, r.Completed,
		r.Messages, r.Dropped, r.Duplicated, r.Crashes, r.Stalls, r.NodeCrashes, r.JournalFailures, r.Activations,
		r.StaleHolds, r.GaveUp, r.InTurn, r.SimTime.Round(time.Second))
}

// Limits of a run.
const (
	// settleSimTimeMax bounds the fault-free phase in which every saga must
	// finish.
	settleSimTimeMax = 30 * time.Minute
	// sweepInterval is how often every SKU runs its safety expiry.
	sweepInterval = 5 * time.Second
	// flushDelayMax is the largest journal flush time.
	flushDelayMax = 3 * time.Millisecond
	// eventsMax bounds the events of one run, against a livelock.
	eventsMax = 50_000_000
)

var simStart = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// Run simulates one seed and returns what happened, or the first broken
// invariant. The same seed and config always give the same run.
func Run(seed uint64, cfg Config) (rep Report, err error) {
	w := newWorld(seed, cfg.withDefaults())
	if !w.cfg.Model {
		w.shells = newHost(w)
		defer w.shells.system.Shutdown()
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic at %v: %v", w.now.Sub(simStart), r)
		}
		rep = w.report
		rep.SimTime = w.now.Sub(simStart)
	}()
	w.setup()
	if err := w.runUntil(func() bool { return w.workloadDone() }, 0); err != nil {
		return rep, err
	}
	w.heal()
	if err := w.runUntil(w.quiet, settleSimTimeMax); err != nil {
		if w.shells != nil {
			err = fmt.Errorf("%w: %s", err, w.busy())
		}
		return rep, fmt.Errorf("did not settle: %w", err)
	}
	if err := w.checkSettled(false); err != nil {
		return rep, err
	}
	// Let every TTL and the SKUs' grace run out: the safety expiry must
	// clear what no order knows of, and nothing may be left reserved.
	w.sleep(orderTTLSimMax + actors.DefaultSKURules.Grace + 2*sweepInterval)
	if err := w.runUntil(w.quiet, settleSimTimeMax); err != nil {
		return rep, fmt.Errorf("did not settle after the TTLs: %w", err)
	}
	return rep, w.checkSettled(true)
}

// world is the simulated node: SKU and order actors, their journal, a
// network between them, the customers, and one clock.
type world struct {
	cfg    Config
	rng    *rand.Rand
	now    time.Time
	queue  events
	seq    uint64
	steps  int
	report Report

	journal *journal
	// shells runs the real actors; nil for the model.
	shells *host
	// quietChecked is when shellsQuiet last read the orders back.
	quietChecked time.Time
	skuIDs       []string
	skus         map[string]*skuNode
	orderIDs     []string // in creation order, for deterministic iteration
	orders       map[string]*orderNode
	clients      []*client
	healed       bool
	inflight     int // network messages not delivered yet
	// told records the (order, SKU) pairs whose order was delivered a
	// reserve answer saying the SKU holds its units.
	told    map[string]bool
	placed  int
	entropy *rngReader
}

func newWorld(seed uint64, cfg Config) *world {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return &world{cfg: cfg, rng: rng, now: simStart, journal: newJournal(),
		skus: map[string]*skuNode{}, orders: map[string]*orderNode{}, entropy: &rngReader{rng}, told: map[string]bool{}}
}

// at schedules fn at t (not before now).
func (w *world) at(t time.Time, fn func()) {
	if t.Before(w.now) {
		t = w.now
	}
	w.seq++
	heap.Push(&w.queue, &event{at: t, seq: w.seq, fn: fn})
}

func (w *world) after(d time.Duration, fn func()) { w.at(w.now.Add(d), fn) }

// runUntil processes events until done holds, the queue is empty, or
// (when limit > 0) the clock has moved limit from where it started.
func (w *world) runUntil(done func() bool, limit time.Duration) error {
	start := w.now
	for !done() {
		if len(w.queue) == 0 {
			return fmt.Errorf("nothing left to happen at %v", w.now.Sub(simStart))
		}
		e := heap.Pop(&w.queue).(*event)
		if limit > 0 && e.at.Sub(start) > limit {
			return fmt.Errorf("still busy after %v", limit)
		}
		w.now = e.at
		e.fn()
		if w.shells != nil && w.shells.journal.misuse != nil {
			return fmt.Errorf("a shell broke the journal's contract: %w", w.shells.journal.misuse)
		}
		if w.steps++; w.steps > eventsMax {
			return fmt.Errorf("more than %d events", eventsMax)
		}
	}
	return nil
}

// sleep moves the clock forward, running what is due on the way.
func (w *world) sleep(d time.Duration) {
	end := w.now.Add(d)
	woke := false
	w.at(end, func() { woke = true })
	if err := w.runUntil(func() bool { return woke }, 0); err != nil {
		panic(err)
	}
}

// heal ends the faults: from now on every message arrives once, and no
// actor crashes.
func (w *world) heal() { w.healed = true }

// quiet reports whether every saga is settled and nothing is in flight
// but the periodic ticks.
func (w *world) quiet() bool {
	if w.shells != nil {
		return w.shellsQuiet()
	}
	for _, id := range w.orderIDs {
		o := w.orders[id]
		if len(o.pending) > 0 || len(o.held) > 0 || !actors.OrderSettled(o.state) {
			return false
		}
	}
	for _, id := range w.skuIDs {
		if s := w.skus[id]; len(s.pending) > 0 {
			return false
		}
	}
	return w.inflight == 0 && !slices.ContainsFunc(w.clients, func(c *client) bool { return c.busy })
}

func (w *world) setup() {
	if w.shells != nil {
		w.setupShells()
		return
	}
	for i := range w.cfg.SKUs {
		id := fmt.Sprintf("S%02d", i)
		w.skuIDs = append(w.skuIDs, id)
		s := newSKUNode(w, id)
		w.skus[id] = s
		if n := w.rng.Int64N(w.cfg.Stock + 1); n > 0 {
			s.handle(&pb.Restock{OpId: "initial", Quantity: n}, nil)
		}
	}
	w.every(sweepInterval, func() {
		for _, id := range w.skuIDs {
			w.skus[id].handle(&pb.SweepReservations{}, nil)
		}
	})
	// Customers arrive over a few simulated minutes.
	span := time.Duration(w.cfg.Orders) * 150 * time.Millisecond
	for i := range w.cfg.Orders {
		w.after(time.Duration(w.rng.Int64N(int64(span))), func() { w.newClient(i) })
	}
	// An admin restocks now and then, so a late duplicate reservation can
	// find stock that its first attempt did not.
	for i := range w.cfg.Orders / 20 {
		w.after(time.Duration(w.rng.Int64N(int64(span))), func() {
			id := w.skuIDs[w.rng.IntN(len(w.skuIDs))]
			w.skus[id].handle(&pb.Restock{OpId: fmt.Sprint("restock-", i), Quantity: 1 + w.rng.Int64N(5)}, nil)
		})
	}
}

// every runs fn every d, for ever.
func (w *world) every(d time.Duration, fn func()) {
	var tick func()
	tick = func() {
		fn()
		w.after(d, tick)
	}
	w.after(d, tick)
}

func (w *world) workloadDone() bool {
	return w.placed == w.cfg.Orders && !slices.ContainsFunc(w.clients, func(c *client) bool { return c.busy })
}

// event is one thing that happens at a time; seq orders events of the
// same time by when they were scheduled, which keeps runs deterministic.
type event struct {
	at  time.Time
	seq uint64
	fn  func()
}

type events []*event

func (q events) Len() int { return len(q) }
func (q events) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q events) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *events) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *events) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// rngReader feeds ULID entropy from the run's seeded source.
type rngReader struct{ rng *rand.Rand }

func (r *rngReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r.rng.Uint32())
	}
	return len(p), nil
}
