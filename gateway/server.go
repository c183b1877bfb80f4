package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// Server is the HTTP API of one node.
type Server struct {
	cfg       Config
	engine    Engine
	tokenSum  [sha256.Size]byte // of the admin token
	admit     *admission
	customers *limiterTable[string]     // nil when Config.CustomerRate is off
	clients   *limiterTable[netip.Addr] // nil when Config.ClientRate is off
	metrics   *metrics
	srv       *fasthttp.Server
	metricsH  fasthttp.RequestHandler
	dash      *dashboard
	draining  atomic.Bool
	conns     atomic.Int64    // open connections (conn.go)
	base      context.Context // parent of every engine call; never cancelled
	ridPrefix string
	ridSeq    atomic.Uint64
	scratch   sync.Pool // *exchange
}

// exchange is the per-request scratch space, pooled so that a request
// allocates nothing of its own on the happy path.
type exchange struct {
	ctx       *fasthttp.RequestCtx
	start     time.Time // when the handler began: the time of rate limits
	route     routeID
	requestID []byte
	buf       []byte // response body
	seg       []byte // unescaped path parameter
	hdr       []byte // Location
}

// New checks cfg, registers the gateway's metrics on cfg.Registry and
// returns a Server that is not yet serving.
func New(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	var prefix [4]byte
	_, _ = rand.Read(prefix[:]) // never fails (crypto/rand contract)
	s := &Server{
		cfg:       cfg,
		engine:    cfg.Engine,
		tokenSum:  sha256.Sum256([]byte(cfg.AdminToken)),
		admit:     newAdmission(cfg.InFlightMax, cfg.SKUQueueMax),
		base:      context.Background(),
		ridPrefix: hex.EncodeToString(prefix[:]) + "-",
	}
	if cfg.CustomerRate.on() {
		s.customers = newLimiterTable[string](cfg.CustomerRate, cfg.RateLimitEntriesMax, limiterShards)
	}
	if cfg.ClientRate.on() {
		s.clients = newLimiterTable[netip.Addr](cfg.ClientRate, cfg.RateLimitEntriesMax, limiterShards)
	}
	m, err := newMetrics(cfg.Registry, s.customers, s.clients)
	if err != nil {
		return nil, fmt.Errorf("gateway: registering metrics: %w", err)
	}
	s.metrics = m
	s.dash = newDashboard(cfg.Engine, time.Now)
	s.scratch.New = func() any { return &exchange{buf: make([]byte, 0, 512)} }
	s.metricsH = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
	s.srv = &fasthttp.Server{
		Handler:               s.handle,
		ErrorHandler:          s.handleReadError,
		HeaderReceived:        s.writeTimeouts,
		Name:                  "orderengine",
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.WriteTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		MaxRequestBodySize:    requestBodyBytesMax,
		ReadBufferSize:        headerBytesMax,
		NoDefaultContentType:  true,
		NoDefaultServerHeader: true,
		CloseOnShutdown:       true,
		Logger:                fasthttpLogger{cfg.Logger},
	}
	return s, nil
}

// Handler returns the request handler, for use with another fasthttp.Server
// or in tests. It checks the body limit itself, so it is safe under a server
// that allows bigger bodies.
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }

// Serve answers requests on ln until Shutdown. Its connections are wrapped
// (conn.go) so that requests fasthttp cannot read are answered as the
// contract says.
func (s *Server) Serve(ln net.Listener) error {
	s.dash.start()
	return s.srv.Serve(listener{Listener: ln, open: &s.conns, max: int64(s.cfg.MaxConns)})
}

// ListenAndServe listens on the TCP address addr and serves it.
func (s *Server) ListenAndServe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

// Shutdown stops admitting requests (new ones are answered 503 unavailable),
// waits for those in flight to finish, and closes the listeners and
// connections. It returns ctx's error if ctx ends first.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	defer s.dash.close()
	return s.srv.ShutdownWithContext(ctx)
}

// handle is the fasthttp handler: request ID, routing, the checks in the
// contract's order, the route, metrics.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	x := s.begin(ctx, start)
	defer s.finish(x, start)

	id, param, allow := match(ctx.Method(), ctx.URI().PathOriginal())
	x.route = id
	if id == routeNone {
		s.routeMiss(x, allow)
		return
	}
	spec := &routeTable[id]
	if c, _ := ctx.Conn().(*conn); c != nil && c.refused {
		ctx.SetConnectionClose()
		s.problem(x, problem{kind: probUnavailable, detail: "too many open connections; retry later"})
		return
	}
	if s.draining.Load() && id != routeHealthz {
		s.metrics.shed[admitted].Inc()
		s.problem(x, problem{kind: probUnavailable, detail: "the node is shutting down"})
		return
	}
	if s.clients != nil && !s.allowClient(x) {
		return
	}
	if spec.admin && !s.authorized(ctx) {
		s.problem(x, problem{kind: probUnauthorized, detail: "this endpoint needs Authorization: Bearer <admin token>"})
		return
	}
	body := ctx.PostBody()
	if len(body) > requestBodyBytesMax {
		s.problem(x, tooLarge)
		return
	}
	switch spec.body {
	case bodyRequired:
		if !jsonContentType(ctx.Request.Header.ContentType()) {
			s.problem(x, unsupportedMedia)
			return
		}
	case bodyOptional:
		if len(body) > 0 && !jsonContentType(ctx.Request.Header.ContentType()) {
			s.problem(x, unsupportedMedia)
			return
		}
	}
	s.serveRoute(x, id, param, body)
}

var unsupportedMedia = problem{kind: probUnsupportedMediaType,
	detail: "send Content-Type: application/json (charset utf-8 if any)"}

func (s *Server) routeMiss(x *exchange, allow string) {
	if allow != "" {
		x.ctx.Response.Header.Set("Allow", allow)
		s.problem(x, problem{kind: probMethodNotAllowed, detail: "this path accepts " + allow})
		return
	}
	s.problem(x, problem{kind: probNotFound, detail: "no such route"})
}

// handleReadError answers requests that fasthttp could not read, with the
// problem readProblemFor gives; fasthttp then closes the connection. Every
// answer goes through begin and finish, so it has a request ID and is counted
// (as route "unmatched" when the route is not known).
func (s *Server) handleReadError(ctx *fasthttp.RequestCtx, err error) {
	c, _ := ctx.Conn().(*conn) // not a *conn only if the listener was not ours
	if c != nil && !c.received {
		// No byte of a request arrived: the client connected and then
		// stayed silent until the read timeout, or left. There is no
		// request to answer, and a response nobody asked for could be read
		// as the answer to a request the client sends at that moment, so
		// the connection is closed without one, as fasthttp itself does for
		// an idle keep-alive connection (whose next request never began).
		// fasthttp's own write that follows then fails on the closed
		// connection, which is what is wanted.
		_ = c.Close()
		return
	}
	if c != nil {
		c.linger.Store(true)
	}
	start := time.Now()
	x := s.begin(ctx, start)
	defer s.finish(x, start)
	p := readProblemFor(err)
	if p.kind != probPayloadTooLarge {
		// fasthttp has reset the request, or could not parse it, so there
		// is no path to name as the instance.
		s.writeProblem(x, p, "")
		return
	}
	// A body over MaxRequestBodySize still gets the checks that come
	// before the size in the contract (route, client rate limit, token),
	// then 413. fasthttp
	// resets the request when a chunked body runs over the limit, so there
	// is no route or token left to check: such requests get 413 whatever
	// their route (bodies with a Content-Length keep the order).
	if ctx.Request.Header.Len() == 0 {
		s.writeProblem(x, tooLarge, "")
		return
	}
	id, _, allow := match(ctx.Method(), ctx.URI().PathOriginal())
	x.route = id
	switch {
	case id == routeNone:
		s.routeMiss(x, allow)
	case s.clients != nil && !s.allowClient(x):
	case routeTable[id].admin && !s.authorized(ctx):
		s.problem(x, problem{kind: probUnauthorized, detail: "this endpoint needs Authorization: Bearer <admin token>"})
	default:
		s.problem(x, tooLarge)
	}
}

func (s *Server) begin(ctx *fasthttp.RequestCtx, start time.Time) *exchange {
	x := s.scratch.Get().(*exchange)
	x.ctx = ctx
	x.start = start
	x.route = routeNone
	x.requestID = x.requestID[:0]
	if rid := ctx.Request.Header.Peek("X-Request-ID"); validIdentifier(rid, requestIDBytesMax) {
		x.requestID = append(x.requestID, rid...)
	} else {
		x.requestID = append(x.requestID, s.ridPrefix...)
		x.requestID = strconv.AppendUint(x.requestID, s.ridSeq.Add(1), 36)
	}
	ctx.Response.Header.SetBytesV("X-Request-ID", x.requestID)
	return x
}

func (s *Server) finish(x *exchange, start time.Time) {
	status, d := x.ctx.Response.StatusCode(), time.Since(start)
	s.metrics.observe(x.route, status, d)
	s.dash.c.record(x.route, status, d)
	x.ctx = nil
	if cap(x.buf) <= requestBodyBytesMax { // do not keep rare huge buffers
		s.scratch.Put(x)
	}
}

// authorized checks the bearer token. It compares digests in constant time,
// so neither the content nor the length of the token leaks through timing.
func (s *Server) authorized(ctx *fasthttp.RequestCtx) bool {
	h := ctx.Request.Header.Peek("Authorization")
	const scheme = "Bearer "
	if len(h) <= len(scheme) || !bytes.EqualFold(h[:len(scheme)], []byte(scheme)) {
		return false
	}
	sum := sha256.Sum256(h[len(scheme):])
	return subtle.ConstantTimeCompare(sum[:], s.tokenSum[:]) == 1
}

// fasthttpLogger sends fasthttp's own messages (connection errors that the
// ErrorHandler has already answered) to slog at debug level.
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	if f.l.Enabled(context.Background(), slog.LevelDebug) {
		f.l.Debug("fasthttp", slog.String("msg", fmt.Sprintf(format, args...)))
	}
}
