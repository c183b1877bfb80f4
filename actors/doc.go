// Package actors is the domain of the order engine: the SKU and order
// actors, each a pure state machine plus a thin protoactor-go shell.
//
// The pure layer decides and applies: decideSKU(state, command, now) returns
// the events a command causes and the reply it gets, and SKUState.apply
// folds one event into the state. It reads no clock and does no I/O, so
// tests and simulations drive it directly.
//
// The shell (SKUActor) decodes messages, calls the pure layer, hands the
// events to a Journal and answers each caller only once the journal reports
// the events behind the answer durable. It keeps taking messages while a
// journal write is in flight, so a hot SKU gets many commands per write.
//
// The message types are protobuf, in package pb, so they can cross nodes.
// The test kit in package testkit runs these actors on a real actor system
// with an in-memory journal and a fake clock.
package actors
