package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// wrkSample is wrk's stdout with bench/wrk/checkout.lua: its own summary for
// people, then the line orderbench reads.
const wrkSample = `Running 2s test @ http://127.0.0.1:18777
  1 threads and 16 connections
  Latency Distribution
     50%  254.00us
  75504 requests in 2.05s, 29.93MB read
Requests/sec:  36907.90
wrk-result {"duration_us":2000000,"requests":1000,"sent":1070,"bytes":31380962,"status":{"201":900,"409":90,"503":10},"errors":{"connect":0,"read":2,"write":0,"status":10,"timeout":3},"latency_us":{"p50":254,"p90":1356,"p99":44427,"p999":71331,"max":78731,"mean":1669.4}}
`

func TestParseWrkOutput(t *testing.T) {
	o, err := parseWrkOutput([]byte(wrkSample))
	if err != nil {
		t.Fatal(err)
	}
	if o.Requests != 1000 || o.Sent != 1070 || o.checkouts() != 900 || o.Status["409"] != 90 ||
		o.Errors.Timeout != 3 || o.Latency.P99 != 44427 || o.Latency.Mean != 1669.4 {
		t.Errorf("parsed %+v", o)
	}
	if got := o.unanswered(); got != 70 {
		t.Errorf("unanswered = %d, want 70 (sent 1070, answered 1000)", got)
	}
	r := newWrkResult(wrkConfig{Label: "orderd", Workload: workloadHot, SKUs: 10_000, Connections: 16}, o)
	// 1000 answers in 2 s; 2 read errors and 3 timeouts are requests too.
	if r.Generator != generatorWrk || r.SKUs != 1 || r.RPS != 500 || r.CheckoutRPS != 450 ||
		r.Requests != 1005 || r.OK != 900 || r.Errors != 15 || r.Status["timeout"] != 3 || r.Status["net_error"] != 2 {
		t.Errorf("result %+v", r)
	}
	// Without response() in Lua the counts are wrk's own split.
	o, err = parseWrkOutput([]byte(wrkResultPrefix + `{"duration_us":1000000,"requests":100,"sent":104,"status":{"2xx":97,"non-2xx":3},"latency_us":{"p99":9}}`))
	if err != nil {
		t.Fatal(err)
	}
	r = newWrkResult(wrkConfig{Workload: workloadUniform}, o)
	if o.checkouts() != 97 || o.unanswered() != 4 || r.OK != 97 || r.Errors != 3 || r.CheckoutRPS != 97 {
		t.Errorf("2xx/non-2xx split: %+v, result %+v", o, r)
	}
	if _, err := parseWrkOutput([]byte("Running 2s test\nRequests/sec: 1\n")); err == nil {
		t.Error("output without the result line parsed")
	}
}

func TestCheckWrkStock(t *testing.T) {
	before := skuTotals{available: 100}
	for _, tc := range []struct {
		name            string
		after           skuTotals
		created, unans  int64
		consistent      bool
		oversell, unack int64
	}{
		{"every 201 seen", skuTotals{available: 60, reserved: 40}, 40, 5, true, 0, 0},
		{"three placed but unanswered at the stop", skuTotals{available: 57, reserved: 43}, 40, 5, true, 0, 3},
		{"more placed than went unanswered", skuTotals{available: 50, reserved: 50}, 40, 5, false, 0, 10},
		{"a 201 the server does not hold", skuTotals{available: 61, reserved: 39}, 40, 5, false, 0, -1},
		{"a unit appeared", skuTotals{available: 61, reserved: 40}, 40, 5, false, 0, 0},
		{"oversold", skuTotals{available: -10, reserved: 110}, 110, 0, false, 10, 0},
	} {
		v := checkWrkStock(100, before, tc.after, tc.created, tc.unans)
		if v.Consistent != tc.consistent || v.Oversell != tc.oversell || v.Unacknowledged != tc.unack {
			t.Errorf("%s: %+v", tc.name, v)
		}
	}
}

// wrkBench runs `orderbench wrk` against url with the repository's script.
func wrkBench(t *testing.T, args ...string) (Result, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), append([]string{"wrk", "-script", "../wrk/checkout.lua", "-format", "json",
		"-token", "tok", "-duration", "1s", "-warmup", "0s", "-concurrency", "4"}, args...), &stdout, &stderr)
	var r Result
	if stdout.Len() > 0 {
		if derr := json.Unmarshal(stdout.Bytes(), &r); derr != nil {
			t.Fatalf("decode result: %v\n%s", derr, stdout.String())
		}
	}
	if stderr.Len() > 0 {
		t.Logf("stderr: %s", stderr.String())
	}
	return r, err
}

// TestWrkAgainstMemStore drives the in-memory reference server with wrk and
// the checkout script: the counts reach the report and the stock check
// catches a server that oversells. Skipped where wrk is not installed.
func TestWrkAgainstMemStore(t *testing.T) {
	if testing.Short() {
		t.Skip("runs wrk for seconds")
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Skip("wrk is not installed (apt-get install wrk)")
	}
	r, err := wrkBench(t, "-url", memServer(t, false), "-workload", "uniform", "-skus", "20")
	if err != nil {
		t.Fatal(err)
	}
	if r.Generator != generatorWrk || r.Status["201"] == 0 || r.Errors != 0 || r.Verify == nil ||
		!r.Verify.Consistent || r.Latency.P99 <= 0 {
		t.Errorf("uniform against the memory store: %+v %+v", r, r.Verify)
	}
	r, err = wrkBench(t, "-url", memServer(t, false), "-workload", "uniform", "-skus", "20", "-statuses=false")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status["2xx"] == 0 || r.Status["non-2xx"] != 0 || r.OK != r.Status["2xx"] || !r.Verify.Consistent {
		t.Errorf("uniform without per-status counts: status %v, verify %+v", r.Status, r.Verify)
	}
	// Five units on one SKU: the honest server answers 409 once they are gone.
	r, err = wrkBench(t, "-url", memServer(t, false), "-workload", "hot", "-stock", "5")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status["201"] != 5 || r.Status["409"] == 0 || r.Errors != 0 || !r.Verify.Consistent {
		t.Errorf("sell-out: status %v, verify %+v", r.Status, r.Verify)
	}
	_, err = wrkBench(t, "-url", memServer(t, true), "-workload", "hot", "-stock", "5")
	if err == nil || !strings.Contains(err.Error(), "oversell") {
		t.Errorf("an overselling server passed the stock check: %v", err)
	}
}
