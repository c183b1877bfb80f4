package actors

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/orderengine/orderengine/actors/pb"
)

// skuSchemaVersion is the version of SkuEvent and SkuSnapshot records this
// code writes and the only one it reads.
const skuSchemaVersion = 1

// SkuState is everything a SKU actor knows. The zero value is a SKU that was
// never restocked. Only apply changes it.
type SkuState struct {
	SKU       string
	Sequence  uint64 // last applied journal sequence
	Known     bool   // restocked at least once
	Available int64
	Reserved  int64 // sum of the quantities of holds in HOLD_STATE_RESERVED
	Sold      int64
	Restocked int64 // total ever restocked
	Removed   int64 // total ever removed

	// Holds records every order the SKU has seen, also after release, so
	// that retried and late commands are recognised.
	Holds map[string]*pb.Hold
	// reservedIDs indexes the holds in HOLD_STATE_RESERVED, so the expiry
	// sweep does not walk settled orders. Derived; not in snapshots.
	reservedIDs map[string]struct{}
	RestockOps  map[string]int64
	RemoveOps   map[string]int64
}

// NewSkuState returns the state of a SKU that was never restocked.
func NewSkuState(sku string) *SkuState {
	return &SkuState{
		SKU:         sku,
		Holds:       map[string]*pb.Hold{},
		reservedIDs: map[string]struct{}{},
		RestockOps:  map[string]int64{},
		RemoveOps:   map[string]int64{},
	}
}

// View is the SKU as the outside sees it.
func (s *SkuState) View() *pb.SkuView {
	return &pb.SkuView{Sku: s.SKU, Available: s.Available, Reserved: s.Reserved, Sold: s.Sold, Known: s.Known}
}

// apply folds one event into the state and checks the conservation
// invariant. An event that does not fit the state, or an invariant that no
// longer holds, is a bug or a corrupt journal: it panics, and the actor's
// supervisor restarts it from the journal.
func (s *SkuState) apply(seq uint64, ev *pb.SkuEvent) {
	if seq != s.Sequence+1 {
		panic(fmt.Sprintf("sku %s: event sequence %d after %d", s.SKU, seq, s.Sequence))
	}
	switch b := ev.Body.(type) {
	case *pb.SkuEvent_Restocked:
		s.Known = true
		s.Available += b.Restocked.Quantity
		s.Restocked += b.Restocked.Quantity
		s.RestockOps[b.Restocked.OpId] = b.Restocked.Quantity
	case *pb.SkuEvent_Removed:
		s.Available -= b.Removed.Quantity
		s.Removed += b.Removed.Quantity
		s.RemoveOps[b.Removed.OpId] = b.Removed.Quantity
	case *pb.SkuEvent_Reserved:
		r := b.Reserved
		s.Available -= r.Quantity
		s.Reserved += r.Quantity
		s.Holds[r.OrderId] = &pb.Hold{Quantity: r.Quantity, DeadlineUnixNano: r.DeadlineUnixNano, State: pb.HoldState_HOLD_STATE_RESERVED}
		s.reservedIDs[r.OrderId] = struct{}{}
	case *pb.SkuEvent_Committed:
		h := s.mustHold(b.Committed.OrderId)
		if h.State == pb.HoldState_HOLD_STATE_RESERVED {
			s.Reserved -= h.Quantity
			delete(s.reservedIDs, b.Committed.OrderId)
		} else {
			// Re-taken after a safety expiry: the units come from available.
			s.Available -= h.Quantity
		}
		s.Sold += h.Quantity
		h.State = pb.HoldState_HOLD_STATE_COMMITTED
	case *pb.SkuEvent_Released:
		r := b.Released
		h, ok := s.Holds[r.OrderId]
		if !ok {
			// A tombstone: the order released before its reservation
			// arrived, so a late reservation must be refused.
			h = &pb.Hold{}
			s.Holds[r.OrderId] = h
		} else {
			s.Reserved -= h.Quantity
			s.Available += h.Quantity
			delete(s.reservedIDs, r.OrderId)
		}
		h.State = pb.HoldState_HOLD_STATE_RELEASED
		h.ReleaseReason = r.Reason
	case *pb.SkuEvent_Returned:
		h := s.mustHold(b.Returned.OrderId)
		s.Sold -= h.Quantity
		s.Available += h.Quantity
		h.State = pb.HoldState_HOLD_STATE_RETURNED
	default:
		panic(fmt.Sprintf("sku %s: event %d has no body", s.SKU, seq))
	}
	s.Sequence = seq
	if err := s.checkInvariant(); err != nil {
		panic(err.Error())
	}
}

func (s *SkuState) mustHold(orderID string) *pb.Hold {
	h, ok := s.Holds[orderID]
	if !ok {
		panic(fmt.Sprintf("sku %s: event for unknown order %s", s.SKU, orderID))
	}
	return h
}

// checkInvariant is promise 1: nothing oversold, every unit accounted for.
func (s *SkuState) checkInvariant() error {
	if s.Available < 0 || s.Reserved < 0 || s.Sold < 0 {
		return fmt.Errorf("sku %s: negative stock: available %d reserved %d sold %d", s.SKU, s.Available, s.Reserved, s.Sold)
	}
	if s.Available+s.Reserved+s.Sold != s.Restocked-s.Removed {
		return fmt.Errorf("sku %s: stock not conserved: available %d + reserved %d + sold %d != restocked %d - removed %d",
			s.SKU, s.Available, s.Reserved, s.Sold, s.Restocked, s.Removed)
	}
	return nil
}

// CheckHolds recomputes Reserved and Sold from the holds, a full check that
// is too slow for every event but right for tests and after recovery.
func (s *SkuState) CheckHolds() error {
	var reserved, sold, returned int64
	for _, h := range s.Holds {
		switch h.State {
		case pb.HoldState_HOLD_STATE_RESERVED:
			reserved += h.Quantity
		case pb.HoldState_HOLD_STATE_COMMITTED:
			sold += h.Quantity
		case pb.HoldState_HOLD_STATE_RETURNED:
			returned += h.Quantity
		}
	}
	if reserved != s.Reserved || sold != s.Sold {
		return fmt.Errorf("sku %s: holds say reserved %d sold %d, counters say %d and %d", s.SKU, reserved, sold, s.Reserved, s.Sold)
	}
	if len(s.reservedIDs) != countReserved(s.Holds) {
		return fmt.Errorf("sku %s: reserved index out of step with holds", s.SKU)
	}
	return s.checkInvariant()
}

func countReserved(holds map[string]*pb.Hold) int {
	n := 0
	for _, h := range holds {
		if h.State == pb.HoldState_HOLD_STATE_RESERVED {
			n++
		}
	}
	return n
}

// Snapshot captures the state for the journal.
func (s *SkuState) Snapshot() *pb.SkuSnapshot {
	holds := make(map[string]*pb.Hold, len(s.Holds))
	for id, h := range s.Holds {
		holds[id] = &pb.Hold{Quantity: h.Quantity, DeadlineUnixNano: h.DeadlineUnixNano, State: h.State, ReleaseReason: h.ReleaseReason}
	}
	return &pb.SkuSnapshot{
		SchemaVersion: skuSchemaVersion, Sku: s.SKU, Sequence: s.Sequence,
		Available: s.Available, Sold: s.Sold, Restocked: s.Restocked, Removed: s.Removed, Known: s.Known,
		Holds: holds, RestockOps: maps.Clone(s.RestockOps), RemoveOps: maps.Clone(s.RemoveOps),
	}
}

// skuStateFromSnapshot rebuilds a state and validates it, so a snapshot
// that does not add up is refused instead of served.
func skuStateFromSnapshot(sku string, snap *pb.SkuSnapshot) (*SkuState, error) {
	if snap.SchemaVersion != skuSchemaVersion {
		return nil, fmt.Errorf("sku %s: snapshot schema version %d, want %d", sku, snap.SchemaVersion, skuSchemaVersion)
	}
	if snap.Sku != sku {
		return nil, fmt.Errorf("sku %s: snapshot belongs to %q", sku, snap.Sku)
	}
	s := NewSkuState(sku)
	s.Sequence, s.Known = snap.Sequence, snap.Known
	s.Available, s.Sold, s.Restocked, s.Removed = snap.Available, snap.Sold, snap.Restocked, snap.Removed
	for id, h := range snap.Holds {
		if h == nil || h.Quantity < 0 {
			return nil, fmt.Errorf("sku %s: snapshot hold %q is malformed", sku, id)
		}
		s.Holds[id] = h
		if h.State == pb.HoldState_HOLD_STATE_RESERVED {
			s.Reserved += h.Quantity
			s.reservedIDs[id] = struct{}{}
		}
	}
	maps.Copy(s.RestockOps, snap.RestockOps)
	maps.Copy(s.RemoveOps, snap.RemoveOps)
	if err := s.CheckHolds(); err != nil {
		return nil, fmt.Errorf("snapshot at %d: %w", snap.Sequence, err)
	}
	return s, nil
}

// expiredReservations lists up to limit reserved holds whose deadline plus
// grace is not after now, earliest deadline first (ties by order ID), so the
// choice is deterministic.
func (s *SkuState) expiredReservations(nowUnixNano, graceNanos int64, limit int) []string {
	var ids []string
	for id := range s.reservedIDs {
		if s.Holds[id].DeadlineUnixNano+graceNanos <= nowUnixNano {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b string) int {
		if c := cmp.Compare(s.Holds[a].DeadlineUnixNano, s.Holds[b].DeadlineUnixNano); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	if len(ids) > limit {
		ids = ids[:limit]
	}
	return ids
}
