// Package chaos holds the evidence for the engine's promises that only a
// real node can give: a linearizability check of SKU stock over histories
// recorded against the HTTP API (checked with Porcupine), and a soak that
// runs a mixed workload while a fault injector kills, pauses, restarts and
// starves a node of disk, then reads everything back.
//
// It talks to orderd over HTTP only, as any client does, and imports none
// of the engine's packages (scripts/check-deps.sh holds it to that). The
// tests build cmd/orderd and run it on 127.0.0.1.
//
// In make test: TestLinearizableStock, TestLinearizableStockAcrossKill and
// TestChaosShort, each bounded to seconds. make chaos runs the soak for
// DURATION and a longer linearizability check; see docs/reliability.md.
package chaos
