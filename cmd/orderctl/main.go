// Command orderctl is the order engine's admin tool: it backs a node up
// (from its admin API while it runs, or from its data directory while it
// is stopped), restores a backup into a new data directory, lists what a
// data directory or backup holds, verifies that every invariant holds, and
// shows a node's cluster or forgets a dead member.
//
//	orderctl backup  -from http://127.0.0.1:8080 -token TOKEN -o node.backup
//	orderctl backup  -data ./data -o node.backup
//	orderctl restore -i node.backup -data ./restored
//	orderctl verify  -data ./restored
//	orderctl inspect -data ./restored [-json] [sku ID | order ID]
//	orderctl cluster status -from http://127.0.0.1:8080 [-json]
//	orderctl cluster forget -from http://127.0.0.1:8080 -token TOKEN -yes NODE
//
// Every command has -h with examples.
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
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "orderctl:", err)
		os.Exit(1)
	}
}
