package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func restock(ts *testServer, sku string, q string) resp {
	return ts.do(post("/v1/skus/"+sku+"/restock", `{"quantity": `+q+`}`).admin())
}

func TestCheckoutFlow(t *testing.T) {
	f := newFakeEngine()
	ts := newTestServer(t, f)

	r := restock(ts, "A-1", "10")
	if r.status != 200 || string(r.body) != `{"sku":"A-1","available":10,"reserved":0,"sold":0}` {
		t.Fatalf("restock: %d %s", r.status, r.body)
	}
	restock(ts, "B-2", "5")
	r = ts.do(post("/v1/skus/A-1/remove", `{"quantity": 1}`).admin())
	if r.status != 200 || r.json["available"] != 9.0 {
		t.Fatalf("remove: %d %s", r.status, r.body)
	}

	r = ts.do(post("/v1/orders", `{"customer":"c-1","items":[{"sku":"A-1","quantity":2},{"sku":"B-2","quantity":1}],"ttl_seconds":60}`))
	if r.status != 201 {
		t.Fatalf("place: %d %s", r.status, r.body)
	}
	id := r.str("id")
	if !validOrderID([]byte(id)) || r.header("Location") != "/v1/orders/"+id {
		t.Fatalf("id %q Location %q", id, r.header("Location"))
	}
	if r.str("status") != "reserved" || r.json["payment_ref"] != nil || r.str("created_at") != "2026-11-22T10:00:00Z" ||
		r.str("expires_at") != "2026-11-22T10:01:00Z" {
		t.Fatalf("order: %s", r.body)
	}
	if r := ts.do(get("/v1/skus/A-1")); r.json["available"] != 7.0 || r.json["reserved"] != 2.0 {
		t.Fatalf("sku after place: %s", r.body)
	}
	if r := ts.do(get("/v1/skus/B-2?verbose=1")); r.status != 200 || r.json["reserved"] != 1.0 {
		t.Fatalf("sku with a query string: %d %s", r.status, r.body)
	}
	if r := ts.do(get("/v1/orders/" + id)); r.status != 200 || r.str("id") != id {
		t.Fatalf("get order: %d %s", r.status, r.body)
	}
	if r := ts.do(post("/v1/orders/"+id+"/pay", `{"payment_ref":"pay-77"}`)); r.status != 200 || r.str("status") != "paid" || r.str("payment_ref") != "pay-77" {
		t.Fatalf("pay: %d %s", r.status, r.body)
	}
	if r := ts.do(post("/v1/orders/"+id+"/pay", `{"payment_ref":"pay-77"}`)); r.status != 200 {
		t.Fatalf("repeated pay: %d %s", r.status, r.body)
	}
	wantProblem(t, ts.do(post("/v1/orders/"+id+"/pay", `{"payment_ref":"pay-78"}`)), 409, "invalid-transition", "")
	if r := ts.do(get("/v1/skus/A-1")); r.json["sold"] != 2.0 || r.json["reserved"] != 0.0 {
		t.Fatalf("sku after pay: %s", r.body)
	}
	if r := ts.do(post("/v1/orders/"+id+"/ship", "").admin()); r.status != 200 || r.str("status") != "shipped" {
		t.Fatalf("ship: %d %s", r.status, r.body)
	}
	r = ts.do(post("/v1/orders/"+id+"/cancel", ""))
	wantProblem(t, r, 409, "invalid-transition", "")
	if r.str("order_status") != "shipped" {
		t.Fatalf("order_status: %s", r.body)
	}
	if r := ts.do(post("/v1/orders/"+id+"/complete", `{"note":"ignored"}`).admin()); r.status != 200 || r.str("status") != "completed" {
		t.Fatalf("complete: %d %s", r.status, r.body)
	}
}

func TestCancelAndDefaults(t *testing.T) {
	f := newFakeEngine()
	ts := newTestServer(t, f)
	restock(ts, "A-1", "3")
	r := ts.do(post("/v1/orders", `{"customer":"c-1","items":[{"sku":"A-1","quantity":3}]}`))
	if r.status != 201 || r.str("expires_at") != "2026-11-22T10:15:00Z" {
		t.Fatalf("default ttl: %d %s", r.status, r.body)
	}
	id := r.str("id")
	if r := ts.do(post("/v1/orders/"+id+"/cancel", "")); r.status != 200 || r.str("status") != "cancelled" {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	if r := ts.do(post("/v1/orders/"+id+"/cancel", `{}`)); r.status != 200 {
		t.Fatalf("repeated cancel: %d %s", r.status, r.body)
	}
	if r := ts.do(get("/v1/skus/A-1")); r.json["available"] != 3.0 {
		t.Fatalf("stock not back: %s", r.body)
	}
	r = ts.do(post("/v1/orders/"+id+"/ship", "").admin())
	wantProblem(t, r, 409, "invalid-transition", "")
	if r.str("order_status") != "cancelled" {
		t.Fatalf("order_status: %s", r.body)
	}
	wantProblem(t, ts.do(post("/v1/orders/"+id+"/complete", "").admin()), 409, "invalid-transition", "")
}

func TestOutOfStockAndInsufficient(t *testing.T) {
	f := newFakeEngine()
	ts := newTestServer(t, f)
	restock(ts, "A-1", "2")
	restock(ts, "B-2", "1")
	before := f.snapshot()
	r := ts.do(post("/v1/orders", `{"customer":"c-1","items":[{"sku":"A-1","quantity":1},{"sku":"B-2","quantity":2},{"sku":"C-3","quantity":1}]}`))
	wantProblem(t, r, 409, "out-of-stock", "")
	if _, named := r.json["order_id"]; r.str("sku") != "B-2" || r.json["available"] != 1.0 || named {
		t.Fatalf("out-of-stock extensions: %s", r.body)
	}
	if got := f.snapshot(); strings.Split(got, "seq")[0] != strings.Split(before, "seq")[0] {
		t.Fatalf("stock changed:\n%s\nwant\n%s", got, before)
	}
	r = ts.do(post("/v1/orders", `{"customer":"c-1","items":[{"sku":"Z-9","quantity":1}]}`))
	wantProblem(t, r, 409, "out-of-stock", "")
	if r.json["available"] != 0.0 {
		t.Fatalf("never restocked: %s", r.body)
	}
	r = ts.do(post("/v1/skus/A-1/remove", `{"quantity": 3}`).admin())
	wantProblem(t, r, 409, "insufficient-stock", "")
	if r.json["available"] != 2.0 {
		t.Fatalf("insufficient: %s", r.body)
	}
	r = ts.do(post("/v1/skus/NEW/remove", `{"quantity": 1}`).admin())
	wantProblem(t, r, 409, "insufficient-stock", "")
	if v, ok := r.json["available"]; !ok || v != 0.0 {
		t.Fatalf("never restocked remove: %s", r.body)
	}
	wantProblem(t, ts.do(get("/v1/skus/NEW")), 404, "not-found", "")
	wantProblem(t, ts.do(get("/v1/orders/o_01J00000000000000000009999")), 404, "not-found", "")
	wantProblem(t, ts.do(post("/v1/orders/o_01J00000000000000000009999/pay", `{"payment_ref":"p"}`)), 404, "not-found", "")
}

func TestIdempotency(t *testing.T) {
	f := newFakeEngine()
	ts := newTestServer(t, f)
	for range 2 {
		r := ts.do(post("/v1/skus/A-1/restock", `{"quantity": 5}`).admin().with("Idempotency-Key", "k-1"))
		if r.status != 200 || r.json["available"] != 5.0 {
			t.Fatalf("keyed restock: %d %s", r.status, r.body)
		}
	}
	wantProblem(t, ts.do(post("/v1/skus/A-1/restock", `{"quantity": 6}`).admin().with("Idempotency-Key", "k-1")),
		422, "idempotency-key-reused", "Idempotency-Key")

	body := `{"customer":"c-1","items":[{"sku":"A-1","quantity":1}]}`
	a := ts.do(post("/v1/orders", body).with("Idempotency-Key", "ck"))
	b := ts.do(post("/v1/orders", body).with("Idempotency-Key", "ck"))
	if a.status != 201 || b.status != 201 || a.str("id") != b.str("id") {
		t.Fatalf("keyed place: %d %s / %d %s", a.status, a.body, b.status, b.body)
	}
	wantProblem(t, ts.do(post("/v1/orders", `{"customer":"c-1","items":[{"sku":"A-1","quantity":2}]}`).with("Idempotency-Key", "ck")),
		422, "idempotency-key-reused", "")
	other := ts.do(post("/v1/orders", `{"customer":"c-2","items":[{"sku":"A-1","quantity":1}]}`).with("Idempotency-Key", "ck"))
	if other.status != 201 || other.str("id") == a.str("id") {
		t.Fatalf("other customer: %d %s", other.status, other.body)
	}
	oos := `{"customer":"c-1","items":[{"sku":"A-1","quantity":100}]}`
	x := ts.do(post("/v1/orders", oos).with("Idempotency-Key", "ck2"))
	y := ts.do(post("/v1/orders", oos).with("Idempotency-Key", "ck2"))
	wantProblem(t, x, 409, "out-of-stock", "")
	wantProblem(t, y, 409, "out-of-stock", "")
	if x.str("order_id") == "" || x.str("order_id") != y.str("order_id") {
		t.Fatalf("replayed 409 order ids %q %q", x.str("order_id"), y.str("order_id"))
	}
	if got := ts.do(get("/v1/orders/" + x.str("order_id"))); got.status != 200 || got.str("status") != "rejected" {
		t.Fatalf("keyed rejected order reads back %d %s", got.status, got.body)
	}
}

func TestAdminGuard(t *testing.T) {
	f := newFakeEngine()
	ts := newTestServer(t, f)
	for _, r := range []req{
		post("/v1/skus/A-1/restock", `{"quantity":1}`),
		post("/v1/skus/A-1/restock", `{"quantity":1}`).with("Authorization", "Bearer wrong"),
		post("/v1/skus/A-1/restock", `{"quantity":1}`).with("Authorization", testToken),
		post("/v1/skus/A-1/restock", `{"quantity":1}`).with("Authorization", "Basic "+testToken),
		post("/v1/skus/A-1/restock", `{"quantity":1}`).with("Authorization", "Bearer "+testToken+"x"),
		post("/v1/skus/A-1/remove", `{broken`),
		req{method: "PUT", path: "/v1/skus/A-1/limit", body: `{"per_customer":1}`},
		req{method: "PUT", path: "/v1/skus/A-1/limit", body: `{"per_customer":1}`}.with("Authorization", "Bearer "),
		post("/v1/orders/o_01J00000000000000000000001/ship", ""),
		post("/v1/orders/not-an-id/complete", "{"),
	} {
		got := ts.do(r)
		wantProblem(t, got, 401, "unauthorized", "")
		if got.header("WWW-Authenticate") == "" {
			t.Error("401 without WWW-Authenticate")
		}
	}
	if r := ts.do(post("/v1/skus/A-1/restock", `{"quantity":1}`).with("Authorization", "bearer "+testToken)); r.status != 200 {
		t.Fatalf("case-insensitive scheme: %d %s", r.status, r.body)
	}
	if f.calls.Load() != 1 {
		t.Fatalf("engine called %d times", f.calls.Load())
	}
}

func TestRequestID(t *testing.T) {
	ts := newTestServer(t, newFakeEngine())
	if r := ts.do(get("/healthz").with("X-Request-ID", "abc-123")); r.header("X-Request-ID") != "abc-123" {
		t.Fatalf("not echoed: %q", r.header("X-Request-ID"))
	}
	a := ts.do(get("/healthz").with("X-Request-ID", "bad id with spaces"))
	b := ts.do(get("/v1/skus/NOPE"))
	if a.header("X-Request-ID") == "" || a.header("X-Request-ID") == "bad id with spaces" || a.header("X-Request-ID") == b.header("X-Request-ID") {
		t.Fatalf("generated ids %q %q", a.header("X-Request-ID"), b.header("X-Request-ID"))
	}
	if b.str("request_id") != b.header("X-Request-ID") || b.str("instance") != "/v1/skus/NOPE" {
		t.Fatalf("problem request_id/instance: %s", b.body)
	}
}

func TestOperations(t *testing.T) {
	notReady := errors.New("storage full: 1.0 MiB free")
	ts := newTestServer(t, newFakeEngine(), func(c *Config) { c.Readiness = func() error { return notReady } })
	if r := ts.do(get("/healthz")); r.status != 200 {
		t.Fatalf("healthz %d", r.status)
	}
	r := ts.do(get("/readyz"))
	wantProblem(t, r, 503, "unavailable", "")
	if !strings.Contains(r.str("detail"), "storage full: 1.0 MiB free") || r.header("Retry-After") == "" {
		t.Fatalf("readyz while not ready: %s, want the reason and Retry-After", r.body)
	}
	notReady = nil
	if r := ts.do(get("/readyz")); r.status != 200 {
		t.Fatalf("readyz %d", r.status)
	}
	if r := ts.do(get("/v1/cluster")); r.status != 200 || r.str("mode") != "single-node" {
		t.Fatalf("cluster %d %s", r.status, r.body)
	}
	restock(ts, "A-1", "1")
	r = ts.do(get("/metrics"))
	for _, want := range []string{
		`orderengine_http_requests_total{route="POST /v1/skus/{sku}/restock",status="200"} 1`,
		`orderengine_http_request_duration_seconds_bucket{route="GET /readyz"`,
		`orderengine_http_shed_total{reason="in_flight"} 0`,
	} {
		if r.status != 200 || !strings.Contains(string(r.body), want) {
			t.Fatalf("metrics lack %q:\n%s", want, r.body)
		}
	}
	if strings.Contains(string(r.body), `A-1"`) {
		t.Fatal("a SKU in a metrics label")
	}
}

func TestClusterFunc(t *testing.T) {
	ts := newTestServer(t, newFakeEngine(), func(c *Config) {
		c.Cluster = func() any { return map[string]any{"members": []string{"n1", "n2"}} }
	})
	if r := ts.do(get("/v1/cluster")); r.status != 200 || len(r.json["members"].([]any)) != 2 {
		t.Fatalf("cluster %d %s", r.status, r.body)
	}
	bad := newTestServer(t, newFakeEngine(), func(c *Config) { c.Cluster = func() any { return func() {} } })
	wantProblem(t, bad.do(get("/v1/cluster")), 500, "internal", "")
}

func TestEngineErrors(t *testing.T) {
	for _, tc := range []struct {
		err       error
		status    int
		slug      string
		placeOnly bool // errors only a checkout gets from the engine
	}{
		{ErrUnavailable, 503, "unavailable", false},
		{ErrOverloaded, 429, "overloaded", false},
		{context.Canceled, 503, "unavailable", false},
		{errors.New("boom"), 500, "internal", false},
		{&InvalidFieldError{Field: "items[0].sku", Detail: "engine says no"}, 422, "invalid-field", true},
	} {
		f := newFakeEngine()
		ts := newTestServer(t, hookEngine{f, func(context.Context, string) error { return tc.err }})
		wantProblem(t, ts.do(post("/v1/orders", `{"customer":"c","items":[{"sku":"A","quantity":1}]}`)), tc.status, tc.slug, "")
		if !tc.placeOnly {
			wantProblem(t, ts.do(get("/v1/skus/A-1")), tc.status, tc.slug, "")
			wantProblem(t, ts.do(post("/v1/orders/o_01J00000000000000000000001/cancel", "")), tc.status, tc.slug, "")
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	ts := newTestServer(t, newFakeEngine())
	for path, allow := range map[string]string{
		"/v1/orders": "POST", "/healthz": "GET", "/v1/skus/A-1": "GET", "/v1/skus/A-1/restock": "POST",
		"/v1/orders/o_01J00000000000000000000001/pay": "POST",
	} {
		r := ts.do(req{method: "DELETE", path: path})
		wantProblem(t, r, 405, "method-not-allowed", "")
		if r.header("Allow") != allow {
			t.Errorf("%s: Allow %q", path, r.header("Allow"))
		}
	}
}

func TestShutdown(t *testing.T) {
	f := newFakeEngine()
	entered, release := make(chan struct{}), make(chan struct{})
	ts := newTestServer(t, hookEngine{f, func(ctx context.Context, op string) error {
		if op == "restock" {
			close(entered)
			<-release
		}
		return nil
	}})
	inflight := make(chan resp, 1)
	go func() { inflight <- restock(ts, "A-1", "1") }()
	<-entered
	shut := make(chan error, 1)
	go func() { shut <- ts.srv.Shutdown(context.Background()) }()
	deadline := time.Now().Add(5 * time.Second)
	for !ts.srv.draining.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	// A request arriving now is refused through the handler.
	x := ts.srv.draining.Load()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned before the in-flight request finished: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if r := <-inflight; r.status != 200 {
		t.Fatalf("in-flight request: %d %s", r.status, r.body)
	}
	if err := <-shut; err != nil || !x {
		t.Fatalf("shutdown: %v, draining %v", err, x)
	}
}

func TestDrainingRefuses(t *testing.T) {
	ts := newTestServer(t, newFakeEngine())
	ts.srv.draining.Store(true)
	wantProblem(t, ts.do(get("/v1/skus/A-1")), 503, "unavailable", "")
	wantProblem(t, ts.do(get("/readyz")), 503, "unavailable", "")
	if r := ts.do(get("/healthz")); r.status != 200 {
		t.Fatalf("healthz while draining: %d", r.status)
	}
	ts.srv.draining.Store(false)
}

// PUT /v1/skus/{sku}/limit: admin only, validated, shown in the SKU view,
// and enforced on checkouts as 409 limit-exceeded.
func TestPurchaseLimitRoute(t *testing.T) {
	f := newFakeEngine()
	ts := newTestServer(t, f)
	restock(ts, "A-1", "10")
	put := func(body string) req { return req{method: "PUT", path: "/v1/skus/A-1/limit", body: body} }

	before := f.snapshot()
	wantProblem(t, ts.do(put(`{"per_customer": 2}`)), 401, "unauthorized", "")
	wantProblem(t, ts.do(put(`{"per_customer": -1}`).admin()), 422, "invalid-field", "per_customer")
	wantProblem(t, ts.do(put(`{"per_customer": "2"}`).admin()), 422, "invalid-field", "per_customer")
	wantProblem(t, ts.do(put(`{}`).admin()), 422, "invalid-field", "per_customer")
	wantProblem(t, ts.do(put(`{"per_customer": 1000000001}`).admin()), 422, "invalid-field", "per_customer")
	wantProblem(t, ts.do(put(`per_customer=2`).admin()), 400, "invalid-json", "")
	wantProblem(t, ts.do(post("/v1/skus/A-1/limit", `{"per_customer": 2}`).admin()), 405, "method-not-allowed", "")
	if got := f.snapshot(); got != before {
		t.Fatalf("refused limit requests changed the state:\n%s\nwant\n%s", got, before)
	}

	r := ts.do(put(`{"per_customer": 2}`).admin())
	if r.status != 200 || r.json["per_customer_limit"] != 2.0 {
		t.Fatalf("set limit: %d %s", r.status, r.body)
	}
	if v := ts.do(get("/v1/skus/A-1")); v.json["per_customer_limit"] != 2.0 {
		t.Fatalf("SKU view: %s", v.body)
	}
	checkout := func(customer string, qty int) resp {
		return ts.do(post("/v1/orders", fmt.Sprintf(`{"customer":%q,"items":[{"sku":"A-1","quantity":%d}]}`, customer, qty)))
	}
	first := checkout("c-1", 2)
	if first.status != 201 {
		t.Fatalf("first checkout: %d %s", first.status, first.body)
	}
	over := checkout("c-1", 1)
	wantProblem(t, over, 409, "limit-exceeded", "")
	if _, named := over.json["order_id"]; over.str("sku") != "A-1" || over.json["limit"] != 2.0 || named {
		t.Fatalf("limit-exceeded extensions: %s", over.body)
	}
	if r := checkout("c-2", 2); r.status != 201 {
		t.Fatalf("another customer: %d %s", r.status, r.body)
	}
	ts.do(post("/v1/orders/"+first.str("id")+"/cancel", ""))
	if r := checkout("c-1", 2); r.status != 201 {
		t.Fatalf("after a cancellation: %d %s", r.status, r.body)
	}
	if r := ts.do(put(`{"per_customer": 0}`).admin()); r.status != 200 || r.json["per_customer_limit"] != nil {
		t.Fatalf("remove limit: %d %s", r.status, r.body)
	}
}
