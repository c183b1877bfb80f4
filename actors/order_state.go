package actors

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/orderengine/orderengine/actors/pb"
)

// orderSchemaVersion is the version of OrderEvent and OrderSnapshot records
// this code writes and the only one it reads.
const orderSchemaVersion = 1

// OrderState is everything an order actor knows. NewOrderState is an order
// that was never placed. Only apply changes it.
type OrderState struct {
	ID         string
	Sequence   uint64 // last applied journal sequence
	Status     pb.OrderStatus
	Customer   string
	Lines      []OrderLineState // in request order
	TTLSeconds int64            // after the default
	// CreatedAt and ExpiresAt are Unix nanoseconds. ExpiresAt is also the
	// deadline of every reservation (the SKU adds its grace behind it).
	CreatedAt   int64
	ExpiresAt   int64
	Fingerprint []byte
	PaymentRef  string
	// RejectedSKU and RejectedAvailable name the first refused line in
	// request order, once rejected.
	RejectedSKU       string
	RejectedAvailable int64
	// RejectedLimit is that SKU's purchase limit when the line was refused
	// for it (0: refused for stock).
	RejectedLimit int64
	// EndedFrom is the status the order left when cancelled or expired:
	// a paid order's cancellation returns units, an unpaid one releases.
	EndedFrom pb.OrderStatus
	// StatusAt is when the order entered its status (Unix nanoseconds,
	// from the event): a terminal order's retention starts there, and a
	// cancelled paid order's returns are owed since then.
	StatusAt int64
	// ForgetRejection: once rejected and settled, the order deletes its
	// journal at once instead of keeping it for retention (a checkout
	// without an idempotency key; see pb.PlaceOrder).
	ForgetRejection bool

	// lineIndex maps SKU to index in Lines, derived, for orders of more
	// than orderLinesScanMax lines; shorter ones are scanned.
	lineIndex map[string]int
	// lineDuplicate: a SKU appears on two lines (a corrupt state).
	lineDuplicate bool
}

// orderLinesScanMax is the most lines an order finds by scanning rather
// than through a map: most orders have one or two, and a map per order
// costs allocations on every checkout.
const orderLinesScanMax = 8

// OrderLineState is one line and what the saga knows about its SKU.
type OrderLineState struct {
	SKU       string
	Quantity  int64
	Reserve   pb.LineReserve // the saga's first answer
	Available int64          // what the SKU had, for a refused line
	Limit     int64          // the SKU's purchase limit, for a line refused for it
	Hold      pb.LineHold    // where the order's units are on the SKU
}

// NewOrderState returns the state of an order ID nobody placed yet.
func NewOrderState(id string) *OrderState {
	return &OrderState{ID: id}
}

// line returns the line for sku, or nil.
func (s *OrderState) line(sku string) *OrderLineState {
	if s.lineIndex == nil {
		for i := range s.Lines {
			if s.Lines[i].SKU == sku {
				return &s.Lines[i]
			}
		}
		return nil
	}
	if i, ok := s.lineIndex[sku]; ok {
		return &s.Lines[i]
	}
	return nil
}

func (s *OrderState) mustLine(sku string) *OrderLineState {
	l := s.line(sku)
	if l == nil {
		panic(fmt.Sprintf("order %s: event for unknown line %q", s.ID, sku))
	}
	return l
}

// indexLines derives the line index and notes whether a SKU appears on
// two lines.
func (s *OrderState) indexLines() {
	s.lineIndex, s.lineDuplicate = nil, false
	if len(s.Lines) > orderLinesScanMax {
		s.lineIndex = make(map[string]int, len(s.Lines))
		for i, l := range s.Lines {
			s.lineIndex[l.SKU] = i
		}
		s.lineDuplicate = len(s.lineIndex) != len(s.Lines)
		return
	}
	for i := range s.Lines {
		for j := range i {
			if s.Lines[i].SKU == s.Lines[j].SKU {
				s.lineDuplicate = true
			}
		}
	}
}

// apply folds one event into the state. An event that does not fit the
// state is a bug or a corrupt journal: it panics, and the actor's
// supervisor restarts it from the journal.
func (s *OrderState) apply(seq uint64, ev *pb.OrderEvent) {
	if seq != s.Sequence+1 {
		panic(fmt.Sprintf("order %s: event sequence %d after %d", s.ID, seq, s.Sequence))
	}
	before := s.Status
	switch b := ev.Body.(type) {
	case *pb.OrderEvent_Placed:
		s.applyPlaced(b.Placed)
	case *pb.OrderEvent_CheckedOut:
		s.applyPlaced(b.CheckedOut.GetPlaced())
		s.reserveAll()
	case *pb.OrderEvent_LineReserved:
		l := s.mustLine(b.LineReserved.Sku)
		if l.Reserve == pb.LineReserve_LINE_RESERVE_PENDING {
			l.Reserve = pb.LineReserve_LINE_RESERVE_HELD
		}
		l.Hold = pb.LineHold_LINE_HOLD_RESERVED
	case *pb.OrderEvent_LineRefused:
		l := s.mustLine(b.LineRefused.Sku)
		s.must(l.Reserve == pb.LineReserve_LINE_RESERVE_PENDING, "line refused twice")
		l.Reserve, l.Available, l.Limit = pb.LineReserve_LINE_RESERVE_REFUSED, b.LineRefused.Available, b.LineRefused.Limit
	case *pb.OrderEvent_Reserved:
		s.must(s.Status == pb.OrderStatus_ORDER_STATUS_RESERVING, "reserved when not reserving")
		for _, l := range s.Lines {
			s.must(l.Reserve == pb.LineReserve_LINE_RESERVE_HELD, "reserved with a line not held")
		}
		s.Status = pb.OrderStatus_ORDER_STATUS_RESERVED
	case *pb.OrderEvent_Rejected:
		s.must(s.Status == pb.OrderStatus_ORDER_STATUS_RESERVING, "rejected when not reserving")
		s.Status = pb.OrderStatus_ORDER_STATUS_REJECTED
		s.RejectedSKU, s.RejectedAvailable, s.RejectedLimit = b.Rejected.Sku, b.Rejected.Available, b.Rejected.Limit
	case *pb.OrderEvent_LineReleased:
		s.mustLine(b.LineReleased.Sku).Hold = pb.LineHold_LINE_HOLD_RELEASED
	case *pb.OrderEvent_Paid:
		s.must(s.Status == pb.OrderStatus_ORDER_STATUS_RESERVED, "paid when not reserved")
		s.Status, s.PaymentRef = pb.OrderStatus_ORDER_STATUS_PAID, b.Paid.PaymentRef
	case *pb.OrderEvent_LineCommitted:
		s.mustLine(b.LineCommitted.Sku).Hold = pb.LineHold_LINE_HOLD_COMMITTED
	case *pb.OrderEvent_LineFailed:
		s.mustLine(b.LineFailed.Sku).Hold = pb.LineHold_LINE_HOLD_FAILED
	case *pb.OrderEvent_LineReturned:
		s.mustLine(b.LineReturned.Sku).Hold = pb.LineHold_LINE_HOLD_RETURNED
	case *pb.OrderEvent_Cancelled:
		s.must(s.Status == pb.OrderStatus_ORDER_STATUS_RESERVED || s.Status == pb.OrderStatus_ORDER_STATUS_PAID,
			"cancelled from "+s.Status.String())
		s.EndedFrom, s.Status = s.Status, pb.OrderStatus_ORDER_STATUS_CANCELLED
	case *pb.OrderEvent_Expired:
		s.must(orderUnpaid(s.Status), "expired from "+s.Status.String())
		s.EndedFrom, s.Status = s.Status, pb.OrderStatus_ORDER_STATUS_EXPIRED
	case *pb.OrderEvent_Shipped:
		s.must(s.Status == pb.OrderStatus_ORDER_STATUS_PAID, "shipped when not paid")
		s.Status = pb.OrderStatus_ORDER_STATUS_SHIPPED
	case *pb.OrderEvent_Completed:
		s.must(s.Status == pb.OrderStatus_ORDER_STATUS_SHIPPED, "completed when not shipped")
		s.Status = pb.OrderStatus_ORDER_STATUS_COMPLETED
	default:
		panic(fmt.Sprintf("order %s: event %d has no body", s.ID, seq))
	}
	if s.Status != before {
		s.StatusAt = ev.AtUnixNano
	}
	s.Sequence = seq
}

func (s *OrderState) applyPlaced(p *pb.OrderPlaced) {
	s.must(s.Status == pb.OrderStatus_ORDER_STATUS_UNSPECIFIED, "placed twice")
	s.must(p.OrderId == s.ID, "placed under another id "+p.OrderId)
	s.Status = pb.OrderStatus_ORDER_STATUS_RESERVING
	s.Customer, s.TTLSeconds = p.Customer, p.TtlSeconds
	s.CreatedAt, s.ExpiresAt = p.CreatedAtUnixNano, p.ExpiresAtUnixNano
	s.Fingerprint = bytes.Clone(p.Fingerprint)
	s.ForgetRejection = p.ForgetRejection
	s.Lines = make([]OrderLineState, len(p.Items))
	for i, it := range p.Items {
		s.Lines[i] = OrderLineState{SKU: it.Sku, Quantity: it.Quantity, Reserve: pb.LineReserve_LINE_RESERVE_PENDING}
	}
	s.indexLines()
	s.must(!s.lineDuplicate, "a SKU appears on two lines")
	// A placement read back from a damaged journal must not start an
	// order that fails its own checks (no lines, a line without units).
	if err := s.Check(); err != nil {
		panic(err.Error())
	}
}

// reserveAll moves a placed order to reserved with every line held, as
// OrderCheckedOut does after its OrderPlaced.
func (s *OrderState) reserveAll() {
	s.must(s.Status == pb.OrderStatus_ORDER_STATUS_RESERVING, "checked out when not reserving")
	for i := range s.Lines {
		s.Lines[i].Reserve, s.Lines[i].Hold = pb.LineReserve_LINE_RESERVE_HELD, pb.LineHold_LINE_HOLD_RESERVED
	}
	s.Status = pb.OrderStatus_ORDER_STATUS_RESERVED
}

func (s *OrderState) must(ok bool, what string) {
	if !ok {
		panic(fmt.Sprintf("order %s: %s", s.ID, what))
	}
}

// orderUnpaid reports whether an order in this status expires at its TTL.
func orderUnpaid(st pb.OrderStatus) bool {
	return st == pb.OrderStatus_ORDER_STATUS_RESERVING || st == pb.OrderStatus_ORDER_STATUS_RESERVED
}

// View is the order as the outside sees it; nil for an order never placed.
func (s *OrderState) View() *pb.OrderView {
	if s.Status == pb.OrderStatus_ORDER_STATUS_UNSPECIFIED {
		return nil
	}
	items := make([]*pb.OrderLine, len(s.Lines))
	for i, l := range s.Lines {
		items[i] = &pb.OrderLine{Sku: l.SKU, Quantity: l.Quantity}
	}
	return &pb.OrderView{Id: s.ID, Status: s.Status, Customer: s.Customer, Items: items,
		CreatedAtUnixNano: s.CreatedAt, ExpiresAtUnixNano: s.ExpiresAt, PaymentRef: s.PaymentRef}
}

// Snapshot captures the state for the journal.
func (s *OrderState) Snapshot() *pb.OrderSnapshot {
	lines := make([]*pb.OrderLineState, len(s.Lines))
	for i, l := range s.Lines {
		lines[i] = &pb.OrderLineState{Sku: l.SKU, Quantity: l.Quantity, Reserve: l.Reserve, Available: l.Available, Hold: l.Hold, Limit: l.Limit}
	}
	return &pb.OrderSnapshot{
		SchemaVersion: orderSchemaVersion, Sequence: s.Sequence, OrderId: s.ID, Customer: s.Customer,
		Status: s.Status, Lines: lines, TtlSeconds: s.TTLSeconds,
		CreatedAtUnixNano: s.CreatedAt, ExpiresAtUnixNano: s.ExpiresAt,
		Fingerprint: bytes.Clone(s.Fingerprint), PaymentRef: s.PaymentRef,
		RejectedSku: s.RejectedSKU, RejectedAvailable: s.RejectedAvailable, RejectedLimit: s.RejectedLimit, EndedFrom: s.EndedFrom,
		StatusAtUnixNano: s.StatusAt, ForgetRejection: s.ForgetRejection,
	}
}

// orderStateFromSnapshot rebuilds a state and validates it, so a snapshot
// that does not fit together is refused instead of served.
func orderStateFromSnapshot(id string, snap *pb.OrderSnapshot) (*OrderState, error) {
	if snap.SchemaVersion != orderSchemaVersion {
		return nil, fmt.Errorf("order %s: snapshot schema version %d, want %d", id, snap.SchemaVersion, orderSchemaVersion)
	}
	if snap.OrderId != id {
		return nil, fmt.Errorf("order %s: snapshot belongs to %q", id, snap.OrderId)
	}
	s := &OrderState{
		ID: id, Sequence: snap.Sequence, Status: snap.Status, Customer: snap.Customer,
		TTLSeconds: snap.TtlSeconds, CreatedAt: snap.CreatedAtUnixNano, ExpiresAt: snap.ExpiresAtUnixNano,
		Fingerprint: bytes.Clone(snap.Fingerprint), PaymentRef: snap.PaymentRef,
		RejectedSKU: snap.RejectedSku, RejectedAvailable: snap.RejectedAvailable, RejectedLimit: snap.RejectedLimit, EndedFrom: snap.EndedFrom,
		StatusAt: snap.StatusAtUnixNano, ForgetRejection: snap.ForgetRejection,
	}
	for _, l := range snap.Lines {
		if l == nil {
			return nil, fmt.Errorf("order %s: snapshot has an empty line", id)
		}
		s.Lines = append(s.Lines, OrderLineState{SKU: l.Sku, Quantity: l.Quantity, Reserve: l.Reserve, Available: l.Available, Hold: l.Hold, Limit: l.Limit})
	}
	s.indexLines()
	if err := s.Check(); err != nil {
		return nil, fmt.Errorf("snapshot at %d: %w", snap.Sequence, err)
	}
	return s, nil
}

// Check verifies that the state fits together: the status agrees with what
// the lines say. Tests and recovery call it; apply keeps it true.
func (s *OrderState) Check() error {
	bad := func(what string) error { return fmt.Errorf("order %s (%s): %s", s.ID, s.Status, what) }
	if s.Status == pb.OrderStatus_ORDER_STATUS_UNSPECIFIED {
		if len(s.Lines) != 0 {
			return bad("lines without an order")
		}
		return nil
	}
	if _, ok := pb.OrderStatus_name[int32(s.Status)]; !ok {
		return bad("unknown status")
	}
	if len(s.Lines) == 0 || len(s.Lines) > orderLinesMax {
		return bad(fmt.Sprintf("%d lines", len(s.Lines)))
	}
	if s.lineDuplicate {
		return bad("a SKU appears on two lines")
	}
	allHeld := !slices.ContainsFunc(s.Lines, func(l OrderLineState) bool { return l.Reserve != pb.LineReserve_LINE_RESERVE_HELD })
	for _, l := range s.Lines {
		if l.Quantity < 1 {
			return bad("line " + l.SKU + " has no units")
		}
	}
	switch s.Status {
	case pb.OrderStatus_ORDER_STATUS_RESERVED, pb.OrderStatus_ORDER_STATUS_PAID,
		pb.OrderStatus_ORDER_STATUS_SHIPPED, pb.OrderStatus_ORDER_STATUS_COMPLETED:
		if !allHeld {
			return bad("a line was never reserved")
		}
	case pb.OrderStatus_ORDER_STATUS_REJECTED:
		if l := s.line(s.RejectedSKU); l == nil || l.Reserve != pb.LineReserve_LINE_RESERVE_REFUSED {
			return bad("rejected for a line that was not refused")
		}
	}
	paidOnce := s.Status == pb.OrderStatus_ORDER_STATUS_PAID || s.Status == pb.OrderStatus_ORDER_STATUS_SHIPPED ||
		s.Status == pb.OrderStatus_ORDER_STATUS_COMPLETED ||
		(s.Status == pb.OrderStatus_ORDER_STATUS_CANCELLED && s.EndedFrom == pb.OrderStatus_ORDER_STATUS_PAID)
	if paidOnce != (s.PaymentRef != "") {
		return bad("payment reference does not match the status")
	}
	return nil
}
