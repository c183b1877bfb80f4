package chaos

import (
	"fmt"
	"hash/maphash"
	"maps"
	"sort"
	"strings"

	"github.com/anishathalye/porcupine"
)

// The sequential specification of one SKU as the HTTP API shows it, for
// Porcupine. A history is partitioned by SKU: every operation touches one
// SKU (orders have a single line), so each SKU is checked on its own.
//
// An order's status and the stock it holds on its SKU are tracked apart. A
// pay or cancel moves the status at its linearization point; in the strict
// model the stock moves with it, as API.md's read-your-writes promises. The
// engine answers a pay or cancel once the order's own event is durable and
// moves the stock in a saga step after it, so the default model lets the
// stock move later: before any operation, any owed move may have happened
// (see settlements), and the history ends with an OpSettledRead of every
// SKU, read once the node is quiet, by which every owed move must have
// happened.
//
// Expiry is not modelled: the histories use a TTL far longer than they
// last, so no order expires while one is recorded.

// OpKind is the kind of a recorded operation.
type OpKind uint8

const (
	OpRestock     OpKind = iota // POST /v1/skus/{sku}/restock
	OpRemove                    // POST /v1/skus/{sku}/remove
	OpRead                      // GET /v1/skus/{sku}
	OpCheckout                  // POST /v1/orders, one line, with an Idempotency-Key
	OpPay                       // POST /v1/orders/{id}/pay, always with the order's one payment_ref
	OpCancel                    // POST /v1/orders/{id}/cancel
	OpSettledRead               // GET /v1/skus/{sku} once the node is quiet, at the end
)

var opNames = [...]string{"restock", "remove", "read", "checkout", "pay", "cancel", "settled-read"}

func (k OpKind) String() string { return opNames[k] }

// Input is an operation as invoked.
type Input struct {
	Kind   OpKind
	SKU    string
	Order  int // the client's number of the order (its Idempotency-Key); checkout, pay, cancel
	Qty    int64
	Strict bool // pay, cancel: the stock moves with the status
}

// View is a SKU view as the API shows it.
type View struct{ Available, Reserved, Sold int64 }

// Output is what came back. For Unknown outcomes nothing else is known.
type Output struct {
	Outcome   Outcome
	Found     bool  // OpRead: 200 rather than 404
	View      View  // restock, remove, read when Done
	Available int64 // refused checkout or remove: the "available" extension
}

// orderStatus is an order's status as far as its SKU's stock is concerned.
type orderStatus uint8

const (
	orderRejected orderStatus = iota + 1 // a keyed checkout's remembered 409
	orderReserved
	orderPaid
	orderCancelled
)

// hold is where an order's units are counted on its SKU.
type hold uint8

const (
	holdNone     hold = iota // not counted (rejected, or released)
	holdReserved             // in reserved
	holdSold                 // in sold
)

// orderRec is the model's record of one order.
type orderRec struct {
	status orderStatus
	hold   hold
	qty    int64
}

// target is where the status says the units belong.
func (o orderRec) target() hold {
	switch o.status {
	case orderReserved:
		return holdReserved
	case orderPaid:
		return holdSold
	}
	return holdNone
}

// skuState is the model's state of one SKU. It is never changed in place:
// a step returns a new one.
type skuState struct {
	exists bool // restocked at least once: GET answers 200
	View
	orders map[int]orderRec // by the client's order number
}

func (s skuState) with(order int, o orderRec) skuState {
	s.orders = maps.Clone(s.orders)
	if s.orders == nil {
		s.orders = map[int]orderRec{}
	}
	s.orders[order] = o
	return s
}

// move counts order's units under to instead of where they are.
func (s skuState) move(order int, to hold) skuState {
	o := s.orders[order]
	count := func(h hold) *int64 {
		return [...]*int64{&s.Available, &s.Reserved, &s.Sold}[h]
	}
	*count(o.hold) -= o.qty
	*count(to) += o.qty
	o.hold = to
	return s.with(order, o)
}

// settled reports whether every order's units are where its status says.
func (s skuState) settled() bool {
	for _, o := range s.orders {
		if o.hold != o.target() {
			return false
		}
	}
	return true
}

// apply is the effect of an operation that happened with the given
// outcome; ok is false when the state cannot produce that outcome.
// Refused here means the contract's 409 (or 404 for a read).
func (s skuState) apply(in Input, out Output) (skuState, bool) {
	done := out.Outcome == Done
	switch in.Kind {
	case OpRestock:
		if !done {
			return s, false
		}
		s.exists, s.Available = true, s.Available+in.Qty
		return s, s.View == out.View
	case OpRemove:
		if !done {
			return s, s.Available < in.Qty && out.Available == s.Available
		}
		if s.Available < in.Qty {
			return s, false
		}
		s.Available -= in.Qty
		return s, s.View == out.View
	case OpRead:
		if !done {
			return s, !s.exists
		}
		return s, s.exists && s.View == out.View
	case OpSettledRead:
		return s, s.settled() && s.exists == done && (!done || s.View == out.View)
	case OpCheckout:
		if o, known := s.orders[in.Order]; known { // a replay: the first outcome, no change
			return s, done == (o.status != orderRejected)
		}
		if done {
			if s.Available < in.Qty {
				return s, false
			}
			s.Available, s.Reserved = s.Available-in.Qty, s.Reserved+in.Qty
			return s.with(in.Order, orderRec{status: orderReserved, hold: holdReserved, qty: in.Qty}), true
		}
		return s.with(in.Order, orderRec{status: orderRejected, qty: in.Qty}), s.Available < in.Qty && out.Available == s.Available
	case OpPay:
		switch o := s.orders[in.Order]; {
		case o.status == orderReserved && done:
			o.status = orderPaid
			s = s.with(in.Order, o)
			if in.Strict {
				s = s.move(in.Order, holdSold)
			}
			return s, true
		case o.status == orderPaid: // the same payment_ref again
			if done && in.Strict { // an answer of a replay shows the move too
				s = s.move(in.Order, holdSold)
			}
			return s, done
		default:
			return s, !done && o.status == orderCancelled
		}
	case OpCancel:
		o := s.orders[in.Order]
		if !done || (o.status != orderReserved && o.status != orderPaid && o.status != orderCancelled) {
			return s, false // nothing here is ever refused a cancel
		}
		o.status = orderCancelled
		s = s.with(in.Order, o)
		if in.Strict {
			s = s.move(in.Order, holdNone)
		}
		return s, true
	}
	return s, false
}

// settlements lists the states s can reach by owed moves of stock alone:
// each order whose units are not where its status says may have moved
// them there (a cancelled order's reserved units either straight back to
// available, or first to sold by its commit and then back), or not yet.
func (s skuState) settlements() []skuState {
	out := []skuState{s}
	for num, o := range s.orders {
		if o.hold == o.target() {
			continue
		}
		targets := []hold{o.target()}
		if o.hold == holdReserved && o.target() == holdNone {
			targets = append(targets, holdSold)
		}
		for _, st := range out[:len(out):len(out)] {
			for _, to := range targets {
				out = append(out, st.move(num, to))
			}
		}
	}
	return out
}

// step lists the states an operation can lead to: from any state the owed
// moves of stock can reach first, the operation's effect. One whose outcome
// is unknown either happened, with any outcome the state allows, or did not.
func step(state, input, output any) []any {
	s, in, out := state.(skuState), input.(Input), output.(Output)
	var next []any
	for _, pre := range s.settlements() {
		if out.Outcome != Unknown {
			if n, ok := pre.apply(in, out); ok {
				next = append(next, n)
			}
			continue
		}
		next = append(next, pre)
		for _, o := range possibleOutcomes(pre, in) {
			if n, ok := pre.apply(in, o); ok {
				next = append(next, n)
			}
		}
	}
	return next
}

// possibleOutcomes are the definite outputs that in could have had in s.
func possibleOutcomes(s skuState, in Input) []Output {
	switch in.Kind {
	case OpRestock:
		v := s.View
		v.Available += in.Qty
		return []Output{{Outcome: Done, View: v}}
	case OpRemove:
		v := s.View
		v.Available -= in.Qty
		return []Output{{Outcome: Done, View: v}, {Outcome: Refused, Available: s.Available}}
	case OpRead, OpSettledRead:
		return nil // a read that may not have happened changes nothing
	default:
		return []Output{{Outcome: Done}, {Outcome: Refused, Available: s.Available}}
	}
}

var hashSeed = maphash.MakeSeed()

func hashState(state any) uint64 {
	s := state.(skuState)
	var h maphash.Hash
	h.SetSeed(hashSeed)
	fmt.Fprint(&h, s.exists, s.View)
	sum := h.Sum64()
	for k, v := range s.orders { // order-independent
		sum += uint64(k)*0x9e3779b97f4a7c15 ^ (uint64(v.status) | uint64(v.hold)<<8 | uint64(v.qty)<<16)
	}
	return sum
}

func equalStates(a, b any) bool {
	x, y := a.(skuState), b.(skuState)
	return x.exists == y.exists && x.View == y.View && maps.Equal(x.orders, y.orders)
}

// StockModel is the Porcupine model of SKU stock, partitioned by SKU.
var StockModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var skus []string
		for _, op := range history {
			sku := op.Input.(Input).SKU
			if _, ok := by[sku]; !ok {
				skus = append(skus, sku)
			}
			by[sku] = append(by[sku], op)
		}
		sort.Strings(skus)
		parts := make([][]porcupine.Operation, 0, len(skus))
		for _, sku := range skus {
			parts = append(parts, by[sku])
		}
		return parts
	},
	Init:  func() []any { return []any{skuState{}} },
	Step:  step,
	Equal: equalStates,
	Hash:  hashState,
	DescribeOperation: func(input, output any) string {
		in, out := input.(Input), output.(Output)
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s", in.Kind, in.SKU)
		if in.Kind >= OpCheckout {
			fmt.Fprintf(&b, " order %d", in.Order)
		}
		if in.Qty > 0 {
			fmt.Fprintf(&b, " qty %d", in.Qty)
		}
		fmt.Fprintf(&b, " -> %s", out.Outcome)
		switch {
		case out.Outcome == Done && (in.Kind == OpRestock || in.Kind == OpRemove || in.Kind == OpRead || in.Kind == OpSettledRead):
			fmt.Fprintf(&b, " %+v", out.View)
		case out.Outcome == Refused && (in.Kind == OpCheckout || in.Kind == OpRemove):
			fmt.Fprintf(&b, " available %d", out.Available)
		}
		return b.String()
	},
	DescribeState: func(state any) string {
		s := state.(skuState)
		if !s.exists && len(s.orders) == 0 {
			return "never restocked"
		}
		keys := make([]int, 0, len(s.orders))
		for k := range s.orders {
			keys = append(keys, k)
		}
		sort.Ints(keys)
		var b strings.Builder
		fmt.Fprintf(&b, "%+v orders", s.View)
		for _, k := range keys {
			o := s.orders[k]
			fmt.Fprintf(&b, " %d:%s", k, [...]string{"?", "rejected", "reserved", "paid", "cancelled"}[o.status])
			if o.hold != o.target() {
				fmt.Fprintf(&b, "(units still %s)", [...]string{"free", "reserved", "sold"}[o.hold])
			}
		}
		return b.String()
	},
}
