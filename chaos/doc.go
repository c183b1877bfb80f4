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
//
// The cluster tests (cluster*.go) run the soak's workload and checks
// against several orderd processes forming one cluster (Cluster), sending
// each request through a random gateway, while nodes join, leave, are
// killed and paused. Besides the soak's read-back they check that a down
// node's partitions answer 503 through the other gateways and nothing
// else, and, from every node's "partition serving" and "partition
// stopped" log lines, that no two nodes ever served one partition at
// once. They take minutes, so they run only with -cluster or
// ORDERENGINE_CLUSTER_TESTS=1: make test-cluster. The overlap check's own
// unit tests run in make test.
package chaos
