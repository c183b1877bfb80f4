// Package sim is a deterministic simulation of checkout. It runs the real
// SKU and order actors (their Receive methods and the durableLog shells
// that journal their events and hold their replies) on one thread, under a
// scheduler, a journal and a clock that the run controls (host.go,
// shelljournal.go): every message between actors, every journal
// completion, every timer and every piece of off-turn work is an event,
// delivered in an order one seed chooses. Messages between orders and SKUs
// are dropped, duplicated, delayed and reordered; SKUs stall; actors
// crash and are restarted by their supervisor; the journal fails group
// commits (I/O errors and a full volume); the whole node dies, keeping a
// seed-chosen prefix of the journal writes it had not acknowledged; and
// customers place, pay, cancel, ship and complete orders on one simulated
// clock. A failing seed is replayed exactly:
//
//	go test ./actors/sim -run 'TestSimulation$' -seed 1234 -v
//
// Oracles: any panic of an actor other than a requested crash (a broken
// invariant), a breach of the journal's contract (an append longer than
// AppendEventsMax, one that does not continue its identity's sequence
// outside a fresh activation, a snapshot past the durable sequence); and,
// once the faults end and everything settles, reading the journal back:
// every SKU conserves its stock (promise 1), no order holds a reservation
// unless it is reserved, every paid order's units are sold exactly once,
// no order was paid after expires_at, what customers were told agrees
// with where their orders ended, and after the TTLs and the SKUs' grace
// nothing is left reserved.
//
// Config.Model runs the earlier model instead (TestModelSimulation): the
// pure cores with a model of the shells' durable log (simLog in nodes.go).
// It cannot reach a bug of the shells, but costs a tenth as much per
// order, so it runs seeds of a thousand orders.
package sim
