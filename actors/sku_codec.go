package actors

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/actors/pb"
)

// skuJournalID is the journal identity of a SKU actor.
func skuJournalID(sku string) string { return "sku/" + sku }

// SKUJournalID is the journal identity under which a SKU's events,
// snapshot and wake time are kept; tools that read a journal directly use
// it.
func SKUJournalID(sku string) string { return skuJournalID(sku) }

func encodeSKUEvent(ev *pb.SKUEvent) []byte {
	b, err := proto.Marshal(ev)
	if err != nil {
		// Marshalling a well-formed message in memory cannot fail; if it
		// does, the actor must not go on as if the event were journaled.
		panic(fmt.Sprintf("encode sku event: %v", err))
	}
	return b
}

// DecodeSKUEvent reads one journaled SKU event and refuses records of an
// unknown schema version or without a body.
func DecodeSKUEvent(b []byte) (*pb.SKUEvent, error) {
	ev := &pb.SKUEvent{}
	if err := proto.Unmarshal(b, ev); err != nil {
		return nil, fmt.Errorf("decode sku event: %w", err)
	}
	if ev.SchemaVersion != skuSchemaVersion {
		return nil, fmt.Errorf("decode sku event: schema version %d, want %d", ev.SchemaVersion, skuSchemaVersion)
	}
	if ev.Body == nil {
		return nil, fmt.Errorf("decode sku event: no body")
	}
	return ev, nil
}

// DecodeSKUSnapshot reads and validates a SKU snapshot.
func DecodeSKUSnapshot(sku string, b []byte) (*SKUState, error) {
	snap := &pb.SKUSnapshot{}
	if err := proto.Unmarshal(b, snap); err != nil {
		return nil, fmt.Errorf("decode sku snapshot: %w", err)
	}
	return skuStateFromSnapshot(sku, snap)
}

// LoadSKUState rebuilds a SKU's state from the journal: the latest snapshot
// plus every event after it. It returns the snapshot's sequence too.
func LoadSKUState(j Journal, sku string) (*SKUState, uint64, error) {
	return loadState(j, skuJournalID(sku), sku, stateLoader[*SKUState]{
		kind:     "sku",
		fresh:    func() *SKUState { return NewSKUState(sku) },
		sequence: func(s *SKUState) uint64 { return s.Sequence },
		snapshot: func(b []byte) (*SKUState, error) { return DecodeSKUSnapshot(sku, b) },
		apply: func(s *SKUState, seq uint64, b []byte) error {
			ev, err := DecodeSKUEvent(b)
			if err != nil {
				return fmt.Errorf("event %d: %w", seq, err)
			}
			return applyRecovered(seq, func() { s.apply(seq, ev) })
		},
	})
}
