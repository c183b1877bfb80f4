// Package testkit runs the engine's actors on a real protoactor-go actor
// system with an in-memory journal and a fake clock, so that tests can
// inject any message, read the reply, the journaled events and the state,
// move time forward, and crash an actor and watch it recover from its
// journal.
//
// Users of the engine test their own flows with it:
//
//	k := testkit.New(t)
//	k.AskSKU("A-1", &pb.Restock{OpId: "r1", Quantity: 10})
//	res := k.AskSKU("A-1", &pb.ReserveStock{OrderId: "o1", Quantity: 3, DeadlineUnixNano: k.Clock.Now().Add(time.Minute).UnixNano()})
//	// res.Outcome == pb.Outcome_OUTCOME_APPLIED, res.View.Available == 7
//
// A Kit holds SKU actors; a Checkout adds order actors, which reach the
// SKUs through a Link that can drop, duplicate, hold and reorder their
// commands. The journal can be slowed down, paused and made to fail, to
// test what callers see when durability is late or lost; the fake clock
// moves only on Advance.
//
// # Requests and timeouts
//
// AskSKU and AskOrder send a command and wait for its reply; the Try forms
// return the error instead of failing the test, and the Async forms return
// a Call to wait on later (or to check with ExpectNoReply). SendSKU and
// SendOrder deliver ticks and other messages that get no reply. A message
// the addressed kind of actor does not handle is refused at once with
// ErrUnhandled. A request waits at most the kit's Timeout, DefaultTimeout
// (10 s) unless WithTimeout sets another; the timeout error says what the
// kit saw, such as a paused journal with its pending writes, an actor that
// crashed, or commands the Link holds. Eventually and EventuallyValue wait
// for a condition within the same Timeout.
//
// The methods that fail the test (AskSKU, AskOrder, Eventually, Call.Wait
// and the like) must be called from the test's goroutine; TryAskSKU,
// TryAskOrder, the Async forms and Call.Result are safe from any goroutine.
//
// # Fake time in a synctest bubble
//
// Inside a testing/synctest bubble, Timeout and ExpectNoReply pass on the
// bubble's fake time, so a test of a timeout takes no real time. protoactor
// arms a timer of up to a second when it logs a dead letter, also while
// the system stops; register a cleanup that sleeps a second before
// calling New, so that the timer fires inside the bubble:
//
//	synctest.Test(t, func(t *testing.T) {
//		t.Cleanup(func() { time.Sleep(time.Second) })
//		k := testkit.New(t)
//		// ...
//	})
//
// The kit's Clock is separate from that time: the actors read the Clock,
// which moves only on Advance.
package testkit
