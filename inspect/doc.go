// Package inspect reads a node's journal without running it: it lists the
// SKU and order actors with their state, shows one actor's snapshot and
// events, and verifies the invariants that the engine promises across all
// of them (stock conservation and no oversell per SKU, reservations that
// match their orders, paid units committed exactly once).
//
// It rebuilds states with the actors package's own recovery (LoadSKUState,
// LoadOrderState) on a read-only persistence.Reader, so what it reports is
// what a node starting on the same data would see.
package inspect
