package refapi

import (
	"context"
	"sync"
	"time"
)

// MemStore keeps everything in memory under one mutex: the fake that tests
// run load generators against. With Oversell set it skips the stock check,
// the bug a benchmark must catch.
type MemStore struct {
	Oversell bool

	mu     sync.Mutex
	skus   map[string]*SKUView
	orders map[string]*Order
}

// NewMemStore returns an empty store.
func NewMemStore() *MemStore {
	return &MemStore{skus: map[string]*SKUView{}, orders: map[string]*Order{}}
}

func (m *MemStore) Restock(_ context.Context, sku string, qty int64) (SKUView, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.skus[sku]
	if v == nil {
		v = &SKUView{SKU: sku}
		m.skus[sku] = v
	}
	v.Available += qty
	return *v, nil
}

func (m *MemStore) SKU(_ context.Context, sku string) (SKUView, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v := m.skus[sku]; v != nil {
		return *v, nil
	}
	return SKUView{}, ErrNotFound
}

func (m *MemStore) Place(_ context.Context, o *Order) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, it := range o.Items {
		v := m.skus[it.SKU]
		if v == nil {
			return &OutOfStockError{SKU: it.SKU}
		}
		if v.Available < it.Quantity && !m.Oversell {
			return &OutOfStockError{SKU: it.SKU, Available: v.Available}
		}
	}
	for _, it := range o.Items {
		v := m.skus[it.SKU]
		if v.Available >= it.Quantity {
			v.Available -= it.Quantity
			v.Reserved += it.Quantity
		}
		// An overselling store acknowledges the order without holding stock.
	}
	c := *o
	m.orders[o.ID] = &c
	return nil
}

func (m *MemStore) Order(_ context.Context, id string) (Order, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if o := m.orders[id]; o != nil {
		return *o, nil
	}
	return Order{}, ErrNotFound
}

func (m *MemStore) Pay(_ context.Context, id, ref string, now time.Time) (Order, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o := m.orders[id]
	switch {
	case o == nil:
		return Order{}, ErrNotFound
	case o.Status == StatusPaid && *o.PaymentRef == ref:
		return *o, nil
	case o.Status != StatusReserved || now.After(o.ExpiresAt):
		return Order{}, &TransitionError{Status: o.Status}
	}
	for _, it := range o.Items {
		v := m.skus[it.SKU]
		v.Reserved -= it.Quantity
		v.Sold += it.Quantity
	}
	o.Status, o.PaymentRef = StatusPaid, &ref
	return *o, nil
}

func (m *MemStore) Cancel(_ context.Context, id string) (Order, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o := m.orders[id]
	if o == nil {
		return Order{}, ErrNotFound
	}
	switch o.Status {
	case StatusCancelled:
		return *o, nil
	case StatusReserved:
		for _, it := range o.Items {
			v := m.skus[it.SKU]
			v.Reserved -= it.Quantity
			v.Available += it.Quantity
		}
	case StatusPaid:
		for _, it := range o.Items {
			v := m.skus[it.SKU]
			v.Sold -= it.Quantity
			v.Available += it.Quantity
		}
	default:
		return Order{}, &TransitionError{Status: o.Status}
	}
	o.Status = StatusCancelled
	return *o, nil
}
