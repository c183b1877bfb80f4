// Command orderbench is a load generator for the checkout API (shared/API.md):
// any server that implements it can be measured, which is how our engine is
// compared with the designs users would otherwise build (bench/).
//
//	orderbench -url http://127.0.0.1:8080 -token T -workload hot -duration 10s
//	orderbench wrk -url http://127.0.0.1:8080 -token T -workload uniform -duration 10s
//	orderbench report -in results/ -out docs/benchmarks.md -plots docs/bench
//	orderbench sustained -url http://127.0.0.1:8080 -token T -phases hot:120s,uniform:60s -window 10s -server-pid PID
//	orderbench freeport
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "orderbench:", err)
		}
		os.Exit(1)
	}
}

// Bounds on the flags.
const (
	skusMax       = 1_000_000
	stockMax      = 1_000_000_000 // the API's restock limit per request
	durationMax   = time.Hour
	setupWorkers  = 32 // parallel restocks and SKU reads around the run
	setupTimeout  = 2 * time.Minute
	verifySKUsMax = 100_000 // beyond this the stock check is skipped
)

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "report":
			return runReport(args[1:], stdout, stderr)
		case "wrk":
			return runWrk(ctx, args[1:], stdout, stderr)
		case "sustained":
			return runSustained(ctx, args[1:], stdout, stderr)
		case "freeport":
			return freePort(stdout)
		}
	}
	fs := flag.NewFlagSet("orderbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rawURL := fs.String("url", "http://127.0.0.1:8080", "base URL of the server under test")
	token := fs.String("token", "", "admin bearer token (for the restocks in setup)")
	label := fs.String("label", "", "name of the server under test, for reports (default: the URL)")
	wl := fs.String("workload", workloadUniform, "uniform, hot, zipf or mixed")
	skus := fs.Int("skus", 10_000, "number of SKUs (hot always uses one)")
	stock := fs.Int64("stock", stockMax, "units restocked per SKU before the run")
	prefix := fs.String("sku-prefix", "", "SKU name prefix (default: unique per run, so every run starts from fresh SKUs)")
	duration := fs.Duration("duration", 10*time.Second, "measured duration")
	warmup := fs.Duration("warmup", 2*time.Second, "load sent before measuring")
	conc := fs.Int("concurrency", 64, "closed loop: workers; open loop: max requests in flight")
	rate := fs.Int("rate", 0, "open loop at this many requests/s (0: closed loop)")
	format := fs.String("format", "table", "table or json")
	seed := fs.Int64("seed", 1, "random seed")
	round := fs.Int("round", 0, "round number, copied into the JSON for reports")
	verify := fs.Bool("verify", true, "check stock through the SKU view afterwards (off for servers without stock, like the ceiling)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *format != "table" && *format != "json":
		return fmt.Errorf("-format %q: want table or json", *format)
	case *skus < 1 || *skus > skusMax:
		return fmt.Errorf("-skus %d out of range 1..%d", *skus, skusMax)
	case *stock < 1 || *stock > stockMax:
		return fmt.Errorf("-stock %d out of range 1..%d", *stock, stockMax)
	case *duration <= 0 || *duration > durationMax || *warmup < 0 || *warmup > durationMax:
		return fmt.Errorf("-duration and -warmup must be within 0..%s (duration above 0)", durationMax)
	}
	if *prefix == "" {
		*prefix = "b" + strconv.FormatInt(time.Now().UnixNano()/1e6, 36)
	}
	if *label == "" {
		*label = *rawURL
	}
	w, err := newWorkload(*wl, *prefix, *skus)
	if err != nil {
		return err
	}
	c, err := newClient(*rawURL, *token, *conc+setupWorkers)
	if err != nil {
		return err
	}
	if err := restockAll(ctx, c, w.skus, *stock); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	var before skuTotals
	if *verify {
		if before, err = sumSKUs(ctx, c, w.skus); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
	}
	cfg := loadConfig{Concurrency: *conc, Rate: *rate, Warmup: *warmup, Duration: *duration, Seed: *seed}
	started := time.Now().UTC()
	t, measured, err := runLoad(ctx, c, w, cfg)
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	res := newResult(t, measured)
	res.Label, res.Generator, res.Workload, res.Concurrency, res.Rate = *label, generatorOrderbench, w.name, *conc, *rate
	res.SKUs, res.Stock, res.Seed, res.Round, res.StartedAt = len(w.skus), *stock, *seed, *round, started
	res.Mode = "closed"
	if *rate > 0 {
		res.Mode = "open"
	}
	if *verify {
		v, err := verifyStock(ctx, c, w.skus, *stock, before, t)
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
		return fmt.Errorf("stock check failed: oversell %d, consistent %t", v.Oversell, v.Consistent)
	}
	return nil
}

// freePort prints a TCP port on 127.0.0.1 that was free a moment ago, for
// scripts that start servers.
func freePort(stdout io.Writer) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return fmt.Errorf("find a free port: %w", err)
	}
	_, err = fmt.Fprintln(stdout, port)
	return err
}
