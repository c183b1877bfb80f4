package refapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// call runs one request through h and returns status and decoded body.
func call(t *testing.T, h fasthttp.RequestHandler, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	var rc fasthttp.RequestCtx
	rc.Request.Header.SetMethod(method)
	rc.Request.SetRequestURI(path)
	if token != "" {
		rc.Request.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		rc.Request.Header.SetContentType("application/json")
		rc.Request.SetBodyString(body)
	}
	h(&rc)
	var m map[string]any
	if b := rc.Response.Body(); len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: body %q: %v", method, path, b, err)
		}
	}
	return rc.Response.StatusCode(), m
}

func TestCheckoutRoutes(t *testing.T) {
	h := NewHandler(NewMemStore(), "tok", slog.New(slog.NewTextHandler(io.Discard, nil))).Serve
	if s, _ := call(t, h, "POST", "/v1/skus/A-1/restock", "bad", `{"quantity":2}`); s != 401 {
		t.Errorf("restock with a wrong token: %d", s)
	}
	if s, m := call(t, h, "POST", "/v1/skus/A-1/restock", "tok", `{"quantity":2}`); s != 200 || m["available"] != 2.0 {
		t.Errorf("restock: %d %v", s, m)
	}
	if s, _ := call(t, h, "GET", "/v1/skus/nope", "", ""); s != 404 {
		t.Errorf("unknown SKU: %d", s)
	}
	if s, m := call(t, h, "POST", "/v1/orders", "", `{"customer":"c","items":[{"sku":"A-1","quantity":0}]}`); s != 422 || m["field"] != "items[0].quantity" {
		t.Errorf("bad quantity: %d %v", s, m)
	}
	if s, _ := call(t, h, "POST", "/v1/orders", "", `{nope`); s != 400 {
		t.Errorf("bad JSON: %d", s)
	}
	if s, _ := call(t, h, "GET", "/v1/orders", "", ""); s != 405 {
		t.Errorf("GET /v1/orders: %d", s)
	}
	s, o := call(t, h, "POST", "/v1/orders", "", `{"customer":"c","items":[{"sku":"A-1","quantity":2}]}`)
	id, _ := o["id"].(string)
	if s != 201 || !ValidOrderID(id) || o["status"] != "reserved" {
		t.Fatalf("checkout: %d %v", s, o)
	}
	s, p := call(t, h, "POST", "/v1/orders", "", `{"customer":"c","items":[{"sku":"A-1","quantity":1}]}`)
	if typ, _ := p["type"].(string); s != 409 || !strings.HasSuffix(typ, "/out-of-stock") || p["sku"] != "A-1" || p["available"] != 0.0 {
		t.Errorf("out of stock: %d %v", s, p)
	}
	if s, m := call(t, h, "POST", "/v1/orders/"+id+"/pay", "", `{"payment_ref":"p1"}`); s != 200 || m["status"] != "paid" {
		t.Errorf("pay: %d %v", s, m)
	}
	if s, _ := call(t, h, "POST", "/v1/orders/"+id+"/pay", "", `{"payment_ref":"p2"}`); s != 409 {
		t.Errorf("pay again with another ref: %d", s)
	}
	if s, m := call(t, h, "POST", "/v1/orders/"+id+"/cancel", "", ""); s != 200 || m["status"] != "cancelled" {
		t.Errorf("cancel a paid order: %d %v", s, m)
	}
	if s, m := call(t, h, "GET", "/v1/skus/A-1", "", ""); s != 200 || m["available"] != 2.0 || m["sold"] != 0.0 {
		t.Errorf("stock after cancel: %d %v", s, m)
	}
	if s, _ := call(t, h, "GET", "/v1/orders/o_nope", "", ""); s != 404 {
		t.Errorf("malformed order id: %d", s)
	}
}

func TestCeilingAnswers201(t *testing.T) {
	s, o := call(t, Ceiling, "POST", "/v1/orders", "", `{"customer":"c","items":[{"sku":"A-1","quantity":2}]}`)
	if id, _ := o["id"].(string); s != 201 || !ValidOrderID(id) {
		t.Errorf("ceiling checkout: %d %v", s, o)
	}
	if s, _ := call(t, Ceiling, "POST", "/v1/orders", "", `{"customer":"c"}`); s != 400 {
		t.Errorf("ceiling with no items: %d", s)
	}
}
