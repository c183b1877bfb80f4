// Package sim is a deterministic simulation of checkout: order actors and
// SKU actors, reduced to their pure cores (actors.OrderState,
// actors.SKUState, actors.OrderSends) plus the shells' journaling
// discipline, talk over a network that drops, duplicates, delays and
// reorders messages, while actors crash and recover from their journal and
// customers place, pay, cancel, ship and complete orders on one simulated
// clock. Everything random comes from one seed, so a failing seed is
// replayed exactly:
//
//	go test ./actors/sim -run TestSimulation -seed 1234 -v
//
// At the end the run checks promise 1 (every SKU's stock is conserved),
// that no order holds a reservation unless it is reserved, that every paid
// order's units are sold exactly once, and that what customers were told
// agrees with where their orders ended.
package sim
