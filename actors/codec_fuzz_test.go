package actors

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/actors/pb"
)

// The journal decoders read bytes back from disk. Whatever they are given,
// they must not panic, and what they accept must be usable: a snapshot
// that decodes satisfies the state's own checks, and an event that
// decodes either applies or is refused with an error.

func FuzzDecodeSKUSnapshot(f *testing.F) {
	s := NewSKUState("F")
	s.Step(&pb.Restock{OpId: "r", Quantity: 9}, testNow, DefaultSKURules)
	s.Step(&pb.ReserveStock{OrderId: "o", Quantity: 2, DeadlineUnixNano: testNow.Add(time.Minute).UnixNano()}, testNow, DefaultSKURules)
	b, _ := proto.Marshal(s.Snapshot())
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := DecodeSKUSnapshot("F", b)
		if err != nil {
			return
		}
		if err := st.CheckHolds(); err != nil {
			t.Fatalf("accepted a snapshot that does not add up: %v", err)
		}
	})
}

func FuzzDecodeSKUEvent(f *testing.F) {
	s := NewSKUState("F")
	events, _ := s.Step(&pb.Restock{OpId: "r", Quantity: 9}, testNow, DefaultSKURules)
	f.Add(encodeSKUEvent(events[0]))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := DecodeSKUEvent(b)
		if err != nil {
			return
		}
		st := NewSKUState("F")
		if err := applyRecovered(1, func() { st.apply(1, ev) }); err == nil {
			if err := st.CheckHolds(); err != nil {
				t.Fatalf("applied an event into a broken state: %v", err)
			}
		}
	})
}

func FuzzDecodeOrderSnapshot(f *testing.F) {
	s := NewOrderState("o_01J00000000000000000000000")
	s.Step(&pb.PlaceOrder{OrderId: s.ID, Customer: "c", Items: []*pb.OrderLine{{Sku: "A", Quantity: 1}}}, time.Unix(1, 0))
	b, _ := proto.Marshal(s.Snapshot())
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := DecodeOrderSnapshot(s.ID, b)
		if err != nil {
			return
		}
		if err := st.Check(); err != nil {
			t.Fatalf("accepted a snapshot that fails its checks: %v", err)
		}
	})
}

func FuzzDecodeOrderEvent(f *testing.F) {
	s := NewOrderState("o_01J00000000000000000000000")
	d := s.Step(&pb.PlaceOrder{OrderId: s.ID, Customer: "c", Items: []*pb.OrderLine{{Sku: "A", Quantity: 1}}}, time.Unix(1, 0))
	for _, ev := range d.Events {
		f.Add(encodeOrderEvent(ev))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := DecodeOrderEvent(b)
		if err != nil {
			return
		}
		// Refused or applied, never a crash; what applies leaves a state
		// that passes its own checks (a first event can only be a
		// placement, so anything else must be refused).
		st := NewOrderState(s.ID)
		if err := applyRecovered(1, func() { st.apply(1, ev) }); err != nil {
			return
		}
		if _, placed := ev.Body.(*pb.OrderEvent_Placed); !placed {
			t.Fatalf("applied %T as an order's first event", ev.Body)
		}
		if err := st.Check(); err != nil {
			t.Fatalf("applied an event into a broken state: %v", err)
		}
	})
}
