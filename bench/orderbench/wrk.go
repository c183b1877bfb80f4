package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Load generators a Result can come from.
const (
	generatorOrderbench = "orderbench"
	generatorWrk        = "wrk"
)

// generatorOf names the load generator of r; results written before the
// field existed are orderbench's.
func generatorOf(r Result) string {
	if r.Generator == "" {
		return generatorOrderbench
	}
	return r.Generator
}

// wrkResultPrefix starts the line bench/wrk/checkout.lua prints in done().
const wrkResultPrefix = "wrk-result "

// wrkTimeout is wrk's per-request timeout, the same as orderbench's.
const wrkTimeout = requestTimeout

// wrkConfig is one `orderbench wrk` run.
type wrkConfig struct {
	URL, Token, Label string
	Workload          string
	SKUs              int
	Stock             int64
	Prefix            string
	Duration, Warmup  time.Duration
	Connections       int
	Threads           int
	Customers         int
	Script, Wrk       string
	Seed              int64
	Round             int
	Verify            bool
	Statuses          bool // count answers by status in Lua (costs wrk CPU per request)
}

// wrkOutput is the line bench/wrk/checkout.lua prints: wrk's summary, its
// latency distribution and the answers counted by status.
type wrkOutput struct {
	DurationUS int64             `json:"duration_us"`
	Requests   uint64            `json:"requests"` // answered (wrk's count)
	Sent       uint64            `json:"sent"`     // request() calls: answered, failed, or in flight at the stop
	Bytes      uint64            `json:"bytes"`
	Status     map[string]uint64 `json:"status"`
	Errors     struct {
		Connect uint64 `json:"connect"`
		Read    uint64 `json:"read"`
		Write   uint64 `json:"write"`
		Status  uint64 `json:"status"` // non-2xx/3xx answers, also in Status
		Timeout uint64 `json:"timeout"`
	} `json:"errors"`
	Latency Latency `json:"latency_us"`
}

// parseWrkOutput finds the wrk-result line in wrk's stdout.
func parseWrkOutput(out []byte) (wrkOutput, error) {
	var o wrkOutput
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), wrkResultPrefix)
		if !ok {
			continue
		}
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			return o, fmt.Errorf("decode %q line: %w", strings.TrimSpace(wrkResultPrefix), err)
		}
		if o.DurationUS <= 0 {
			return o, fmt.Errorf("wrk reported a duration of %d µs", o.DurationUS)
		}
		return o, nil
	}
	return o, fmt.Errorf("no %q line in wrk's output (is the script bench/wrk/checkout.lua?)", strings.TrimSpace(wrkResultPrefix))
}

// Status keys of the script's cheap mode (CHECKOUT_STATUSES=0): wrk's own
// split, answers below 400 and the rest.
const (
	wrkStatusOK    = "2xx"
	wrkStatusNotOK = "non-2xx"
)

// checkouts returns the successful checkouts: the 201s, or in the cheap mode
// every answer below 400 (a checkout succeeds only with 201).
func (o wrkOutput) checkouts() uint64 { return o.Status["201"] + o.Status[wrkStatusOK] }

// unanswered is the requests wrk sent that got no answer: failed on the
// socket, timed out, or still in flight when wrk stopped (it closes those
// connections without waiting). The server may have placed those checkouts.
func (o wrkOutput) unanswered() uint64 {
	var answered uint64
	for _, n := range o.Status {
		answered += n
	}
	if o.Sent < answered {
		return 0
	}
	return o.Sent - answered
}

// wrkArgs is wrk's command line for one run of d.
func wrkArgs(c wrkConfig, d time.Duration) []string {
	skus := c.SKUs
	if c.Workload == workloadHot {
		skus = 1
	}
	return []string{"-t", strconv.Itoa(c.Threads), "-c", strconv.Itoa(c.Connections),
		"-d", wrkSeconds(d), "--timeout", wrkSeconds(wrkTimeout), "--latency", "-s", c.Script, c.URL,
		"--", c.Prefix, strconv.Itoa(skus), strconv.FormatInt(c.Seed, 10), strconv.Itoa(c.Customers)}
}

// wrkSeconds formats d for wrk, which takes whole seconds.
func wrkSeconds(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) + "s" }

// execWrk runs wrk for d and parses its result line.
func execWrk(ctx context.Context, c wrkConfig, d time.Duration, stderr io.Writer) (wrkOutput, error) {
	// wrk stops itself after d; the margin covers start-up and the stop.
	ctx, cancel := context.WithTimeout(ctx, d+wrkTimeout+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Wrk, wrkArgs(c, d)...)
	if !c.Statuses {
		cmd.Env = append(os.Environ(), "CHECKOUT_STATUSES=0")
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		return wrkOutput{}, fmt.Errorf("%s: %w: %.500s", c.Wrk, err, out.String())
	}
	o, err := parseWrkOutput(out.Bytes())
	if err != nil {
		return o, fmt.Errorf("%w\n%.1000s", err, out.String())
	}
	return o, nil
}

// newWrkResult turns the measured wrk run into a Result like orderbench's.
func newWrkResult(c wrkConfig, o wrkOutput) Result {
	measured := time.Duration(o.DurationUS) * time.Microsecond
	r := Result{Label: c.Label, Generator: generatorWrk, Workload: c.Workload, Mode: "closed",
		Concurrency: c.Connections, Threads: c.Threads, SKUs: c.SKUs, Stock: c.Stock, Seed: c.Seed, Round: c.Round,
		DurationS: measured.Seconds(), Status: map[string]uint64{}, Ops: map[string]uint64{},
		Latency: o.Latency}
	if c.Workload == workloadHot {
		r.SKUs = 1
	}
	var answered uint64
	for k, n := range o.Status {
		r.Status[k] = n
		answered += n
		code, _ := strconv.Atoi(k)
		switch {
		case k == wrkStatusOK, code >= 200 && code < 300:
			r.OK += n
		case code == 409:
		default:
			r.Errors += n
		}
	}
	if n := o.Errors.Connect + o.Errors.Read + o.Errors.Write; n > 0 {
		r.Status[statusName(statusNetError)] = n
		r.Errors += n
	}
	if n := o.Errors.Timeout; n > 0 {
		r.Status[statusName(statusTimeout)] = n
		r.Errors += n
	}
	for _, n := range r.Status {
		r.Requests += n
	}
	r.Ops[opCheckout.String()] = r.Requests
	r.RPS = float64(answered) / measured.Seconds()
	r.CheckoutRPS = float64(o.checkouts()) / measured.Seconds()
	return r
}

// verifyWrk is the stock check after wrk's runs. wrk closes the connections
// with a request in flight when it stops, so the server may hold checkouts
// the client never saw answered: sold+reserved must grow by the 201s the
// client saw plus at most the requests that got no answer, never beyond the
// stock, and no unit may appear or vanish.
func verifyWrk(ctx context.Context, c *client, skus []string, stock int64, before skuTotals, created, unanswered int64) (Verify, error) {
	after, err := sumSKUs(ctx, c, skus)
	if err != nil {
		return Verify{}, err
	}
	return checkWrkStock(stock*int64(len(skus)), before, after, created, unanswered), nil
}

// checkWrkStock is verifyWrk's arithmetic.
func checkWrkStock(total int64, before, after skuTotals, created, unanswered int64) Verify {
	v := Verify{Stock: total, Successes: created, Available: after.available, Reserved: after.reserved, Sold: after.sold}
	grew := (after.sold + after.reserved) - (before.sold + before.reserved)
	if held := max(created, grew); held > total {
		v.Oversell = held - total
	}
	v.Unacknowledged = grew - created
	unitsBefore := before.available + before.reserved + before.sold
	unitsAfter := after.available + after.reserved + after.sold
	v.Consistent = grew >= created && grew <= created+unanswered && after.available >= 0 && unitsAfter == unitsBefore
	if !v.Consistent {
		v.Detail = fmt.Sprintf("sold+reserved grew by %d, the client saw %d checkouts and %d requests unanswered; units %d before, %d after",
			grew, created, unanswered, unitsBefore, unitsAfter)
	}
	return v
}

func runWrk(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("orderbench wrk", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c wrkConfig
	fs.StringVar(&c.URL, "url", "http://127.0.0.1:8080", "base URL of the server under test")
	fs.StringVar(&c.Token, "token", "", "admin bearer token (for the restocks in setup)")
	fs.StringVar(&c.Label, "label", "", "name of the server under test, for reports (default: the URL)")
	fs.StringVar(&c.Workload, "workload", workloadUniform, "uniform or hot")
	fs.IntVar(&c.SKUs, "skus", 10_000, "number of SKUs (hot always uses one)")
	fs.Int64Var(&c.Stock, "stock", stockMax, "units restocked per SKU before the run")
	fs.StringVar(&c.Prefix, "sku-prefix", "", "SKU name prefix (default: unique per run)")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measured duration (whole seconds)")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "a wrk run before the measured one (whole seconds; 0 for none)")
	fs.IntVar(&c.Connections, "concurrency", 64, "wrk connections (-c)")
	fs.IntVar(&c.Threads, "threads", 1, "wrk threads (-t)")
	fs.IntVar(&c.Customers, "customers", 64, "customer names per wrk thread")
	fs.StringVar(&c.Script, "script", "bench/wrk/checkout.lua", "the wrk Lua script")
	fs.StringVar(&c.Wrk, "wrk", "wrk", "the wrk binary")
	fs.Int64Var(&c.Seed, "seed", 1, "random seed")
	fs.IntVar(&c.Round, "round", 0, "round number, copied into the JSON for reports")
	fs.BoolVar(&c.Verify, "verify", true, "check stock through the SKU view afterwards (off for the ceiling)")
	fs.BoolVar(&c.Statuses, "statuses", true, "count answers by status code in Lua; false leaves wrk's 2xx/non-2xx split, cheaper per request")
	format := fs.String("format", "table", "table or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	whole := func(d time.Duration) bool { return d%time.Second == 0 }
	switch {
	case *format != "table" && *format != "json":
		return fmt.Errorf("-format %q: want table or json", *format)
	case c.Workload != workloadUniform && c.Workload != workloadHot:
		return fmt.Errorf("-workload %q: wrk runs uniform or hot", c.Workload)
	case c.SKUs < 1 || c.SKUs > skusMax:
		return fmt.Errorf("-skus %d out of range 1..%d", c.SKUs, skusMax)
	case c.Stock < 1 || c.Stock > stockMax:
		return fmt.Errorf("-stock %d out of range 1..%d", c.Stock, stockMax)
	case c.Duration < time.Second || c.Duration > durationMax || !whole(c.Duration):
		return fmt.Errorf("-duration %s: wrk takes whole seconds, 1s..%s", c.Duration, durationMax)
	case c.Warmup < 0 || c.Warmup > durationMax || !whole(c.Warmup):
		return fmt.Errorf("-warmup %s: wrk takes whole seconds, 0..%s", c.Warmup, durationMax)
	case c.Connections < 1 || c.Connections > concurrencyMax:
		return fmt.Errorf("-concurrency %d out of range 1..%d", c.Connections, concurrencyMax)
	case c.Threads < 1 || c.Threads > c.Connections:
		return fmt.Errorf("-threads %d out of range 1..%d (the connections)", c.Threads, c.Connections)
	case c.Customers < 1:
		return fmt.Errorf("-customers %d: want at least 1", c.Customers)
	}
	if _, err := exec.LookPath(c.Wrk); err != nil {
		return fmt.Errorf("wrk: %w (Debian: apt-get install wrk)", err)
	}
	if c.Prefix == "" {
		c.Prefix = "w" + strconv.FormatInt(time.Now().UnixNano()/1e6, 36)
	}
	if c.Label == "" {
		c.Label = c.URL
	}
	w, err := newWorkload(c.Workload, c.Prefix, c.SKUs)
	if err != nil {
		return err
	}
	cl, err := newClient(c.URL, c.Token, setupWorkers)
	if err != nil {
		return err
	}
	if err := restockAll(ctx, cl, w.skus, c.Stock); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	var before skuTotals
	if c.Verify {
		if before, err = sumSKUs(ctx, cl, w.skus); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
	}
	var warm wrkOutput
	if c.Warmup > 0 {
		if warm, err = execWrk(ctx, c, c.Warmup, stderr); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	started := time.Now().UTC()
	o, err := execWrk(ctx, c, c.Duration, stderr)
	if err != nil {
		return err
	}
	res := newWrkResult(c, o)
	res.StartedAt = started
	if c.Verify {
		created := int64(warm.checkouts() + o.checkouts())
		unanswered := int64(warm.unanswered() + o.unanswered())
		v, err := verifyWrk(ctx, cl, w.skus, c.Stock, before, created, unanswered)
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		res.Verify = &v
	}
	if *format == "json" {
		err = writeJSON(stdout, res)
	} else {
		err = writeTable(stdout, res)
	}
	if err != nil {
		return err
	}
	if v := res.Verify; v != nil && (v.Oversell > 0 || !v.Consistent) {
		return fmt.Errorf("stock check failed: oversell %d, consistent %t %s", v.Oversell, v.Consistent, v.Detail)
	}
	return nil
}
