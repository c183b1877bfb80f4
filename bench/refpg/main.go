// Command refpg is the PostgreSQL reference server: one transaction per
// checkout, each line reserved with
//
//	UPDATE skus SET available = available - $1, reserved = reserved + $1
//	WHERE sku = $2 AND available >= $1
//
// and the order inserted in the same transaction. It refuses to start unless
// synchronous_commit and fsync are on, so a 201 means the order is on disk.
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

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orderengine/orderengine/bench/refapi"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "refpg:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("refpg", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("http", "127.0.0.1:8092", "listen address")
	token := fs.String("admin-token", "", "admin bearer token (required)")
	dsn := fs.String("pg", "postgres://postgres@127.0.0.1:5432/postgres", "PostgreSQL connection string")
	pool := fs.Int("pool", 32, "PostgreSQL connections")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *token == "" {
		return errors.New("-admin-token is required")
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg, err := pgxpool.ParseConfig(*dsn)
	if err != nil {
		return fmt.Errorf("parse -pg: %w", err)
	}
	cfg.MaxConns = int32(*pool)
	cfg.MinConns = int32(*pool)
	db, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect postgres: %w", err)
	}
	defer db.Close()
	if err := checkDurable(ctx, db); err != nil {
		return err
	}
	if _, err := db.Exec(ctx, schema); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	return refapi.ListenAndServe(ctx, *addr, refapi.NewHandler(&store{db: db}, *token, log).Serve)
}

// checkDurable refuses a server that would acknowledge before the commit is on disk.
func checkDurable(ctx context.Context, db *pgxpool.Pool) error {
	for _, setting := range []string{"synchronous_commit", "fsync"} {
		var v string
		if err := db.QueryRow(ctx, "SELECT current_setting($1)", setting).Scan(&v); err != nil {
			return fmt.Errorf("read %s: %w", setting, err)
		}
		if v != "on" {
			return fmt.Errorf("%s is %q: the reference server measures durable commits only", setting, v)
		}
	}
	return nil
}
