package gateway

import (
	"fmt"
	"strings"
	"testing"
)

const validID = "o_01J00000000000000000000001"

// badCase is one malformed request and the problem it must get.
type badCase struct {
	name   string
	r      req
	raw    string // sent as-is instead of r when set
	status int
	slug   string
	field  string
}

func placeBody(items string) string { return `{"customer":"c-1","items":` + items + `}` }

func manyItems(n int) string {
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf(`{"sku":"S-%d","quantity":1}`, i)
	}
	return "[" + strings.Join(lines, ",") + "]"
}

func rawPost(path, headers string, bodyLen int) string {
	return "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + headers +
		fmt.Sprintf("Content-Length: %d\r\n\r\n", bodyLen) + strings.Repeat(" ", bodyLen)
}

func badCatalogue() []badCase {
	big := requestBodyBytesMax + 1
	long := strings.Repeat("x", 65)
	auth := "Authorization: Bearer " + testToken + "\r\n"
	chunk := fmt.Sprintf("%x\r\n%s\r\n", 40000, strings.Repeat(" ", 40000))
	return []badCase{
		// route
		{name: "unknown path", r: get("/nope"), status: 404, slug: "not-found"},
		{name: "too deep", r: get("/v1/orders/" + validID + "/pay/more"), status: 404, slug: "not-found"},
		{name: "empty sku segment", r: get("/v1/skus/"), status: 404, slug: "not-found"},
		{name: "trailing slash", r: get("/v1/skus/A-1/"), status: 404, slug: "not-found"},
		{name: "unknown action", r: post("/v1/orders/"+validID+"/refund", "{}"), status: 404, slug: "not-found"},
		{name: "delete orders", r: req{method: "DELETE", path: "/v1/orders"}, status: 405, slug: "method-not-allowed"},
		{name: "put restock", r: req{method: "PUT", path: "/v1/skus/A-1/restock", body: `{"quantity":1}`}, status: 405, slug: "method-not-allowed"},
		{name: "get pay", r: get("/v1/orders/" + validID + "/pay"), status: 405, slug: "method-not-allowed"},
		{name: "post healthz", r: post("/healthz", "{}"), status: 405, slug: "method-not-allowed"},
		// admin token, before the body
		{name: "restock no token", r: post("/v1/skus/A-1/restock", `{"quantity":1}`), status: 401, slug: "unauthorized"},
		{name: "restock wrong token", r: post("/v1/skus/A-1/restock", `{"quantity":1}`).with("Authorization", "Bearer nope"), status: 401, slug: "unauthorized"},
		{name: "remove bare bearer", r: post("/v1/skus/A-1/remove", `{"quantity":1}`).with("Authorization", "Bearer "), status: 401, slug: "unauthorized"},
		{name: "ship no token", r: post("/v1/orders/"+validID+"/ship", ""), status: 401, slug: "unauthorized"},
		{name: "no token broken body", r: post("/v1/skus/A-1/restock", `{{{`), status: 401, slug: "unauthorized"},
		{name: "no token wrong type", r: req{method: "POST", path: "/v1/skus/A-1/restock", body: "x", contentType: "text/plain"}, status: 401, slug: "unauthorized"},
		{name: "no token huge body", raw: rawPost("/v1/orders/"+validID+"/complete", "", big), status: 401, slug: "unauthorized"},
		// size
		{name: "huge checkout", raw: rawPost("/v1/orders", "", big), status: 413, slug: "payload-too-large"},
		{name: "huge restock", raw: rawPost("/v1/skus/A-1/restock", auth, big), status: 413, slug: "payload-too-large"},
		{name: "huge unknown route", raw: rawPost("/v2/nope", "", big), status: 404, slug: "not-found"},
		{name: "huge chunked checkout", raw: "POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk + chunk + "0\r\n\r\n", status: 413, slug: "payload-too-large"},
		// content type
		{name: "text/plain", r: req{method: "POST", path: "/v1/orders", body: placeBody(manyItems(1)), contentType: "text/plain"}, status: 415, slug: "unsupported-media-type"},
		{name: "no content type", r: req{method: "POST", path: "/v1/orders", body: placeBody(manyItems(1)), contentType: "-"}, status: 415, slug: "unsupported-media-type"},
		{name: "latin1", r: req{method: "POST", path: "/v1/orders", body: placeBody(manyItems(1)), contentType: "application/json; charset=latin1"}, status: 415, slug: "unsupported-media-type"},
		{name: "jsonx", r: req{method: "POST", path: "/v1/skus/A-1/restock", body: `{"quantity":1}`, contentType: "application/jsonx", token: testToken}, status: 415, slug: "unsupported-media-type"},
		{name: "pay xml", r: req{method: "POST", path: "/v1/orders/" + validID + "/pay", body: `<x/>`, contentType: "application/xml"}, status: 415, slug: "unsupported-media-type"},
		{name: "cancel text body", r: req{method: "POST", path: "/v1/orders/" + validID + "/cancel", body: `{}`, contentType: "text/plain"}, status: 415, slug: "unsupported-media-type"},
		{name: "415 before 400", r: req{method: "POST", path: "/v1/orders", body: `{`, contentType: "text/html"}, status: 415, slug: "unsupported-media-type"},
		// JSON syntax
		{name: "truncated", r: post("/v1/orders", `{"customer":"c-1"`), status: 400, slug: "invalid-json"},
		{name: "array", r: post("/v1/orders", `[]`), status: 400, slug: "invalid-json"},
		{name: "string", r: post("/v1/orders", `"order"`), status: 400, slug: "invalid-json"},
		{name: "empty with type", r: req{method: "POST", path: "/v1/orders", contentType: "application/json"}, status: 400, slug: "invalid-json"},
		{name: "trailing garbage", r: post("/v1/orders", placeBody(manyItems(1))+" x"), status: 400, slug: "invalid-json"},
		{name: "two objects", r: post("/v1/orders", "{} {}"), status: 400, slug: "invalid-json"},
		{name: "restock null", r: post("/v1/skus/A-1/restock", `null`).admin(), status: 400, slug: "invalid-json"},
		{name: "single quotes", r: post("/v1/orders/"+validID+"/pay", `{'payment_ref':'x'}`), status: 400, slug: "invalid-json"},
		{name: "cancel not json", r: post("/v1/orders/"+validID+"/cancel", `please`), status: 400, slug: "invalid-json"},
		{name: "400 before bad sku", r: post("/v1/skus/a%20b/restock", `{`).admin(), status: 400, slug: "invalid-json"},
		{name: "400 before bad order id", r: post("/v1/orders/nope/pay", `{`), status: 400, slug: "invalid-json"},
		// fields
		{name: "no customer", r: post("/v1/orders", `{"items":[{"sku":"A-1","quantity":1}]}`), status: 422, slug: "invalid-field", field: "customer"},
		{name: "customer too long", r: post("/v1/orders", `{"customer":"`+strings.Repeat("c", 129)+`","items":[{"sku":"A-1","quantity":1}]}`), status: 422, slug: "invalid-field", field: "customer"},
		{name: "customer space", r: post("/v1/orders", `{"customer":"a b","items":[{"sku":"A-1","quantity":1}]}`), status: 422, slug: "invalid-field", field: "customer"},
		{name: "customer number", r: post("/v1/orders", `{"customer":7,"items":[{"sku":"A-1","quantity":1}]}`), status: 422, slug: "invalid-field", field: "customer"},
		{name: "customer twice", r: post("/v1/orders", `{"customer":"a","customer":"b","items":[{"sku":"A-1","quantity":1}]}`), status: 422, slug: "invalid-field", field: "customer"},
		{name: "no items", r: post("/v1/orders", `{"customer":"c-1"}`), status: 422, slug: "invalid-field", field: "items"},
		{name: "empty items", r: post("/v1/orders", placeBody(`[]`)), status: 422, slug: "invalid-field", field: "items"},
		{name: "101 items", r: post("/v1/orders", placeBody(manyItems(101))), status: 422, slug: "invalid-field", field: "items"},
		{name: "items string", r: post("/v1/orders", placeBody(`"A-1"`)), status: 422, slug: "invalid-field", field: "items"},
		{name: "item number", r: post("/v1/orders", placeBody(`[1]`)), status: 422, slug: "invalid-field", field: "items[0]"},
		{name: "quantity string", r: post("/v1/orders", placeBody(`[{"sku":"A-1","quantity":"2"}]`)), status: 422, slug: "invalid-field", field: "items[0].quantity"},
		{name: "quantity fraction", r: post("/v1/orders", placeBody(`[{"sku":"A-1","quantity":2.5}]`)), status: 422, slug: "invalid-field", field: "items[0].quantity"},
		{name: "quantity whole fraction", r: post("/v1/orders", placeBody(`[{"sku":"A-1","quantity":2.0}]`)), status: 422, slug: "invalid-field", field: "items[0].quantity"},
		{name: "quantity negative", r: post("/v1/orders", placeBody(`[{"sku":"A-1","quantity":-1}]`)), status: 422, slug: "invalid-field", field: "items[0].quantity"},
		{name: "quantity zero", r: post("/v1/orders", placeBody(`[{"sku":"A-1","quantity":0}]`)), status: 422, slug: "invalid-field", field: "items[0].quantity"},
		{name: "quantity exponent", r: post("/v1/orders", placeBody(`[{"sku":"A-1","quantity":1e12}]`)), status: 422, slug: "invalid-field", field: "items[0].quantity"},
		{name: "quantity over line max", r: post("/v1/orders", placeBody(`[{"sku":"A-1","quantity":10001}]`)), status: 422, slug: "invalid-field", field: "items[0].quantity"},
		{name: "quantity overflow", r: post("/v1/orders", placeBody(`[{"sku":"A-1","quantity":99999999999999999999999}]`)), status: 422, slug: "invalid-field", field: "items[0].quantity"},
		{name: "quantity null", r: post("/v1/orders", placeBody(`[{"sku":"A-1","quantity":null}]`)), status: 422, slug: "invalid-field", field: "items[0].quantity"},
		{name: "third line no quantity", r: post("/v1/orders", placeBody(`[{"sku":"A","quantity":1},{"sku":"B","quantity":1},{"sku":"C"}]`)), status: 422, slug: "invalid-field", field: "items[2].quantity"},
		{name: "repeated sku", r: post("/v1/orders", placeBody(`[{"sku":"A-1","quantity":1},{"sku":"A-1","quantity":2}]`)), status: 422, slug: "invalid-field", field: "items[1].sku"},
		{name: "repeated sku escaped", r: post("/v1/orders", placeBody(`[{"sku":"A-1","quantity":1},{"sku":"\u0041-1","quantity":2}]`)), status: 422, slug: "invalid-field", field: "items[1].sku"},
		{name: "empty sku", r: post("/v1/orders", placeBody(`[{"sku":"","quantity":1}]`)), status: 422, slug: "invalid-field", field: "items[0].sku"},
		{name: "long sku", r: post("/v1/orders", placeBody(`[{"sku":"`+long+`","quantity":1}]`)), status: 422, slug: "invalid-field", field: "items[0].sku"},
		{name: "slash sku", r: post("/v1/orders", placeBody(`[{"sku":"a/b","quantity":1}]`)), status: 422, slug: "invalid-field", field: "items[0].sku"},
		{name: "unicode sku", r: post("/v1/orders", placeBody(`[{"sku":"é","quantity":1}]`)), status: 422, slug: "invalid-field", field: "items[0].sku"},
		{name: "ttl zero", r: post("/v1/orders", `{"customer":"c","items":[{"sku":"A-1","quantity":1}],"ttl_seconds":0}`), status: 422, slug: "invalid-field", field: "ttl_seconds"},
		{name: "ttl too long", r: post("/v1/orders", `{"customer":"c","items":[{"sku":"A-1","quantity":1}],"ttl_seconds":86401}`), status: 422, slug: "invalid-field", field: "ttl_seconds"},
		{name: "ttl string", r: post("/v1/orders", `{"customer":"c","items":[{"sku":"A-1","quantity":1}],"ttl_seconds":"900"}`), status: 422, slug: "invalid-field", field: "ttl_seconds"},
		{name: "bad idempotency key", r: post("/v1/orders", placeBody(manyItems(1))).with("Idempotency-Key", "a b"), status: 422, slug: "invalid-field", field: "Idempotency-Key"},
		{name: "long idempotency key", r: post("/v1/orders", placeBody(manyItems(1))).with("Idempotency-Key", long), status: 422, slug: "invalid-field", field: "Idempotency-Key"},
		{name: "restock bad key", r: post("/v1/skus/A-1/restock", `{"quantity":1}`).admin().with("Idempotency-Key", "k/1"), status: 422, slug: "invalid-field", field: "Idempotency-Key"},
		{name: "restock zero", r: post("/v1/skus/A-1/restock", `{"quantity":0}`).admin(), status: 422, slug: "invalid-field", field: "quantity"},
		{name: "restock too many", r: post("/v1/skus/A-1/restock", `{"quantity":1000000001}`).admin(), status: 422, slug: "invalid-field", field: "quantity"},
		{name: "restock string", r: post("/v1/skus/A-1/restock", `{"quantity":"5"}`).admin(), status: 422, slug: "invalid-field", field: "quantity"},
		{name: "restock bool", r: post("/v1/skus/A-1/restock", `{"quantity":true}`).admin(), status: 422, slug: "invalid-field", field: "quantity"},
		{name: "restock missing", r: post("/v1/skus/A-1/restock", `{"qty":5}`).admin(), status: 422, slug: "invalid-field", field: "quantity"},
		{name: "restock twice", r: post("/v1/skus/A-1/restock", `{"quantity":5,"quantity":6}`).admin(), status: 422, slug: "invalid-field", field: "quantity"},
		{name: "remove negative", r: post("/v1/skus/A-1/remove", `{"quantity":-5}`).admin(), status: 422, slug: "invalid-field", field: "quantity"},
		{name: "restock sku space", r: post("/v1/skus/a%20b/restock", `{"quantity":1}`).admin(), status: 422, slug: "invalid-field", field: "sku"},
		{name: "get sku space", r: get("/v1/skus/a%20b"), status: 422, slug: "invalid-field", field: "sku"},
		{name: "get sku slash", r: get("/v1/skus/a%2Fb"), status: 422, slug: "invalid-field", field: "sku"},
		{name: "get sku bad escape", r: get("/v1/skus/%zz"), status: 422, slug: "invalid-field", field: "sku"},
		{name: "get sku long", r: get("/v1/skus/" + long), status: 422, slug: "invalid-field", field: "sku"},
		{name: "pay missing ref", r: post("/v1/orders/"+validID+"/pay", `{}`), status: 422, slug: "invalid-field", field: "payment_ref"},
		{name: "pay ref number", r: post("/v1/orders/"+validID+"/pay", `{"payment_ref":77}`), status: 422, slug: "invalid-field", field: "payment_ref"},
		{name: "pay ref empty", r: post("/v1/orders/"+validID+"/pay", `{"payment_ref":""}`), status: 422, slug: "invalid-field", field: "payment_ref"},
		{name: "pay ref null", r: post("/v1/orders/"+validID+"/pay", `{"payment_ref":null}`), status: 422, slug: "invalid-field", field: "payment_ref"},
		{name: "422 before bad order id", r: post("/v1/orders/nope/pay", `{}`), status: 422, slug: "invalid-field", field: "payment_ref"},
		// order IDs the engine cannot have issued: 404 without asking it
		{name: "order id space", r: get("/v1/orders/a%20b"), status: 404, slug: "not-found"},
		{name: "order id lower case", r: get("/v1/orders/o_01j00000000000000000000001"), status: 404, slug: "not-found"},
		{name: "order id overflows", r: get("/v1/orders/o_81J00000000000000000000001"), status: 404, slug: "not-found"},
		{name: "order id letter I", r: post("/v1/orders/o_01J0000000000000000000000I/cancel", ""), status: 404, slug: "not-found"},
		{name: "order id short", r: post("/v1/orders/o_01J/pay", `{"payment_ref":"p"}`), status: 404, slug: "not-found"},
		{name: "order id ship", r: post("/v1/orders/123/ship", "").admin(), status: 404, slug: "not-found"},
		// the resource
		{name: "unknown order", r: get("/v1/orders/o_01J00000000000000000009999"), status: 404, slug: "not-found"},
	}
}

// TestBadInputCatalogue sends every malformed request and checks its
// problem, and that the engine's whole state is unchanged.
func TestBadInputCatalogue(t *testing.T) {
	f := newFakeEngine()
	ts := newTestServer(t, f)
	restock(ts, "A-1", "10")
	if r := ts.do(post("/v1/orders", placeBody(`[{"sku":"A-1","quantity":2}]`))); r.status != 201 || r.str("id") != validID {
		t.Fatalf("setup order: %d %s", r.status, r.body)
	}
	cases := badCatalogue()
	if len(cases) < 50 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := f.snapshot()
			var got resp
			if tc.raw != "" {
				got = ts.raw(tc.raw)
			} else {
				got = ts.do(tc.r)
			}
			wantProblem(t, got, tc.status, tc.slug, tc.field)
			if after := f.snapshot(); after != before {
				t.Fatalf("state changed:\n%s\nwas\n%s", after, before)
			}
		})
	}
}

// TestBodyAtLimit checks that a body of exactly the limit is accepted.
func TestBodyAtLimit(t *testing.T) {
	ts := newTestServer(t, newFakeEngine())
	body := `{"quantity":1}`
	body += strings.Repeat(" ", requestBodyBytesMax-len(body))
	if r := ts.do(post("/v1/skus/A-1/restock", body).admin()); r.status != 200 {
		t.Fatalf("body at limit: %d %s", r.status, r.body)
	}
}
