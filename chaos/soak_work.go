package chaos

import (
	"context"
	"math/rand/v2"
	"slices"
)

// runClient sends a mixed workload until ctx ends: checkouts (half of the
// lines on the hot SKU, some of two lines, a tenth with a short TTL), pays,
// cancels, reads of orders and SKUs, restocks and removes.
func (s *soak) runClient(ctx context.Context, rng *rand.Rand) {
	for ctx.Err() == nil {
		if s.gate.wait(ctx) != nil {
			return
		}
		s.hold.RLock()
		s.step(ctx, rng)
		s.hold.RUnlock()
	}
}

// step sends one request of the mix.
func (s *soak) step(ctx context.Context, rng *rand.Rand) {
	switch p := rng.IntN(100); {
	case p < 45:
		s.checkout(ctx, rng)
	case p < 60:
		s.move(ctx, rng.Int(), "pay")
	case p < 68:
		s.move(ctx, rng.Int(), "cancel")
	case p < 78:
		if o := s.led.pick(rng.Int()); o != nil {
			s.do(ctx, "GET", "/v1/orders/"+o.id, nil, false)
		}
	case p < 95:
		s.do(ctx, "GET", "/v1/skus/"+s.pickSKU(rng), nil, false)
	case p < 98:
		s.restock(ctx, s.pickSKU(rng), 5+rng.Int64N(20))
	default:
		s.stockOp(ctx, &stockOp{sku: s.pickSKU(rng), remove: true, qty: 1 + rng.Int64N(5)})
	}
}

// pickSKU chooses the hot SKU half the time.
func (s *soak) pickSKU(rng *rand.Rand) string {
	if rng.IntN(2) == 0 || len(s.skus) == 1 {
		return s.skus[0]
	}
	return s.skus[1+rng.IntN(len(s.skus)-1)]
}

func (s *soak) checkout(ctx context.Context, rng *rand.Rand) {
	o := &soakOrder{ttl: orderTTLSeconds, lines: []line{{SKU: s.pickSKU(rng), Qty: 1 + rng.Int64N(3)}}}
	if rng.IntN(10) == 0 {
		o.ttl = shortTTL
	}
	if rng.IntN(100) < s.cfg.MultiLinePercent {
		for n := 2 + rng.IntN(s.cfg.LinesMax-1); len(o.lines) < n; {
			other := s.pickSKU(rng)
			if slices.ContainsFunc(o.lines, func(l line) bool { return l.SKU == other }) {
				if len(o.lines) >= len(s.skus) || rng.IntN(4) == 0 {
					break // few SKUs, or unlucky: fewer lines
				}
				continue
			}
			o.lines = append(o.lines, line{SKU: other, Qty: 1 + rng.Int64N(2)})
		}
	}
	s.led.addOrder(o)
	s.sendCheckout(ctx, o)
}

func (s *soak) sendCheckout(ctx context.Context, o *soakOrder) Answer {
	a := s.do(ctx, "POST", "/v1/orders", map[string]any{"customer": o.customer, "items": o.lines, "ttl_seconds": o.ttl},
		false, "Idempotency-Key", o.key)
	if a.Outcome == Refused && a.Slug() != "out-of-stock" {
		s.problem(&s.report.Problems, "checkout %s: %d %v", o.key, a.Status, a.Body)
	}
	s.led.settle(o, a)
	return a
}

// move pays or cancels a placed order.
func (s *soak) move(ctx context.Context, pick int, verb string) {
	o := s.led.pick(pick)
	if o == nil {
		return
	}
	var body any
	to := "cancelled"
	if verb == "pay" {
		body, to = map[string]any{"payment_ref": o.ref}, "paid"
	}
	a := s.do(ctx, "POST", "/v1/orders/"+o.id+"/"+verb, body, false)
	if a.Outcome == Refused && (verb == "cancel" && a.Slug() != "invalid-transition" || verb == "pay" && a.Status != 409) {
		s.problem(&s.report.Problems, "%s %s: %d %v", verb, o.key, a.Status, a.Body)
	}
	s.led.moved(o, to, a)
}
