package main

import (
	"fmt"
	"math/rand"
	"sync"
)

// Workload names accepted by -workload.
const (
	workloadUniform = "uniform"
	workloadHot     = "hot"
	workloadZipf    = "zipf"
	workloadMixed   = "mixed"
)

// zipfExponent is the skew of the zipf workload (s in P(k) ∝ 1/(1+k)^s):
// 1.1 puts roughly a quarter of the traffic on the most popular SKU out of 10 000,
// a common stand-in for "a few best sellers".
const zipfExponent = 1.1

// mixedOrderPoolMax bounds how many reserved order IDs the mixed workload
// remembers for later pay and cancel requests.
const mixedOrderPoolMax = 4096

// opKind is what one request does.
type opKind int

const (
	opCheckout opKind = iota
	opPay
	opCancel
	opGetOrder
	opGetSKU
)

func (k opKind) String() string {
	return [...]string{"checkout", "pay", "cancel", "get_order", "get_sku"}[k]
}

// op is one request to send: a checkout of SKU, or an action on OrderID.
type op struct {
	Kind    opKind
	SKU     string
	OrderID string
}

// workload picks the next request. Next is safe for concurrent use as long as
// each caller passes its own *rand.Rand; the only shared state is the mixed
// workload's pool of reserved orders.
type workload struct {
	name   string
	skus   []string
	mu     sync.Mutex
	orders []string // ring of reserved order IDs (mixed only)
	next   int
}

// newWorkload builds a workload over `count` SKUs named prefix-00000…; hot
// always uses a single SKU.
func newWorkload(name, prefix string, count int) (*workload, error) {
	switch name {
	case workloadUniform, workloadZipf, workloadMixed:
	case workloadHot:
		count = 1
	default:
		return nil, fmt.Errorf("unknown workload %q (want uniform, hot, zipf or mixed)", name)
	}
	if count < 1 {
		return nil, fmt.Errorf("workload %s: need at least one SKU, got %d", name, count)
	}
	w := &workload{name: name, skus: make([]string, count)}
	for i := range w.skus {
		w.skus[i] = fmt.Sprintf("%s-%05d", prefix, i)
	}
	return w, nil
}

// picker returns a SKU chooser bound to r; zipf needs per-rand state.
func (w *workload) picker(r *rand.Rand) func() string {
	switch w.name {
	case workloadZipf:
		if len(w.skus) == 1 {
			return func() string { return w.skus[0] }
		}
		z := rand.NewZipf(r, zipfExponent, 1, uint64(len(w.skus)-1))
		return func() string { return w.skus[z.Uint64()] }
	default:
		return func() string { return w.skus[r.Intn(len(w.skus))] }
	}
}

// nextOp chooses the next request. Mixed traffic is 50 % checkout, 20 % pay,
// 10 % cancel, 10 % order reads and 10 % SKU reads; pay and cancel need a
// reserved order from an earlier checkout and fall back to a checkout when
// none is waiting.
func (w *workload) nextOp(r *rand.Rand, pick func() string) op {
	if w.name != workloadMixed {
		return op{Kind: opCheckout, SKU: pick()}
	}
	switch n := r.Intn(100); {
	case n < 50:
		return op{Kind: opCheckout, SKU: pick()}
	case n < 70:
		if id, ok := w.takeOrder(); ok {
			return op{Kind: opPay, OrderID: id}
		}
	case n < 80:
		if id, ok := w.takeOrder(); ok {
			return op{Kind: opCancel, OrderID: id}
		}
	case n < 90:
		if id, ok := w.peekOrder(r); ok {
			return op{Kind: opGetOrder, OrderID: id}
		}
	default:
		return op{Kind: opGetSKU, SKU: pick()}
	}
	return op{Kind: opCheckout, SKU: pick()}
}

// addOrder remembers a reserved order (mixed only); the oldest is forgotten
// once the pool is full.
func (w *workload) addOrder(id string) {
	if w.name != workloadMixed || id == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.orders) < mixedOrderPoolMax {
		w.orders = append(w.orders, id)
		return
	}
	w.orders[w.next] = id
	w.next = (w.next + 1) % mixedOrderPoolMax
}

// takeOrder removes the most recent reserved order, so each is paid or
// cancelled at most once.
func (w *workload) takeOrder() (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.orders) == 0 {
		return "", false
	}
	id := w.orders[len(w.orders)-1]
	w.orders = w.orders[:len(w.orders)-1]
	if w.next > len(w.orders) {
		w.next = 0
	}
	return id, true
}

func (w *workload) peekOrder(r *rand.Rand) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.orders) == 0 {
		return "", false
	}
	return w.orders[r.Intn(len(w.orders))], true
}
