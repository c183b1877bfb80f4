package actors

// Journal stores each actor identity's events durably and in order, plus
// snapshots of its state and the time at which the identity must next be
// woken. The actors declare it; persistence.Journal (Badger, group commit)
// implements it, and the test kit has an in-memory one that enforces the
// same limits.
//
// An identity's events carry consecutive sequence numbers starting at 1. The
// methods use only built-in types so that an implementation needs no import
// of this package.
type Journal interface {
	// AppendEventsMax is the most events one Append may carry. Actor shells
	// split a longer buffer into several appends.
	AppendEventsMax() int

	// Append submits events as sequences first, first+1, ... of id and
	// returns at once. wake is the identity's wake time after these events
	// (Unix nanoseconds; 0 for none): it is stored atomically with them and
	// replaces the earlier one, and Due lists the identity once it has
	// passed. done is called exactly once, from any goroutine, with nil
	// when every event is durable or with the error that kept them from
	// being written, in which case none of them is visible and the wake
	// time is unchanged. Appends for one id complete in submission order.
	// An append whose first sequence is not one past the identity's last
	// durable or pending sequence fails and writes nothing: it means two
	// activations of one identity, or an append after a failed one that the
	// actor did not recover from. So does one with more than
	// AppendEventsMax events. An append refused because the node's volume
	// is full fails with an error that has a method StorageFull() bool
	// returning true; the shells tell their callers so (IsStorageFull).
	Append(id string, first uint64, events [][]byte, wake int64, done func(error))

	// AppendWith is Append plus, in the same durable write, the first
	// events (sequences 1, 2, ...) and wake time of each identity in born:
	// done reports nil once all of it is durable, or the error that kept
	// all of it from being written. An identity in born must be new: its
	// ID was generated just now (NewOrderID), so nothing is stored under
	// it. The journal may not read storage to check (saving that read is
	// part of the point); it fails the whole append when it knows of
	// events of one, when one is named twice or is id itself, or when the
	// events of the append and of born together are more than
	// AppendEventsMax.
	AppendWith(id string, first uint64, events [][]byte, wake int64, born []NewIdentity, done func(error))

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

	// Due calls fn, earliest first, for up to limit identities whose
	// durable wake time is at or before `before` (Unix nanoseconds), until
	// fn returns false. An identity stays listed until an append moves or
	// clears its wake time, or Delete removes it.
	Due(before int64, limit int, fn func(id string, wake int64) bool) error

	// Delete removes every record of id (events, snapshot, wake time) and
	// calls done once, like Append. Appends submitted after it start again
	// at sequence 1. It is how retention forgets a settled identity.
	Delete(id string, done func(error))
}

// NewIdentity is a new identity's first events and wake time, written by
// Journal.AppendWith together with another identity's append. It is an
// unnamed struct type, so an implementation declares the same type
// without importing this package.
type NewIdentity = struct {
	ID     string
	Events [][]byte
	Wake   int64
}
