package main

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSustainedParsePhases(t *testing.T) {
	ps, err := parsePhases("hot:120s, uniform:0s,zipf:1m")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Name != "hot" || ps[0].Duration != 120*time.Second || ps[1].Name != "zipf" || ps[1].Duration != time.Minute {
		t.Errorf("phases %+v", ps)
	}
	for _, bad := range []string{"", "hot", "hot:fast", "hot:-1s", "cold:10s", "hot:0s,uniform:0s"} {
		if _, err := parsePhases(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSustainedFlagBounds(t *testing.T) {
	var stderr bytes.Buffer
	if _, err := parseSustained(nil, &stderr); err != nil {
		t.Fatalf("defaults rejected: %v", err)
	}
	for _, args := range [][]string{
		{"-window", "1ms"},
		{"-concurrency", "0"},
		{"-skus", "200000"},                 // more than the stock check reads
		{"-phases", "hot:14m"},              // outlasts the default TTL of 900 s
		{"-phases", "hot:1h", "-ttl", "99"}, // and an explicit short one
		{"-ttl", "86401"},
		{"-server-pid", "-1"},
		{"stray"},
	} {
		if _, err := parseSustained(args, &stderr); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	if _, err := parseSustained([]string{"-phases", "hot:1h", "-ttl", "86400"}, &stderr); err != nil {
		t.Errorf("an hour with a day's TTL: %v", err)
	}
}

func sampleRows() []windowRow {
	return []windowRow{
		{Index: 0, Phase: "hot", StartS: 0, DurationS: 10, Checkouts: 80000, OK: 80000, P50: 7 * time.Millisecond, P99: 40 * time.Millisecond, RSSBytes: 200 << 20, Total: 90000},
		{Index: 1, Phase: "hot", StartS: 10, DurationS: 10.5, Checkouts: 75600, OK: 75600, Errors: 3, P50: 8 * time.Millisecond, P99: 45 * time.Millisecond, RSSBytes: 300 << 20, Total: 165600},
		{Index: 2, Phase: "uniform", StartS: 20.5, DurationS: 10, Checkouts: 60000, OK: 60000, Conflict: 2, P50: 9 * time.Millisecond, P99: 50 * time.Millisecond, RSSBytes: 310 << 20, Total: 225600},
	}
}

func TestSustainedTableAndCSV(t *testing.T) {
	rows := sampleRows()
	line := formatWindowRow(rows[1])
	if f := strings.Fields(line); len(f) != len(strings.Fields(windowTableHeader)) || f[1] != "hot" || f[3] != "7200.0" || f[9] != "300.0" {
		t.Errorf("table row %q", line)
	}
	if f := strings.Fields(formatWindowRow(windowRow{Phase: "hot", RSSBytes: -1})); f[9] != "–" {
		t.Errorf("unknown RSS shown as %q", f[9])
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write(csvHeader)
	for _, r := range rows {
		w.Write(csvRecord(r))
	}
	w.Write(csvRecord(windowRow{Index: 3, Phase: "uniform", RSSBytes: -1}))
	w.Flush()
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"1", "hot", "10.000", "10.500", "7200.0", "75600", "0", "3", "8.000", "45.000", "300.0", "165600"}
	if strings.Join(recs[2], ",") != strings.Join(want, ",") {
		t.Errorf("csv row %v, want %v", recs[2], want)
	}
	if len(recs) != 5 || recs[0][0] != "window" || recs[4][10] != "" {
		t.Errorf("csv %v", recs)
	}
}

func TestSustainedVerdicts(t *testing.T) {
	v := judgeSustained(sampleRows(), "hot")
	if v.Windows != 2 || v.First != 8000 || v.Last != 7200 || v.Ratio != 0.9 || v.RSSBytes != 310<<20 || v.Checkouts != 225600 {
		t.Fatalf("verdict %+v", v)
	}
	if !strings.HasSuffix(v.RateLine(), "**PASS**") || !strings.Contains(v.RateLine(), "0.90×") {
		t.Errorf("rate line %q", v.RateLine())
	}
	if !strings.Contains(v.RSSLine(), "310 MiB after 225 600 checkouts (target ≤ 512 MiB after 1 000 000)") || !strings.Contains(v.RSSLine(), "PASS so far") {
		t.Errorf("rss line %q", v.RSSLine())
	}
	v.Last, v.Ratio, v.Checkouts, v.RSSBytes = 1700, 0.21, 2_000_000, 1600<<20
	if !strings.HasSuffix(v.RateLine(), "**FAIL**") || !strings.HasSuffix(v.RSSLine(), "**FAIL**") {
		t.Errorf("failing run judged %q / %q", v.RateLine(), v.RSSLine())
	}
	v.RSSBytes = 400 << 20
	if !strings.HasSuffix(v.RSSLine(), "**PASS**") {
		t.Errorf("a million checkouts in 400 MiB: %q", v.RSSLine())
	}
	one := judgeSustained(sampleRows()[2:], "uniform")
	if !strings.Contains(one.RateLine(), "NOT JUDGED") {
		t.Errorf("one window judged: %q", one.RateLine())
	}
	none := judgeSustained([]windowRow{{Phase: "hot", RSSBytes: -1}}, "hot")
	if !strings.Contains(none.RSSLine(), "NOT JUDGED") {
		t.Errorf("unknown RSS judged: %q", none.RSSLine())
	}
}

func TestSustainedThousandsAndTicks(t *testing.T) {
	for n, want := range map[uint64]string{0: "0", 999: "999", 1000: "1 000", 1_000_000_000: "1 000 000 000", 225600: "225 600"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
	var labels []string
	for _, tk := range (stepTicks{}).Ticks(0, 180.2) {
		labels = append(labels, tk.Label)
	}
	if strings.Join(labels, " ") != "0 20 40 60 80 100 120 140 160 180" {
		t.Errorf("ticks over 180 s: %v", labels)
	}
	labels = labels[:0]
	for _, tk := range (stepTicks{}).Ticks(0, 0.6) {
		labels = append(labels, tk.Label)
	}
	if strings.Join(labels, " ") != "0 0.1 0.2 0.3 0.4 0.5 0.6" {
		t.Errorf("ticks over 0.6 s: %v", labels)
	}
}

func sampleDoc(t *testing.T) []byte {
	t.Helper()
	cfg, err := parseSustained([]string{"-phases", "hot:20s,uniform:10s"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Command = "HOT_DURATION=20s make bench-sustained"
	rows := sampleRows()
	d := sustainedDoc{Cfg: cfg, Started: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), Machine: "nproc 2, Test CPU", Load: "0.10 0.20 0.30",
		PlotRel: "bench/sustained.png", Verdict: judgeSustained(rows, "hot"), Verify: Verify{Successes: 225600, Sold: 0, Reserved: 225600, Consistent: true}}
	var buf bytes.Buffer
	renderSustained(&buf, d, rows)
	return buf.Bytes()
}

func TestSustainedMarkdownSection(t *testing.T) {
	s := string(sampleDoc(t))
	for _, want := range []string{sustainedBegin + "\n## Sustained load\n", "**hot** for 20 s (every checkout on one hot SKU), then **uniform** for 10 s (uniform over 10000 SKUs)",
		"| 1 | hot | 10.0 | 7200 | 75600 | 0 | 3 | 8.00 | 45.00 | 300.0 | 165600 |", "![checkouts/s and server RSS per window](bench/sustained.png)",
		"    HOT_DURATION=20s make bench-sustained\n", "date:    2026-11-22T10:00:00Z", "machine: nproc 2, Test CPU", "load:    0.10 0.20 0.30 (",
		"with 1 000 000 000 units", "0.90× (target ≥ 0.9×): **PASS**",
		"stock check: the client saw 225600 checkouts", sustainedEnd + "\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("section lacks %q:\n%s", want, s)
		}
	}
	if !strings.HasSuffix(s, sustainedEnd+"\n") {
		t.Error("section does not end with its marker")
	}
}

func TestSustainedSectionReplacedInPlace(t *testing.T) {
	section := sampleDoc(t)
	doc := []byte("# Benchmarks\n\ntext\n\n## Machine\n\nmore\n")
	once, err := replaceSustained(doc, section)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(once, doc[:len(doc)-1]) || !bytes.HasSuffix(once, section) {
		t.Fatalf("append:\n%s", once)
	}
	// Text after the section stays where it is, and a rerun leaves one section.
	once = append(once, "\n## Later\n"...)
	newer := bytes.ReplaceAll(section, []byte("7200"), []byte("7300"))
	twice, err := replaceSustained(once, newer)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(twice, []byte("## Sustained load")) != 1 || !bytes.Contains(twice, []byte("| 7300 |")) ||
		bytes.Contains(twice, []byte("| 7200 |")) || !bytes.HasSuffix(twice, []byte("\n## Later\n")) {
		t.Errorf("rerun:\n%s", twice)
	}
	if got := sustainedSection(twice); !bytes.Equal(got, newer) {
		t.Errorf("extracted section differs:\n%s", got)
	}
	if s, err := replaceSustained(nil, section); err != nil || !bytes.Equal(s, section) {
		t.Errorf("into an empty file: %v\n%s", err, s)
	}
	for _, broken := range []string{"a\n" + sustainedBegin + "\nno end\n", "a\n" + sustainedEnd + "\n" + sustainedBegin + "\n"} {
		if _, err := replaceSustained([]byte(broken), section); err == nil {
			t.Errorf("unpaired markers accepted: %q", broken)
		}
	}
}

// `orderbench report` rewrites docs/benchmarks.md; the sustained section,
// measured by another script, must survive it.
func TestSustainedSectionSurvivesReport(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "results")
	os.MkdirAll(in, 0o755)
	for i, l := range []string{"ceiling", "orderd"} {
		var b bytes.Buffer
		if err := writeJSON(&b, fakeResult(l, "hot", 1, float64(1000*(i+1)), 1000)); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(in, l+".json"), b.Bytes(), 0o644)
	}
	out := filepath.Join(dir, "benchmarks.md")
	section := sampleDoc(t)
	os.WriteFile(out, append([]byte("# old report\n\n"), section...), 0o644)
	var stdout, stderr bytes.Buffer
	if err := runReport([]string{"-in", in, "-out", out, "-plots", filepath.Join(dir, "plots")}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	got, _ := os.ReadFile(out)
	if bytes.Contains(got, []byte("# old report")) || !bytes.HasSuffix(got, section) || !bytes.Contains(got, []byte("## Workload `hot`")) {
		t.Errorf("report after a sustained run:\n%s", got)
	}
}

// A short sustained run against the in-process reference server: rows in
// every window, RSS of this process, the CSV, the plot and the markdown.
func TestSustainedEndToEnd(t *testing.T) {
	url := memServer(t, false)
	dir := t.TempDir()
	md := filepath.Join(dir, "benchmarks.md")
	os.WriteFile(md, []byte("# Benchmarks\n"), 0o644)
	args := []string{"sustained", "-url", url, "-token", "tok", "-phases", "hot:400ms,uniform:200ms", "-skus", "50",
		"-window", "100ms", "-warmup", "50ms", "-concurrency", "4", "-server-pid", strconv.Itoa(os.Getpid()), "-ttl", "3600",
		"-csv", filepath.Join(dir, "w.csv"), "-plot", filepath.Join(dir, "plots", "s.png"), "-md", md}
	os.MkdirAll(filepath.Join(dir, "plots"), 0o755)
	for round := range 2 {
		var stdout, stderr bytes.Buffer
		if err := run(t.Context(), args, &stdout, &stderr); err != nil {
			t.Fatalf("round %d: %v\n%s\n%s", round, err, stdout.String(), stderr.String())
		}
		if round == 0 {
			t.Log(stdout.String())
		}
	}
	recs, err := csv.NewReader(bytes.NewReader(must(os.ReadFile(filepath.Join(dir, "w.csv"))))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// 400 ms and 200 ms in 100 ms windows: 4 and 2, give or take the timer.
	if len(recs) < 6 || len(recs) > 8 || recs[1][1] != "hot" || recs[len(recs)-1][1] != "uniform" {
		t.Fatalf("csv: %v", recs)
	}
	for _, r := range recs[1:] {
		// An error here would also be a checkout body the server refused (-ttl).
		if r[10] == "" || r[4] == "0.0" || r[7] != "0" {
			t.Errorf("window without RSS or checkouts, or with errors: %v", r)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "plots", "s.png")); err != nil || fi.Size() < 1000 {
		t.Errorf("plot: %v", err)
	}
	doc := string(must(os.ReadFile(md)))
	if strings.Count(doc, "## Sustained load") != 1 || !strings.HasPrefix(doc, "# Benchmarks\n\n"+sustainedBegin) ||
		!strings.Contains(doc, "](plots/s.png)") || !strings.Contains(doc, "oversell 0: **PASS**") {
		t.Errorf("markdown after two runs:\n%s", doc)
	}
}

func TestSustainedOversellFails(t *testing.T) {
	url := memServer(t, true)
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"sustained", "-url", url, "-token", "tok", "-phases", "hot:200ms", "-stock", "20",
		"-window", "100ms", "-warmup", "0s", "-concurrency", "4"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "stock check failed") || !strings.Contains(stdout.String(), "stock check: ") {
		t.Errorf("an overselling server passed: %v\n%s", err, stdout.String())
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestKeptSectionsSurviveTheRewrite(t *testing.T) {
	doc := []byte("# generated\n\n" + keptMarker + "\n## Cluster routing\n\nnumbers\n")
	got := keptSections(doc)
	if !bytes.HasPrefix(got, []byte(keptMarker)) || !bytes.HasSuffix(got, []byte("numbers\n")) {
		t.Fatalf("kept %q", got)
	}
	if keptSections([]byte("# generated only\n")) != nil {
		t.Fatal("a report without the marker kept something")
	}
}
