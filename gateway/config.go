package gateway

import (
	"context"
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
	nodeNameBytesMax    = 128      // a cluster member's name, {node} in a path
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
	requestTimeoutDefault     = 5 * time.Second
	inFlightMaxDefault        = 4096
	skuQueueMaxDefault        = 1024
	readTimeoutDefault        = 10 * time.Second
	writeTimeoutDefault       = 10 * time.Second
	idleTimeoutDefault        = 60 * time.Second
	backupWriteTimeoutDefault = time.Hour
)

// DefaultRateLimitEntriesMax is Config.RateLimitEntriesMax when left zero:
// each rate limit table keeps buckets for at most this many client
// addresses or customers. A key costs about 200 bytes (slot, bucket,
// index), so a full table takes about 13 MiB.
const DefaultRateLimitEntriesMax = 65_536

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
	// MaxConns caps the client connections open at once (0: no cap).
	// A connection past it gets 503 unavailable with Retry-After to its
	// first request and is closed; idle connections are closed after
	// IdleTimeout, which frees their places.
	MaxConns int
	// Readiness answers /readyz: nil when the node is ready, else why not
	// (the problem's detail). A nil Readiness means always ready.
	Readiness func() error
	// Backups serves GET /v1/admin/backup; nil answers it 404.
	// BackupWriteTimeout bounds the writing of one backup response, in
	// place of WriteTimeout.
	Backups            Backups
	BackupWriteTimeout time.Duration
	// Cluster is marshalled with encoding/json for /v1/cluster; nil answers
	// a single-node view.
	Cluster func() any
	// Dashboard is marshalled with encoding/json as the "node" member of
	// GET /v1/dashboard (the data of the page at /ui): the node's members,
	// partitions, journal, actors and storage, as the node sees them. It
	// is called at most twice a second however many pages poll, and must
	// be quick. Nil shows a node alone, with nothing more about it.
	Dashboard func() any
	// ForgetNode serves POST /v1/admin/cluster/members/{node}/forget: it
	// tombstones the dead member node so that its partitions go, empty,
	// to live members, and returns the cluster view afterwards, which is
	// marshalled with encoding/json as the 200 body. It gets a context
	// with the RequestTimeout and a valid node name. Its errors: ErrNotFound
	// for a node the cluster does not know (404), a *ConflictError for one
	// that is alive (409), ErrUnavailable before this node has joined (503
	// with Retry-After). Nil answers the route 404: the node is not
	// clustered.
	ForgetNode func(ctx context.Context, node string) (any, error)

	// CustomerRate limits the checkouts (POST /v1/orders) of each customer,
	// checked once the body's fields are valid. ClientRate limits the
	// requests of each client address on every route, checked as soon as
	// the route is known. Requests over either get 429 rate-limited with
	// Retry-After and change nothing. The zero value of each is off, and
	// then costs nothing.
	CustomerRate RateLimit
	ClientRate   RateLimit
	// RateLimitEntriesMax bounds how many customers, and how many client
	// addresses, the limits keep buckets for; it is rounded down to a
	// multiple of 64, at least 64. Beyond it a new key takes the place of
	// one not used lately (one whose bucket has refilled, if any), which
	// starts again with a full bucket if it returns (see limiterTable).
	RateLimitEntriesMax int
	// TrustForwardedFor takes the client address from the last entry of
	// X-Forwarded-For instead of the connection. Turn it on only behind a
	// proxy that appends the address it received the request from: anyone
	// else can write any address there.
	TrustForwardedFor bool
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
	if c.BackupWriteTimeout <= 0 {
		c.BackupWriteTimeout = backupWriteTimeoutDefault
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = idleTimeoutDefault
	}
	if err := c.CustomerRate.setDefaults("CustomerRate"); err != nil {
		return err
	}
	if err := c.ClientRate.setDefaults("ClientRate"); err != nil {
		return err
	}
	if c.RateLimitEntriesMax <= 0 {
		c.RateLimitEntriesMax = DefaultRateLimitEntriesMax
	}
	if c.Readiness == nil {
		c.Readiness = func() error { return nil }
	}
	return nil
}
