package gateway

import (
	"context"
	"errors"
	"time"
)

// Engine is what the gateway calls. Every method gets a context whose
// deadline is the gateway's RequestTimeout and must return by then (with
// ctx.Err() or ErrUnavailable when it gives up). Arguments are owned by the
// engine: the gateway copies them out of fasthttp's reused buffers.
type Engine interface {
	Restock(ctx context.Context, sku string, quantity int64, idempotencyKey string) (SKUView, error)
	Remove(ctx context.Context, sku string, quantity int64, idempotencyKey string) (SKUView, error)
	// SetLimit sets the SKU's purchase limit per customer; 0 removes it.
	SetLimit(ctx context.Context, sku string, perCustomer int64) (SKUView, error)
	SKU(ctx context.Context, sku string) (SKUView, error)
	PlaceOrder(ctx context.Context, req PlaceOrderRequest) (Order, error)
	Order(ctx context.Context, id string) (Order, error)
	Pay(ctx context.Context, id, paymentRef string) (Order, error)
	Cancel(ctx context.Context, id string) (Order, error)
	Ship(ctx context.Context, id string) (Order, error)
	Complete(ctx context.Context, id string) (Order, error)
}

// SKUView is the stock of one SKU as the API shows it.
type SKUView struct {
	SKU       string
	Available int64
	Reserved  int64
	Sold      int64
	// PerCustomerLimit is the purchase limit per customer, 0 for none.
	PerCustomerLimit int64
}

// Item is one line of an order.
type Item struct {
	SKU      string
	Quantity int64
}

// PlaceOrderRequest is a validated checkout.
type PlaceOrderRequest struct {
	Customer string
	Items    []Item
	// TTL is how long the reservation waits for payment; the gateway has
	// already applied the default (900 s).
	TTL time.Duration
	// IdempotencyKey is "" when the client sent none.
	IdempotencyKey string
}

// Order is an order as the API shows it.
type Order struct {
	ID        string
	Status    string
	Customer  string
	Items     []Item
	CreatedAt time.Time
	ExpiresAt time.Time
	// PaymentRef is "" until the order is paid (JSON null).
	PaymentRef string
}

// Errors the engine returns. The problem table (problems.go) maps them to
// responses; wrapped errors are recognised with errors.Is and errors.As.
var (
	// ErrNotFound: the order or SKU does not exist (404 not-found).
	ErrNotFound = errors.New("not found")
	// ErrIdempotencyKeyReused: the key was used with another request (422).
	ErrIdempotencyKeyReused = errors.New("idempotency key reused with a different request")
	// ErrUnavailable: the partition's holder is down or moving (503 with
	// Retry-After).
	ErrUnavailable = errors.New("unavailable")
	// ErrStorageFull: the node refuses writes because its data volume is
	// below its free-space reserve (503 with Retry-After, saying so).
	// Writes resume by themselves once space is freed; reads go on.
	ErrStorageFull = errors.New("storage full")
	// ErrOverloaded: the engine sheds load (429 with Retry-After).
	ErrOverloaded = errors.New("overloaded")
)

// OutOfStockError refuses a checkout: the first line, in request order, that
// could not be reserved. OrderID is the rejected order's id, so a keyed
// checkout that replays its first 409 names the same order.
type OutOfStockError struct {
	OrderID   string
	SKU       string
	Available int64
}

func (e *OutOfStockError) Error() string {
	return "out of stock: sku " + e.SKU
}

// LimitExceededError refuses a checkout: the first line, in request order,
// that would take the customer above its SKU's purchase limit. OrderID is
// set as for OutOfStockError.
type LimitExceededError struct {
	OrderID string
	SKU     string
	Limit   int64
}

func (e *LimitExceededError) Error() string {
	return "purchase limit exceeded: sku " + e.SKU
}

// InsufficientStockError refuses a remove: fewer units are available.
type InsufficientStockError struct {
	SKU       string
	Available int64
}

func (e *InsufficientStockError) Error() string {
	return "insufficient stock: sku " + e.SKU
}

// InvalidTransitionError refuses an order move that its status does not
// allow; Status is the order's current status.
type InvalidTransitionError struct {
	Status string
}

func (e *InvalidTransitionError) Error() string {
	return "invalid transition from status " + e.Status
}

// InvalidFieldError is a request field that is missing, of the wrong type or
// out of range (422). Field is the JSON path ("items[2].quantity"), the path
// parameter ("sku") or the header ("Idempotency-Key").
type InvalidFieldError struct {
	Field  string
	Detail string
}

func (e *InvalidFieldError) Error() string {
	return "invalid field " + e.Field + ": " + e.Detail
}
