package sim

import (
	"fmt"

	"github.com/orderengine/orderengine/actors"
)

// journal is a synchronous in-memory actors.Journal: what a node appends
// at a flush is durable at once. A crash loses only what was not flushed.
type journal struct {
	events map[string][][]byte
}

func newJournal() *journal { return &journal{events: map[string][][]byte{}} }

// append makes events durable after the identity's last one.
func (j *journal) append(id string, events [][]byte) {
	j.events[id] = append(j.events[id], events...)
}

// simAppendEventsMax is the simulation's append limit: small, so that the
// shells' splitting of long buffers is exercised.
const simAppendEventsMax = 8

// AppendEventsMax implements actors.Journal.
func (j *journal) AppendEventsMax() int { return simAppendEventsMax }

// Append implements actors.Journal.
func (j *journal) Append(id string, first uint64, events [][]byte, wake int64, done func(error)) {
	switch {
	case len(events) > simAppendEventsMax:
		done(fmt.Errorf("append %s: %d events, limit %d", id, len(events), simAppendEventsMax))
		return
	case first != uint64(len(j.events[id]))+1:
		done(fmt.Errorf("append %s at %d after %d", id, first, len(j.events[id])))
		return
	}
	j.append(id, events)
	done(nil)
}

// AppendWith implements actors.Journal: the append and its new
// identities are durable at once, or refused whole.
func (j *journal) AppendWith(id string, first uint64, events [][]byte, wake int64, born []actors.NewIdentity, done func(error)) {
	total := len(events)
	for _, b := range born {
		total += len(b.Events)
		if len(j.events[b.ID]) != 0 || len(b.Events) == 0 || b.ID == id {
			done(fmt.Errorf("append %s: %q is not a new identity", id, b.ID))
			return
		}
	}
	if total > simAppendEventsMax || first != uint64(len(j.events[id]))+1 {
		done(fmt.Errorf("append %s at %d after %d with %d events", id, first, len(j.events[id]), total))
		return
	}
	for _, b := range born {
		j.append(b.ID, b.Events)
	}
	j.append(id, events)
	done(nil)
}

// Due implements actors.Journal; the simulation drives time itself and
// keeps no wake index.
func (j *journal) Due(int64, int, func(string, int64) bool) error { return nil }

// Delete implements actors.Journal.
func (j *journal) Delete(id string, done func(error)) {
	delete(j.events, id)
	done(nil)
}

// SaveSnapshot implements actors.Journal; the simulation keeps no
// snapshots, so recovery replays every event.
func (j *journal) SaveSnapshot(id string, seq uint64, state []byte, done func(error)) { done(nil) }

// LoadSnapshot implements actors.Journal.
func (j *journal) LoadSnapshot(string) (uint64, []byte, error) { return 0, nil, nil }

// Replay implements actors.Journal.
func (j *journal) Replay(id string, after uint64, fn func(seq uint64, event []byte) error) error {
	events := j.events[id]
	for i := after; i < uint64(len(events)); i++ {
		if err := fn(i+1, events[i]); err != nil {
			return err
		}
	}
	return nil
}
