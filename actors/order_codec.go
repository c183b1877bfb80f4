package actors

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/actors/pb"
)

// orderJournalID is the journal identity of an order actor.
func orderJournalID(orderID string) string { return "order/" + orderID }

// OrderJournalID is the journal identity under which an order's events,
// snapshot and wake time are kept; tools that read or write a journal
// directly use it.
func OrderJournalID(orderID string) string { return orderJournalID(orderID) }

// EncodeOrderEvent encodes an event as the order actor journals it.
func EncodeOrderEvent(ev *pb.OrderEvent) []byte { return encodeOrderEvent(ev) }

func encodeOrderEvent(ev *pb.OrderEvent) []byte {
	b, err := proto.Marshal(ev)
	if err != nil {
		// Marshalling a well-formed message in memory cannot fail; if it
		// does, the actor must not go on as if the event were journaled.
		panic(fmt.Sprintf("encode order event: %v", err))
	}
	return b
}

// DecodeOrderEvent reads one journaled order event and refuses records of
// an unknown schema version or without a body.
func DecodeOrderEvent(b []byte) (*pb.OrderEvent, error) {
	ev := &pb.OrderEvent{}
	if err := proto.Unmarshal(b, ev); err != nil {
		return nil, fmt.Errorf("decode order event: %w", err)
	}
	if ev.SchemaVersion != orderSchemaVersion {
		return nil, fmt.Errorf("decode order event: schema version %d, want %d", ev.SchemaVersion, orderSchemaVersion)
	}
	if ev.Body == nil {
		return nil, fmt.Errorf("decode order event: no body")
	}
	return ev, nil
}

// DecodeOrderSnapshot reads and validates an order snapshot.
func DecodeOrderSnapshot(orderID string, b []byte) (*OrderState, error) {
	snap := &pb.OrderSnapshot{}
	if err := proto.Unmarshal(b, snap); err != nil {
		return nil, fmt.Errorf("decode order snapshot: %w", err)
	}
	return orderStateFromSnapshot(orderID, snap)
}

// LoadOrderState rebuilds an order's state from the journal: the latest
// snapshot plus every event after it. It returns the snapshot's sequence
// too. An order never placed loads as NewOrderState.
func LoadOrderState(j Journal, orderID string) (*OrderState, uint64, error) {
	s, snapSeq, err := loadState(j, orderJournalID(orderID), orderID, stateLoader[*OrderState]{
		kind:     "order",
		fresh:    func() *OrderState { return NewOrderState(orderID) },
		sequence: func(s *OrderState) uint64 { return s.Sequence },
		snapshot: func(b []byte) (*OrderState, error) { return DecodeOrderSnapshot(orderID, b) },
		apply: func(s *OrderState, seq uint64, b []byte) error {
			ev, err := DecodeOrderEvent(b)
			if err != nil {
				return fmt.Errorf("event %d: %w", seq, err)
			}
			return applyRecovered(seq, func() { s.apply(seq, ev) })
		},
	})
	if err != nil {
		return nil, 0, err
	}
	if err := s.Check(); err != nil {
		return nil, 0, fmt.Errorf("replay order %s: %w", orderID, err)
	}
	return s, snapSeq, nil
}
