package inspect

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
	"github.com/orderengine/orderengine/persistence"
)

// Actor is one actor of a journal as a listing shows it. Exactly one of
// SKU and Order is set, unless its state could not be rebuilt: then Error
// says why.
type Actor struct {
	Kind      Kind   `json:"kind"`
	ID        string `json:"id"`
	Partition int    `json:"partition"`
	// Sequence is the last event's sequence; Snapshot the latest
	// snapshot's (0 for none); Wake the stored wake time (zero for none).
	Sequence uint64     `json:"sequence"`
	Snapshot uint64     `json:"snapshot"`
	Wake     *time.Time `json:"wake,omitempty"`
	SKU      *SKU       `json:"sku,omitempty"`
	Order    *Order     `json:"order,omitempty"`
	Error    string     `json:"error,omitempty"`
}

// SKU is a SKU's stock, as the API shows it plus what it remembers.
type SKU struct {
	Available        int64 `json:"available"`
	Reserved         int64 `json:"reserved"`
	Sold             int64 `json:"sold"`
	Restocked        int64 `json:"restocked"`
	Removed          int64 `json:"removed"`
	PerCustomerLimit int64 `json:"per_customer_limit,omitempty"`
	// Holds counts the orders the SKU keeps a record of.
	Holds int `json:"holds"`
}

// Order is an order as the API shows it.
type Order struct {
	Status     string      `json:"status"`
	Customer   string      `json:"customer"`
	Items      []OrderItem `json:"items"`
	CreatedAt  time.Time   `json:"created_at"`
	ExpiresAt  time.Time   `json:"expires_at"`
	PaymentRef string      `json:"payment_ref,omitempty"`
}

// OrderItem is one line of an order and where its units are on the SKU.
type OrderItem struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
	Hold     string `json:"hold"`
}

// List calls fn with every actor of the journal, partition by partition,
// until fn returns an error, which it returns.
func List(src Source, fn func(Actor) error) error {
	j := readOnly{src}
	return src.Identities(func(info persistence.IdentityInfo) error {
		return fn(describe(j, info))
	})
}

func describe(j readOnly, info persistence.IdentityInfo) Actor {
	kind, id := splitID(info.ID)
	a := Actor{Kind: kind, ID: id, Partition: info.Partition, Sequence: max(info.LastEvent, info.Snapshot),
		Snapshot: info.Snapshot}
	if info.Wake != 0 {
		w := time.Unix(0, info.Wake).UTC()
		a.Wake = &w
	}
	switch kind {
	case KindSKU:
		st, _, err := actors.LoadSKUState(j, id)
		if err != nil {
			a.Error = err.Error()
			return a
		}
		a.SKU = skuOf(st)
	case KindOrder:
		st, _, err := actors.LoadOrderState(j, id)
		if err != nil {
			a.Error = err.Error()
			return a
		}
		a.Order = orderOf(st)
	default:
		a.Error = "not an identity of a SKU or an order"
	}
	return a
}

func skuOf(st *actors.SKUState) *SKU {
	return &SKU{Available: st.Available, Reserved: st.Reserved, Sold: st.Sold, Restocked: st.Restocked,
		Removed: st.Removed, PerCustomerLimit: st.Limit, Holds: st.HoldCount()}
}

func orderOf(st *actors.OrderState) *Order {
	o := &Order{Status: StatusName(st.Status), Customer: st.Customer, PaymentRef: st.PaymentRef,
		CreatedAt: time.Unix(0, st.CreatedAt).UTC(), ExpiresAt: time.Unix(0, st.ExpiresAt).UTC()}
	for _, l := range st.Lines {
		o.Items = append(o.Items, OrderItem{SKU: l.SKU, Quantity: l.Quantity, Hold: enumName(l.Hold.String(), "LINE_HOLD_")})
	}
	return o
}

// StatusName is an order status as the API spells it ("reserved").
func StatusName(s pb.OrderStatus) string { return enumName(s.String(), "ORDER_STATUS_") }

func enumName(s, prefix string) string { return strings.ToLower(strings.TrimPrefix(s, prefix)) }

// Detail is one actor with its latest snapshot and the events after it
// (all of them when the journal retains events), decoded.
type Detail struct {
	Actor
	SnapshotState json.RawMessage `json:"snapshot_state,omitempty"`
	Events        []Event         `json:"events"`
	// Holds are the SKU's records of orders, for a SKU.
	Holds []json.RawMessage `json:"holds,omitempty"`
}

// Event is one journaled event, decoded.
type Event struct {
	Sequence uint64          `json:"sequence"`
	Event    json.RawMessage `json:"event"`
}

// ErrNotFound reports an identity the journal does not hold.
var ErrNotFound = errors.New("not in the journal")

// Show returns one SKU's or order's snapshot and events.
func Show(src Source, kind Kind, id string) (*Detail, error) {
	var journalID string
	var snap, event func() proto.Message
	switch kind {
	case KindSKU:
		journalID = actors.SKUJournalID(id)
		snap, event = func() proto.Message { return &pb.SKUSnapshot{} }, func() proto.Message { return &pb.SKUEvent{} }
	case KindOrder:
		journalID = actors.OrderJournalID(id)
		snap, event = func() proto.Message { return &pb.OrderSnapshot{} }, func() proto.Message { return &pb.OrderEvent{} }
	default:
		return nil, fmt.Errorf("inspect: kind %q, want sku or order", kind)
	}
	info, found, err := src.Identity(journalID)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%s %s: %w", kind, id, ErrNotFound)
	}
	d := &Detail{Actor: describe(readOnly{src}, info), Events: []Event{}}
	seq, state, err := src.LoadSnapshot(journalID)
	if err != nil {
		return nil, err
	}
	if state != nil {
		if d.SnapshotState, err = protoJSON(snap(), state); err != nil {
			return nil, fmt.Errorf("snapshot of %s %s: %w", kind, id, err)
		}
	}
	err = src.Replay(journalID, seq, func(seq uint64, b []byte) error {
		js, err := protoJSON(event(), b)
		if err != nil {
			return fmt.Errorf("event %d of %s %s: %w", seq, kind, id, err)
		}
		d.Events = append(d.Events, Event{Sequence: seq, Event: js})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if kind == KindSKU && d.Error == "" {
		st, _, err := actors.LoadSKUState(readOnly{src}, id)
		if err != nil {
			return nil, err
		}
		for _, h := range st.Holds() {
			js, err := protojson.Marshal(h)
			if err != nil {
				return nil, err
			}
			d.Holds = append(d.Holds, js)
		}
	}
	return d, nil
}

func protoJSON(m proto.Message, b []byte) (json.RawMessage, error) {
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, err
	}
	return protojson.Marshal(m)
}
