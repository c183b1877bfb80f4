package gateway

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// fakeEngine is a small in-memory engine that really keeps SKUs and orders,
// so tests can compare its whole state before and after a request.
type fakeEngine struct {
	mu        sync.Mutex
	now       time.Time
	seq       int
	skus      map[string]*fakeSKU
	orders    map[string]*Order
	stockKeys map[string]int64      // sku|op|key -> quantity
	orderKeys map[string]fakeReplay // customer|key -> first outcome
	calls     atomic.Int64          // every method call
}

type fakeSKU struct{ available, reserved, sold, limit int64 }

type fakeReplay struct {
	fingerprint string
	orderID     string
	err         error
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{
		now:       time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
		skus:      map[string]*fakeSKU{},
		orders:    map[string]*Order{},
		stockKeys: map[string]int64{},
		orderKeys: map[string]fakeReplay{},
	}
}

// snapshot renders the entire state deterministically.
func (f *fakeEngine) snapshot() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, k := range sortedKeys(f.skus) {
		s := f.skus[k]
		fmt.Fprintf(&b, "sku %s %d %d %d limit %d\n", k, s.available, s.reserved, s.sold, s.limit)
	}
	for _, k := range sortedKeys(f.orders) {
		fmt.Fprintf(&b, "order %+v\n", *f.orders[k])
	}
	for _, k := range sortedKeys(f.stockKeys) {
		fmt.Fprintf(&b, "stockkey %s %d\n", k, f.stockKeys[k])
	}
	for _, k := range sortedKeys(f.orderKeys) {
		fmt.Fprintf(&b, "orderkey %s %+v\n", k, f.orderKeys[k])
	}
	fmt.Fprintf(&b, "seq %d\n", f.seq)
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// newOrderID returns "o_" and 26 Crockford digits, like a ULID.
func (f *fakeEngine) newOrderID() string {
	f.seq++
	return fmt.Sprintf("o_01J%023d", f.seq)
}

func (f *fakeEngine) stock(ctx context.Context, op, sku string, qty int64, key string) (SKUView, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.skus[sku]
	if key != "" {
		k := sku + "|" + op + "|" + key
		if q, ok := f.stockKeys[k]; ok {
			if q != qty {
				return SKUView{}, ErrIdempotencyKeyReused
			}
			return view(sku, s), nil
		}
		defer func() { f.stockKeys[k] = qty }()
	}
	if op == "restock" {
		if s == nil {
			s = &fakeSKU{}
			f.skus[sku] = s
		}
		s.available += qty
		return view(sku, s), nil
	}
	if s == nil {
		return SKUView{}, &InsufficientStockError{SKU: sku}
	}
	if s.available < qty {
		return SKUView{}, &InsufficientStockError{SKU: sku, Available: s.available}
	}
	s.available -= qty
	return view(sku, s), nil
}

func view(sku string, s *fakeSKU) SKUView {
	if s == nil {
		return SKUView{SKU: sku}
	}
	return SKUView{SKU: sku, Available: s.available, Reserved: s.reserved, Sold: s.sold, PerCustomerLimit: s.limit}
}

// SetLimit sets a SKU's purchase limit; like the engine's SKU actor, a SKU
// that was never restocked may carry one.
func (f *fakeEngine) SetLimit(ctx context.Context, sku string, limit int64) (SKUView, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.skus[sku]
	if s == nil {
		s = &fakeSKU{}
		f.skus[sku] = s
	}
	s.limit = limit
	return view(sku, s), nil
}

// heldLocked counts the units of sku that customer holds in orders that
// count against a purchase limit.
func (f *fakeEngine) heldLocked(customer, sku string) int64 {
	var n int64
	for _, o := range f.orders {
		if o.Customer != customer || (o.Status != "reserved" && o.Status != "paid" && o.Status != "shipped" && o.Status != "completed") {
			continue
		}
		for _, it := range o.Items {
			if it.SKU == sku {
				n += it.Quantity
			}
		}
	}
	return n
}

func (f *fakeEngine) Restock(ctx context.Context, sku string, q int64, key string) (SKUView, error) {
	return f.stock(ctx, "restock", sku, q, key)
}

func (f *fakeEngine) Remove(ctx context.Context, sku string, q int64, key string) (SKUView, error) {
	return f.stock(ctx, "remove", sku, q, key)
}

func (f *fakeEngine) SKU(ctx context.Context, sku string) (SKUView, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.skus[sku]
	if s == nil {
		return SKUView{}, ErrNotFound
	}
	return view(sku, s), nil
}

func (f *fakeEngine) PlaceOrder(ctx context.Context, req PlaceOrderRequest) (Order, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	fp := fmt.Sprintf("%v|%v", req.Items, req.TTL)
	if req.IdempotencyKey != "" {
		k := req.Customer + "|" + req.IdempotencyKey
		if r, ok := f.orderKeys[k]; ok {
			if r.fingerprint != fp {
				return Order{}, ErrIdempotencyKeyReused
			}
			if r.err != nil {
				return Order{}, r.err
			}
			return f.orderLocked(r.orderID), nil
		}
	}
	id := f.newOrderID()
	remember := func(err error) {
		if req.IdempotencyKey != "" {
			f.orderKeys[req.Customer+"|"+req.IdempotencyKey] = fakeReplay{fp, id, err}
		}
	}
	for _, it := range req.Items {
		s := f.skus[it.SKU]
		if s != nil && s.limit > 0 && f.heldLocked(req.Customer, it.SKU)+it.Quantity > s.limit {
			err := &LimitExceededError{SKU: it.SKU, Limit: s.limit}
			if req.IdempotencyKey != "" {
				err.OrderID = id
				f.orders[id] = &Order{ID: id, Status: "rejected", Customer: req.Customer,
					Items: slices.Clone(req.Items), CreatedAt: f.now, ExpiresAt: f.now.Add(req.TTL)}
			}
			remember(err)
			return Order{}, err
		}
		if s == nil || s.available < it.Quantity {
			// Like the engine: a keyed refusal is an order that reads
			// back rejected; an unkeyed one leaves nothing and names no order.
			err := &OutOfStockError{SKU: it.SKU, Available: view(it.SKU, s).Available}
			if req.IdempotencyKey != "" {
				err.OrderID = id
				f.orders[id] = &Order{ID: id, Status: "rejected", Customer: req.Customer,
					Items: slices.Clone(req.Items), CreatedAt: f.now, ExpiresAt: f.now.Add(req.TTL)}
			}
			remember(err)
			return Order{}, err
		}
	}
	for _, it := range req.Items {
		s := f.skus[it.SKU]
		s.available -= it.Quantity
		s.reserved += it.Quantity
	}
	f.orders[id] = &Order{ID: id, Status: "reserved", Customer: req.Customer,
		Items: slices.Clone(req.Items), CreatedAt: f.now, ExpiresAt: f.now.Add(req.TTL)}
	remember(nil)
	return f.orderLocked(id), nil
}

func (f *fakeEngine) orderLocked(id string) Order {
	o := *f.orders[id]
	o.Items = slices.Clone(o.Items)
	return o
}

func (f *fakeEngine) Order(ctx context.Context, id string) (Order, error) {
	return f.move(id, func(o *Order) error { return nil })
}

func (f *fakeEngine) Pay(ctx context.Context, id, ref string) (Order, error) {
	return f.move(id, func(o *Order) error {
		switch {
		case o.Status == "paid" && o.PaymentRef == ref:
			return nil
		case o.Status != "reserved":
			return &InvalidTransitionError{Status: o.Status}
		}
		o.Status, o.PaymentRef = "paid", ref
		f.shift(o, func(s *fakeSKU, q int64) { s.reserved -= q; s.sold += q })
		return nil
	})
}

func (f *fakeEngine) Cancel(ctx context.Context, id string) (Order, error) {
	return f.move(id, func(o *Order) error {
		switch o.Status {
		case "cancelled":
			return nil
		case "reserved":
			f.shift(o, func(s *fakeSKU, q int64) { s.reserved -= q; s.available += q })
		case "paid":
			f.shift(o, func(s *fakeSKU, q int64) { s.sold -= q; s.available += q })
		default:
			return &InvalidTransitionError{Status: o.Status}
		}
		o.Status = "cancelled"
		return nil
	})
}

func (f *fakeEngine) Ship(ctx context.Context, id string) (Order, error) {
	return f.move(id, f.step("paid", "shipped"))
}

func (f *fakeEngine) Complete(ctx context.Context, id string) (Order, error) {
	return f.move(id, f.step("shipped", "completed"))
}

func (f *fakeEngine) step(from, to string) func(o *Order) error {
	return func(o *Order) error {
		switch o.Status {
		case to:
			return nil
		case from:
			o.Status = to
			return nil
		}
		return &InvalidTransitionError{Status: o.Status}
	}
}

func (f *fakeEngine) shift(o *Order, fn func(s *fakeSKU, q int64)) {
	for _, it := range o.Items {
		fn(f.skus[it.SKU], it.Quantity)
	}
}

func (f *fakeEngine) move(id string, fn func(o *Order) error) (Order, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.orders[id]
	if o == nil {
		return Order{}, ErrNotFound
	}
	if err := fn(o); err != nil {
		return Order{}, err
	}
	return f.orderLocked(id), nil
}
