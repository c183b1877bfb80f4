package main

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// The open-loop section: each server offered half the most it answered in the
// closed-loop rounds, so its latency is read where it has headroom, the way a
// service is run, rather than at saturation where a closed loop measures it.
const (
	// openP99TargetUS is the engine's target at half its maximum rate: p99 at
	// most 10 ms.
	openP99TargetUS = 10_000
	// openAchievedMin is the share of the offered rate a run must achieve;
	// below it the server or the client fell behind the schedule (or dropped
	// requests at the client), and the row is marked: it measures a backlog.
	openAchievedMin = 0.95
)

// writeOpenLoop is the latency at half the maximum rate, one row per open-loop
// result, in the order of the closed-loop tables, then the engine's verdict on
// openP99TargetUS.
func writeOpenLoop(w io.Writer, c reportConfig, open []Result) {
	if len(open) == 0 {
		return
	}
	// The closed-loop helpers order workloads and servers; they read only the
	// labels and workloads of these keys.
	keys := make([]summary, len(open))
	for i, r := range open {
		keys[i] = summary{Label: r.Label, Workload: r.Workload}
	}
	var rows []Result
	for _, wl := range workloads(keys) {
		for _, l := range slices.Compact(labelsOf(keys, wl, c)) {
			for _, r := range open {
				if r.Workload == wl && r.Label == l {
					rows = append(rows, r)
				}
			}
		}
	}
	fmt.Fprintf(w, "\n## Latency at half the maximum rate (open loop)\n\n")
	fmt.Fprintf(w, "Each server, started afresh, is offered half the highest rate it answered in the closed-loop\n")
	fmt.Fprintf(w, "rounds above (wrk's figure when wrk ran, else orderbench's), by `orderbench -rate` with at most\n")
	fmt.Fprintf(w, "%d requests in flight. Requests leave on schedule whether or not the earlier ones were answered,\n", rows[0].Concurrency)
	fmt.Fprintf(w, "and each latency runs from the time its request was scheduled, so a stall is charged to every\n")
	fmt.Fprintf(w, "request it delays (no coordinated omission). Achieved is the measured requests answered per\n")
	fmt.Fprintf(w, "second, from the start of the measured window to the last answer; it is in bold where it falls\n")
	fmt.Fprintf(w, "below %.0f %% of the offered rate: the server, or the load generator beside it, fell behind the\n", openAchievedMin*100)
	fmt.Fprintf(w, "schedule, and the row measures that backlog more than the server's latency.\n\n")
	fmt.Fprintf(w, "| workload | server | offered req/s | achieved req/s | p50 | p90 | p99 | p99.9 | max | errors | not 2xx |\n")
	fmt.Fprintf(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, r := range rows {
		rps := r.AchievedRPS
		if rps == 0 { // written before achieved_rps existed
			rps = r.RPS
		}
		achieved := fmt.Sprintf("%.0f", rps)
		if rps < openAchievedMin*float64(r.Rate) {
			achieved = "**" + achieved + "**"
		}
		l := r.Latency
		fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %d | %s |\n", r.Workload, r.Label, r.Rate, achieved,
			fmtUS(l.P50), fmtUS(l.P90), fmtUS(l.P99), fmtUS(l.P999), fmtUS(l.Max), r.Errors, notOK(r.Status))
	}
	writeOpenVerdict(w, c, rows)
}

// writeOpenVerdict says, for each workload, whether the engine's p99 (the
// median over rounds) met openP99TargetUS.
func writeOpenVerdict(w io.Writer, c reportConfig, rows []Result) {
	var lines []string
	for _, wl := range workloads(summarize(rows)) {
		var p99s []float64
		var rate int
		var errs uint64
		for _, r := range rows {
			if r.Workload == wl && r.Label == c.Engine {
				p99s, rate, errs = append(p99s, r.Latency.P99), r.Rate, errs+r.Errors
			}
		}
		if len(p99s) == 0 {
			continue
		}
		p99 := median(p99s)
		verdict := fmt.Sprintf("within the %s target", fmtUS(openP99TargetUS))
		if p99 > openP99TargetUS {
			verdict = fmt.Sprintf("**over** the %s target", fmtUS(openP99TargetUS))
		}
		line := fmt.Sprintf("- `%s`, %s at %d req/s: p99 %s, %s", c.Engine, wl, rate, fmtUS(p99), verdict)
		if errs > 0 {
			line += fmt.Sprintf(" (%d errors, see the table)", errs)
		}
		lines = append(lines, line+".")
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "\nDoes `%s` keep p99 ≤ %s at half its maximum rate?\n\n%s\n", c.Engine, fmtUS(openP99TargetUS), strings.Join(lines, "\n"))
}

// notOK lists the answers that were not 2xx, by status ("409=3 timeout=1"),
// or "–" when there were none.
func notOK(status map[string]uint64) string {
	var parts []string
	for k, n := range status {
		if n > 0 && !strings.HasPrefix(k, "2") {
			parts = append(parts, fmt.Sprintf("%s=%d", k, n))
		}
	}
	if len(parts) == 0 {
		return "–"
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
