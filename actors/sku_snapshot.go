package actors

import (
	"cmp"
	"fmt"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/orderengine/orderengine/actors/pb"
)

// skuFrozen is a SKU's state as of one moment, which another goroutine may
// encode while the actor goes on: the hold pages are shared copy-on-write
// with the live table (see holdTable.freeze), the counters and the few
// operation records are copied. Taking one costs microseconds whatever the
// number of holds; encoding it costs time in proportion to them, off the
// actor's turn.
type skuFrozen struct {
	sku                                           string
	seq                                           uint64
	known                                         bool
	available, reserved, sold, restocked, removed int64
	pages                                         []*holdPage
	used                                          int32
	ops                                           []skuOpEntry
	limit, limitSince                             int64
	units                                         []customerUnits // sorted by customer
	// Records forgettable at `at` under rules are left out of the
	// snapshot; every decision after it uses a time at or after `at`.
	at    int64
	rules SKURules
	// holds is the number of records present when frozen, which spaces
	// the next snapshot.
	holds int
}

type customerUnits struct {
	customer string
	units    int64
}

type skuOpEntry struct {
	key skuOpKey
	rec skuOpRec
}

// freeze captures the state for a snapshot at time `at`. The caller must
// call s.holds.thaw once nothing reads the result any more.
func (s *SKUState) freeze(at int64, rules SKURules) *skuFrozen {
	rules = rules.withDefaults()
	pages, used := s.holds.freeze()
	f := &skuFrozen{
		sku: s.SKU, seq: s.Sequence, known: s.Known, available: s.Available, reserved: s.Reserved,
		sold: s.Sold, restocked: s.Restocked, removed: s.Removed, pages: pages, used: used,
		at: at, rules: rules, holds: s.holds.count,
	}
	for k, op := range s.ops.byKey {
		if !opForgettable(op, at, rules) {
			f.ops = append(f.ops, skuOpEntry{k, op})
		}
	}
	f.limit, f.limitSince, f.units = s.Limit, s.limitSince, s.sortedUnits()
	return f
}

// sortedUnits copies the counted units, sorted by customer. A SKU under a
// purchase limit has one entry per customer holding units, far fewer than
// its holds in a sale that uses one.
func (s *SKUState) sortedUnits() []customerUnits {
	out := make([]customerUnits, 0, len(s.units))
	for c, n := range s.units {
		out = append(out, customerUnits{c, n})
	}
	slices.SortFunc(out, func(a, b customerUnits) int { return cmp.Compare(a.customer, b.customer) })
	return out
}

// Field numbers of SKUSnapshot, Hold and SKUOp in actors/pb/sku.proto.
// The snapshot is written with protowire rather than by building a
// pb.SKUSnapshot, which would allocate a message per hold (a hundred
// megabytes for a million); TestSKUSnapshotEncoding checks that the bytes
// decode to what Snapshot builds.
const (
	snapFieldSchema, snapFieldSKU, snapFieldSequence, snapFieldAvailable = 1, 2, 3, 4
	snapFieldSold, snapFieldRestocked, snapFieldRemoved, snapFieldKnown  = 5, 6, 7, 8
	snapFieldHolds, snapFieldOps                                         = 12, 13
	snapFieldLimit, snapFieldLimitSince, snapFieldCustomerUnits          = 14, 15, 16

	holdFieldQuantity, holdFieldDeadline, holdFieldState = 1, 2, 3
	holdFieldReason, holdFieldSettled, holdFieldOrderID  = 4, 5, 6
	holdFieldCustomer, holdFieldCounted                  = 7, 8

	unitsFieldCustomer, unitsFieldUnits = 1, 2

	opFieldID, opFieldQuantity, opFieldRemove, opFieldAt = 1, 2, 3, 4

	// snapshotHoldBytesEstimate sizes the buffer: a hold with a short
	// order ID and nanosecond times encodes in about this many bytes.
	snapshotHoldBytesEstimate = 48
)

// encode writes the frozen state as a SKUSnapshot record, leaving out the
// records forgettable at its time. It checks the reservations against the
// reserved counter first, so a state that does not add up is not saved.
func (f *skuFrozen) encode() ([]byte, error) {
	b := make([]byte, 0, 64+len(f.sku)+f.holds*snapshotHoldBytesEstimate)
	b = appendVarintField(b, snapFieldSchema, skuSchemaVersion)
	b = appendStringField(b, snapFieldSKU, f.sku)
	b = appendVarintField(b, snapFieldSequence, f.seq)
	b = appendVarintField(b, snapFieldAvailable, uint64(f.available))
	b = appendVarintField(b, snapFieldSold, uint64(f.sold))
	b = appendVarintField(b, snapFieldRestocked, uint64(f.restocked))
	b = appendVarintField(b, snapFieldRemoved, uint64(f.removed))
	if f.known {
		b = appendVarintField(b, snapFieldKnown, 1)
	}
	var reserved int64
	var hold []byte
	for slot := range f.used {
		r := &f.pages[slot/holdPageSlots].recs[slot%holdPageSlots]
		if r.orderID == "" || holdForgettable(r, f.at, f.rules) {
			continue
		}
		if r.state == uint8(pb.HoldState_HOLD_STATE_RESERVED) {
			reserved += int64(r.qty)
		}
		hold = appendHold(hold[:0], r)
		b = protowire.AppendTag(b, snapFieldHolds, protowire.BytesType)
		b = protowire.AppendBytes(b, hold)
	}
	if reserved != f.reserved {
		return nil, fmt.Errorf("sku %s: snapshot at %d: reservations add up to %d, reserved is %d", f.sku, f.seq, reserved, f.reserved)
	}
	slices.SortFunc(f.ops, func(a, b skuOpEntry) int { return compareOpKeys(a.key, b.key) })
	for _, op := range f.ops {
		var o []byte
		o = appendStringField(o, opFieldID, op.key.id)
		o = appendVarintField(o, opFieldQuantity, uint64(op.rec.qty))
		if op.key.remove {
			o = appendVarintField(o, opFieldRemove, 1)
		}
		o = appendVarintField(o, opFieldAt, uint64(op.rec.at))
		b = protowire.AppendTag(b, snapFieldOps, protowire.BytesType)
		b = protowire.AppendBytes(b, o)
	}
	b = appendVarintField(b, snapFieldLimit, uint64(f.limit))
	b = appendVarintField(b, snapFieldLimitSince, uint64(f.limitSince))
	for _, u := range f.units {
		var e []byte
		e = appendStringField(e, unitsFieldCustomer, u.customer)
		e = appendVarintField(e, unitsFieldUnits, uint64(u.units))
		b = protowire.AppendTag(b, snapFieldCustomerUnits, protowire.BytesType)
		b = protowire.AppendBytes(b, e)
	}
	return b, nil
}

func appendHold(b []byte, r *holdRec) []byte {
	b = appendVarintField(b, holdFieldQuantity, uint64(r.qty))
	b = appendVarintField(b, holdFieldDeadline, uint64(r.deadline))
	b = appendVarintField(b, holdFieldState, uint64(r.state))
	b = appendVarintField(b, holdFieldReason, uint64(r.reason))
	b = appendVarintField(b, holdFieldSettled, uint64(r.settled))
	b = appendStringField(b, holdFieldOrderID, r.orderID)
	b = appendStringField(b, holdFieldCustomer, r.customer)
	if r.counted {
		b = appendVarintField(b, holdFieldCounted, 1)
	}
	return b
}

// appendVarintField writes a varint field unless it is zero, as proto3
// does; a negative int64 is written as its two's complement, as proto
// does for int64 fields.
func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendStringField(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func compareOpKeys(a, b skuOpKey) int {
	if a.remove != b.remove {
		if a.remove {
			return 1
		}
		return -1
	}
	return cmp.Compare(a.id, b.id)
}

// Snapshot returns the whole state as a SKUSnapshot, every record the SKU
// keeps included (also those it may already forget), holds sorted by order
// ID and operations by kind and ID, so that two states compare with
// proto.Equal. The actor writes its snapshots with encode instead.
func (s *SKUState) Snapshot() *pb.SKUSnapshot {
	snap := &pb.SKUSnapshot{
		SchemaVersion: skuSchemaVersion, Sku: s.SKU, Sequence: s.Sequence,
		Available: s.Available, Sold: s.Sold, Restocked: s.Restocked, Removed: s.Removed, Known: s.Known,
	}
	s.holds.each(func(_ int32, r *holdRec) bool {
		snap.Holds = append(snap.Holds, r.toPB())
		return true
	})
	slices.SortFunc(snap.Holds, func(a, b *pb.Hold) int { return cmp.Compare(a.OrderId, b.OrderId) })
	keys := make([]skuOpKey, 0, len(s.ops.byKey))
	for k := range s.ops.byKey {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareOpKeys)
	for _, k := range keys {
		op := s.ops.byKey[k]
		snap.Ops = append(snap.Ops, &pb.SKUOp{OpId: k.id, Quantity: op.qty, Remove: k.remove, AtUnixNano: op.at})
	}
	snap.PerCustomerLimit, snap.LimitSinceUnixNano = s.Limit, s.limitSince
	for _, u := range s.sortedUnits() {
		snap.CustomerUnits = append(snap.CustomerUnits, &pb.CustomerUnits{Customer: u.customer, Units: u.units})
	}
	return snap
}

// skuStateFromSnapshot rebuilds a state and validates it, so a snapshot
// that does not add up is refused instead of served.
func skuStateFromSnapshot(sku string, snap *pb.SKUSnapshot) (*SKUState, error) {
	switch {
	case snap.SchemaVersion != skuSchemaVersion:
		return nil, fmt.Errorf("sku %s: snapshot schema version %d, want %d", sku, snap.SchemaVersion, skuSchemaVersion)
	case snap.Sku != sku:
		return nil, fmt.Errorf("sku %s: snapshot belongs to %q", sku, snap.Sku)
	case snap.Restocked < 0 || snap.Restocked > stockUnitsMax || snap.Removed < 0:
		return nil, fmt.Errorf("sku %s: snapshot restocked %d removed %d", sku, snap.Restocked, snap.Removed)
	}
	s := NewSKUState(sku)
	s.Sequence, s.Known = snap.Sequence, snap.Known
	s.Available, s.Sold, s.Restocked, s.Removed = snap.Available, snap.Sold, snap.Restocked, snap.Removed
	for i, h := range snap.Holds {
		if err := checkSnapshotHold(h); err != nil {
			return nil, fmt.Errorf("sku %s: snapshot hold %d: %w", sku, i, err)
		}
		if _, dup := s.holds.lookup(h.OrderId); dup {
			return nil, fmt.Errorf("sku %s: snapshot holds order %q twice", sku, h.OrderId)
		}
		if h.State == pb.HoldState_HOLD_STATE_RESERVED {
			s.Reserved += h.Quantity
		}
		s.holds.put(holdRec{orderID: h.OrderId, deadline: h.DeadlineUnixNano, settled: h.SettledUnixNano,
			qty: int32(h.Quantity), state: uint8(h.State), reason: uint8(h.ReleaseReason),
			customer: h.Customer, counted: h.Counted}, false)
		s.clock = max(s.clock, h.SettledUnixNano)
	}
	s.holds.rebuildHeaps()
	for i, op := range snap.Ops {
		k := skuOpKey{id: op.OpId, remove: op.Remove}
		_, dup := s.ops.byKey[k]
		if op.OpId == "" || len(op.OpId) > skuIDBytesMax || op.Quantity < 1 || op.Quantity > stockQuantityMax || dup {
			return nil, fmt.Errorf("sku %s: snapshot operation %d (%q) is malformed or repeated", sku, i, op.OpId)
		}
		s.ops.put(k, skuOpRec{qty: op.Quantity, at: op.AtUnixNano})
		s.clock = max(s.clock, op.AtUnixNano)
	}
	if snap.PerCustomerLimit < 0 || snap.PerCustomerLimit > stockQuantityMax || (snap.PerCustomerLimit == 0) != (snap.LimitSinceUnixNano == 0) {
		return nil, fmt.Errorf("sku %s: snapshot purchase limit %d since %d", sku, snap.PerCustomerLimit, snap.LimitSinceUnixNano)
	}
	s.Limit, s.limitSince = snap.PerCustomerLimit, snap.LimitSinceUnixNano
	for i, u := range snap.CustomerUnits {
		if _, dup := s.units[u.GetCustomer()]; u.GetCustomer() == "" || len(u.Customer) > skuIDBytesMax || u.Units < 1 || dup {
			return nil, fmt.Errorf("sku %s: snapshot customer units %d (%q) are malformed or repeated", sku, i, u.GetCustomer())
		}
		s.count(u.Customer, u.Units)
	}
	if err := s.CheckHolds(); err != nil {
		return nil, fmt.Errorf("snapshot at %d: %w", snap.Sequence, err)
	}
	return s, nil
}

// checkSnapshotHold checks one hold of a snapshot against what apply can
// produce.
func checkSnapshotHold(h *pb.Hold) error {
	minQty := int64(1)
	switch {
	case h == nil:
		return fmt.Errorf("empty")
	case h.OrderId == "" || len(h.OrderId) > skuIDBytesMax:
		return fmt.Errorf("order ID of %d bytes", len(h.OrderId))
	case h.State < pb.HoldState_HOLD_STATE_RESERVED || h.State > pb.HoldState_HOLD_STATE_RETURNED:
		return fmt.Errorf("order %s: state %d", h.OrderId, h.State)
	case h.State == pb.HoldState_HOLD_STATE_RELEASED:
		minQty = 0 // a tombstone
		if h.ReleaseReason < 0 || h.ReleaseReason > pb.ReleaseReason_RELEASE_REASON_SAFETY_EXPIRY {
			return fmt.Errorf("order %s: release reason %d", h.OrderId, h.ReleaseReason)
		}
	case h.ReleaseReason != pb.ReleaseReason_RELEASE_REASON_UNSPECIFIED:
		return fmt.Errorf("order %s: release reason %v in state %v", h.OrderId, h.ReleaseReason, h.State)
	case h.State == pb.HoldState_HOLD_STATE_RESERVED && h.SettledUnixNano != 0:
		return fmt.Errorf("order %s: reserved but settled", h.OrderId)
	}
	if h.Quantity < minQty || h.Quantity > stockQuantityMax {
		return fmt.Errorf("order %s: quantity %d", h.OrderId, h.Quantity)
	}
	if len(h.Customer) > skuIDBytesMax || (h.Counted && h.Customer == "") {
		return fmt.Errorf("order %s: customer of %d bytes, counted %v", h.OrderId, len(h.Customer), h.Counted)
	}
	return nil
}
