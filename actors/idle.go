package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// idleTimer tells an actor when it has received nothing that counts as
// activity for a while, so that it can passivate. It replaces protoactor's
// receive timeout, whose timer goroutine cancels the timer while the
// actor's own goroutine resets it: a data race in the library that the
// race detector reports now and then, worst under a fake clock.
//
// Every field is touched on the actor's goroutine only. The timer's
// callback merely sends an idleTick to the actor, which checks the time of
// the last activity and either reports idleness or arms the timer for the
// rest of the period. So activity costs a clock read, not a timer reset
// per message. A message whose type implements
// actor.NotInfluenceReceiveTimeout (ticks, wake-ups, passivation
// requests) is not activity, as with the receive timeout.
type idleTimer struct {
	after  time.Duration // 0: never idle
	last   time.Time     // the last activity
	timer  Timer
	timers Timers // nil: real time
}

// idleTick is sent by the timer; it names the timer that armed it, so a
// tick from an earlier instance of the actor (before a restart) or an
// earlier arming is ignored.
type idleTick struct{ from *idleTimer }

func (*idleTick) NotInfluenceReceiveTimeout() {}

// IgnoreDeadLetterLogging: a tick that finds its actor stopped is
// expected.
func (*idleTick) IgnoreDeadLetterLogging() {}

// observe records msg as activity unless it is marked as not counting.
func (t *idleTimer) observe(msg any) {
	if _, passive := msg.(actor.NotInfluenceReceiveTimeout); !passive && t.after > 0 {
		t.last = timersNow(t.timers)
	}
}

// set makes the actor idle after d without activity from now; 0 or less
// turns idleness off.
func (t *idleTimer) set(ctx actor.Context, d time.Duration) {
	t.stop()
	t.after, t.last = d, timersNow(t.timers)
	if d > 0 {
		t.arm(ctx, d)
	}
}

// fired handles a tick: it reports whether the actor is idle now, and
// otherwise arms the timer for the rest of the period.
func (t *idleTimer) fired(ctx actor.Context, tick *idleTick) bool {
	if tick.from != t || t.timer == nil {
		return false
	}
	t.timer = nil
	if t.after <= 0 {
		return false
	}
	if rest := t.after - timersNow(t.timers).Sub(t.last); rest > 0 {
		t.arm(ctx, rest)
		return false
	}
	t.arm(ctx, t.after) // asked again later if the actor declines to stop
	return true
}

func (t *idleTimer) arm(ctx actor.Context, d time.Duration) {
	root, self := ctx.ActorSystem().Root, ctx.Self()
	t.timer = afterFunc(t.timers, d, func() { root.Send(self, &idleTick{from: t}) })
}

// stop disarms the timer (the actor stops or restarts).
func (t *idleTimer) stop() {
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
}
