package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
)

// The soak's workload and checks on a cluster: each request goes through
// the gateway of a node chosen at random among those up, every request is
// recorded (gateway, target partition, time, answer), and at each
// checkpoint the workload is stopped, requests of unknown outcome are sent
// again with their keys, and every order and SKU is read back and checked
// as the soak checks them, along with the serve logs.

// Bounds of a cluster run.
const (
	requestRecordsMax = 1 << 21                // requests recorded; more are counted only
	probeEvery        = 5 * time.Millisecond   // between two probes of a dead node's partition
	probeWaitMax      = 30 * time.Second       // until a dead node's partition answers 503
	probeTimeout      = 2 * time.Second        // one probe
	slowAnswer        = 500 * time.Millisecond // a dead partition's 503 slower than this is reported
)

// requestRecord is one request as a cluster run's client saw it.
type requestRecord struct {
	gateway string
	method  string
	path    string
	part    int // the partition of the identity the path names; -1 for a checkout
	start   time.Time
	took    time.Duration
	status  int
	slug    string
	outcome Outcome
	timeout bool // the client gave up waiting
}

func (r requestRecord) end() time.Time { return r.start.Add(r.took) }

// targetPartition is the partition of the SKU or order a path names, or -1.
func targetPartition(path string, partitions int) int {
	rest, ok := strings.CutPrefix(path, "/v1/skus/")
	kind := "sku"
	if !ok {
		if rest, ok = strings.CutPrefix(path, "/v1/orders/"); !ok {
			return -1
		}
		kind = "order"
	}
	id, _, _ := strings.Cut(rest, "/")
	if id == "" {
		return -1
	}
	return PartitionOf(kind, id, partitions)
}

// downWindow is a time a node was down (killed, or paused) while holding
// parts: requests for them through other gateways that begin and end in
// it must answer 503 unavailable (or 429), never serve.
type downWindow struct {
	node     string
	why      string
	parts    []int
	from, to time.Time
	first    time.Duration // from the SIGKILL to a probe's first 503; 0 if not probed
}

// DownReport is what the requests for a down node's partitions got.
type DownReport struct {
	Node, Why   string
	Down        time.Duration
	Requests    int           // through other gateways, within the window
	Unavailable int           // answered 503 unavailable
	Other       int           // 429, or no answer (the client's timeout)
	Wrong       int           // served (2xx) or refused (4xx): never allowed
	SlowestWait time.Duration // of the answered ones
	// FirstUnavailable is how long after the SIGKILL a probe through
	// another gateway first got a 503 (0 when not probed).
	FirstUnavailable time.Duration
}

func (d DownReport) String() string {
	s := fmt.Sprintf("%s %s for %v: %d requests for its partitions through other gateways, %d answered 503, %d other (429 or client timeout), %d wrong; slowest answer %v",
		d.Node, d.Why, d.Down.Round(time.Millisecond), d.Requests, d.Unavailable, d.Other, d.Wrong, d.SlowestWait.Round(time.Millisecond))
	if d.FirstUnavailable > 0 {
		s += fmt.Sprintf("; first 503 %v after the SIGKILL", d.FirstUnavailable.Round(time.Millisecond))
	}
	return s
}

// StepReport is what a checkpoint found.
type StepReport struct {
	Step       string
	Took       time.Duration
	Requests   map[Outcome]int // since the previous checkpoint
	Orders     int             // checkouts answered 201 so far
	CrossNode  int             // of them, with lines on partitions of different holders (as of the checkpoint's table)
	Lost       []string
	Oversold   []string
	Violations []string
	Problems   []string // answers outside the contract, hangs
	Serving    []string // breaches of the overlap check
	Down       []DownReport
	Handoffs   []Handoff // since the previous checkpoint
	WaitMax    time.Duration
}

// OK reports whether the step lost, oversold, broke or overlapped nothing
// and no request for a down node's partition was served.
func (r *StepReport) OK() bool {
	wrong := 0
	for _, d := range r.Down {
		wrong += d.Wrong
	}
	return len(r.Lost)+len(r.Oversold)+len(r.Violations)+len(r.Serving)+wrong == 0
}

func (r *StepReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "step %q (%v): requests done %d, refused %d, not sent %d, unknown %d; %d orders placed so far, %d across holders; longest wait through a gateway that was up %v\n",
		r.Step, r.Took.Round(time.Millisecond), r.Requests[Done], r.Requests[Refused], r.Requests[NotSent], r.Requests[Unknown],
		r.Orders, r.CrossNode, r.WaitMax.Round(time.Millisecond))
	for _, d := range r.Down {
		fmt.Fprintf(&b, "  down: %s\n", d)
	}
	if len(r.Handoffs) > 0 {
		took := make([]time.Duration, len(r.Handoffs))
		for i, h := range r.Handoffs {
			took[i] = h.Took()
		}
		slices.Sort(took)
		fmt.Fprintf(&b, "  handoffs: %d, unserved for median %v, max %v\n", len(took), took[len(took)/2].Round(time.Microsecond), took[len(took)-1].Round(time.Microsecond))
	}
	fmt.Fprintf(&b, "  lost %d, oversold %d, invariant breaches %d, serving overlaps %d, other problems %d\n",
		len(r.Lost), len(r.Oversold), len(r.Violations), len(r.Serving), len(r.Problems))
	for _, list := range [][]string{r.Lost, r.Oversold, r.Violations, r.Serving, r.Problems} {
		for i, p := range list {
			if i == 20 {
				fmt.Fprintf(&b, "  ... and %d more\n", len(list)-i)
				break
			}
			fmt.Fprintf(&b, "  ! %s\n", p)
		}
	}
	return b.String()
}

// ClusterRun is the soak's workload running against a Cluster.
type ClusterRun struct {
	c     *Cluster
	s     *soak
	parts int

	mu       sync.Mutex
	reqs     []requestRecord
	dropped  int
	windows  []downWindow
	problems []string

	// Where the previous checkpoint left off.
	lastAt    time.Time
	lastReqs  int
	lastWin   int
	lastCount map[Outcome]int
	lastLists [4]int

	stop func()
	wg   sync.WaitGroup
}

// NewClusterRun prepares cfg's workload (Clients, Seed, RequestTimeout,
// MultiLinePercent, LinesMax, Log) over skus, the first one hot.
func NewClusterRun(c *Cluster, cfg SoakConfig, skus []string) *ClusterRun {
	r := &ClusterRun{c: c, parts: c.Partitions(), lastCount: map[Outcome]int{}}
	r.s = newSoak(cfg, r.route, skus)
	r.s.observe = r.observe
	return r
}

// DistinctSKUs names n SKUs prefix-0, prefix-1, ... each on a partition of
// its own, skipping names that share one.
func DistinctSKUs(prefix string, n, partitions int) []string {
	var skus []string
	used := map[int]bool{}
	for i := 0; len(skus) < n && len(skus) < partitions; i++ {
		name := fmt.Sprintf("%s-%d", prefix, i)
		if p := PartitionOf("sku", name, partitions); !used[p] {
			used[p] = true
			skus = append(skus, name)
		}
	}
	return skus
}

// SKUHeldBy names a SKU prefix-i whose partition holders gives to node,
// or "" when node holds none.
func SKUHeldBy(prefix, node string, holders map[int]string) string {
	for i := range 1 << 16 {
		name := fmt.Sprintf("%s-%d", prefix, i)
		if holders[PartitionOf("sku", name, len(holders))] == node {
			return name
		}
	}
	return ""
}

// route picks a random gateway among the nodes up.
func (r *ClusterRun) route() *Client {
	up := r.c.Up()
	if len(up) == 0 {
		return r.c.Members()[0].Client // nothing up: the request fails and says so
	}
	return up[rand.IntN(len(up))].Client
}

func (r *ClusterRun) gatewayOf(c *Client) string {
	for _, m := range r.c.Members() {
		if m.Client == c {
			return m.Name
		}
	}
	return "?"
}

func (r *ClusterRun) observe(c *Client, method, path string, start time.Time, a Answer) {
	var ne net.Error
	rec := requestRecord{gateway: r.gatewayOf(c), method: method, path: path, part: targetPartition(path, r.parts),
		start: start, took: a.Took, status: a.Status, slug: a.Slug(), outcome: a.Outcome,
		timeout: a.Err != nil && errors.As(a.Err, &ne) && ne.Timeout()}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqs) < requestRecordsMax {
		r.reqs = append(r.reqs, rec)
	} else {
		r.dropped++
	}
}

// Start restocks every SKU and runs the clients until Stop.
func (r *ClusterRun) Start(ctx context.Context) error {
	r.lastAt = time.Now()
	if err := r.s.restockAll(ctx, 1000); err != nil {
		return err
	}
	ctx, r.stop = context.WithCancel(ctx)
	for i := range r.s.cfg.Clients {
		r.wg.Go(func() { r.s.runClient(ctx, rand.New(rand.NewPCG(r.s.cfg.Seed, uint64(i)))) })
	}
	return nil
}

// Stop ends the workload and waits for its clients.
func (r *ClusterRun) Stop() {
	if r.stop != nil {
		r.stop()
	}
	r.wg.Wait()
}

// Kill SIGKILLs m while the workload runs, measures how soon a probe
// through another gateway gets 503 for one of m's partitions, keeps it down
// for down, and starts it again. The window of its partitions (as held
// in held) is checked at the next checkpoint.
func (r *ClusterRun) Kill(ctx context.Context, m *Member, held ClusterView, down time.Duration) error {
	parts := held.HeldBy(m.Name)
	sent := time.Now()
	exited, err := r.c.Kill(m)
	if err != nil {
		return err
	}
	w := downWindow{node: m.Name, why: "killed", parts: parts, from: exited}
	var perr error
	if w.first, perr = r.probe(ctx, m, parts, sent); perr != nil {
		r.problem("probe of %s's partitions: %v", m.Name, perr)
	}
	sleep(ctx, time.Until(exited.Add(down)))
	w.to = time.Now()
	r.mu.Lock()
	r.windows = append(r.windows, w)
	r.mu.Unlock()
	return r.c.Restart(ctx, m)
}

// Pause SIGSTOPs m for d while the workload runs, then SIGCONTs it.
func (r *ClusterRun) Pause(ctx context.Context, m *Member, held ClusterView, d time.Duration) error {
	parts := held.HeldBy(m.Name)
	if err := r.c.Pause(m); err != nil {
		return err
	}
	w := downWindow{node: m.Name, why: "paused", parts: parts, from: time.Now()}
	sleep(ctx, d)
	w.to = time.Now()
	r.mu.Lock()
	r.windows = append(r.windows, w)
	r.mu.Unlock()
	return r.c.Resume(m)
}

// probe reads a SKU on one of parts through another gateway until it
// answers 503, and returns how long after since that was.
func (r *ClusterRun) probe(ctx context.Context, dead *Member, parts []int, since time.Time) (time.Duration, error) {
	if len(parts) == 0 {
		return 0, errors.New("it held no partition")
	}
	sku := ""
	for i := 0; sku == ""; i++ {
		if name := fmt.Sprint("probe-", i); slices.Contains(parts, PartitionOf("sku", name, r.parts)) {
			sku = name
		}
	}
	var via *Member
	for _, m := range r.c.Up() {
		if m != dead {
			via = m
			break
		}
	}
	if via == nil {
		return 0, errors.New("no other node is up")
	}
	c := NewClient(via.Base(), "", probeTimeout)
	defer c.ForgetConnections()
	ctx, cancel := context.WithTimeout(ctx, probeWaitMax)
	defer cancel()
	for {
		a := c.Do(ctx, "GET", "/v1/skus/"+sku, nil, false)
		switch {
		case a.Status == 503:
			return time.Since(since), nil
		case a.Status != 0 && a.Status != 429:
			r.problem("probe %s through %s after %s's SIGKILL: %d %v", sku, via.Name, dead.Name, a.Status, a.Body)
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("no 503 through %s within %v", via.Name, probeWaitMax)
		case <-time.After(probeEvery):
		}
	}
}

func (r *ClusterRun) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Checkpoint waits until the cluster is settled, stops the workload
// (nothing in flight), sends every request of unknown outcome again,
// reads every order and SKU back, checks them and the serve logs, and
// lets the workload go on. It reports what it found since the previous
// checkpoint; the error is for a checkpoint that could not be carried out.
func (r *ClusterRun) Checkpoint(ctx context.Context, step string) (*StepReport, error) {
	if _, err := r.c.Settle(ctx); err != nil {
		return nil, err
	}
	r.s.hold.Lock()
	defer r.s.hold.Unlock()
	view, err := r.c.Settle(ctx) // again: a step may have moved on meanwhile
	if err != nil {
		return nil, err
	}
	r.s.resolve(ctx)
	if err := r.s.verify(ctx); err != nil {
		return nil, err
	}
	rep := &StepReport{Step: step, Took: time.Since(r.lastAt), Requests: map[Outcome]int{}, Orders: r.s.report.Orders}
	r.s.mu.Lock()
	for o, n := range r.s.report.Requests {
		rep.Requests[o] = n - r.lastCount[o]
		r.lastCount[o] = n
	}
	lists := [4]*[]string{&r.s.report.Lost, &r.s.report.Oversold, &r.s.report.Violations, &r.s.report.Problems}
	outs := [4]*[]string{&rep.Lost, &rep.Oversold, &rep.Violations, &rep.Problems}
	for i, l := range lists {
		*outs[i] = slices.Clone((*l)[r.lastLists[i]:])
		r.lastLists[i] = len(*l)
	}
	r.s.mu.Unlock()
	rep.CrossNode = r.crossNode(view)

	r.mu.Lock()
	reqs, windows := r.reqs[r.lastReqs:], r.windows[r.lastWin:]
	for _, w := range windows {
		rep.Down = append(rep.Down, checkDown(w, reqs))
	}
	rep.Problems = append(rep.Problems, r.problems...)
	rep.Problems = append(rep.Problems, hangs(reqs, r.windows, r.c.Events(), &rep.WaitMax)...)
	if r.dropped > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("%d requests not recorded past %d", r.dropped, requestRecordsMax))
	}
	r.problems, r.lastReqs, r.lastWin = nil, len(r.reqs), len(r.windows)
	r.mu.Unlock()

	_, handoffs, breaches := r.c.CheckServing()
	rep.Serving = breaches
	for _, h := range handoffs {
		if !h.Stopped.Before(r.lastAt) {
			rep.Handoffs = append(rep.Handoffs, h)
		}
	}
	r.lastAt = time.Now()
	return rep, nil
}

// crossNode counts the placed orders whose SKUs' partitions have more
// than one holder in view.
func (r *ClusterRun) crossNode(view ClusterView) int {
	holders := view.Holders()
	n := 0
	for _, o := range r.s.led.orders {
		if o.outcome != Done {
			continue
		}
		seen := map[string]bool{}
		for _, l := range o.lines {
			seen[holders[PartitionOf("sku", l.SKU, r.parts)]] = true
		}
		if len(seen) > 1 {
			n++
		}
	}
	return n
}

// checkDown sorts the requests for w's partitions through other gateways
// that began and ended within w.
func checkDown(w downWindow, reqs []requestRecord) DownReport {
	d := DownReport{Node: w.node, Why: w.why, Down: w.to.Sub(w.from), FirstUnavailable: w.first}
	for _, q := range reqs {
		if q.gateway == w.node || q.part < 0 || !slices.Contains(w.parts, q.part) || q.start.Before(w.from) || q.end().After(w.to) {
			continue
		}
		d.Requests++
		switch {
		case q.status == 503 && q.slug == "unavailable":
			d.Unavailable++
			d.SlowestWait = max(d.SlowestWait, q.took)
		case q.status == 429 || q.status == 0:
			d.Other++
		default:
			d.Wrong++
		}
	}
	return d
}

// hangs lists requests through a gateway that was up all along (not down,
// not stopping) that ran into the client's timeout, and sets waitMax to
// the longest any of them waited.
func hangs(reqs []requestRecord, windows []downWindow, events []FaultEvent, waitMax *time.Duration) []string {
	var out []string
	for _, q := range reqs {
		if gatewayTroubled(q, windows, events) {
			continue
		}
		*waitMax = max(*waitMax, q.took)
		if q.timeout {
			out = append(out, fmt.Sprintf("%s %s through %s hung past the client's timeout (%v) at %s",
				q.method, q.path, q.gateway, q.took.Round(time.Millisecond), q.start.Format("15:04:05.000")))
		}
	}
	return out
}

// gatewayTroubled reports whether q's gateway was down, paused, stopping
// or starting at any point of q.
func gatewayTroubled(q requestRecord, windows []downWindow, events []FaultEvent) bool {
	for _, w := range windows {
		if w.node == q.gateway && q.start.Before(w.to) && w.from.Before(q.end()) {
			return true
		}
	}
	for _, e := range events {
		// A stop or kill shortly after the request began, or a start
		// shortly before, cuts or delays it by design.
		if e.Node == q.gateway && e.At.After(q.start.Add(-time.Second)) && e.At.Before(q.end().Add(time.Second)) {
			return true
		}
	}
	return false
}

// Finish stops the workload and runs a last checkpoint.
func (r *ClusterRun) Finish(ctx context.Context) (*StepReport, error) {
	r.Stop()
	return r.Checkpoint(ctx, "end")
}

// Ledger is the run's ledger as the soak writes it (see SaveLedger).
func (r *ClusterRun) SaveLedger(dir string) (string, error) {
	r.s.report.ledger = r.s.describe(nil)
	return r.s.report.SaveLedger(dir)
}
