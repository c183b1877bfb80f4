// Command orderd runs one node of the order engine: the journal in its
// data directory, the SKU and order actors, and the checkout HTTP API.
//
//	orderd -data ./data -http 127.0.0.1:8080
//
// Every flag may also be set as ORDERD_<FLAG> in the environment
// (ORDERD_ADMIN_TOKEN, ORDERD_HTTP). SIGTERM or SIGINT stops it cleanly:
// it stops admitting requests, finishes those in flight, snapshots the
// actors and closes the journal.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "orderd:", err)
		os.Exit(1)
	}
}
