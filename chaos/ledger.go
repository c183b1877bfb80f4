package chaos

import (
	"fmt"
	"sync"
	"time"
)

// The soak's ledger: what the clients were told, which is what the node
// must still show at the end.

// stockOp is a keyed restock or remove.
type stockOp struct {
	sku     string
	remove  bool
	key     string
	qty     int64
	outcome Outcome // Done, Refused (remove: insufficient), or Unknown until resolved
}

// line is one line of an order.
type line struct {
	SKU string `json:"sku"`
	Qty int64  `json:"quantity"`
}

// soakOrder is a keyed checkout and what was acknowledged of it.
type soakOrder struct {
	num       int
	customer  string
	key       string
	lines     []line
	ttl       int64
	expiresAt time.Time // by the client's clock, an upper bound once placed
	outcome   Outcome   // of the checkout: Done (201), Refused (409), Unknown
	id        string
	// status is the latest status in the flow that a 2xx answer gave;
	// maybe holds statuses that requests of unknown outcome may have led
	// to (at any time, since such a request may still be in the node).
	status string
	maybe  map[string]bool
	ref    string // payment_ref
}

// allowed reports whether status is a final status the order may show:
// the acknowledged one, one an unknown request may have made, or expired
// for an order left reserved past its TTL.
func (o *soakOrder) allowed(status string) bool {
	if status == o.status || o.maybe[status] {
		return true
	}
	return status == "expired" && (o.status == "reserved" || o.maybe["reserved"])
}

// statusRank orders the statuses the soak can reach along the flow.
var statusRank = map[string]int{"reserved": 1, "paid": 2, "expired": 3, "cancelled": 3}

// ledger is shared by the soak's clients.
type ledger struct {
	mu     sync.Mutex
	stock  []*stockOp
	orders []*soakOrder
	placed []*soakOrder // orders with a 201, for pays, cancels and reads
}

func (l *ledger) addStock(op *stockOp) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stock = append(l.stock, op)
	op.key = fmt.Sprint("st-", len(l.stock))
}

func (l *ledger) addOrder(o *soakOrder) {
	l.mu.Lock()
	defer l.mu.Unlock()
	o.num = len(l.orders) + 1
	o.customer, o.key, o.ref = fmt.Sprint("c-", o.num), fmt.Sprint("k-", o.num), fmt.Sprint("pay-", o.num)
	l.orders = append(l.orders, o)
}

// settle records the answer to o's checkout.
func (l *ledger) settle(o *soakOrder, a Answer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	o.outcome = a.Outcome
	if a.Outcome == Done && o.id == "" {
		o.id, o.status = a.Str("id"), a.Str("status") // "reserved", unless a replay of an older order
		o.expiresAt = time.Now().Add(time.Duration(o.ttl) * time.Second)
		l.placed = append(l.placed, o)
	}
}

// pick returns a placed order chosen by i, or nil.
func (l *ledger) pick(i int) *soakOrder {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.placed) == 0 {
		return nil
	}
	return l.placed[i%len(l.placed)]
}

// moved records the answer to a request that moves o to status.
func (l *ledger) moved(o *soakOrder, status string, a Answer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch a.Outcome {
	case Done:
		// Answers to racing requests on one order arrive in any order;
		// the later status in the flow is the one that stands.
		if st := a.Str("status"); statusRank[st] > statusRank[o.status] {
			o.status = st
		}
	case Unknown:
		if o.maybe == nil {
			o.maybe = map[string]bool{}
		}
		o.maybe[status] = true
	}
}
