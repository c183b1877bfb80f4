package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		give []float64
		want float64
	}{
		{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(c.give); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.give, got, c.want)
		}
	}
	if ratio(1, 0) != 0 || ratio(1, 4) != 0.25 {
		t.Error("ratio")
	}
}

func fakeResult(label, wl string, round int, rps, p99 float64) Result {
	return Result{Label: label, Workload: wl, Round: round, RPS: rps, CheckoutRPS: rps,
		Latency: Latency{P50: p99 / 4, P90: p99 / 2, P99: p99, P999: p99 * 2},
		Status:  map[string]uint64{"201": uint64(rps)}, Requests: uint64(rps)}
}

func TestSummarizeMediansAndReport(t *testing.T) {
	var rs []Result
	for i, x := range []float64{1, 3, 2} { // medians: ceiling 20000, orderd 10000, redis 5000
		rs = append(rs,
			fakeResult("ceiling", "uniform", i+1, 10000*x, 1000),
			fakeResult("orderd", "uniform", i+1, 5000*x, 2000*x),
			fakeResult("redis-always", "uniform", i+1, 2500*x, 4000))
	}
	rs[2].Verify = &Verify{Oversell: 3}
	ss := summarize(rs)
	// The same servers under wrk: summarized apart, so neither table's ratios
	// mix load generators. orderd 16000 = 0.40 of the ceiling, 2.00 of redis.
	for i, x := range []float64{1, 3, 2} {
		for _, r := range []Result{fakeResult("ceiling", "uniform", i+1, 20000*x, 500),
			fakeResult("orderd", "uniform", i+1, 8000*x, 1000), fakeResult("redis-always", "uniform", i+1, 4000*x, 2000)} {
			r.Generator, r.Threads, r.Concurrency = generatorWrk, 1, 64
			rs = append(rs, r)
		}
	}
	o, ok := find(ss, "uniform", "orderd")
	if !ok || o.RPS != 10000 || o.Latency.P99 != 4000 || o.Rounds != 3 {
		t.Fatalf("orderd summary %+v", o)
	}
	r, _ := find(ss, "uniform", "redis-always")
	if r.Oversell != 3 || r.Verified != 1 || r.Inconsistent != 1 {
		t.Errorf("redis stock check not carried: %+v", r)
	}

	dir := t.TempDir()
	for i, res := range rs {
		b, _ := json.Marshal(res)
		if err := os.WriteFile(filepath.Join(dir, "r"+string(rune('a'+i))+".json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "docs", "benchmarks.md")
	plots := filepath.Join(dir, "docs", "bench")
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"report", "-in", dir, "-out", out, "-plots", plots}, &stdout, &stderr); err != nil {
		t.Fatalf("report: %v\n%s", err, stderr.String())
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// orderd: 10000 req/s = 0.50 of the ceiling, 1.00 of itself; p99 4ms = 4.00 × ceiling.
	// The orderbench table, then wrk's: req/s, checkouts/s, ×ceiling, ×engine, ×redis-always.
	for _, want := range []string{"| orderd | 10000 | 10000 | 0.50 | 1.00 | 2.00 |", "| 4.00 | 1.00 |",
		"| redis-always | 5000 | 5000 | 0.25 | 0.50 | 1.00 |", "**FAILED** (oversell 3", "bench/throughput-uniform.png",
		"**wrk** (C, `bench/wrk/checkout.lua`, 64 connections on 1 thread(s))",
		"| orderd | 16000 | 16000 | 0.40 | 1.00 | 2.00 |", "| 1 | uniform | orderd | wrk | 8000 |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	for _, f := range []string{"throughput-uniform.png", "latency-uniform.png"} {
		if st, err := os.Stat(filepath.Join(plots, f)); err != nil || st.Size() < 1000 {
			t.Errorf("plot %s: %v", f, err)
		}
	}
}
