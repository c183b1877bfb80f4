package main

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// forEachSKU runs f over skus with setupWorkers in parallel and returns the
// first error; it gives up after setupTimeout.
func forEachSKU(ctx context.Context, skus []string, f func(i int, sku string) error) error {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	next := make(chan int)
	errs := make(chan error, setupWorkers)
	var wg sync.WaitGroup
	for range min(setupWorkers, len(skus)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i, skus[i]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
feed:
	for i := range skus {
		select {
		case next <- i:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	close(errs)
	if err == nil {
		err = <-errs
	}
	return err
}

func restockAll(ctx context.Context, c *client, skus []string, stock int64) error {
	start := time.Now()
	err := forEachSKU(ctx, skus, func(_ int, sku string) error {
		_, err := c.restock(sku, stock)
		return err
	})
	if err != nil {
		return fmt.Errorf("restock %d SKUs (after %s): %w", len(skus), time.Since(start).Round(time.Millisecond), err)
	}
	return nil
}

// skuTotals sums SKU views.
type skuTotals struct{ available, reserved, sold int64 }

func sumSKUs(ctx context.Context, c *client, skus []string) (skuTotals, error) {
	if len(skus) > verifySKUsMax {
		return skuTotals{}, fmt.Errorf("%d SKUs: more than the %d the stock check reads", len(skus), verifySKUsMax)
	}
	views := make([]skuView, len(skus))
	err := forEachSKU(ctx, skus, func(i int, sku string) error {
		v, err := c.getSKU(sku)
		views[i] = v
		return err
	})
	var t skuTotals
	for _, v := range views {
		t.available += v.Available
		t.reserved += v.Reserved
		t.sold += v.Sold
	}
	if err != nil {
		return t, fmt.Errorf("read %d SKU views: %w", len(skus), err)
	}
	return t, nil
}

// verifyStock compares what the client was told with the server's SKU view.
// Every 201 checkout holds one unit (sold or reserved) unless the client
// cancelled it, so with no expiry during the run:
// sold+reserved grew by successes-cancelled, and no more units left available
// than were restocked.
func verifyStock(ctx context.Context, c *client, skus []string, stock int64, before skuTotals, t *tally) (Verify, error) {
	after, err := sumSKUs(ctx, c, skus)
	if err != nil {
		return Verify{}, err
	}
	total := stock * int64(len(skus))
	v := Verify{Stock: total, Successes: int64(t.checkouts), Cancelled: int64(t.cancels),
		Available: after.available, Reserved: after.reserved, Sold: after.sold}
	held := int64(t.checkouts) - int64(t.cancels)
	if held > total {
		v.Oversell = held - total
	}
	grew := (after.sold + after.reserved) - (before.sold + before.reserved)
	v.Consistent = grew == held && after.available >= 0 &&
		after.available+after.reserved+after.sold == before.available+before.reserved+before.sold
	if !v.Consistent {
		v.Detail = fmt.Sprintf("sold+reserved grew by %d, the client holds %d; units %d before, %d after",
			grew, held, before.available+before.reserved+before.sold, after.available+after.reserved+after.sold)
	}
	return v, nil
}
