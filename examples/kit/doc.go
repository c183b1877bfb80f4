// Package kit is how a project that uses the order engine tests its own
// checkout flows with the engine's test kit (actors/testkit). It is a
// module of its own that reaches the engine through a replace directive,
// so its tests can use only what the engine exports; they run in the
// engine's make test.
package kit
