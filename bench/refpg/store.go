package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orderengine/orderengine/bench/refapi"
)

const schema = `
CREATE TABLE IF NOT EXISTS skus (
  sku       text PRIMARY KEY,
  available bigint NOT NULL CHECK (available >= 0),
  reserved  bigint NOT NULL DEFAULT 0,
  sold      bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS orders (
  id          text PRIMARY KEY,
  customer    text NOT NULL,
  status      text NOT NULL,
  items       jsonb NOT NULL,
  created_at  timestamptz NOT NULL,
  expires_at  timestamptz NOT NULL,
  payment_ref text
);`

// store is refapi.Store on PostgreSQL.
type store struct{ db *pgxpool.Pool }

func (s *store) Restock(ctx context.Context, sku string, qty int64) (refapi.SKUView, error) {
	v := refapi.SKUView{SKU: sku}
	err := s.db.QueryRow(ctx, `INSERT INTO skus (sku, available) VALUES ($1, $2)
		ON CONFLICT (sku) DO UPDATE SET available = skus.available + EXCLUDED.available
		RETURNING available, reserved, sold`, sku, qty).Scan(&v.Available, &v.Reserved, &v.Sold)
	if err != nil {
		return v, fmt.Errorf("restock %s: %w", sku, err)
	}
	return v, nil
}

func (s *store) SKU(ctx context.Context, sku string) (refapi.SKUView, error) {
	v := refapi.SKUView{SKU: sku}
	err := s.db.QueryRow(ctx, `SELECT available, reserved, sold FROM skus WHERE sku = $1`, sku).
		Scan(&v.Available, &v.Reserved, &v.Sold)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, refapi.ErrNotFound
	}
	if err != nil {
		return v, fmt.Errorf("read %s: %w", sku, err)
	}
	return v, nil
}

// Place reserves the lines in SKU order, so two multi-line checkouts never
// wait on each other's rows in opposite orders (no deadlocks); the order is
// inserted in the same transaction. For a multi-line order the SKU named in
// a 409 is the first short one in that order, not in request order.
func (s *store) Place(ctx context.Context, o *refapi.Order) error {
	items, err := json.Marshal(o.Items)
	if err != nil {
		return fmt.Errorf("encode items: %w", err)
	}
	lines := slices.Clone(o.Items)
	slices.SortFunc(lines, func(a, b refapi.Item) int { return strings.Compare(a.SKU, b.SKU) })
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		for _, it := range lines {
			tag, err := tx.Exec(ctx, `UPDATE skus SET available = available - $1, reserved = reserved + $1
				WHERE sku = $2 AND available >= $1`, it.Quantity, it.SKU)
			if err != nil {
				return fmt.Errorf("reserve %s: %w", it.SKU, err)
			}
			if tag.RowsAffected() == 0 {
				oos := &refapi.OutOfStockError{SKU: it.SKU}
				err := tx.QueryRow(ctx, `SELECT available FROM skus WHERE sku = $1`, it.SKU).Scan(&oos.Available)
				if err != nil && !errors.Is(err, pgx.ErrNoRows) {
					return fmt.Errorf("read %s: %w", it.SKU, err)
				}
				return oos
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO orders (id, customer, status, items, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, o.ID, o.Customer, o.Status, items, o.CreatedAt, o.ExpiresAt)
		if err != nil {
			return fmt.Errorf("insert order %s: %w", o.ID, err)
		}
		return nil
	})
}

func (s *store) Order(ctx context.Context, id string) (refapi.Order, error) {
	return s.readOrder(ctx, s.db, id, "")
}

// querier is what readOrder needs from a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (s *store) readOrder(ctx context.Context, q querier, id, suffix string) (refapi.Order, error) {
	o := refapi.Order{ID: id}
	var items []byte
	err := q.QueryRow(ctx, `SELECT status, customer, items, created_at, expires_at, payment_ref
		FROM orders WHERE id = $1`+suffix, id).
		Scan(&o.Status, &o.Customer, &items, &o.CreatedAt, &o.ExpiresAt, &o.PaymentRef)
	if errors.Is(err, pgx.ErrNoRows) {
		return o, refapi.ErrNotFound
	}
	if err != nil {
		return o, fmt.Errorf("read order %s: %w", id, err)
	}
	o.CreatedAt, o.ExpiresAt = o.CreatedAt.UTC(), o.ExpiresAt.UTC()
	if err := json.Unmarshal(items, &o.Items); err != nil {
		return o, fmt.Errorf("decode items of %s: %w", id, err)
	}
	return o, nil
}

func (s *store) Pay(ctx context.Context, id, ref string, now time.Time) (refapi.Order, error) {
	return s.move(ctx, id, func(o *refapi.Order) (from, to string, done bool, err error) {
		switch {
		case o.Status == refapi.StatusPaid && o.PaymentRef != nil && *o.PaymentRef == ref:
			return "", "", true, nil
		case o.Status != refapi.StatusReserved || now.After(o.ExpiresAt):
			return "", "", false, &refapi.TransitionError{Status: o.Status}
		}
		o.Status, o.PaymentRef = refapi.StatusPaid, &ref
		return "reserved", "sold", false, nil
	})
}

func (s *store) Cancel(ctx context.Context, id string) (refapi.Order, error) {
	return s.move(ctx, id, func(o *refapi.Order) (from, to string, done bool, err error) {
		switch o.Status {
		case refapi.StatusCancelled:
			return "", "", true, nil
		case refapi.StatusReserved:
			from = "reserved"
		case refapi.StatusPaid:
			from = "sold"
		default:
			return "", "", false, &refapi.TransitionError{Status: o.Status}
		}
		o.Status = refapi.StatusCancelled
		return from, "available", false, nil
	})
}

// move locks the order row, lets decide change the order, moves the units
// between the SKU columns it names and saves the order, in one transaction.
// Column names come from decide, never from the request.
func (s *store) move(ctx context.Context, id string, decide func(*refapi.Order) (from, to string, done bool, err error)) (refapi.Order, error) {
	var o refapi.Order
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		if o, err = s.readOrder(ctx, tx, id, " FOR UPDATE"); err != nil {
			return err
		}
		from, to, done, err := decide(&o)
		if err != nil || done {
			return err
		}
		for _, it := range o.Items {
			_, err := tx.Exec(ctx, fmt.Sprintf(`UPDATE skus SET %s = %s - $1, %s = %s + $1 WHERE sku = $2`,
				from, from, to, to), it.Quantity, it.SKU)
			if err != nil {
				return fmt.Errorf("move %s: %w", it.SKU, err)
			}
		}
		_, err = tx.Exec(ctx, `UPDATE orders SET status = $1, payment_ref = $2 WHERE id = $3`, o.Status, o.PaymentRef, id)
		if err != nil {
			return fmt.Errorf("update order %s: %w", id, err)
		}
		return nil
	})
	return o, err
}
