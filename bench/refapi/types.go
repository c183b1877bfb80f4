package refapi

import (
	"context"
	"errors"
	"time"

	"github.com/oklog/ulid/v2"
)

// Store is the storage a reference server plugs in. Methods return ErrNotFound,
// *OutOfStockError or *TransitionError for the contract's 404 and 409 answers;
// any other error is a 503.
type Store interface {
	Restock(ctx context.Context, sku string, qty int64) (SKUView, error)
	SKU(ctx context.Context, sku string) (SKUView, error)
	// Place reserves every line of o or none and stores o (status reserved).
	Place(ctx context.Context, o *Order) error
	Order(ctx context.Context, id string) (Order, error)
	Pay(ctx context.Context, id, paymentRef string, now time.Time) (Order, error)
	Cancel(ctx context.Context, id string) (Order, error)
}

// ErrNotFound is an unknown SKU or order.
var ErrNotFound = errors.New("not found")

// OutOfStockError names the first line that could not be reserved.
type OutOfStockError struct {
	SKU       string
	Available int64
}

func (e *OutOfStockError) Error() string { return "out of stock: " + e.SKU }

// TransitionError is a status move the order's current status does not allow.
type TransitionError struct{ Status string }

func (e *TransitionError) Error() string { return "invalid transition from " + e.Status }

// SKUView is the SKU view of API.md.
type SKUView struct {
	SKU       string `json:"sku"`
	Available int64  `json:"available"`
	Reserved  int64  `json:"reserved"`
	Sold      int64  `json:"sold"`
}

// Item is one order line.
type Item struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// Order is the order view of API.md; ID comes first so load generators can
// find it without a full decode.
type Order struct {
	ID         string    `json:"id"`
	Status     string    `json:"status"`
	Customer   string    `json:"customer"`
	Items      []Item    `json:"items"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	PaymentRef *string   `json:"payment_ref"`
}

// Order statuses.
const (
	StatusReserved  = "reserved"
	StatusPaid      = "paid"
	StatusCancelled = "cancelled"
)

// NewOrderID returns an ID in the engine's format, "o_" and a 26-character ULID.
func NewOrderID() string { return "o_" + ulid.Make().String() }

// ValidOrderID tells whether id could have come from NewOrderID; others are 404.
func ValidOrderID(id string) bool {
	if len(id) != 28 || id[:2] != "o_" {
		return false
	}
	_, err := ulid.ParseStrict(id[2:])
	return err == nil
}
