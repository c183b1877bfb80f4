package gateway

import "context"

// hookEngine runs hook before every call of the fake engine; a non-nil
// error from hook is returned instead of calling it. Tests use it to block,
// slow down or fail the engine.
type hookEngine struct {
	*fakeEngine
	hook func(ctx context.Context, op string) error
}

func (h hookEngine) Restock(ctx context.Context, sku string, q int64, key string) (SKUView, error) {
	if err := h.hook(ctx, "restock"); err != nil {
		return SKUView{}, err
	}
	return h.fakeEngine.Restock(ctx, sku, q, key)
}

func (h hookEngine) Remove(ctx context.Context, sku string, q int64, key string) (SKUView, error) {
	if err := h.hook(ctx, "remove"); err != nil {
		return SKUView{}, err
	}
	return h.fakeEngine.Remove(ctx, sku, q, key)
}

func (h hookEngine) SetLimit(ctx context.Context, sku string, limit int64) (SKUView, error) {
	if err := h.hook(ctx, "limit"); err != nil {
		return SKUView{}, err
	}
	return h.fakeEngine.SetLimit(ctx, sku, limit)
}

func (h hookEngine) SKU(ctx context.Context, sku string) (SKUView, error) {
	if err := h.hook(ctx, "sku"); err != nil {
		return SKUView{}, err
	}
	return h.fakeEngine.SKU(ctx, sku)
}

func (h hookEngine) PlaceOrder(ctx context.Context, r PlaceOrderRequest) (Order, error) {
	if err := h.hook(ctx, "place"); err != nil {
		return Order{}, err
	}
	return h.fakeEngine.PlaceOrder(ctx, r)
}

func (h hookEngine) Order(ctx context.Context, id string) (Order, error) {
	if err := h.hook(ctx, "order"); err != nil {
		return Order{}, err
	}
	return h.fakeEngine.Order(ctx, id)
}

func (h hookEngine) Pay(ctx context.Context, id, ref string) (Order, error) {
	if err := h.hook(ctx, "pay"); err != nil {
		return Order{}, err
	}
	return h.fakeEngine.Pay(ctx, id, ref)
}

func (h hookEngine) Cancel(ctx context.Context, id string) (Order, error) {
	if err := h.hook(ctx, "cancel"); err != nil {
		return Order{}, err
	}
	return h.fakeEngine.Cancel(ctx, id)
}

func (h hookEngine) Ship(ctx context.Context, id string) (Order, error) {
	if err := h.hook(ctx, "ship"); err != nil {
		return Order{}, err
	}
	return h.fakeEngine.Ship(ctx, id)
}

func (h hookEngine) Complete(ctx context.Context, id string) (Order, error) {
	if err := h.hook(ctx, "complete"); err != nil {
		return Order{}, err
	}
	return h.fakeEngine.Complete(ctx, id)
}
