package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Bounds of `orderbench sustained`.
const (
	sustainedMax = 24 * time.Hour
	windowMin    = 10 * time.Millisecond
	windowsMax   = 100_000 // rows kept in memory and written to the table
	// serverDefaultTTL is API.md's default ttl_seconds: a checkout sent without
	// one expires this long after it was placed.
	serverDefaultTTL = 900 * time.Second
	ttlMax           = 86_400 // API.md's upper bound on ttl_seconds
	// ttlMargin is left between the end of the load and the first expiry for
	// the stock check, which reads every SKU back.
	ttlMargin = time.Minute
)

// sustainedConfig is one sustained run: phases of closed-loop load against
// one server process, reported window by window.
type sustainedConfig struct {
	URL, Token, Label string
	Phases            []phase
	SKUs              int
	Stock             int64
	Window, Warmup    time.Duration
	Concurrency       int
	Seed              int64
	PID               int // server process to sample VmRSS from; 0 for none
	TTL               int // ttl_seconds sent with each checkout; 0 for the server's default
	CSV, Plot, MD     string
	Command           string // how to reproduce the run, for the markdown section
	ServerInfo        string // what was measured (binary, commit), for the markdown section
}

func parseSustained(args []string, stderr io.Writer) (sustainedConfig, error) {
	fs := flag.NewFlagSet("orderbench sustained", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c sustainedConfig
	fs.StringVar(&c.URL, "url", "http://127.0.0.1:8080", "base URL of the server under test")
	fs.StringVar(&c.Token, "token", "", "admin bearer token (for the restocks in setup)")
	fs.StringVar(&c.Label, "label", "orderd", "name of the server under test, for the report")
	spec := fs.String("phases", "hot:120s,uniform:60s", "WORKLOAD:DURATION,... run one after the other against the same server (a 0 duration skips that phase)")
	fs.IntVar(&c.SKUs, "skus", 10_000, "SKUs of each phase's workload (hot always uses one)")
	fs.Int64Var(&c.Stock, "stock", stockMax, "units restocked per SKU before the first phase")
	fs.DurationVar(&c.Window, "window", 10*time.Second, "length of each reported window")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "load sent before the first window (its checkouts count in the totals)")
	fs.IntVar(&c.Concurrency, "concurrency", 64, "closed-loop workers (one connection each)")
	fs.Int64Var(&c.Seed, "seed", 1, "random seed")
	fs.IntVar(&c.PID, "server-pid", 0, "PID of the server process, to read its VmRSS at the end of each window (0: no RSS)")
	fs.IntVar(&c.TTL, "ttl", 0, "ttl_seconds of each checkout (0: the server's default of 900 s)")
	fs.StringVar(&c.CSV, "csv", "", "write the windows as CSV to this file")
	fs.StringVar(&c.Plot, "plot", "", "draw checkouts/s and RSS over time into this PNG")
	fs.StringVar(&c.MD, "md", "", "replace (or append) the sustained-load section of this markdown file")
	fs.StringVar(&c.Command, "command", "", "the command that reproduces this run, quoted in the markdown section")
	fs.StringVar(&c.ServerInfo, "server-info", "", "what was measured (binary, commit), quoted in the markdown section")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("sustained: unexpected arguments %q", fs.Args())
	}
	var err error
	if c.Phases, err = parsePhases(*spec); err != nil {
		return c, err
	}
	return c, c.validate()
}

// parsePhases reads "hot:120s,uniform:60s"; phases of zero duration are left
// out, so that a script can switch one off by its duration alone.
func parsePhases(spec string) ([]phase, error) {
	var out []phase
	for _, item := range strings.Split(spec, ",") {
		name, dur, ok := strings.Cut(strings.TrimSpace(item), ":")
		if !ok {
			return nil, fmt.Errorf("-phases: %q is not WORKLOAD:DURATION", item)
		}
		d, err := time.ParseDuration(dur)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("-phases: %q: want a duration of 0 or more, like 120s", item)
		}
		if _, err := newWorkload(name, "x", 1); err != nil {
			return nil, fmt.Errorf("-phases: %w", err)
		}
		if d > 0 {
			out = append(out, phase{Name: name, Duration: d})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("-phases: every phase has a zero duration")
	}
	return out, nil
}

func (c *sustainedConfig) validate() error {
	var run time.Duration
	for _, p := range c.Phases {
		run += p.Duration
	}
	ttl := serverDefaultTTL
	if c.TTL > 0 {
		ttl = time.Duration(c.TTL) * time.Second
	}
	skus := 0
	for _, p := range c.Phases {
		if p.Name == workloadHot {
			skus++
		} else {
			skus += c.SKUs
		}
	}
	switch {
	case c.SKUs < 1 || c.SKUs > skusMax:
		return fmt.Errorf("-skus %d out of range 1..%d", c.SKUs, skusMax)
	case skus > verifySKUsMax:
		return fmt.Errorf("the phases use %d SKUs; the stock check reads at most %d", skus, verifySKUsMax)
	case c.Stock < 1 || c.Stock > stockMax:
		return fmt.Errorf("-stock %d out of range 1..%d", c.Stock, stockMax)
	case run+c.Warmup > sustainedMax || c.Warmup < 0:
		return fmt.Errorf("-phases and -warmup add up to %s; at most %s", run+c.Warmup, sustainedMax)
	case c.Window < windowMin || run/c.Window > windowsMax:
		return fmt.Errorf("-window %s: want at least %s and at most %d windows in the run", c.Window, windowMin, windowsMax)
	case c.Concurrency < 1 || c.Concurrency > concurrencyMax:
		return fmt.Errorf("-concurrency %d out of range 1..%d", c.Concurrency, concurrencyMax)
	case c.TTL < 0 || c.TTL > ttlMax:
		return fmt.Errorf("-ttl %d out of range 0..%d", c.TTL, ttlMax)
	case c.Warmup+run+ttlMargin > ttl:
		// An expired order gives its unit back, and the stock check could not
		// tell that apart from a lost reservation.
		return fmt.Errorf("the run (%s) would outlast the checkouts' TTL (%s) before the stock check; pass a longer -ttl (at most %d)",
			c.Warmup+run, ttl, ttlMax)
	case c.PID < 0:
		return fmt.Errorf("-server-pid %d: want a PID or 0", c.PID)
	}
	return nil
}

// runSustained restocks every phase's SKUs, runs the phases back to back
// against the same server, prints a row per window as it closes, then checks
// the stock and writes the CSV, the plot and the markdown section.
func runSustained(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseSustained(args, stderr)
	if err != nil {
		return err
	}
	load := loadAverage() // before setup adds its own
	c, err := newClient(cfg.URL, cfg.Token, cfg.Concurrency+setupWorkers)
	if err != nil {
		return err
	}
	c.ttl = cfg.TTL
	prefix := "s" + strconv.FormatInt(time.Now().UnixNano()/1e6, 36)
	var skus []string
	for i := range cfg.Phases {
		w, err := newWorkload(cfg.Phases[i].Name, fmt.Sprintf("%s-p%d", prefix, i), cfg.SKUs)
		if err != nil {
			return err
		}
		cfg.Phases[i].w = w
		skus = append(skus, w.skus...)
	}
	if err := restockAll(ctx, c, skus, cfg.Stock); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	before, err := sumSKUs(ctx, c, skus)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	sink, err := newWindowSink(stdout, cfg.CSV)
	if err != nil {
		return err
	}
	doc := sustainedDoc{Cfg: cfg, Started: time.Now().UTC(), Load: load}
	rows, t, loadErr := runPhases(ctx, c, cfg, sink.row)
	if err := sink.close(); err != nil {
		return err
	}
	if loadErr != nil {
		return loadErr
	}
	v, err := verifyStock(ctx, c, skus, cfg.Stock, before, t)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	doc.Verdict, doc.Verify = judgeSustained(rows, cfg.Phases[0].Name), v
	writeVerdict(stdout, doc.Verdict, v)
	if err := writeSustainedFiles(stdout, doc, rows); err != nil {
		return err
	}
	if v.Oversell > 0 || !v.Consistent {
		return fmt.Errorf("stock check failed: oversell %d, consistent %t", v.Oversell, v.Consistent)
	}
	return nil
}

// runPhases runs cfg's phases one after the other over the same connections;
// only the first one warms up, since the server is warm from then on.
func runPhases(ctx context.Context, c *client, cfg sustainedConfig, onRow func(windowRow)) ([]windowRow, *tally, error) {
	rec := newWindowRecorder(cfg.PID, onRow)
	total := newTally()
	for i, ph := range cfg.Phases {
		warmup := time.Duration(0)
		if i == 0 {
			warmup = cfg.Warmup
		}
		// Seeds far apart, so that no sender of one phase repeats another's draws.
		t, err := runPhase(ctx, c, ph, cfg.Concurrency, cfg.Seed+int64(i)*concurrencyMax, warmup, cfg.Window, rec)
		if err != nil {
			return rec.rows, nil, err
		}
		total.merge(t)
		if ctx.Err() != nil {
			return rec.rows, nil, fmt.Errorf("interrupted in phase %s: %w", ph.Name, ctx.Err())
		}
	}
	return rec.rows, total, nil
}

// windowSink prints each row to the live table and appends it to the CSV as
// soon as its window closes, so that an interrupted run keeps what it measured.
type windowSink struct {
	out  io.Writer
	f    *os.File
	csv  *csv.Writer
	errs []error
}

func newWindowSink(out io.Writer, csvPath string) (*windowSink, error) {
	s := &windowSink{out: out}
	if csvPath != "" {
		f, err := os.Create(csvPath)
		if err != nil {
			return nil, fmt.Errorf("csv: %w", err)
		}
		s.f, s.csv = f, csv.NewWriter(f)
		s.csvWrite(csvHeader)
	}
	fmt.Fprintln(out, windowTableHeader)
	return s, nil
}

func (s *windowSink) row(r windowRow) {
	fmt.Fprintln(s.out, formatWindowRow(r))
	if s.csv != nil {
		s.csvWrite(csvRecord(r))
	}
}

// csvWrite keeps the first error only: a full disk would repeat it on every row.
func (s *windowSink) csvWrite(rec []string) {
	if len(s.errs) > 0 {
		return
	}
	if err := s.csv.Write(rec); err != nil {
		s.errs = append(s.errs, err)
		return
	}
	s.csv.Flush()
	if err := s.csv.Error(); err != nil {
		s.errs = append(s.errs, err)
	}
}

func (s *windowSink) close() error {
	if s.f != nil {
		s.errs = append(s.errs, s.f.Close())
	}
	if err := errors.Join(s.errs...); err != nil {
		return fmt.Errorf("csv: %w", err)
	}
	return nil
}
