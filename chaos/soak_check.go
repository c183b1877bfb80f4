package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// finish settles every request of unknown outcome by sending it again
// with its key, kills and restarts the node once more, waits for the short
// orders to expire and the node to go quiet, then reads every order and
// SKU back and checks them against the ledger.
func (s *soak) finish(ctx context.Context) error {
	s.resolve(ctx)
	s.logf("final SIGKILL and restart before reading back")
	if err := s.restart(ctx, true); err != nil {
		return err
	}
	s.count("sigkill")
	return s.verify(ctx)
}

// verify waits for the short orders to expire and the node to go quiet,
// then reads every order and SKU back and checks them against the ledger.
// The workload must be stopped.
func (s *soak) verify(ctx context.Context) error {
	s.report.Orders = 0
	var lastExpiry time.Time
	for _, o := range s.led.orders {
		if o.ttl == shortTTL && o.expiresAt.After(lastExpiry) {
			lastExpiry = o.expiresAt
		}
	}
	if wait := time.Until(lastExpiry.Add(expiryGrace)); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	views, err := s.quietViews(ctx)
	if err != nil {
		return err
	}
	held, final := s.checkOrders(ctx)
	s.checkSKUs(views, held)
	s.report.ledger = s.describe(final)
	return nil
}

// resolve sends every keyed request whose outcome is unknown again until
// it has one.
func (s *soak) resolve(ctx context.Context) {
	for _, op := range s.led.stock {
		for i := 0; i < resolveTries && op.outcome == Unknown; i++ {
			s.sendStock(ctx, op)
		}
		if op.outcome == Unknown {
			s.problem(&s.report.Problems, "stock operation %s still of unknown outcome after %d tries", op.key, resolveTries)
		}
	}
	for _, o := range s.led.orders {
		for i := 0; i < resolveTries && o.outcome == Unknown; i++ {
			s.sendCheckout(ctx, o)
		}
		if o.outcome == Unknown {
			s.problem(&s.report.Problems, "checkout %s still of unknown outcome after %d tries", o.key, resolveTries)
		}
	}
}

// quietViews reads every SKU once the node is quiet.
func (s *soak) quietViews(ctx context.Context) (map[string]View, error) {
	reads, _, err := quietReads(ctx, s.route(), s.skus, func() int64 { return 0 })
	if err != nil {
		return nil, fmt.Errorf("reading back: %w", err)
	}
	views := map[string]View{}
	for i, sku := range s.skus {
		views[sku] = viewOf(reads[i])
	}
	return views, nil
}

// checkOrders reads every order that was placed and returns, per SKU, the
// units its orders hold in reserved and in sold.
func (s *soak) checkOrders(ctx context.Context) (held map[string]View, final map[string]string) {
	held, final = map[string]View{}, map[string]string{}
	for _, o := range s.led.orders {
		if o.outcome != Done {
			continue
		}
		s.report.Orders++
		a := s.get(ctx, "/v1/orders/"+o.id)
		st := a.Str("status")
		final[o.id] = st
		switch {
		case a.Status == 404:
			s.problem(&s.report.Lost, "order %s (%s, acknowledged %s) is gone", o.id, o.key, o.status)
			continue
		case a.Outcome != Done:
			s.problem(&s.report.Problems, "reading order %s: %d %v %v", o.id, a.Status, a.Body, a.Err)
			continue
		case !o.allowed(st):
			s.problem(&s.report.Lost, "order %s (%s) reads %s; acknowledged %s, maybe %v", o.id, o.key, st, o.status, o.maybe)
		}
		for _, l := range o.lines {
			v := held[l.SKU]
			switch st {
			case "reserved":
				v.Reserved += l.Qty
			case "paid", "shipped", "completed":
				v.Sold += l.Qty
			}
			held[l.SKU] = v
		}
	}
	return held, final
}

// checkSKUs checks each SKU's view: no oversell, stock conserved, and the
// units in reserved and sold those of its orders.
func (s *soak) checkSKUs(views, held map[string]View) {
	stock := map[string]int64{}
	for _, op := range s.led.stock {
		switch {
		case op.outcome != Done:
		case op.remove:
			stock[op.sku] -= op.qty
		default:
			stock[op.sku] += op.qty
		}
	}
	for _, sku := range s.skus {
		v, want := views[sku], stock[sku]
		s.report.SKUs[sku] = v
		if v.Available < 0 || v.Reserved+v.Sold > want {
			s.problem(&s.report.Oversold, "%s: %+v with %d restocked less removed", sku, v, want)
		}
		if v.Available+v.Reserved+v.Sold != want {
			s.problem(&s.report.Violations, "%s: available+reserved+sold = %d, restocked less removed = %d (%+v)",
				sku, v.Available+v.Reserved+v.Sold, want, v)
		}
		if h := held[sku]; v.Reserved != h.Reserved || v.Sold != h.Sold {
			s.problem(&s.report.Violations, "%s: reserved %d sold %d, its orders hold reserved %d sold %d",
				sku, v.Reserved, v.Sold, h.Reserved, h.Sold)
		}
	}
}

// SaveLedger writes every order and stock operation the run sent, with
// what was acknowledged and what the order read back as, into a new file
// under dir (os.TempDir when empty) that outlives the run, for whoever
// debugs a failed one. It returns the file's path.
func (r *SoakReport) SaveLedger(dir string) (string, error) {
	f, err := os.CreateTemp(dir, "orderengine-chaos-ledger-*.txt")
	if err != nil {
		return "", err
	}
	_, werr := f.WriteString(r.ledger)
	return f.Name(), errors.Join(werr, f.Close())
}

// describe lists the ledger, one line per request sent.
func (s *soak) describe(final map[string]string) string {
	var b strings.Builder
	for _, op := range s.led.stock {
		fmt.Fprintf(&b, "stock %s %s remove=%v qty %d: %s\n", op.key, op.sku, op.remove, op.qty, op.outcome)
	}
	for _, o := range s.led.orders {
		fmt.Fprintf(&b, "order %s %s ttl %d lines %v: checkout %s, acknowledged %q maybe %v, reads %q\n",
			o.key, o.id, o.ttl, o.lines, o.outcome, o.status, o.maybe, final[o.id])
	}
	return b.String()
}
