package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/gateway"
	"github.com/orderengine/orderengine/persistence"
)

// shutdownTimeout bounds each stage of a clean stop.
const shutdownTimeout = 15 * time.Second

// run is orderd: it returns when ctx is cancelled (a signal) and the node
// has stopped, or when it cannot start or serve.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, err := parseConfig(args, stderr, getenv)
	if err != nil {
		return err
	}
	if cfg.version {
		fmt.Fprintln(stdout, "orderd", buildVersion())
		return nil
	}
	log := newLogger(cfg, stderr)
	if cfg.memoryLimit > 0 {
		debug.SetMemoryLimit(int64(cfg.memoryLimit))
	}
	// Take the HTTP address before anything is written: a node that cannot
	// serve must not create a data directory or a token on its way out.
	ln, err := net.Listen("tcp", cfg.httpAddr)
	if err != nil {
		return fmt.Errorf("listen on -http %s: %w", cfg.httpAddr, err)
	}
	serving := false
	defer func() {
		if !serving {
			ln.Close()
		}
	}()
	if err := os.MkdirAll(cfg.dataDir, 0o750); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	token, tokenPath, created, err := loadAdminToken(cfg)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(stdout, "orderd: generated an admin token, stored in %s\n", tokenPath)
	} else if tokenPath != "" {
		log.Info("admin token read from data directory", "path", tokenPath)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	jm := newJournalMetrics(reg)
	jopts := persistence.DefaultOptions()
	jopts.Logger, jopts.OnFlush = log.With("component", "journal"), jm.observe
	journal, err := persistence.Open(filepath.Join(cfg.dataDir, "journal"), jopts)
	if err != nil {
		return err
	}
	defer func() {
		if err := journal.Close(); err != nil {
			log.Error("close journal", "err", err)
		}
	}()

	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(deadLettersAtDebug{log.Handler()}).With("component", "actors")
	}))
	defer system.Shutdown()
	actorLog := log.With("component", "actors")
	skus := actors.NewRegistry(system, actors.SKUConfig{
		Journal: journal, SnapshotEvery: cfg.snapshotEvery, PassivateAfter: cfg.passivateAfter, Logger: actorLog,
	})
	skus.SetResidentMax(cfg.residentMax)
	orders := actors.NewOrders(skus, actors.OrderConfig{
		Journal: journal, SnapshotEvery: cfg.snapshotEvery, PassivateAfter: cfg.orderPassivate,
		Retention: cfg.orderRetention, Logger: actorLog,
	})
	registerActorMetrics(reg, skus, cfg.residentMax)
	registerPartitionMetrics(reg, jopts.Partitions, jopts.Partitions) // one node holds them all
	// Nothing is loaded in bulk at start: the waker activates what the
	// journal's wake index says is due (orders whose saga owes a SKU
	// command, unpaid orders at their expiry, SKUs at their first safety
	// expiry, terminal orders at the end of their retention).
	wakeCtx, stopWaker := context.WithCancel(context.Background())
	wakerDone := make(chan struct{})
	go func() {
		defer close(wakerDone)
		orders.RunWaker(wakeCtx, actors.SystemClock{}, actors.DefaultWakeInterval, func(err error) {
			log.Error("wake due actors", "err", err)
		})
	}()
	defer func() {
		stopWaker()
		<-wakerDone
	}()

	var ready atomic.Bool
	gw, err := gateway.New(gateway.Config{
		Engine:         &engine{skus: skus, orders: orders, clock: actors.SystemClock{}},
		AdminToken:     token,
		Logger:         log.With("component", "gateway"),
		Registry:       reg,
		RequestTimeout: cfg.requestTimeout,
		Readiness:      ready.Load,
		MaxConns:       cfg.maxConns,

		CustomerRate:        rateLimit(cfg.customerRate, cfg.customerBurst),
		ClientRate:          rateLimit(cfg.clientRate, cfg.clientBurst),
		RateLimitEntriesMax: cfg.rateLimitEntries,
		TrustForwardedFor:   cfg.trustForwardedFor,
	})
	if err != nil {
		return err
	}
	if cfg.debugAddr != "" {
		stopDebug, err := serveDebug(cfg.debugAddr, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}
	serveErr := make(chan error, 1)
	serving = true
	go func() { serveErr <- gw.Serve(ln) }()
	ready.Store(true)
	log.Info("orderd listening", "http", ln.Addr().String(), "data", cfg.dataDir)

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("orderd stopping")
	ready.Store(false)
	return stop(gw, skus, serveErr, log)
}

// stop finishes in-flight requests, then stops the actors so they
// snapshot; the deferred closes in run then close the journal.
func stop(gw *gateway.Server, skus *actors.Registry, serveErr <-chan error, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var errs []error
	if err := gw.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("stop gateway: %w", err))
	}
	if err := <-serveErr; err != nil {
		errs = append(errs, fmt.Errorf("serve: %w", err))
	}
	actx, acancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer acancel()
	if err := skus.StopAll(actx); err != nil {
		errs = append(errs, err)
	}
	log.Info("orderd stopped")
	return errors.Join(errs...)
}
