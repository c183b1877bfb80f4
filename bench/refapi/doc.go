// Package refapi is the part of the checkout API (shared/API.md) that the
// benchmark's reference servers share: routing, request validation, JSON
// shapes and problem responses over a small Store interface. Each reference
// server (bench/refredis, bench/refpg) is then only its Store, so the
// comparison measures the storage design and not differences in HTTP code.
//
// It covers the checkout routes (restock, SKU view, place, get, pay, cancel),
// the contract's status codes and problem slugs for them, and /healthz and
// /readyz. It does not cover idempotency keys, remove, ship, complete,
// admission control or reservation expiry in the background: a pay after
// expires_at is refused, but stock is not returned by a timer. Benchmark
// runs are far shorter than the default 900 s TTL, so this does not change
// what is measured.
//
// Ceiling is the upper bound every figure is compared with: a fasthttp
// handler that parses the checkout JSON and answers 201 without doing any work.
package refapi
