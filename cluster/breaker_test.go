package cluster

import (
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestBreakers(clock *fakeClock, opens *int) *breakers {
	b := newBreakers(3, time.Second, clock.now)
	b.onOpen = func(string) { *opens++ }
	return b
}

func mustAllow(t *testing.T, b *breakers, addr string) ticket {
	t.Helper()
	tk, ok := b.allow(addr)
	if !ok {
		t.Fatalf("allow(%s) refused in state %v", addr, b.state(addr))
	}
	return tk
}

func mustRefuse(t *testing.T, b *breakers, addr string) {
	t.Helper()
	if _, ok := b.allow(addr); ok {
		t.Fatalf("allow(%s) admitted in state %v", addr, b.state(addr))
	}
}

func TestBreakerOpensAfterConsecutiveTimeouts(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	var opens int
	b := newTestBreakers(clock, &opens)

	mustAllow(t, b, "a").failure()
	mustAllow(t, b, "a").failure()
	mustAllow(t, b, "a").success() // a success resets the count
	mustAllow(t, b, "a").failure()
	mustAllow(t, b, "a").failure()
	if got := b.state("a"); got != BreakerClosed {
		t.Fatalf("after 2 failures in a row: %v, want closed", got)
	}
	mustAllow(t, b, "a").failure()
	if got := b.state("a"); got != BreakerOpen || opens != 1 {
		t.Fatalf("after 3 failures in a row: %v with %d opens, want open once", got, opens)
	}
	mustRefuse(t, b, "a")
	if !b.refusing("a") {
		t.Fatal("refusing(a) false while open")
	}
	// Other peers are not affected.
	mustAllow(t, b, "b").success()
	if b.refusing("b") {
		t.Fatal("refusing(b) while closed")
	}
}

func TestBreakerTripFailsInFlight(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	var opens int
	b := newTestBreakers(clock, &opens)

	inflight := mustAllow(t, b, "a")
	other := mustAllow(t, b, "b")
	b.trip("a")
	select {
	case <-inflight.down:
	default:
		t.Fatal("down channel of a request in flight not closed by trip")
	}
	select {
	case <-other.down:
		t.Fatal("trip of a closed b's down channel")
	default:
	}
	inflight.cancel()
	mustRefuse(t, b, "a")
	if opens != 1 {
		t.Fatalf("opens = %d, want 1", opens)
	}
}

func TestBreakerHalfOpenProbe(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	var opens int
	b := newTestBreakers(clock, &opens)
	b.trip("a")

	clock.advance(999 * time.Millisecond)
	mustRefuse(t, b, "a")
	clock.advance(time.Millisecond)
	if got := b.state("a"); got != BreakerHalfOpen {
		t.Fatalf("after the cool-down: %v, want half-open", got)
	}

	// One probe at a time; a failed probe opens the breaker again.
	probe := mustAllow(t, b, "a")
	mustRefuse(t, b, "a")
	if b.refusing("a") {
		t.Fatal("refusing(a) while half-open: sends go through after the cool-down")
	}
	probe.failure()
	if got := b.state("a"); got != BreakerOpen || opens != 2 {
		t.Fatalf("after a failed probe: %v with %d opens, want open twice", got, opens)
	}

	// A cancelled probe frees the slot without deciding.
	clock.advance(time.Second)
	mustAllow(t, b, "a").cancel()
	if got := b.state("a"); got != BreakerHalfOpen {
		t.Fatalf("after a cancelled probe: %v, want half-open", got)
	}

	// A probe's down channel is closed by a trip while it is in flight.
	probe = mustAllow(t, b, "a")
	b.trip("a")
	select {
	case <-probe.down:
	default:
		t.Fatal("probe's down channel not closed by trip")
	}
	probe.cancel()
	if got := b.state("a"); got != BreakerOpen {
		t.Fatalf("after a trip during the probe: %v, want open", got)
	}

	// A successful probe closes it.
	clock.advance(time.Second)
	probe = mustAllow(t, b, "a")
	probe.success()
	if got := b.state("a"); got != BreakerClosed {
		t.Fatalf("after a successful probe: %v, want closed", got)
	}
	mustAllow(t, b, "a").success()
	mustAllow(t, b, "a").success()
}

func TestBreakerLateOutcomesDoNotReopen(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	var opens int
	b := newTestBreakers(clock, &opens)

	// Requests admitted before a trip that time out afterwards do not
	// count again against the open breaker, nor close it on success.
	old := []ticket{mustAllow(t, b, "a"), mustAllow(t, b, "a"), mustAllow(t, b, "a")}
	b.trip("a")
	for _, tk := range old[:2] {
		tk.failure()
	}
	old[2].success()
	if got := b.state("a"); got != BreakerOpen || opens != 1 {
		t.Fatalf("%v with %d opens, want open once", got, opens)
	}
}

func TestBreakerForgetsHealthyPeersBeyondLimit(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	var opens int
	b := newTestBreakers(clock, &opens)
	b.trip("dead")
	for i := range breakerPeersMax + 10 {
		mustAllow(t, b, string(rune('a'+i%26))+time.Duration(i).String()).success()
	}
	if n := len(b.peers); n > breakerPeersMax {
		t.Fatalf("%d peers remembered, want at most %d", n, breakerPeersMax)
	}
	if got := b.state("dead"); got != BreakerOpen {
		t.Fatalf("open breaker forgotten: %v", got)
	}
}
