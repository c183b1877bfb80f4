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
	id := skuJournalID(sku)
	snapSeq, snap, err := j.LoadSnapshot(id)
	if err != nil {
		return nil, 0, fmt.Errorf("load sku %s snapshot: %w", sku, err)
	}
	s := NewSkuState(sku)
	if snap != nil {
		if s, err = DecodeSkuSnapshot(sku, snap); err != nil {
			return nil, 0, err
		}
		if s.Sequence != snapSeq {
			return nil, 0, fmt.Errorf("sku %s: snapshot says sequence %d, journal says %d", sku, s.Sequence, snapSeq)
		}
	}
	err = j.Replay(id, s.Sequence, func(seq uint64, b []byte) error {
		ev, err := DecodeSkuEvent(b)
		if err != nil {
			return fmt.Errorf("sku %s event %d: %w", sku, seq, err)
		}
		if seq != s.Sequence+1 {
			return fmt.Errorf("sku %s: journal jumps from %d to %d", sku, s.Sequence, seq)
		}
		return applySafely(s, seq, ev)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("replay sku %s: %w", sku, err)
	}
	return s, snapSeq, nil
}

// applySafely turns a panic of apply (an event that does not fit) into an
// error, so a bad journal is reported instead of crashing recovery in a
// loop.
func applySafely(s *SkuState, seq uint64, ev *pb.SkuEvent) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("event %d does not apply: %v", seq, r)
		}
	}()
	s.apply(seq, ev)
	return nil
}
