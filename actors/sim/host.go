package sim

import (
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
)

// host runs the real SKU and order actors (their Receive methods and
// durableLog shells, produced by actors.SKUProducer and
// actors.OrderProducer) on the simulation's one thread, in place of
// protoactor's dispatcher: every message between actors, every journal
// completion, every timer and every piece of off-turn work is an event of
// the run, delivered in an order the seed chooses. It plays protoactor's
// part faithfully where the shells depend on it: one message at a time per
// actor, a mailbox in FIFO order, Started before the first message,
// Restarting and a new instance from the same producer after a panic,
// Stopping after a self-stop, and delivery by name, so that a notice sent
// to an earlier activation reaches the current one (the shells tell them
// apart by incarnation).
//
// A real actor.ActorSystem is used only as the process registry that
// RootContext.Send resolves PIDs through: the shells' callbacks and timers
// call root.Send(self, ...), and each name is registered as a process of
// the host's, which turns the send into an event.
type host struct {
	w       *world
	system  *actor.ActorSystem
	journal *shellJournal
	sku     actors.SKUConfig
	order   actors.OrderConfig
	cells   map[string]*cell
	// epoch is the node's incarnation: a node crash bumps it, and events
	// scheduled by an earlier incarnation are void.
	epoch   int
	stalled map[string]time.Time // SKU name -> messages held back until
	replies map[string]func(*pb.OrderResult)
	// inflight counts messages on their way to an actor or a client.
	inflight int
	asks     int // client requests, to name their reply addresses
	logger   *slog.Logger
}

// cell is one actor name: its current activation, if resident.
type cell struct {
	name     string
	pid      *actor.PID
	instance actor.Actor
	produce  actor.Producer // of the current activation; nil when not resident
	// mailboxAt is when the last message sent to it is delivered: later
	// ones come after it, so the mailbox stays FIFO.
	mailboxAt time.Time
	stop      bool // the actor asked to stop itself in this turn
	// fresh: the activation started without reading its journal.
	fresh bool
}

// Timing of the host.
const (
	// mailboxDelayMax spreads local deliveries, so that actors' turns
	// interleave differently from seed to seed.
	mailboxDelayMax = 500 * time.Microsecond
	// offTurnDelayMax bounds how long work handed to Timers.Go takes.
	offTurnDelayMax = 2 * time.Millisecond
	// wakeInterval is how often the node's waker reads the wake index
	// (actors.Orders.RunWaker).
	wakeInterval = time.Second
	// The shells' own periods, shorter than production's so that a short
	// run passivates, sweeps and snapshots.
	shellPassivateAfter = 20 * time.Second
	shellSweepInterval  = 5 * time.Second
	shellSnapshotEvery  = 16
)

func newHost(w *world) *host {
	h := &host{w: w, cells: map[string]*cell{}, stalled: map[string]time.Time{}, replies: map[string]func(*pb.OrderResult){},
		logger: slog.New(slog.DiscardHandler)}
	h.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return h.logger }))
	h.journal = newShellJournal(h)
	clock := simTimers{h}
	h.sku = actors.SKUConfig{Journal: h.journal, Clock: clock, Timers: clock, SnapshotEvery: shellSnapshotEvery,
		PassivateAfter: shellPassivateAfter, SweepInterval: shellSweepInterval, Logger: h.logger}
	h.order = actors.OrderConfig{Journal: h.journal, Clock: clock, Timers: clock, SKUs: h, SnapshotEvery: shellSnapshotEvery,
		PassivateAfter: shellPassivateAfter, Logger: h.logger}
	return h
}

// nodeAfter runs fn after d unless the node crashed meanwhile.
func (h *host) nodeAfter(d time.Duration, fn func()) {
	epoch := h.epoch
	h.w.after(d, func() {
		if epoch == h.epoch {
			fn()
		}
	})
}

// soon runs fn on the node shortly: a callback "from any goroutine".
func (h *host) soon(fn func()) { h.nodeAfter(h.w.delay()/8, fn) }

func (h *host) cell(name string) *cell {
	c := h.cells[name]
	if c == nil {
		c = &cell{name: name, pid: actor.NewPID(h.system.Address(), name)}
		h.cells[name] = c
		if _, ok := h.system.ProcessRegistry.Add(&cellProcess{h: h, name: name}, name); !ok {
			panic("name registered twice: " + name)
		}
	}
	return c
}

// cellProcess is how root.Send reaches the host: a local send to an actor
// goes into its mailbox.
type cellProcess struct {
	h    *host
	name string
}

func (p *cellProcess) SendUserMessage(_ *actor.PID, m any) {
	_, msg, sender := actor.UnwrapEnvelope(m)
	if _, answer := msg.(*pb.StockResult); answer && strings.HasPrefix(p.name, "order/") {
		// A SKU's answer that left from its journal's completion: it
		// crosses the network like one sent in the SKU's turn.
		p.h.network(p.name, msg, sender)
		return
	}
	p.h.mail(p.name, msg, sender, false)
}

// clientProcess is how root.Send reaches a client: an answer that left
// from a journal's completion goes back over the client's link.
type clientProcess struct {
	h    *host
	name string
}

func (p *clientProcess) SendUserMessage(_ *actor.PID, m any) {
	_, msg, _ := actor.UnwrapEnvelope(m)
	p.h.answer(p.name, msg)
}
func (p *clientProcess) SendSystemMessage(*actor.PID, any) {
	panic("the shells send clients no system messages")
}
func (p *clientProcess) Stop(*actor.PID)                 { panic("the shells stop no client") }
func (p *cellProcess) SendSystemMessage(*actor.PID, any) { panic("the shells send no system messages") }
func (p *cellProcess) Stop(*actor.PID)                   { panic("the shells stop themselves through their context") }

// mail puts msg into the named actor's mailbox.
func (h *host) mail(name string, msg any, sender *actor.PID, fresh bool) {
	c := h.cell(name)
	at := h.w.now.Add(time.Duration(h.w.rng.Int64N(int64(mailboxDelayMax))))
	if at.Before(c.mailboxAt) {
		at = c.mailboxAt
	}
	c.mailboxAt = at
	h.inflight++
	epoch := h.epoch
	h.w.at(at, func() {
		h.inflight--
		if epoch == h.epoch {
			h.deliver(c, msg, sender, fresh)
		}
	})
}

// activates reports whether msg brings a name that is not resident into
// memory: a command, as the registry's lookup does, or a wake-up. Notices
// and ticks meant for an activation that stopped are dead letters, and so
// are a SKU's answers to an order that passivated (it sends again).
func activates(msg any) bool {
	switch msg.(type) {
	case *pb.StockResult, actors.Crash:
		return false
	case proto.Message, *actors.Checkout:
		return true
	}
	return reflect.TypeOf(msg) == wakeUpType
}

// wakeUpType is the type of an order's wake-up message, which is not
// exported.
var wakeUpType = func() reflect.Type {
	m, _ := actors.WakeMessage("order/x")
	return reflect.TypeOf(m)
}()

// deliver runs one message through the actor's Receive.
func (h *host) deliver(c *cell, msg any, sender *actor.PID, fresh bool) {
	if c.instance == nil {
		if !activates(msg) {
			return
		}
		h.activate(c, fresh)
	}
	if r, ok := msg.(*pb.StockResult); ok {
		h.w.stockAnswered(strings.TrimPrefix(c.name, "order/"), r)
	}
	h.invoke(c, msg, sender)
}

func (h *host) activate(c *cell, fresh bool) {
	h.w.report.Activations++
	c.fresh = fresh
	switch {
	case strings.HasPrefix(c.name, "sku/"):
		c.produce = actors.SKUProducer(strings.TrimPrefix(c.name, "sku/"), h.sku)
	case strings.HasPrefix(c.name, "order/"):
		c.produce = actors.OrderProducer(strings.TrimPrefix(c.name, "order/"), h.order, fresh)
	default:
		panic("no actor kind for " + c.name)
	}
	h.incarnate(c)
}

// incarnate creates an instance from the activation's producer and starts it.
func (h *host) incarnate(c *cell) {
	c.instance = c.produce()
	if id, ok := strings.CutPrefix(c.name, "order/"); ok {
		h.w.orderLostMemory(id)
	}
	h.invoke(c, &actor.Started{}, nil)
}

// invoke is one turn. A panic is a restart by the supervisor when it was
// asked for (actors.Crash); any other panic is a broken invariant and
// ends the run.
func (h *host) invoke(c *cell, msg any, sender *actor.PID) {
	crashed := h.turn(c, msg, sender)
	if crashed {
		h.w.report.Crashes++
		c.stop = false
		if h.turn(c, &actor.Restarting{}, nil) {
			panic(fmt.Sprintf("%s panicked while restarting", c.name))
		}
		h.incarnate(c)
		return
	}
	if c.stop {
		c.stop = false
		if h.turn(c, &actor.Stopping{}, nil) {
			panic(fmt.Sprintf("%s panicked while stopping", c.name))
		}
		h.turn(c, &actor.Stopped{}, nil)
		c.instance, c.produce = nil, nil
	}
}

// turn calls Receive once and reports whether it panicked as asked.
func (h *host) turn(c *cell, msg any, sender *actor.PID) (crashed bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, asked := msg.(actors.Crash); !asked {
				panic(fmt.Sprintf("%s panicked on %T: %v", c.name, msg, r))
			}
			crashed = true
		}
	}()
	c.instance.Receive(&simContext{h: h, c: c, msg: msg, sender: sender})
	return false
}

// send carries a message an actor sent through its context: to a client
// over the client's link, to another actor over the network.
func (h *host) send(from *cell, to *actor.PID, msg any, sender *actor.PID) {
	if h.answer(to.Id, msg) {
		return
	}
	if to.Id == from.name {
		h.mail(to.Id, msg, sender, false)
		return
	}
	h.network(to.Id, msg, sender)
}

// network carries a message between an order and a SKU: after a random
// delay (which reorders), maybe twice, maybe never; a message to a stalled
// SKU waits until the stall ends.
func (h *host) network(to string, msg any, sender *actor.PID) {
	w := h.w
	for range w.copies() {
		d := w.delay()
		if until := h.stalled[to]; until.After(w.now.Add(d)) {
			d = until.Sub(w.now) + w.delay()
		}
		h.inflight++
		h.nodeAfterCounted(d, func() {
			h.mail(to, msg, sender, false)
			h.faults()
		})
	}
}

// nodeAfterCounted is nodeAfter for a message in flight.
func (h *host) nodeAfterCounted(d time.Duration, fn func()) {
	epoch := h.epoch
	h.w.after(d, func() {
		h.inflight--
		if epoch == h.epoch {
			fn()
		}
	})
}

// RequestSKU implements actors.OrderSKULink: the order's command crosses
// the network to the SKU's actor, with the order as the reply address.
func (h *host) RequestSKU(ctx actor.Context, sku string, msg proto.Message) {
	h.network("sku/"+sku, msg, ctx.Self())
}

// answer carries an actor's answer to the client it is addressed to, over
// the client's link, and reports whether to names a client.
func (h *host) answer(to string, msg any) bool {
	reply, ok := h.replies[to]
	if !ok {
		return false
	}
	res, ok := msg.(*pb.OrderResult)
	if !ok {
		var declined string
		if res, declined, ok = actors.CheckoutAnswer(msg); !ok {
			panic(fmt.Sprintf("%s answered with a %T", to, msg))
		}
		if res == nil {
			// The journal's append limit fits one checkout's events.
			panic(fmt.Sprintf("a sku declined the checkout of %s: %s", to, declined))
		}
	}
	h.inflight++
	h.w.after(clientHop, func() {
		h.inflight--
		reply(res)
	})
	return true
}

// client registers a new address for a client's request; reply gets the
// answers sent to it.
func (h *host) client(orderID string, reply func(*pb.OrderResult)) *actor.PID {
	h.asks++
	to := fmt.Sprintf("client/%s/%d", orderID, h.asks)
	h.replies[to] = reply
	if _, ok := h.system.ProcessRegistry.Add(&clientProcess{h: h, name: to}, to); !ok {
		panic("name registered twice: " + to)
	}
	return actor.NewPID(h.system.Address(), to)
}

// ask sends a client's command to an order actor; reply gets the answer.
// fresh activates the order without reading its journal (Orders.AskNew).
func (h *host) ask(orderID string, cmd proto.Message, fresh bool, reply func(*pb.OrderResult)) {
	pid := h.client(orderID, reply)
	h.inflight++
	h.nodeAfterCounted(clientHop, func() { h.mail("order/"+orderID, cmd, pid, fresh) })
}

// checkout sends a client's one-line checkout to its SKU's actor, which
// decides it in one turn (actors.Checkout, as Registry.Checkout sends it);
// reply gets the order's result.
func (h *host) checkout(place *pb.PlaceOrder, reply func(*pb.OrderResult)) {
	pid := h.client(place.OrderId, reply)
	h.inflight++
	h.nodeAfterCounted(clientHop, func() { h.mail("sku/"+place.Items[0].Sku, &actors.Checkout{Order: place}, pid, false) })
}

// tell sends msg to the named actor from outside (an admin, the waker).
func (h *host) tell(name string, msg any) { h.mail(name, msg, nil, false) }

// wake is the node's waker: every actor whose wake time has passed gets
// its wake message (actors.Orders.WakeDue, without a resident bound).
func (h *host) wake() {
	var due []string
	_ = h.journal.Due(h.w.now.UnixNano(), 4096, func(id string, _ int64) bool {
		due = append(due, id)
		return true
	})
	for _, id := range due {
		if msg, ok := actors.WakeMessage(id); ok {
			h.tell(id, msg)
		}
	}
}

// faults injects, now and then, a SKU stall, an actor crash (a panic
// that its supervisor answers with a restart from the journal) or a node
// crash (every actor, message and timer gone, un-acknowledged journal
// writes partly kept).
func (h *host) faults() {
	w := h.w
	if w.healed {
		return
	}
	if w.rng.Float64() < w.cfg.StallRate {
		w.report.Stalls++
		h.stalled["sku/"+w.skuIDs[w.rng.IntN(len(w.skuIDs))]] = w.now.Add(time.Duration(w.rng.Int64N(int64(w.cfg.StallMax))))
	}
	if w.rng.Float64() < w.cfg.NodeCrashRate {
		h.crashNode()
		return
	}
	if w.rng.Float64() >= w.cfg.CrashRate {
		return
	}
	names := h.residentNames()
	if len(names) > 0 {
		h.tell(names[w.rng.IntN(len(names))], actors.Crash{})
	}
}

// residentNames lists the resident actors in a deterministic order.
func (h *host) residentNames() []string {
	var names []string
	for _, id := range h.w.skuIDs {
		if c := h.cells["sku/"+id]; c != nil && c.instance != nil {
			names = append(names, c.name)
		}
	}
	for _, id := range h.w.orderIDs {
		if c := h.cells["order/"+id]; c != nil && c.instance != nil {
			names = append(names, c.name)
		}
	}
	return names
}

// crashNode kills the node: no actor hears of it.
func (h *host) crashNode() {
	h.w.report.NodeCrashes++
	h.epoch++
	for _, c := range h.cells {
		c.instance, c.produce, c.stop, c.mailboxAt = nil, nil, false, time.Time{}
	}
	h.journal.crash()
	clear(h.stalled)
	for _, id := range h.w.orderIDs {
		h.w.orderLostMemory(id)
	}
}

// simContext is the actor.Context of one turn. It implements what the
// shells call; anything else reaches the nil embedded interface and
// panics, which the run reports.
type simContext struct {
	actor.Context
	h      *host
	c      *cell
	msg    any
	sender *actor.PID
}

func (x *simContext) Self() *actor.PID                           { return x.c.pid }
func (x *simContext) Sender() *actor.PID                         { return x.sender }
func (x *simContext) Message() any                               { return x.msg }
func (x *simContext) ActorSystem() *actor.ActorSystem            { return x.h.system }
func (x *simContext) Logger() *slog.Logger                       { return x.h.logger }
func (x *simContext) Send(pid *actor.PID, msg any)               { x.h.send(x.c, pid, msg, nil) }
func (x *simContext) Request(pid *actor.PID, msg any)            { x.h.send(x.c, pid, msg, x.c.pid) }
func (x *simContext) Respond(msg any)                            { x.h.send(x.c, x.sender, msg, nil) }
func (x *simContext) MessageHeader() actor.ReadonlyMessageHeader { return nil }
func (x *simContext) Stop(pid *actor.PID) {
	if pid.Id != x.c.name {
		panic("the shells stop only themselves")
	}
	x.c.stop = true
}
func (x *simContext) Poison(pid *actor.PID) { x.Stop(pid) }

// simTimers is the shells' Clock and Timers: the run's clock, and timers
// that are events of the run, late by up to ExpiryLagMax (a busy timer
// wheel) and void after a node crash.
type simTimers struct{ h *host }

func (t simTimers) Now() time.Time { return t.h.w.now }

func (t simTimers) AfterFunc(d time.Duration, f func()) actors.Timer {
	w := t.h.w
	if w.cfg.ExpiryLagMax > 0 {
		d += time.Duration(w.rng.Int64N(int64(w.cfg.ExpiryLagMax)))
	}
	tm := &simTimer{}
	t.h.nodeAfter(d, func() {
		if !tm.stopped {
			tm.fired = true
			f()
		}
	})
	return tm
}

func (t simTimers) Go(f func()) {
	t.h.nodeAfter(time.Duration(t.h.w.rng.Int64N(int64(offTurnDelayMax))), f)
}

type simTimer struct{ stopped, fired bool }

func (t *simTimer) Stop() bool {
	was := !t.stopped && !t.fired
	t.stopped = true
	return was
}
