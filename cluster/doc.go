// Package cluster is the membership and placement layer of a cluster of
// order engine nodes: who is a member (on hashicorp/memberlist), which node
// holds each partition at which epoch (the partition table), and where each
// partition should be (rendezvous hashing over node names).
//
// The package knows nothing about orders or SKUs: it places partitions,
// numbered 0..P-1, and callers map their identities to partitions with the
// journal's function (persistence.Partition).
//
// The partition table is a value that merges like a join semilattice:
// per partition the higher epoch wins, and within one epoch the later state
// (pending, serving, handing-off). Every node keeps one, sends it whole in
// memberlist's push/pull exchanges and merges what it receives, so tables
// exchanged in any order converge. A new epoch is created by exactly one
// node: the cluster's first node at epoch 1, the holder when it hands a
// partition off, or the node on which an operator calls Forget for a dead
// node. Nothing moves because a node is unreachable: a dead holder's
// partitions are reported unavailable until it returns or is forgotten.
//
// Node runs one member: it joins through seeds, gossips its metadata (its
// actor system's address, its generation, the partitions it holds), hands
// memberlist's events to one goroutine, and re-joins its seeds and the
// members it saw die, so that the two sides of a healed network partition,
// or a node that was paused, merge again. A node started with seeds is not
// Ready, and should serve nothing, until it has exchanged state with a peer.
//
// With a PartitionStore (the journal) and a HandoffTransport (remote), a
// node also moves partitions: each holder hands every partition whose
// desired holder is another live member to it, a few at a time, when a
// node joins, and all of its own when it leaves (handoff.go has the
// protocol). It starts and stops serving partitions through the caller's
// hooks as its table says, and saves its table before it gossips or acts
// on it.
//
// Package memnet is an in-memory memberlist transport for tests that can
// cut, drop and delay traffic per link and pause a node.
package cluster
