package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeResults puts each result in dir as its own JSON file, as the scripts do.
func writeResults(t *testing.T, dir string, rs ...Result) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(dir, "r"+string(rune('a'+i))+".json")
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// openResult is an open-loop run offered rate that achieved achieved req/s:
// p50 a quarter of p99, p99.9 twice it.
func openResult(label, wl string, rate int, achieved, p99 float64) Result {
	r := fakeResult(label, wl, 1, float64(rate), p99)
	r.Mode, r.Rate, r.Concurrency, r.AchievedRPS, r.Latency.Max = "open", rate, 512, achieved, p99*3
	return r
}

func TestReportOpenLoop(t *testing.T) {
	dir := t.TempDir()
	closed := filepath.Join(dir, "main")
	writeResults(t, closed, fakeResult("ceiling", "uniform", 1, 20000, 1000), fakeResult("orderd", "uniform", 1, 10000, 4000),
		fakeResult("ceiling", "hot", 1, 20000, 1000), fakeResult("orderd", "hot", 1, 6000, 30000))
	// Written in an order the report must not keep: hot before uniform, the
	// engine before the ceiling.
	hot := openResult("orderd", "hot", 3000, 2000, 12500)
	hot.Status["503"], hot.Status["client_overflow"], hot.Errors = 7, 3, 10
	open := filepath.Join(dir, "open")
	// A result written before achieved_rps existed shows its rps.
	old := openResult("ceiling", "hot", 10000, 0, 800)
	old.RPS = 9990
	writeResults(t, open, hot, openResult("orderd", "uniform", 5000, 4998, 3500),
		openResult("ceiling", "uniform", 10000, 10001, 400), old)

	out := filepath.Join(dir, "docs", "benchmarks.md")
	plots := filepath.Join(dir, "docs", "bench")
	var stdout, stderr bytes.Buffer
	args := []string{"report", "-in", closed, "-open", open, "-out", out, "-plots", plots}
	if err := run(t.Context(), args, &stdout, &stderr); err != nil {
		t.Fatalf("report: %v\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	_, section, ok := strings.Cut(md, "\n## Latency at half the maximum rate (open loop)\n")
	if !ok {
		t.Fatalf("report lacks the open-loop section:\n%s", md)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	// Rows in the order of the closed-loop tables; the hot engine run answered
	// 2000 of 3000 req/s offered (bold) and lists what was not a 2xx.
	wantRows := []string{
		"| uniform | ceiling | 10000 | 10001 | 100µs | 200µs | 400µs | 800µs | 1.20ms | 0 | – |",
		"| uniform | orderd | 5000 | 4998 | 875µs | 1.75ms | 3.50ms | 7.00ms | 10.50ms | 0 | – |",
		"| hot | ceiling | 10000 | 9990 | 200µs | 400µs | 800µs | 1.60ms | 2.40ms | 0 | – |",
		"| hot | orderd | 3000 | **2000** | 3.12ms | 6.25ms | 12.50ms | 25.00ms | 37.50ms | 10 | 503=7 client_overflow=3 |",
	}
	at := 0
	for _, want := range wantRows {
		i := strings.Index(section[at:], want)
		if i < 0 {
			t.Fatalf("open-loop section lacks %q after byte %d:\n%s", want, at, section)
		}
		at += i + len(want)
	}
	for _, want := range []string{
		"- `orderd`, uniform at 5000 req/s: p99 3.50ms, within the 10.00ms target.",
		"- `orderd`, hot at 3000 req/s: p99 12.50ms, **over** the 10.00ms target (10 errors, see the table).",
		"at most\n512 requests in flight",
	} {
		if !strings.Contains(section, want) {
			t.Errorf("open-loop section lacks %q:\n%s", want, section)
		}
	}
	if strings.Contains(section, "ceiling`,") {
		t.Errorf("verdict given for a server other than the engine:\n%s", section)
	}

	// Without -open the report has no such section.
	args = []string{"report", "-in", closed, "-out", out, "-plots", plots}
	if err := run(t.Context(), args, &stdout, &stderr); err != nil {
		t.Fatalf("report: %v\n%s", err, stderr.String())
	}
	if b, _ := os.ReadFile(out); bytes.Contains(b, []byte("open loop)")) {
		t.Errorf("report without -open has an open-loop section")
	}
}
