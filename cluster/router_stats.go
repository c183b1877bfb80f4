package cluster

import "sync/atomic"

// RouterStats counts what a Router did since it started, for /metrics.
type RouterStats struct {
	// EnvelopesOut: Envelopes sent to peers by Ask (retries included) and
	// Send. EnvelopesIn: Envelopes this node's router actor received.
	EnvelopesOut uint64
	EnvelopesIn  uint64
	// NotMineSent: Envelopes this node answered NotMine (not serving the
	// partition at that epoch). NotMineReceived: NotMine answers to Ask.
	NotMineSent     uint64
	NotMineReceived uint64
	// UnavailableSent: Envelopes this node answered Unavailable (invalid,
	// undecodable, or the actor did not activate).
	UnavailableSent uint64
	// Unavailable: calls of Ask, Send and SendHandoff that failed with
	// ErrUnavailable.
	Unavailable uint64
	// Timeouts: requests to peers that got no answer before their
	// context's deadline (each counts against the peer's breaker).
	Timeouts uint64
	// Retries: Asks sent again after a dead-letter answer.
	Retries uint64
	// BreakerOpens: times a peer's circuit breaker opened.
	BreakerOpens uint64
	// HandoffChunksOut, HandoffChunksIn, HandoffRefused: handoff chunks
	// sent, received, and refused by this node.
	HandoffChunksOut uint64
	HandoffChunksIn  uint64
	HandoffRefused   uint64
	// Unexpected: messages of other types that reached the router actor
	// (a reply that went through it instead of straight back is a bug).
	Unexpected uint64
}

type routerCounters struct {
	envelopesOut, envelopesIn, notMineSent, notMineReceived, unavailableSent, unavailable,
	timeouts, retries, breakerOpens, handoffChunksOut, handoffChunksIn, handoffRefused,
	unexpected atomic.Uint64
}

// Stats returns a snapshot of the router's counters.
func (r *Router) Stats() RouterStats {
	c := &r.stats
	return RouterStats{
		EnvelopesOut:     c.envelopesOut.Load(),
		EnvelopesIn:      c.envelopesIn.Load(),
		NotMineSent:      c.notMineSent.Load(),
		NotMineReceived:  c.notMineReceived.Load(),
		UnavailableSent:  c.unavailableSent.Load(),
		Unavailable:      c.unavailable.Load(),
		Timeouts:         c.timeouts.Load(),
		Retries:          c.retries.Load(),
		BreakerOpens:     c.breakerOpens.Load(),
		HandoffChunksOut: c.handoffChunksOut.Load(),
		HandoffChunksIn:  c.handoffChunksIn.Load(),
		HandoffRefused:   c.handoffRefused.Load(),
		Unexpected:       c.unexpected.Load(),
	}
}
