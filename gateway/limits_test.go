package gateway

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/valyala/fasthttp"
)

// slow is a rate no test outlives: a bucket of burst tokens that gains one
// an hour.
func slow(burst int) RateLimit { return RateLimit{PerSecond: 1.0 / 3600, Burst: burst} }

// from returns ts with a client whose connections come from ip.
func (ts *testServer) from(ip string) *testServer {
	c := *ts
	addr := &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}
	c.local = addr
	c.client = &fasthttp.HostClient{
		Addr:                   "gateway.test",
		Dial:                   func(string) (net.Conn, error) { return ts.ln.DialWithLocalAddr(addr) },
		MaxResponseBodySize:    1 << 20,
		DisablePathNormalizing: true,
		ReadTimeout:            30 * time.Second,
	}
	return &c
}

// wantRateLimited checks a 429 rate-limited answer and its Retry-After.
func wantRateLimited(t *testing.T, r resp, retryAfterMax int) {
	t.Helper()
	wantProblem(t, r, 429, "rate-limited", "")
	s, err := strconv.Atoi(r.header("Retry-After"))
	if err != nil || s < 1 || s > retryAfterMax {
		t.Fatalf("Retry-After %q: want whole seconds in 1..%d", r.header("Retry-After"), retryAfterMax)
	}
}

func TestClientRateLimit(t *testing.T) {
	ts := newTestServer(t, newFakeEngine(), func(c *Config) { c.ClientRate = slow(2) })
	a, b := ts.from("192.0.2.1"), ts.from("192.0.2.2")
	for range 2 {
		if r := a.do(get("/healthz")); r.status != 200 {
			t.Fatalf("within the burst: %d %s", r.status, r.body)
		}
	}
	wantRateLimited(t, a.do(get("/healthz")), 3600)
	// The client limit comes right after the route: before the token and
	// before the body is looked at.
	wantRateLimited(t, a.do(post("/v1/skus/A/restock", "not json")), 3600)
	wantRateLimited(t, a.raw(rawPost("/v1/orders", "", requestBodyBytesMax+1)), 3600)
	if r := a.do(get("/no/such/route")); r.status != 404 {
		t.Fatalf("an unknown route is 404 first: %d", r.status)
	}
	// Another address has its own bucket, and the refusals of the first
	// spent none of it.
	if r := b.do(get("/healthz")); r.status != 200 {
		t.Fatalf("another client: %d %s", r.status, r.body)
	}
	if r := b.do(post("/v1/skus/A/restock", `{"quantity":5}`).admin()); r.status != 200 {
		t.Fatalf("another client's second request: %d %s", r.status, r.body)
	}
	_, _, m := serveDirect(ts.srv.Handler(), "GET", "/metrics", "192.0.2.3")
	wantMetrics(t, m,
		`orderengine_http_rate_limited_total{reason="client"} 3`,
		`orderengine_http_rate_limit_entries{table="client"} 3`,
		`orderengine_http_rate_limit_entries_max{table="client"} 65536`,
		`orderengine_http_rate_limit_evictions_total{table="client"} 0`)
}

// wantMetrics checks that the Prometheus text m has every line of want.
func wantMetrics(t *testing.T, m string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(m, w+"\n") {
			t.Errorf("metrics lack %s", w)
		}
	}
}

func TestCustomerRateLimit(t *testing.T) {
	var places atomic.Int64
	eng := hookEngine{newFakeEngine(), func(_ context.Context, op string) error {
		if op == "place" {
			places.Add(1)
		}
		return nil
	}}
	ts := newTestServer(t, eng, func(c *Config) { c.CustomerRate = slow(1) })
	restock(ts, "A", "10")
	checkout := func(customer string) resp {
		return ts.do(post("/v1/orders", `{"customer":"`+customer+`","items":[{"sku":"A","quantity":1}]}`))
	}
	first := checkout("c-1")
	if first.status != 201 {
		t.Fatalf("first checkout: %d %s", first.status, first.body)
	}
	before, placed := eng.snapshot(), places.Load()
	wantRateLimited(t, checkout("c-1"), 3600)
	if eng.snapshot() != before || places.Load() != placed {
		t.Fatalf("a refused checkout reached the engine (%d calls, was %d)", places.Load(), placed)
	}
	// Fields are checked before the customer's limit, and a limited
	// customer can still read its orders.
	wantProblem(t, ts.do(post("/v1/orders", `{"customer":"c-1","items":[]}`)), 422, "invalid-field", "items")
	if r := ts.do(get("/v1/orders/" + first.str("id"))); r.status != 200 {
		t.Fatalf("reading the order: %d %s", r.status, r.body)
	}
	if r := checkout("c-2"); r.status != 201 {
		t.Fatalf("another customer: %d %s", r.status, r.body)
	}
	if ts.srv.admit.inFlight.Load() != 0 {
		t.Fatalf("a refused checkout kept its admission slot: %d", ts.srv.admit.inFlight.Load())
	}
	wantMetrics(t, string(ts.do(get("/metrics")).body),
		`orderengine_http_rate_limited_total{reason="customer"} 1`,
		`orderengine_http_rate_limited_total{reason="client"} 0`,
		`orderengine_http_rate_limit_entries{table="customer"} 2`,
		`orderengine_http_rate_limit_entries_max{table="customer"} 65536`,
		`orderengine_http_rate_limit_entries_max{table="client"} 0`)
}

// serveDirect calls h with a request from ip, as fasthttp would, and
// returns the status, Retry-After and body.
func serveDirect(h fasthttp.RequestHandler, method, path, ip string) (int, string, string) {
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(path)
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}, nil)
	h(&ctx)
	return ctx.Response.StatusCode(), string(ctx.Response.Header.Peek("Retry-After")), string(ctx.Response.Body())
}

// Retry-After is the bucket's own delay in whole seconds, rounded up, and a
// refused request spends nothing: the client is served again exactly when
// its bucket said.
func TestRateLimitRetryAfterFollowsTheBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, err := New(Config{Engine: newFakeEngine(), AdminToken: testToken,
			ClientRate: RateLimit{PerSecond: 0.1, Burst: 1}})
		if err != nil {
			t.Fatal(err)
		}
		h := srv.Handler()
		steps := []struct {
			sleep      time.Duration
			status     int
			retryAfter string
		}{
			{0, 200, ""},
			{0, 429, "10"},
			{500 * time.Millisecond, 429, "10"}, // 9.5 s rounds up
			{8500 * time.Millisecond, 429, "1"},
			{999 * time.Millisecond, 429, "1"},
			{time.Millisecond, 200, ""},
			{0, 429, "10"},
		}
		for i, s := range steps {
			time.Sleep(s.sleep)
			status, ra, _ := serveDirect(h, "GET", "/healthz", "198.51.100.7")
			if status != s.status || ra != s.retryAfter {
				t.Fatalf("step %d: %d Retry-After %q, want %d %q", i, status, ra, s.status, s.retryAfter)
			}
		}
	})
}

func TestClientAddress(t *testing.T) {
	for _, tc := range []struct {
		remote string
		xff    []string
		trust  bool
		want   string
	}{
		{remote: "192.0.2.1", want: "192.0.2.1"},
		{remote: "::ffff:192.0.2.1", want: "192.0.2.1"},
		{remote: "2001:db8:1:2:3:4:5:6", want: "2001:db8:1:2::"},
		{remote: "192.0.2.1", xff: []string{"203.0.113.9"}, want: "192.0.2.1"},
		{remote: "192.0.2.1", xff: []string{"203.0.113.9"}, trust: true, want: "203.0.113.9"},
		{remote: "192.0.2.1", xff: []string{"10.0.0.1, 203.0.113.9"}, trust: true, want: "203.0.113.9"},
		{remote: "192.0.2.1", xff: []string{"10.0.0.1", "203.0.113.8 "}, trust: true, want: "203.0.113.8"},
		{remote: "192.0.2.1", xff: []string{"2001:db8::1"}, trust: true, want: "2001:db8::"},
		{remote: "192.0.2.1", xff: []string{"unknown"}, trust: true, want: "192.0.2.1"},
		{remote: "192.0.2.1", xff: []string{"203.0.113.9:80"}, trust: true, want: "192.0.2.1"},
	} {
		srv := &Server{cfg: Config{TrustForwardedFor: tc.trust}}
		var ctx fasthttp.RequestCtx
		var req fasthttp.Request
		for _, v := range tc.xff {
			req.Header.Add("X-Forwarded-For", v)
		}
		ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP(tc.remote)}, nil)
		if got := srv.clientAddr(&ctx); got != netip.MustParseAddr(tc.want) {
			t.Errorf("%s %q trust=%v: %v, want %s", tc.remote, tc.xff, tc.trust, got, tc.want)
		}
	}
}

func TestRateLimitConfigIsChecked(t *testing.T) {
	for _, c := range []Config{{CustomerRate: RateLimit{PerSecond: -1}}, {ClientRate: RateLimit{PerSecond: 1, Burst: -1}}} {
		c.Engine, c.AdminToken = newFakeEngine(), testToken
		if _, err := New(c); err == nil {
			t.Errorf("New accepted %+v %+v", c.CustomerRate, c.ClientRate)
		}
	}
}
