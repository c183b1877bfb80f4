// Command refredis is the Redis reference server: the checkout design most
// teams reach for first. A Lua script reserves stock atomically, records the
// order and appends an event to a Redis stream in the same call; a background
// consumer reads the stream and persists the orders to an append-only file,
// fsynced per batch. A 201 therefore means "in Redis": its durability is
// Redis's own (appendfsync everysec loses up to a second of acknowledged
// orders on a crash, appendfsync always loses none), which the benchmark
// reports next to the figures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/orderengine/orderengine/bench/refapi"
	"github.com/redis/go-redis/v9"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "refredis:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("refredis", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("http", "127.0.0.1:8091", "listen address")
	token := fs.String("admin-token", "", "admin bearer token (required)")
	redisAddr := fs.String("redis", "127.0.0.1:6379", "Redis address")
	pool := fs.Int("pool", 64, "Redis connections")
	ordersFile := fs.String("orders-file", "orders.jsonl", "file the stream consumer appends orders to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *token == "" {
		return errors.New("-admin-token is required")
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rdb := redis.NewClient(&redis.Options{Addr: *redisAddr, PoolSize: *pool, MinIdleConns: *pool / 4})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis %s: %w", *redisAddr, err)
	}
	f, err := os.OpenFile(*ordersFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open orders file: %w", err)
	}
	defer f.Close()
	st := &store{rdb: rdb}
	cons := &consumer{rdb: rdb, out: f, log: log}
	if err := cons.init(ctx); err != nil {
		return err
	}
	cctx, cancel := context.WithCancel(ctx)
	consDone := make(chan error, 1)
	go func() { consDone <- cons.run(cctx) }()
	serr := refapi.ListenAndServe(ctx, *addr, refapi.NewHandler(st, *token, log).Serve)
	cancel()
	if cerr := <-consDone; cerr != nil && serr == nil {
		serr = cerr
	}
	return serr
}
