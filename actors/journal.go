package actors

// Journal stores each actor identity's events durably and in order, plus
// snapshots of its state. The actors declare it; persistence.Journal (Badger,
// group commit) implements it, and the test kit has an in-memory one.
//
// An identity's events carry consecutive sequence numbers starting at 1. The
// methods use only built-in types so that an implementation needs no import
// of this package.
type Journal interface {
	// Append submits events as sequences first, first+1, ... of id and
	// returns at once. done is called exactly once, from any goroutine, with
	// nil when every event is durable or with the error that kept them from
	// being written, in which case none of them is visible. Appends for one
	// id complete in submission order. An append whose first sequence is not
	// one past the identity's last durable or pending sequence fails and
	// writes nothing: it means two activations of one identity, or an append
	// after a failed one that the actor did not recover from.
	Append(id string, first uint64, events [][]byte, done func(error))

	// SaveSnapshot submits state as the identity's state after event seq and
	// calls done once, like Append. A snapshot never covers an event that is
	// not durable: callers take one only when their appends have completed.
	SaveSnapshot(id string, seq uint64, state []byte, done func(error))

	// LoadSnapshot returns the identity's latest snapshot, or seq 0 and a
	// nil state when it has none.
	LoadSnapshot(id string) (seq uint64, state []byte, err error)

	// Replay calls fn with each durable event of id whose sequence is
	// greater than after, in order, and stops at the first error fn returns.
	Replay(id string, after uint64, fn func(seq uint64, event []byte) error) error
}
