package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// LinearConfig shapes one recorded history.
type LinearConfig struct {
	Ops     int // operations to invoke (retries of unknown checkouts count)
	Clients int // concurrent clients
	SKUs    int
	Kills   int // SIGKILL and restart the node this many times, evenly spread
	Seed    uint64
	// RequestTimeout bounds each request; a request past it has an unknown
	// outcome.
	RequestTimeout time.Duration
	// Strict checks read-your-writes of pay and cancel on the SKU: the
	// stock moves when the status does (see model.go).
	Strict bool
	// Think is the mean of the random pause (0 to twice Think) a client
	// takes between two operations; it spreads a history over the faults
	// of a cluster run. Backoff is what a client waits after a request of
	// unknown outcome (a 503 names a partition that is down or moving,
	// and says to retry in a second), before its next operation or its
	// checkout's next try, doubled for each further one in a row up to
	// backoffDoublingsMax times: every operation of unknown outcome stays
	// open to the end of the history, and Porcupine's search grows
	// exponentially with those of one SKU. Both are 0 on one node, whose
	// clients wait at the gate while it is down instead.
	Think, Backoff time.Duration
}

// backoffDoublingsMax bounds the doubling of LinearConfig.Backoff.
const backoffDoublingsMax = 3

// backoff is the wait after the n-th request of unknown outcome in a row
// (from 1).
func (c LinearConfig) backoff(n int) time.Duration {
	return c.Backoff << min(n-1, backoffDoublingsMax)
}

// checkoutTriesMax bounds how often a checkout of unknown outcome is sent
// again with its key before the client moves on.
const checkoutTriesMax = 5

// orderTTLSeconds outlives any history, so no order expires in one (the
// model has no expiry).
const orderTTLSeconds = 3600

// placed is an order whose checkout answered 201.
type placed struct {
	num int
	id  string
	sku string
	qty int64
}

// linearRun records one history through route.
type linearRun struct {
	cfg   LinearConfig
	node  *Node          // one node's run: the node it kills and restarts
	route func() *Client // the client (and so the gateway) of the next request
	// admit is called before operation i (from 1) is invoked and may hold
	// it back: it kills and restarts one node, and waits at the gate.
	admit func(ctx context.Context, i int) error
	// keys prefixes the Idempotency-Keys, so that histories can share a
	// cluster.
	keys string
	rec  *Recorder
	gate *gate
	skus []string

	next      atomic.Int64 // operations invoked
	orderNums atomic.Int64
	mu        sync.Mutex
	orders    []placed
	kills     int
	problems  []string // answers the contract does not allow
}

// RecordHistory runs cfg's workload against node (started, and restarted by
// the run when cfg.Kills > 0) and returns the recorded history. It fails
// on answers outside the contract (a 422 for a valid request, say) and when
// the node cannot be restarted.
func RecordHistory(ctx context.Context, node *Node, cfg LinearConfig) (*Recorder, error) {
	if cfg.Ops <= cfg.Kills || cfg.Clients < 1 || cfg.SKUs < 1 {
		return nil, fmt.Errorf("history of %d operations, %d kills, %d clients, %d SKUs: want more operations than kills and a client and a SKU at least",
			cfg.Ops, cfg.Kills, cfg.Clients, cfg.SKUs)
	}
	client := NewClient(node.Base(), node.Token, cfg.RequestTimeout)
	r := &linearRun{cfg: cfg, node: node, route: func() *Client { return client },
		rec: NewRecorder(), gate: newGate()}
	r.admit = r.killOrWait
	for i := range cfg.SKUs {
		r.skus = append(r.skus, fmt.Sprintf("L-%d", i))
	}
	if err := r.restockAll(ctx); err != nil {
		return r.rec, err
	}
	if err := r.runClients(ctx); err != nil {
		return r.rec, err
	}
	if err := r.settledReads(ctx, client); err != nil {
		return r.rec, err
	}
	client.ForgetConnections()
	return r.rec, r.contractErr()
}

// restockAll restocks every SKU before the clients start, as the first
// operations of the history.
func (r *linearRun) restockAll(ctx context.Context) error {
	setup := r.rec.ClientID()
	for _, sku := range r.skus {
		if err := r.restock(ctx, setup, sku, 10); err != nil {
			return err
		}
	}
	return nil
}

// runClients runs cfg.Clients clients until the history has its
// operations.
func (r *linearRun) runClients(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, r.cfg.Clients)
	for c := range r.cfg.Clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(r.cfg.Seed, uint64(c)))
			errs[c] = r.runClient(ctx, rng)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// contractErr reports the answers outside the contract, if any.
func (r *linearRun) contractErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.problems) > 0 {
		return fmt.Errorf("%d answers outside the contract, the first: %s", len(r.problems), r.problems[0])
	}
	return nil
}

// runClient invokes operations until the run's count is reached.
func (r *linearRun) runClient(ctx context.Context, rng *rand.Rand) error {
	id := r.rec.ClientID()
	unknowns := 0 // in a row
	for {
		i := int(r.next.Add(1))
		if i > r.cfg.Ops {
			return nil
		}
		if err := r.admit(ctx, i); err != nil {
			return err
		}
		sku := r.skus[rng.IntN(len(r.skus))]
		var last Outcome
		switch p := rng.IntN(100); {
		case p < 40:
			last = r.checkout(ctx, &id, sku, 1+rng.Int64N(3))
		case p < 55:
			last = r.payOrCancel(ctx, &id, rng, OpPay)
		case p < 65:
			last = r.payOrCancel(ctx, &id, rng, OpCancel)
		case p < 85:
			last = r.read(ctx, &id, sku)
		case p < 95:
			last = r.stock(ctx, &id, OpRestock, sku, 1+rng.Int64N(5))
		default:
			last = r.stock(ctx, &id, OpRemove, sku, 1+rng.Int64N(3))
		}
		if last == Unknown {
			unknowns++
			sleep(ctx, r.cfg.backoff(unknowns))
		} else if last != NotSent {
			unknowns = 0
		}
		if r.cfg.Think > 0 {
			sleep(ctx, time.Duration(rng.Int64N(2*int64(r.cfg.Think))))
		}
	}
}

// killOrWait is one node's admit: the operations at even intervals kill
// and restart the node (cfg.Kills times), and every operation waits while
// it is down.
func (r *linearRun) killOrWait(ctx context.Context, i int) error {
	if r.cfg.Kills > 0 && i%(r.cfg.Ops/(r.cfg.Kills+1)) == 0 && r.kill() {
		if err := r.restart(ctx); err != nil {
			return err
		}
	}
	return r.gate.wait(ctx)
}

// kill reports whether this call is one of the run's kills (at most
// cfg.Kills happen).
func (r *linearRun) kill() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.kills >= r.cfg.Kills {
		return false
	}
	r.kills++
	return true
}

// restart SIGKILLs the node while the other clients' requests are in
// flight and starts it again; clients wait at the gate meanwhile.
func (r *linearRun) restart(ctx context.Context) error {
	r.gate.shut()
	defer r.gate.release()
	if err := r.node.Kill(); err != nil {
		return err
	}
	r.route().ForgetConnections()
	return r.node.Start(ctx)
}

func (r *linearRun) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

func viewOf(a Answer) View {
	return View{Available: a.Int("available"), Reserved: a.Int("reserved"), Sold: a.Int("sold")}
}

// restock is the setup's restock, which must succeed.
func (r *linearRun) restock(ctx context.Context, id int, sku string, qty int64) error {
	in := Input{Kind: OpRestock, SKU: sku, Qty: qty}
	call := r.rec.Now()
	a := r.route().Do(ctx, "POST", "/v1/skus/"+sku+"/restock", map[string]any{"quantity": qty}, true)
	if a.Outcome != Done {
		return fmt.Errorf("initial restock of %s: %d %v %v", sku, a.Status, a.Body, a.Err)
	}
	r.rec.Add(id, in, call, Output{Outcome: Done, View: viewOf(a)})
	return nil
}

// add records an operation of the client *id, which takes a new identity
// when the operation stays open, and returns its outcome.
func (r *linearRun) add(id *int, in Input, call int64, out Output) Outcome {
	if r.rec.Add(*id, in, call, out) {
		*id = r.rec.ClientID()
	}
	return out.Outcome
}

// The operations below record themselves in the history as the client
// *id and return their (last) request's outcome.

func (r *linearRun) stock(ctx context.Context, id *int, kind OpKind, sku string, qty int64) Outcome {
	in := Input{Kind: kind, SKU: sku, Qty: qty}
	call := r.rec.Now()
	a := r.route().Do(ctx, "POST", "/v1/skus/"+sku+"/"+kind.String(), map[string]any{"quantity": qty}, true)
	out := Output{Outcome: a.Outcome, View: viewOf(a), Available: a.Int("available")}
	if a.Outcome == Refused && (kind == OpRestock || a.Slug() != "insufficient-stock") {
		r.problem("%s %s %d: %d %v", kind, sku, qty, a.Status, a.Body)
		return a.Outcome
	}
	return r.add(id, in, call, out)
}

func (r *linearRun) read(ctx context.Context, id *int, sku string) Outcome {
	call := r.rec.Now()
	a := r.route().Do(ctx, "GET", "/v1/skus/"+sku, nil, false)
	out := Output{Outcome: a.Outcome, Found: a.Status == 200, View: viewOf(a)}
	if a.Outcome == Refused && a.Status != 404 {
		r.problem("read %s: %d %v", sku, a.Status, a.Body)
		return a.Outcome
	}
	return r.add(id, Input{Kind: OpRead, SKU: sku}, call, out)
}

// checkout places a one-line order with an Idempotency-Key. While its
// outcome is unknown it is sent again with the same key (each try is an
// operation of the history), so that the order's fate becomes known and
// the replay is checked too. id is replaced when an operation stays open.
func (r *linearRun) checkout(ctx context.Context, id *int, sku string, qty int64) Outcome {
	num := int(r.orderNums.Add(1))
	in := Input{Kind: OpCheckout, SKU: sku, Order: num, Qty: qty}
	body := map[string]any{"customer": fmt.Sprint("c-", num), "ttl_seconds": orderTTLSeconds,
		"items": []map[string]any{{"sku": sku, "quantity": qty}}}
	last := Unknown
	for try := range checkoutTriesMax {
		if try > 0 && last == Unknown {
			sleep(ctx, r.cfg.backoff(try))
		}
		if r.gate.wait(ctx) != nil {
			return last
		}
		call := r.rec.Now()
		a := r.route().Do(ctx, "POST", "/v1/orders", body, false, "Idempotency-Key", fmt.Sprint(r.keys, "k-", num))
		if a.Outcome == Refused && a.Slug() != "out-of-stock" {
			r.problem("checkout %d of %s: %d %v", num, sku, a.Status, a.Body)
			return a.Outcome
		}
		last = r.add(id, in, call, Output{Outcome: a.Outcome, Available: a.Int("available")})
		switch a.Outcome {
		case Done:
			r.mu.Lock()
			r.orders = append(r.orders, placed{num: num, id: a.Str("id"), sku: sku, qty: qty})
			r.mu.Unlock()
			return last
		case Refused:
			return last
		}
	}
	return last
}

// payOrCancel pays or cancels a random order placed so far.
func (r *linearRun) payOrCancel(ctx context.Context, id *int, rng *rand.Rand, kind OpKind) Outcome {
	r.mu.Lock()
	if len(r.orders) == 0 {
		r.mu.Unlock()
		return NotSent
	}
	o := r.orders[rng.IntN(len(r.orders))]
	r.mu.Unlock()
	in := Input{Kind: kind, SKU: o.sku, Order: o.num, Qty: o.qty}
	var body any
	if kind == OpPay {
		body = map[string]any{"payment_ref": fmt.Sprint("pay-", o.num)}
	}
	call := r.rec.Now()
	a := r.route().Do(ctx, "POST", "/v1/orders/"+o.id+"/"+kind.String(), body, false)
	if a.Outcome == Refused && (kind == OpCancel || a.Slug() != "invalid-transition") {
		r.problem("%s order %d: %d %v", kind, o.num, a.Status, a.Body)
		return a.Outcome
	}
	// Read-your-writes holds once the call has answered: a pay or cancel
	// cut by a fault may have moved the status while the stock moves when
	// its saga recovers, so it is checked as the lenient model does.
	in.Strict = r.cfg.Strict && a.Outcome != Unknown
	return r.add(id, in, call, Output{Outcome: a.Outcome})
}

// settledReads waits until no SKU view read through c changes for
// quietFor, then records the last read of each as the history's last
// operations.
func (r *linearRun) settledReads(ctx context.Context, c *Client) error {
	reads, calls, err := quietReads(ctx, c, r.skus, r.rec.Now)
	if err != nil {
		return fmt.Errorf("settled reads: %w", err)
	}
	id := r.rec.ClientID()
	for i, sku := range r.skus {
		r.rec.AddAt(id, Input{Kind: OpSettledRead, SKU: sku}, calls[i], reads[i].Took,
			Output{Outcome: Done, Found: true, View: viewOf(reads[i])})
	}
	return nil
}
