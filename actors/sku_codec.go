package actors

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/actors/pb"
)

// skuJournalID is the journal identity of a SKU actor.
func skuJournalID(sku string) string { return "sku/" + sku }

func encodeSkuEvent(ev *pb.SkuEvent) []byte {
	b, err := proto.Marshal(ev)
	if err != nil {
		// Marshalling a well-formed message in memory cannot fail; if it
		// does, the actor must not go on as if the event were journaled.
		panic(fmt.Sprintf("encode sku event: %v", err))
	}
	return b
}

// DecodeSkuEvent reads one journaled SKU event and refuses records of an
// unknown schema version or without a body.
func DecodeSkuEvent(b []byte) (*pb.SkuEvent, error) {
	ev := &pb.SkuEvent{}
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

// DecodeSkuSnapshot reads and validates a SKU snapshot.
func DecodeSkuSnapshot(sku string, b []byte) (*SkuState, error) {
	snap := &pb.SkuSnapshot{}
	if err := proto.Unmarshal(b, snap); err != nil {
		return nil, fmt.Errorf("decode sku snapshot: %w", err)
	}
	return skuStateFromSnapshot(sku, snap)
}

// LoadSkuState rebuilds a SKU's state from the journal: the latest snapshot
// plus every event after it. It returns the snapshot's sequence too.
func LoadSkuState(j Journal, sku string) (*SkuState, uint64, error) {
	return loadState(j, skuJournalID(sku), sku, stateLoader[*SkuState]{
		kind:     "sku",
		fresh:    func() *SkuState { return NewSkuState(sku) },
		sequence: func(s *SkuState) uint64 { return s.Sequence },
		snapshot: func(b []byte) (*SkuState, error) { return DecodeSkuSnapshot(sku, b) },
		apply: func(s *SkuState, seq uint64, b []byte) error {
			ev, err := DecodeSkuEvent(b)
			if err != nil {
				return fmt.Errorf("event %d: %w", seq, err)
			}
			return applyRecovered(seq, func() { s.apply(seq, ev) })
		},
	})
}
