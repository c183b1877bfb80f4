package actors

import "time"

// Timers is where the actor shells get their timers, the time those timers
// run on, and the work they do off the actor's turn (encoding a SKU
// snapshot). Production leaves it nil: real time, time.AfterFunc and a
// goroutine. The deterministic simulation (actors/sim) passes its own, so
// that every timer and every piece of off-turn work becomes an event it
// schedules. Decisions about orders and stock are made on Clock, never on
// Timers: a timer only wakes the actor.
type Timers interface {
	// Now is the time timers run on (idle passivation measures with it).
	Now() time.Time
	// AfterFunc calls f once, on any goroutine, after d.
	AfterFunc(d time.Duration, f func()) Timer
	// Go runs f off the caller's turn.
	Go(f func())
}

// Timer is an armed Timers.AfterFunc; *time.Timer is one.
type Timer interface {
	Stop() bool
}

// The helpers below take the nil Timers of production straight to the
// standard library, so production pays a nil check, no interface call.

func timersNow(t Timers) time.Time {
	if t == nil {
		return time.Now()
	}
	return t.Now()
}

func afterFunc(t Timers, d time.Duration, f func()) Timer {
	if t == nil {
		return time.AfterFunc(d, f)
	}
	return t.AfterFunc(d, f)
}

func goOffTurn(t Timers, f func()) {
	if t == nil {
		go f()
		return
	}
	t.Go(f)
}
