package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is one measurement, the JSON that scripts collect and `orderbench
// report` aggregates. Latencies are microseconds.
type Result struct {
	Label       string             `json:"label"`     // server under test, e.g. "orderd", "redis-always"
	Generator   string             `json:"generator"` // load generator: "orderbench" (also when absent) or "wrk"
	Workload    string             `json:"workload"`
	Mode        string             `json:"mode"` // "closed" or "open"
	Concurrency int                `json:"concurrency"`
	Threads     int                `json:"threads,omitempty"` // wrk's threads
	Rate        int                `json:"rate,omitempty"`
	SKUs        int                `json:"skus"`
	Stock       int64              `json:"stock"`
	Seed        int64              `json:"seed"`
	Round       int                `json:"round,omitempty"`
	StartedAt   time.Time          `json:"started_at"`
	DurationS   float64            `json:"duration_s"`
	Requests    uint64             `json:"requests"`
	OK          uint64             `json:"ok"` // 2xx
	Errors      uint64             `json:"errors"`
	RPS         float64            `json:"rps"`                    // all answered requests per second
	CheckoutRPS float64            `json:"checkout_rps"`           // 201 checkouts per second
	AchievedRPS float64            `json:"achieved_rps,omitempty"` // open loop: answered per second until the last answer
	Latency     Latency            `json:"latency_us"`
	OpLatency   map[string]Latency `json:"op_latency_us,omitempty"` // per request kind (mixed)
	Status      map[string]uint64  `json:"status"`
	Ops         map[string]uint64  `json:"ops"`
	Verify      *Verify            `json:"verify,omitempty"`
}

// Latency percentiles in microseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Verify is the stock check made through the server's own SKU view after the run.
type Verify struct {
	Stock      int64  `json:"stock"`     // restocked in setup, all SKUs
	Successes  int64  `json:"successes"` // 201 checkouts seen by the client, warm-up included
	Cancelled  int64  `json:"cancelled"` // 200 cancels seen by the client
	Available  int64  `json:"available"`
	Reserved   int64  `json:"reserved"`
	Sold       int64  `json:"sold"`
	Oversell   int64  `json:"oversell"`   // successes beyond stock (must be 0)
	Consistent bool   `json:"consistent"` // sold+reserved == successes-cancelled and the totals add up
	Detail     string `json:"detail,omitempty"`

	// Unacknowledged is checkouts the server holds whose 201 the client never
	// read (wrk only: it drops the requests in flight when it stops).
	Unacknowledged int64 `json:"unacknowledged,omitempty"`
}

func usFrom(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// newResult turns a tally into a Result.
func newResult(t *tally, measured time.Duration) Result {
	r := Result{DurationS: measured.Seconds(), Status: map[string]uint64{}, Ops: map[string]uint64{}}
	for s, n := range t.status {
		r.Status[statusName(s)] = n
		r.Requests += n
		switch {
		case s >= 200 && s < 300:
			r.OK += n
		case s == 409:
			// Out of stock and invalid transitions are answers, not failures.
		default:
			r.Errors += n
		}
	}
	for k, n := range t.ops {
		r.Ops[k.String()] = n
	}
	answered := r.Requests - r.Status[statusName(statusOverflow)]
	r.RPS = float64(answered) / measured.Seconds()
	r.CheckoutRPS = float64(r.Status["201"]) / measured.Seconds()
	// In the open loop RPS is the offered rate whenever nothing is dropped,
	// however late the answers came; AchievedRPS counts the time the server
	// (or the client) took to answer the window's requests, so it falls below
	// the rate when either fell behind the schedule.
	if t.answeredIn > 0 {
		r.AchievedRPS = float64(answered) / t.answeredIn.Seconds()
	}
	r.Latency = latencyOf(t.hist)
	if len(t.opHist) > 1 {
		r.OpLatency = map[string]Latency{}
		for k, h := range t.opHist {
			r.OpLatency[k.String()] = latencyOf(h)
		}
	}
	return r
}

func latencyOf(h *Histogram) Latency {
	return Latency{P50: usFrom(h.Quantile(0.50)), P90: usFrom(h.Quantile(0.90)),
		P99: usFrom(h.Quantile(0.99)), P999: usFrom(h.Quantile(0.999)),
		Max: usFrom(h.Max()), Mean: usFrom(h.Mean())}
}

func writeJSON(w io.Writer, r Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// writeTable prints r for people.
func writeTable(w io.Writer, r Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	mode := fmt.Sprintf("closed loop, %d workers", r.Concurrency)
	if r.Mode == "open" {
		mode = fmt.Sprintf("open loop, %d req/s, %d senders", r.Rate, r.Concurrency)
	}
	fmt.Fprintf(tw, "server\t%s\n", r.Label)
	fmt.Fprintf(tw, "load generator\t%s\n", generatorOf(r))
	fmt.Fprintf(tw, "workload\t%s (%d SKUs), %s, %.1fs measured\n", r.Workload, r.SKUs, mode, r.DurationS)
	fmt.Fprintf(tw, "throughput\t%.0f req/s, %.0f checkouts/s (201)\n", r.RPS, r.CheckoutRPS)
	if r.AchievedRPS > 0 {
		fmt.Fprintf(tw, "achieved\t%.0f req/s, until the last answer (offered %d)\n", r.AchievedRPS, r.Rate)
	}
	l := r.Latency
	fmt.Fprintf(tw, "latency\tp50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
		fmtUS(l.P50), fmtUS(l.P90), fmtUS(l.P99), fmtUS(l.P999), fmtUS(l.Max))
	for _, k := range []opKind{opCheckout, opPay, opCancel, opGetOrder, opGetSKU} {
		if l, ok := r.OpLatency[k.String()]; ok {
			fmt.Fprintf(tw, "  %s\tp50 %s  p99 %s  (%d requests)\n", k, fmtUS(l.P50), fmtUS(l.P99), r.Ops[k.String()])
		}
	}
	fmt.Fprintf(tw, "requests\t%d (%d ok, %d errors)\n", r.Requests, r.OK, r.Errors)
	keys := make([]string, 0, len(r.Status))
	for k := range r.Status {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, r.Status[k]))
	}
	fmt.Fprintf(tw, "by status\t%s\n", strings.Join(parts, " "))
	if v := r.Verify; v != nil {
		verdict := "OK"
		if v.Oversell > 0 || !v.Consistent {
			verdict = "FAILED"
		}
		fmt.Fprintf(tw, "stock check\t%s: stock %d, client saw %d checkouts (%d cancelled); server says available %d reserved %d sold %d; oversell %d\n",
			verdict, v.Stock, v.Successes, v.Cancelled, v.Available, v.Reserved, v.Sold, v.Oversell)
		if v.Unacknowledged != 0 {
			fmt.Fprintf(tw, "\t%d more checkouts held by the server were in flight when the load generator stopped\n", v.Unacknowledged)
		}
		if v.Detail != "" {
			fmt.Fprintf(tw, "\t%s\n", v.Detail)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// fmtUS prints microseconds with a unit people read at a glance.
func fmtUS(us float64) string {
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%.2fs", us/1e6)
	case us >= 1e3:
		return fmt.Sprintf("%.2fms", us/1e3)
	default:
		return fmt.Sprintf("%.0fµs", us)
	}
}
