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
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/cluster"
	"github.com/orderengine/orderengine/gateway"
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
	fatal := make(chan error, 1)
	status := &nodeStatus{}
	eng := &engine{clock: actors.SystemClock{}, notReady: status.readiness}
	backups := &journalBackups{node: ln.Addr().String()} // answers 503 until the journal is open
	gcfg := gateway.Config{
		Engine:         eng,
		AdminToken:     token,
		Logger:         log.With("component", "gateway"),
		Registry:       reg,
		RequestTimeout: cfg.requestTimeout,
		Readiness:      status.readiness,
		MaxConns:       cfg.maxConns,

		CustomerRate:        rateLimit(cfg.customerRate, cfg.customerBurst),
		ClientRate:          rateLimit(cfg.clientRate, cfg.clientBurst),
		RateLimitEntriesMax: cfg.rateLimitEntries,
		TrustForwardedFor:   cfg.trustForwardedFor,

		Backups: backups,
	}
	if cfg.clustered() {
		gcfg.Cluster, gcfg.ForgetNode = status.clusterView, status.forgetNode
	}
	gcfg.Dashboard = newNodeDashboard(cfg, status, eng, jm, ln.Addr().String()).view
	gw, err := gateway.New(gcfg)
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
	// Serve before the journal opens: a node whose volume is too full to
	// open answers /healthz, and /readyz with the reason, while it waits.
	serveErr := make(chan error, 1)
	serving = true
	go func() { serveErr <- gw.Serve(ln) }()
	log.Info("orderd listening", "http", ln.Addr().String(), "data", cfg.dataDir)

	journal, err := openJournal(ctx, filepath.Join(cfg.dataDir, "journal"), journalOptions(cfg, log, jm, fatal), status, log)
	if err != nil || journal == nil { // nil: stopped while waiting for space
		return errors.Join(err, stop(gw, ln, nil, serveErr, log))
	}
	defer func() {
		if err := journal.Close(); err != nil {
			log.Error("close journal", "err", err)
		}
	}()
	registerStorageMetrics(reg, journal)
	backups.use(journal)

	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(deadLettersAtDebug{log.Handler()}).With("component", "actors")
	}))
	defer system.Shutdown()
	// A cluster member starts remote before any actor exists: a PID made
	// earlier carries no address another node can answer to.
	var routed *routing
	var remoting *remote.Remote
	var remoteAuth *cluster.RemoteAuth
	if cfg.clustered() {
		if remoting, remoteAuth, err = startRemote(cfg, system); err != nil {
			return errors.Join(err, stop(gw, ln, nil, serveErr, log))
		}
		routed = &routing{log: log.With("component", "cluster")}
	}
	actorLog := log.With("component", "actors")
	skus := actors.NewRegistry(system, actors.SKUConfig{
		Journal: journal, SnapshotEvery: cfg.snapshotEvery, PassivateAfter: cfg.passivateAfter, Logger: actorLog,
	})
	skus.SetResidentMax(cfg.residentMax)
	orderCfg := actors.OrderConfig{
		Journal: journal, SnapshotEvery: cfg.snapshotEvery, PassivateAfter: cfg.orderPassivate,
		Retention: cfg.orderRetention, Logger: actorLog,
	}
	if routed != nil {
		orderCfg.SKUs = routed // an order's SKUs may live on other nodes
	}
	orders := actors.NewOrders(skus, orderCfg)
	registerActorMetrics(reg, skus, cfg.residentMax)
	held := func() int { return journal.Partitions() } // one node holds them all
	var mem *member
	if routed != nil {
		mem, err = startMember(cfg, memberDeps{
			journal: journal, system: system, remote: remoting, auth: remoteAuth, skus: skus, orders: orders, routing: routed, metrics: reg,
		}, log.With("component", "cluster"))
		if err != nil {
			remoting.Shutdown(false)
			return errors.Join(fmt.Errorf("cluster: %w", err), stop(gw, ln, skus, serveErr, log))
		}
		held = mem.served.count
		status.member.Store(mem)
	}
	registerPartitionMetrics(reg, held, journal.Partitions())
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

	eng.node.Store(&nodeActors{skus: skus, orders: orders, routed: routed})
	status.serving(journal)
	log.Info("orderd ready")

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case err := <-fatal:
		log.Error("orderd exits: its journal failed, and a restart recovers from the data directory", "err", err)
		status.stop()
		return errors.Join(fmt.Errorf("journal failed: %w", err), mem.crash(), stop(gw, ln, skus, serveErr, log))
	case <-ctx.Done():
	}
	log.Info("orderd stopping")
	var leaveErr error
	if mem != nil {
		// Hand the partitions off while the gateway still routes: requests
		// for a partition on its way answer 503 for that moment only.
		lctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		leaveErr = mem.leave(lctx)
		cancel()
	}
	status.stop()
	return errors.Join(leaveErr, stop(gw, ln, skus, serveErr, log))
}

// stop finishes in-flight requests, then stops the actors (if the node
// got as far as starting them) so they snapshot; the deferred closes in
// run then close the journal.
func stop(gw *gateway.Server, ln net.Listener, skus *actors.Registry, serveErr <-chan error, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var errs []error
	if err := gw.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("stop gateway: %w", err))
	}
	// fasthttp's Shutdown misses a Serve that had not begun yet (a node
	// that fails right after it starts serving); a closed listener ends
	// that Serve too. Shutdown may have closed it already.
	ln.Close()
	if err := <-serveErr; err != nil {
		errs = append(errs, fmt.Errorf("serve: %w", err))
	}
	if skus != nil {
		actx, acancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer acancel()
		if err := skus.StopAll(actx); err != nil {
			errs = append(errs, err)
		}
	}
	log.Info("orderd stopped")
	return errors.Join(errs...)
}
