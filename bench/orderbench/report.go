package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// durability says what a 2xx promises for each server label the scripts use;
// the report prints it next to the figures, because a fast answer that can be
// lost is not the same product.
var durability = map[string]string{
	"ceiling":        "none: keeps no state (HTTP + JSON only)",
	"orderd":         "fsync'd journal (Badger, group commit) before the 2xx, as DESIGN.md promises",
	"redis-everysec": "Redis AOF `appendfsync everysec`: a crash can lose ~1 s of acknowledged orders",
	"redis-always":   "Redis AOF `appendfsync always`: the AOF is fsync'd before replies go out (one fsync per event-loop batch)",
	"postgres":       "`synchronous_commit=on`, `fsync=on`: commit on disk before the 201",
}

// reportConfig is what `orderbench report` writes and from what.
type reportConfig struct {
	In, Out, Plots  string
	Engine, Ceiling string
	Reference       string // the design to beat, for the ×reference ratios
	Meta            string // markdown appended verbatim (machine, commands)
	Flash           string // directory of sell-out runs (optional)
	Open            string // directory of open-loop runs at half the maximum rate (optional)
}

func runReport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("orderbench report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c reportConfig
	fs.StringVar(&c.In, "in", "", "directory of result JSON files (required)")
	fs.StringVar(&c.Out, "out", "docs/benchmarks.md", "markdown file to write")
	fs.StringVar(&c.Plots, "plots", "docs/bench", "directory for PNG plots (linked relative to -out)")
	fs.StringVar(&c.Engine, "engine", "orderd", "label of our engine, for the ×engine ratios")
	fs.StringVar(&c.Ceiling, "ceiling", "ceiling", "label of the ceiling server")
	fs.StringVar(&c.Reference, "reference", "redis-always", "label of the design to beat, for the ×reference ratios")
	fs.StringVar(&c.Flash, "flash", "", "directory of sell-out (flash sale) results for the stock check table")
	fs.StringVar(&c.Open, "open", "", "directory of open-loop results at half the maximum rate, for the latency table")
	fs.StringVar(&c.Meta, "meta", "", "markdown file appended to the report (machine, commands)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.In == "" {
		return fmt.Errorf("report: -in is required")
	}
	results, err := readResults(c.In)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	var meta []byte
	if c.Meta != "" {
		if meta, err = os.ReadFile(c.Meta); err != nil {
			return fmt.Errorf("report: read meta: %w", err)
		}
	}
	var flash []Result
	if c.Flash != "" {
		if flash, err = readResults(c.Flash); err != nil {
			fmt.Fprintf(stderr, "report: no flash sale results: %v\n", err)
		}
	}
	var open []Result
	if c.Open != "" {
		if open, err = readResults(c.Open); err != nil {
			fmt.Fprintf(stderr, "report: no open-loop results: %v\n", err)
		}
	}
	// Each load generator is summarized on its own: ratios only compare
	// servers measured by the same one. The plots are orderbench's.
	var byGo, byWrk []Result
	for _, r := range results {
		if generatorOf(r) == generatorWrk {
			byWrk = append(byWrk, r)
		} else {
			byGo = append(byGo, r)
		}
	}
	ss, ws := summarize(byGo), summarize(byWrk)
	if err := os.MkdirAll(c.Plots, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	plotRel, err := filepath.Rel(filepath.Dir(c.Out), c.Plots)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	var buf bytes.Buffer
	writeMarkdown(&buf, c, ss, ws, results, flash, open, plotRel, meta)
	for _, w := range workloads(ss) {
		if err := plotWorkload(c.Plots, w, ss); err != nil {
			return fmt.Errorf("report: %w", err)
		}
	}
	// The sustained-load section comes from another script (bench-sustained.sh)
	// and takes minutes to measure: keep it rather than lose it to this rewrite.
	// So are the hand-written sections after keptMarker (measurements
	// made by other means, such as the cluster's routing).
	if old, err := os.ReadFile(c.Out); err == nil {
		if s := sustainedSection(old); s != nil {
			buf.WriteString("\n")
			buf.Write(s)
		}
		if s := keptSections(old); s != nil {
			buf.WriteString("\n")
			buf.Write(s)
		}
	}
	if err := os.WriteFile(c.Out, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "wrote %s and plots in %s (%d results)\n", c.Out, c.Plots, len(results))
	return err
}

// keptMarker starts the part of the report that its rewrite keeps as it is.
const keptMarker = "<!-- kept: the sections below are written by hand; make bench-compare keeps them -->"

// keptSections returns doc from keptMarker to its end, or nil.
func keptSections(doc []byte) []byte {
	i := bytes.Index(doc, []byte(keptMarker))
	if i < 0 {
		return nil
	}
	return bytes.Clone(doc[i:])
}

// workloads in a fixed order: the ones the issue names first.
func workloads(ss []summary) []string {
	rank := map[string]int{workloadUniform: 0, workloadHot: 1, workloadZipf: 2, workloadMixed: 3}
	seen := map[string]bool{}
	var ws []string
	for _, s := range ss {
		if !seen[s.Workload] {
			seen[s.Workload] = true
			ws = append(ws, s.Workload)
		}
	}
	sort.SliceStable(ws, func(i, j int) bool {
		ri, oki := rank[ws[i]]
		rj, okj := rank[ws[j]]
		if oki != okj {
			return oki
		}
		return ri < rj || (ri == rj && ws[i] < ws[j])
	})
	return ws
}

// labelsOf returns the servers measured on workload: ceiling first, then the
// engine, then the rest by name.
func labelsOf(ss []summary, workload string, c reportConfig) []string {
	var ls []string
	for _, s := range ss {
		if s.Workload == workload {
			ls = append(ls, s.Label)
		}
	}
	pos := func(l string) int {
		switch l {
		case c.Ceiling:
			return 0
		case c.Engine:
			return 1
		}
		return 2
	}
	sort.SliceStable(ls, func(i, j int) bool {
		if pos(ls[i]) != pos(ls[j]) {
			return pos(ls[i]) < pos(ls[j])
		}
		return ls[i] < ls[j]
	})
	return ls
}

func fmtRatio(r float64) string {
	if r == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", r)
}

func writeMarkdown(w io.Writer, c reportConfig, ss, ws []summary, results, flash, open []Result, plotRel string, meta []byte) {
	rounds := 0
	for _, r := range results {
		rounds = max(rounds, r.Round)
	}
	fmt.Fprintf(w, "# Benchmarks\n\n")
	fmt.Fprintf(w, "Generated by `orderbench report` from %d measurements (%d rounds). Every figure is the\n", len(results), rounds)
	fmt.Fprintf(w, "median over rounds. The load generators share the machine with the server, so absolute\n")
	fmt.Fprintf(w, "numbers say little; the ratios, measured side by side in one run by the same load generator,\n")
	fmt.Fprintf(w, "are the result: ×ceiling compares with `%s` (fasthttp parsing the checkout and answering 201\n", c.Ceiling)
	fmt.Fprintf(w, "with no work), ×engine with `%s`, ×%s with `%s`. For latency the ratio is p99 over the\n", c.Engine, c.Reference, c.Reference)
	fmt.Fprintf(w, "other's p99.\n\n")
	workers, skus, conns, threads := 0, 0, 0, 0
	for _, r := range results {
		if generatorOf(r) == generatorWrk {
			conns, threads = r.Concurrency, r.Threads
			continue
		}
		if r.Workload != workloadHot {
			workers, skus = r.Concurrency, r.SKUs
		}
	}
	fmt.Fprintf(w, "%s\n", strings.NewReplacer("{{workers}}", fmt.Sprint(workers), "{{skus}}", fmt.Sprint(skus)).Replace(methodology))
	fmt.Fprintf(w, "## Durability of a 2xx\n\n| server | what an acknowledged checkout survives |\n|---|---|\n")
	seen := map[string]bool{}
	for _, s := range append(slices.Clone(ss), ws...) {
		if seen[s.Label] {
			continue
		}
		seen[s.Label] = true
		d, ok := durability[s.Label]
		if !ok {
			d = "not recorded"
		}
		fmt.Fprintf(w, "| %s | %s |\n", s.Label, d)
	}
	for _, wl := range workloads(append(slices.Clone(ss), ws...)) {
		fmt.Fprintf(w, "\n## Workload `%s`\n", wl)
		if hasWorkload(ss, wl) {
			fmt.Fprintf(w, "\n**orderbench** (Go, %d workers):\n\n", workers)
			writeServerTable(w, c, ss, wl)
		}
		if hasWorkload(ws, wl) {
			fmt.Fprintf(w, "\n**wrk** (C, `bench/wrk/checkout.lua`, %d connections on %d thread(s)), same servers, same rounds:\n\n", conns, threads)
			writeServerTable(w, c, ws, wl)
		}
		if hasWorkload(ss, wl) {
			fmt.Fprintf(w, "\n![throughput, %s](%s/throughput-%s.png) ![latency, %s](%s/latency-%s.png)\n",
				wl, plotRel, wl, wl, plotRel, wl)
		}
	}
	writeOpenLoop(w, c, open)
	writeFlash(w, flash)
	fmt.Fprintf(w, "\n## Every measurement\n\n| round | workload | server | load generator | req/s | checkouts/s | p50 | p99 | by status |\n|--:|---|---|---|--:|--:|--:|--:|---|\n")
	for _, r := range results {
		keys := make([]string, 0, len(r.Status))
		for k := range r.Status {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s=%d", k, r.Status[k])
		}
		fmt.Fprintf(w, "| %d | %s | %s | %s | %.0f | %.0f | %s | %s | %s |\n", r.Round, r.Workload, r.Label, generatorOf(r),
			r.RPS, r.CheckoutRPS, fmtUS(r.Latency.P50), fmtUS(r.Latency.P99), strings.Join(parts, " "))
	}
	if len(meta) > 0 {
		fmt.Fprintf(w, "\n%s", meta)
	}
}

// hasWorkload reports whether ss has a summary for workload.
func hasWorkload(ss []summary, workload string) bool {
	return slices.ContainsFunc(ss, func(s summary) bool { return s.Workload == workload })
}

// writeServerTable is one load generator's figures for every server on wl,
// with the ratios to servers measured by the same load generator.
func writeServerTable(w io.Writer, c reportConfig, ss []summary, wl string) {
	ceil, _ := find(ss, wl, c.Ceiling)
	eng, _ := find(ss, wl, c.Engine)
	ref, _ := find(ss, wl, c.Reference)
	fmt.Fprintf(w, "| server | req/s | checkouts/s | ×ceiling | ×engine | ×%s | p50 | p90 | p99 | p99.9 | p99 ×ceiling | p99 ×engine | errors | stock check |\n", c.Reference)
	fmt.Fprintf(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, l := range labelsOf(ss, wl, c) {
		s, _ := find(ss, wl, l)
		check := "–"
		if s.Verified > 0 {
			check = "ok"
			if s.Oversell > 0 || s.Inconsistent > 0 {
				check = fmt.Sprintf("**FAILED** (oversell %d, %d inconsistent)", s.Oversell, s.Inconsistent)
			}
		}
		l := s.Latency
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %s |\n",
			s.Label, s.RPS, s.CheckoutRPS, fmtRatio(ratio(s.RPS, ceil.RPS)), fmtRatio(ratio(s.RPS, eng.RPS)),
			fmtRatio(ratio(s.RPS, ref.RPS)), fmtUS(l.P50), fmtUS(l.P90), fmtUS(l.P99), fmtUS(l.P999),
			fmtRatio(ratio(l.P99, ceil.Latency.P99)), fmtRatio(ratio(l.P99, eng.Latency.P99)), s.Errors, check)
	}
}

// writeFlash is the sell-out check: one hot SKU with little stock, hammered
// until it is gone; every server must acknowledge exactly the stock.
func writeFlash(w io.Writer, flash []Result) {
	if len(flash) == 0 {
		return
	}
	fmt.Fprintf(w, "\n## Flash sale: no oversell\n\n")
	fmt.Fprintf(w, "One SKU with %d units, %d concurrent buyers for %.0f s. After the run the SKU view must show\n", flash[0].Stock, flash[0].Concurrency, flash[0].DurationS)
	fmt.Fprintf(w, "`sold + reserved` equal to the 201s the client received, and those never beyond the stock.\n\n")
	fmt.Fprintf(w, "| round | server | stock | 201 | 409 | other | available after | oversell | consistent |\n|--:|---|--:|--:|--:|--:|--:|--:|---|\n")
	for _, r := range flash {
		v := r.Verify
		if v == nil {
			continue
		}
		other := r.Requests - r.Status["201"] - r.Status["409"]
		fmt.Fprintf(w, "| %d | %s | %d | %d | %d | %d | %d | %d | %t |\n", r.Round, r.Label, v.Stock, v.Successes,
			r.Status["409"], other, v.Available, v.Oversell, v.Consistent)
	}
}
