package actors

import "fmt"

// stateLoader says how to rebuild one kind of actor state from the
// journal; loadState does the rest, the same way for every kind.
type stateLoader[S any] struct {
	kind     string // "sku" or "order", for messages
	fresh    func() S
	sequence func(S) uint64
	// snapshot decodes and validates a snapshot record.
	snapshot func(b []byte) (S, error)
	// apply decodes one event and folds it into the state as seq.
	apply func(s S, seq uint64, event []byte) error
}

// loadState rebuilds a state from the latest snapshot plus every event
// after it, and returns it with the snapshot's sequence. Events must
// continue the sequence without a gap, and an event that does not apply is
// an error naming it, so a bad journal is reported instead of crashing
// recovery in a loop.
func loadState[S any](j Journal, journalID, name string, l stateLoader[S]) (S, uint64, error) {
	var zero S
	snapSeq, snap, err := j.LoadSnapshot(journalID)
	if err != nil {
		return zero, 0, fmt.Errorf("load %s %s snapshot: %w", l.kind, name, err)
	}
	s := l.fresh()
	if snap != nil {
		if s, err = l.snapshot(snap); err != nil {
			return zero, 0, err
		}
		if got := l.sequence(s); got != snapSeq {
			return zero, 0, fmt.Errorf("%s %s: snapshot says sequence %d, journal says %d", l.kind, name, got, snapSeq)
		}
	}
	err = j.Replay(journalID, l.sequence(s), func(seq uint64, b []byte) error {
		if last := l.sequence(s); seq != last+1 {
			return fmt.Errorf("%s %s: journal jumps from %d to %d", l.kind, name, last, seq)
		}
		return l.apply(s, seq, b)
	})
	if err != nil {
		return zero, 0, fmt.Errorf("replay %s %s: %w", l.kind, name, err)
	}
	return s, snapSeq, nil
}

// applyRecovered runs an apply that panics on an event that does not fit
// and turns the panic into an error.
func applyRecovered(seq uint64, apply func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("event %d does not apply: %v", seq, r)
		}
	}()
	apply()
	return nil
}
