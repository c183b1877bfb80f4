package actors

import "testing"

// The restart protocol: a carry waits only for its predecessor's append,
// holds commands up to its bound, and hands them back in arrival order
// when that append completes.
func TestRestartCarry(t *testing.T) {
	var c restartCarry
	idle := &durableLog{incarnation: 7}
	c.restarting(idle)
	if c.waiting() {
		t.Fatal("waits although nothing was in flight")
	}
	busy := &durableLog{incarnation: 8, applied: 5, submitted: 5, durable: 2, inflight: 2}
	c.restarting(busy)
	if !c.waiting() {
		t.Fatal("does not wait for the append in flight")
	}
	for i := range restartHeldMax {
		if !c.hold(i, nil) {
			t.Fatalf("refused command %d below the bound", i)
		}
	}
	if c.hold("one too many", nil) {
		t.Fatal("held beyond the bound")
	}
	if _, done, consumed := c.opened(&appendDone{incarnation: 9}); done || consumed || !c.waiting() {
		t.Fatal("opened for another incarnation's append")
	}
	// The predecessor had two appends in flight: the first answer only
	// counts down.
	if _, done, consumed := c.opened(&appendDone{incarnation: 8, last: 3}); done || !consumed || !c.waiting() {
		t.Fatal("opened before the predecessor's last append was answered")
	}
	held, done, _ := c.opened(&appendDone{incarnation: 8, last: 5})
	if !done || c.waiting() || len(held) != restartHeldMax || held[0].msg != 0 || held[len(held)-1].msg != restartHeldMax-1 {
		t.Fatalf("opened: %v, %d held, waiting %v", done, len(held), c.waiting())
	}
	if _, done, consumed := c.opened(&appendDone{incarnation: 8}); done || consumed {
		t.Fatal("opened twice")
	}
}
