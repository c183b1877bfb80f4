package chaos

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"sync"
	"time"
)

// SoakConfig shapes a chaos run.
type SoakConfig struct {
	Duration time.Duration // of the workload under faults
	Clients  int
	SKUs     int // S-0 is the hot one: half of all lines
	Seed     uint64
	// RequestTimeout bounds each request; past it the outcome is unknown.
	RequestTimeout time.Duration
	// FaultGapMax bounds the quiet time between two faults (at least a
	// quarter of it passes).
	FaultGapMax time.Duration
	// FillDir, when set, is the root of a small filesystem holding the
	// node's data directory; the run fills it once, holds it full a while,
	// then frees it.
	FillDir string
	Log     io.Writer // progress lines
	// MultiLinePercent of the checkouts have more than one line, up to
	// LinesMax lines, each on another SKU (0: 25 and 2).
	MultiLinePercent, LinesMax int
}

// Bounds of a soak's steps.
const (
	pauseMax       = 3 * time.Second         // SIGSTOP to SIGCONT
	fullHold       = 3 * time.Second         // the volume stays full this long
	retryBackoff   = 50 * time.Millisecond   // after a refused connection
	resolveTries   = 20                      // sends of one key while its outcome stays unknown, at the end
	shortTTL       = 2                       // seconds; a tenth of the orders expire during the run
	expiryGrace    = 1500 * time.Millisecond // API.md: expired within 1 s of expires_at
	fillChunkBytes = 1 << 20
)

// SoakReport is what a chaos run found.
type SoakReport struct {
	Took          time.Duration
	Requests      map[Outcome]int
	Faults        map[string]int
	Orders        int // checkouts answered 201
	Lost          []string
	Oversold      []string
	Violations    []string
	Problems      []string // answers outside the contract, unexpected exits
	WaitMax       time.Duration
	FillSkipped   string // why the volume was not filled, if it was not
	SKUs          map[string]View
	DiskFullCodes map[int]int // answers while the volume was full

	ledger string // see SaveLedger
}

// OK reports whether nothing was lost, oversold or broken. Other problems
// (answers outside the contract, a node that exited by itself) are
// reported but lose nothing.
func (r *SoakReport) OK() bool {
	return len(r.Lost) == 0 && len(r.Oversold) == 0 && len(r.Violations) == 0
}

func (r *SoakReport) String() string {
	total := 0
	for _, n := range r.Requests {
		total += n
	}
	faults := 0
	for _, n := range r.Faults {
		faults += n
	}
	var b []byte
	b = fmt.Appendf(b, "chaos run of %v\n", r.Took.Round(time.Second))
	b = fmt.Appendf(b, "  requests:            %d (done %d, refused %d, not sent %d, unknown outcome %d)\n", total,
		r.Requests[Done], r.Requests[Refused], r.Requests[NotSent], r.Requests[Unknown])
	b = fmt.Appendf(b, "  orders placed:       %d\n", r.Orders)
	b = fmt.Appendf(b, "  faults injected:     %d %v\n", faults, r.Faults)
	if r.FillSkipped != "" {
		b = fmt.Appendf(b, "  disk fill:           skipped: %s\n", r.FillSkipped)
	} else {
		b = fmt.Appendf(b, "  answers while full:  %v\n", r.DiskFullCodes)
	}
	b = fmt.Appendf(b, "  longest wait:        %v\n", r.WaitMax.Round(time.Millisecond))
	b = fmt.Appendf(b, "  acknowledged lost:   %d\n", len(r.Lost))
	b = fmt.Appendf(b, "  oversold SKUs:       %d\n", len(r.Oversold))
	b = fmt.Appendf(b, "  invariant breaches:  %d\n", len(r.Violations))
	b = fmt.Appendf(b, "  other problems:      %d\n", len(r.Problems))
	skus := make([]string, 0, len(r.SKUs))
	for s := range r.SKUs {
		skus = append(skus, s)
	}
	sort.Strings(skus)
	for _, s := range skus {
		b = fmt.Appendf(b, "  %-6s %+v\n", s, r.SKUs[s])
	}
	for _, list := range [][]string{r.Lost, r.Oversold, r.Violations, r.Problems} {
		for i, p := range list {
			if i == 20 {
				b = fmt.Appendf(b, "  ... and %d more\n", len(list)-i)
				break
			}
			b = fmt.Appendf(b, "  ! %s\n", p)
		}
	}
	return string(b)
}

// soak is one chaos run in progress.
type soak struct {
	cfg    SoakConfig
	node   *Node
	client *Client
	gate   *gate
	led    ledger
	skus   []string
	// route picks the client of each request: the node's, or in a
	// cluster one of its gateways.
	route func() *Client
	// observe, when set, sees every request the workload and the checks
	// send, with the client that sent it and when.
	observe func(c *Client, method, path string, start time.Time, a Answer)
	// hold is read-locked by each client around each operation, so that
	// whoever write-locks it has the workload stopped, nothing in flight.
	hold sync.RWMutex

	mu      sync.Mutex
	report  SoakReport
	filling bool // the volume is full now
}

// Soak runs cfg's workload against node (started) under faults, then
// reads everything back and checks it. The error is for a run that could
// not be carried out (the node would not start again); what the run found
// is in the report.
func Soak(ctx context.Context, node *Node, cfg SoakConfig) (*SoakReport, error) {
	client := NewClient(node.Base(), node.Token, cfg.RequestTimeout)
	s := newSoak(cfg, func() *Client { return client }, soakSKUs(cfg.SKUs))
	s.node, s.client = node, client
	began := time.Now()
	if err := s.restockAll(ctx, 100); err != nil {
		return &s.report, err
	}
	runCtx, stop := context.WithTimeout(ctx, cfg.Duration)
	defer stop()
	var wg sync.WaitGroup
	for c := range cfg.Clients {
		wg.Go(func() { s.runClient(runCtx, rand.New(rand.NewPCG(cfg.Seed, uint64(c)))) })
	}
	faultErr := s.injectFaults(runCtx, rand.New(rand.NewPCG(cfg.Seed, 1<<32)))
	wg.Wait()
	s.report.Took, s.report.WaitMax = time.Since(began), s.client.WaitMax()
	if faultErr != nil {
		return &s.report, faultErr
	}
	if err := s.finish(ctx); err != nil {
		return &s.report, err
	}
	s.report.Took = time.Since(began)
	s.report.WaitMax = s.client.WaitMax()
	return &s.report, nil
}

// soakSKUs names n SKUs S-0 .. S-(n-1).
func soakSKUs(n int) []string {
	skus := make([]string, n)
	for i := range skus {
		skus[i] = fmt.Sprintf("S-%d", i)
	}
	return skus
}

// newSoak prepares a workload over skus (the first is the hot one) whose
// requests go through route's clients.
func newSoak(cfg SoakConfig, route func() *Client, skus []string) *soak {
	if cfg.MultiLinePercent == 0 {
		cfg.MultiLinePercent = 25
	}
	if cfg.LinesMax < 2 {
		cfg.LinesMax = 2
	}
	s := &soak{cfg: cfg, gate: newGate(), route: route, skus: skus}
	s.report = SoakReport{Requests: map[Outcome]int{}, Faults: map[string]int{}, SKUs: map[string]View{}, DiskFullCodes: map[int]int{}}
	return s
}

// restockAll restocks every SKU with qty, keyed, before the workload.
func (s *soak) restockAll(ctx context.Context, qty int64) error {
	for _, sku := range s.skus {
		if a := s.restock(ctx, sku, qty); a.Outcome != Done {
			return fmt.Errorf("initial restock of %s: %d %v %v", sku, a.Status, a.Body, a.Err)
		}
	}
	return nil
}

func (s *soak) logf(format string, args ...any) {
	if s.cfg.Log != nil {
		fmt.Fprintf(s.cfg.Log, format+"\n", args...)
	}
}

func (s *soak) problem(list *[]string, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	*list = append(*list, fmt.Sprintf(format, args...))
}

// do sends a request and counts its outcome; after a refused connection it
// waits a little, so that clients do not spin while the node is down.
func (s *soak) do(ctx context.Context, method, path string, body any, admin bool, headers ...string) Answer {
	c := s.route()
	start := time.Now()
	a := c.Do(ctx, method, path, body, admin, headers...)
	if s.observe != nil {
		s.observe(c, method, path, start, a)
	}
	if ctx.Err() != nil && a.Err != nil {
		return a // the run ended under it: not the node's doing
	}
	s.mu.Lock()
	s.report.Requests[a.Outcome]++
	if s.filling {
		s.report.DiskFullCodes[a.Status]++
	}
	s.mu.Unlock()
	if a.Outcome == NotSent && a.Err != nil {
		t := time.NewTimer(retryBackoff)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
	return a
}

// get reads path through a routed client without counting it as load.
func (s *soak) get(ctx context.Context, path string) Answer {
	c := s.route()
	start := time.Now()
	a := c.Do(ctx, "GET", path, nil, false)
	if s.observe != nil {
		s.observe(c, "GET", path, start, a)
	}
	return a
}

// restock sends a keyed restock of qty and records it.
func (s *soak) restock(ctx context.Context, sku string, qty int64) Answer {
	return s.stockOp(ctx, &stockOp{sku: sku, qty: qty})
}

func (s *soak) stockOp(ctx context.Context, op *stockOp) Answer {
	s.led.addStock(op)
	return s.sendStock(ctx, op)
}

func (s *soak) sendStock(ctx context.Context, op *stockOp) Answer {
	verb := "restock"
	if op.remove {
		verb = "remove"
	}
	a := s.do(ctx, "POST", "/v1/skus/"+op.sku+"/"+verb, map[string]any{"quantity": op.qty}, true, "Idempotency-Key", op.key)
	s.led.mu.Lock()
	defer s.led.mu.Unlock()
	switch {
	case a.Outcome == Done, a.Outcome == Refused && op.remove && a.Slug() == "insufficient-stock":
		op.outcome = a.Outcome
	case a.Outcome == Refused:
		s.problem(&s.report.Problems, "%s %s %d: %d %v", verb, op.sku, op.qty, a.Status, a.Body)
		op.outcome = Refused
	default:
		op.outcome = Unknown
	}
	return a
}
