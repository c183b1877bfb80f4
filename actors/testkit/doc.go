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
// The journal can be slowed down, paused and made to fail, to test what
// callers see when durability is late or lost.
package testkit
