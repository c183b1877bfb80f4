package main

// methodology is the fixed part of docs/benchmarks.md: what runs, what is
// measured and how to reproduce it. The figures around it are generated.
const methodology = `## What is compared

Every server implements the checkout routes of the API contract (shared/API.md) on fasthttp, on
127.0.0.1, with the same JSON shapes; the load generators run on the same machine.

- **ceiling** (` + "`bench/ceiling`" + `): parses the checkout JSON and answers 201 with an order view;
  no state, no I/O. Nothing on this HTTP stack can be faster, so it is the yardstick.
- **orderd** (` + "`cmd/orderd`" + `): our engine, one node, fresh data directory.
- **redis-everysec / redis-always** (` + "`bench/refredis`" + `): a Lua script checks and reserves
  every line, stores the order hash and appends an event to a Redis stream in one atomic call; a
  background consumer group reads the stream and appends the orders to a file (JSON lines, fsync
  per batch) before acknowledging them. Redis runs with AOF on and RDB snapshots off, with
  ` + "`appendfsync everysec`" + ` (the Redis default) or ` + "`always`" + `.
- **postgres** (` + "`bench/refpg`" + `): one transaction per checkout:
  ` + "`UPDATE skus SET available = available - $1, reserved = reserved + $1 WHERE sku = $2 AND available >= $1`" + `
  per line, then ` + "`INSERT INTO orders`" + `; ` + "`synchronous_commit=on`, `fsync=on`" + ` (the server refuses to
  start otherwise), a pool of 32 connections.

The reference servers are what a team would build in a day, kept honest: no batching of
checkouts across requests, no caching of stock outside the store. They do not implement
idempotency keys or TTL expiry by a timer (runs are far shorter than the 900 s default TTL).

## Workloads

Closed loop: {{workers}} workers each send the next request as soon as the last is answered; warm-up
requests are not measured. Each run starts from fresh SKUs restocked before the clock starts.

- **uniform**: checkouts of one unit of a SKU drawn uniformly from {{skus}}.
- **hot**: every checkout on one SKU (a flash sale), with enough stock to last the run, so the
  figure is the contended write path.
- **zipf**: SKUs drawn from a Zipf distribution (s = 1.1) over {{skus}}: a few best sellers.
- **mixed**: 50 % checkouts, 20 % pays and 10 % cancels of orders placed earlier, 10 % order
  reads, 10 % SKU reads.

Two load generators measure every server in the same run, each against a fresh server: ` + "`bench/orderbench`" + `
(Go) runs every workload; **wrk** (C, from Debian, driven by ` + "`orderbench wrk`" + ` with
` + "`bench/wrk/checkout.lua`" + `) runs uniform and hot with the same request body, the same number of
connections and a warm-up run of its own. On a machine with few cores the client's CPU is taken
from the server, and more of it the faster the server answers, which skews every ratio; wrk spends
less CPU per request than orderbench and runs on one thread, so it leaves more of the machine to the
server. Compare ratios within one load generator, never across them.

After each run orderbench reads every SKU back through ` + "`GET /v1/skus/{sku}`" + ` and checks that
` + "`sold + reserved`" + ` grew by exactly the checkouts the client was told succeeded, less its cancels
(a "stock check"), and that none of them went beyond the stock (oversell). The flash-sale table
below runs a real sell-out: little stock, many buyers. wrk stops by closing the connections
with a request in flight, so after a wrk run the server may hold up to that many checkouts the
client never saw answered: the check allows exactly those (the Lua script counts the requests it
built and the answers by status) and still demands that no unit appeared or vanished and that
nothing was sold beyond the stock.

Latency is measured per request from when it was sent (closed loop) or scheduled (open loop,
` + "`-rate`" + `), in a log-linear histogram with under 1 % error; percentiles are the upper edge of their
bucket. wrk's percentiles come from its own histogram (microseconds), closed loop.
`
