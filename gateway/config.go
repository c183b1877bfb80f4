package gateway

import (
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Limits of the API contract (shared/API.md). One place, unit last.
const (
	requestBodyBytesMax = 64 << 10 // request bodies beyond this are 413
	identifierBytesMax  = 64       // SKU, payment reference, idempotency key
	customerBytesMax    = 128      // customer identifier
	orderLinesMax       = 100      // items per order
	lineQuantityMax     = 10_000   // quantity per order line
	stockQuantityMax    = 1_000_000_000
	ttlSecondsMin       = 1
	ttlSecondsMax       = 86_400
	ttlSecondsDefault   = 900
	orderIDBytes        = 2 + 26 // "o_" + a ULID in Crockford base32
	retryAfterSeconds   = 1      // Retry-After on 429 and 503
	requestIDBytesMax   = identifierBytesMax
	headerBytesMax      = 8 << 10 // fasthttp ReadBufferSize: request line + headers; 431 beyond

	// A connection closed after an error response is drained first (conn.go)
	// for at most this long and this many bytes: enough for a client on a
	// normal network to read its answer before the close, and a bounded cost
	// when a client keeps sending.
	closeLingerMax      = 500 * time.Millisecond
	closeLingerBytesMax = requestBodyBytesMax
)

// Defaults for Config fields left zero.
const (
	requestTimeoutDefault = 5 * time.Second
	inFlightMaxDefault    = 4096
	skuQueueMaxDefault    = 1024
	readTimeoutDefault    = 10 * time.Second
	writeTimeoutDefault   = 10 * time.Second
	idleTimeoutDefault    = 60 * time.Second
)

// Config configures a Server. Engine and AdminToken are required; zero values
// of the others take the defaults above.
type Config struct {
	Engine     Engine
	AdminToken string
	// Logger gets one record per failed request that needs attention
	// (5xx), with the request ID. Nil discards.
	Logger *slog.Logger
	// Registry gets the gateway's metrics and is served on /metrics. Nil
	// makes a private registry.
	Registry *prometheus.Registry
	// RequestTimeout is the deadline of every engine call.
	RequestTimeout time.Duration
	// InFlightMax bounds the engine calls running at once on this node.
	InFlightMax int
	// SKUQueueMax bounds the requests admitted per SKU at once (restock,
	// remove, get, and each line of a checkout).
	SKUQueueMax  int
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	IdleTimeout  time.Duration
	// Readiness answers /readyz: nil when the node is ready, else why not
	// (the problem's detail). A nil Readiness means always ready.
	Readiness func() error
	// Cluster is marshalled with encoding/json for /v1/cluster; nil answers
	// a single-node view.
	Cluster func() any
}

func (c *Config) setDefaults() error {
	if c.Engine == nil {
		return errors.New("gateway: config: Engine is required")
	}
	if c.AdminToken == "" {
		return errors.New("gateway: config: AdminToken is required")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = requestTimeoutDefault
	}
	if c.InFlightMax <= 0 {
		c.InFlightMax = inFlightMaxDefault
	}
	if c.SKUQueueMax <= 0 {
		c.SKUQueueMax = skuQueueMaxDefault
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = readTimeoutDefault
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = writeTimeoutDefault
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = idleTimeoutDefault
	}
	if c.Readiness == nil {
		c.Readiness = func() error { return nil }
	}
	return nil
}
