package gateway

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// Fuzz targets for the decoders of outside bytes. Each checks that the
// decoder never panics, that an error is one of the two documented kinds
// (400 for non-JSON, 422 for a field), and that anything accepted satisfies
// the API's limits.

func seedBodies(f *testing.F) {
	for _, s := range []string{
		`{"customer":"c-1","items":[{"sku":"A-1","quantity":2}],"ttl_seconds":900}`,
		`{"customer":"c","items":[{"sku":"A","quantity":1},{"sku":"B","quantity":10000}]}`,
		`{"quantity":100}`, `{"payment_ref":"pay-77"}`, `{"payment_ref":"p\u0041"}`,
		`{"customer":"c","items":[{"sku":"A","quantity":1e3}]}`, `[]`, `{`, ``, `null`,
		`{"items":[{"sku":"A","sku":"A"}]}`, `{"quantity":"5"}`, `{"quantity":99999999999999999999}`,
	} {
		f.Add([]byte(s))
	}
}

func checkDecodeError(t *testing.T, body []byte, err error) {
	t.Helper()
	var f *InvalidFieldError
	var j *invalidJSONError
	switch {
	case errors.As(err, &j):
	case errors.As(err, &f):
		if !json.Valid(body) {
			t.Fatalf("invalid JSON %q answered as a field error %v", body, err)
		}
		if f.Field == "" || f.Detail == "" {
			t.Fatalf("empty field error %#v", f)
		}
	default:
		t.Fatalf("unexpected error %T %v", err, err)
	}
}

func FuzzDecodePlaceOrder(f *testing.F) {
	seedBodies(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodePlaceOrder(body)
		if err != nil {
			checkDecodeError(t, body, err)
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		if !validIdentifier([]byte(req.Customer), customerBytesMax) {
			t.Fatalf("customer %q", req.Customer)
		}
		if len(req.Items) < 1 || len(req.Items) > orderLinesMax {
			t.Fatalf("%d items", len(req.Items))
		}
		seen := map[string]bool{}
		for _, it := range req.Items {
			if !validIdentifier([]byte(it.SKU), identifierBytesMax) || it.Quantity < 1 || it.Quantity > lineQuantityMax || seen[it.SKU] {
				t.Fatalf("bad item %+v in %q", it, body)
			}
			seen[it.SKU] = true
		}
		if req.TTL < ttlSecondsMin*time.Second || req.TTL > ttlSecondsMax*time.Second || req.TTL%time.Second != 0 {
			t.Fatalf("ttl %v", req.TTL)
		}
	})
}

func FuzzDecodeQuantity(f *testing.F) {
	seedBodies(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		q, err := decodeQuantity(body)
		if err != nil {
			checkDecodeError(t, body, err)
			return
		}
		if !json.Valid(body) || q < 1 || q > stockQuantityMax {
			t.Fatalf("accepted %q as %d", body, q)
		}
		// encoding/json reads the same number (it matches names without
		// case, so compare only when the exact name is the one it used).
		var std struct {
			Quantity json.Number `json:"quantity"`
		}
		if json.Unmarshal(body, &std) == nil && string(std.Quantity) != "" {
			if n, err := std.Quantity.Int64(); err == nil && n != q && !hasFoldedKey(body, "quantity") {
				t.Fatalf("%q: decoded %d, encoding/json %d", body, q, n)
			}
		}
	})
}

// hasFoldedKey reports whether body has a key equal to name without case
// but not exactly name, where encoding/json and the gateway may differ.
func hasFoldedKey(body []byte, name string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return true
	}
	for k := range m {
		if k != name && len(k) == len(name) && equalFold(k, name) {
			return true
		}
	}
	return false
}

func equalFold(a, b string) bool {
	for i := range len(a) {
		if a[i]|0x20 != b[i]|0x20 {
			return false
		}
	}
	return true
}

func FuzzDecodePay(f *testing.F) {
	seedBodies(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		ref, err := decodePay(body)
		if err != nil {
			checkDecodeError(t, body, err)
			return
		}
		if !json.Valid(body) || !validIdentifier([]byte(ref), identifierBytesMax) {
			t.Fatalf("accepted %q as %q", body, ref)
		}
	})
}

func FuzzDecodeLimit(f *testing.F) {
	seedBodies(f)
	f.Add([]byte(`{"per_customer":0}`))
	f.Add([]byte(`{"per_customer":2,"per_customer":3}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := decodeLimit(body)
		if err != nil {
			checkDecodeError(t, body, err)
			return
		}
		if !json.Valid(body) || n < 0 || n > stockQuantityMax {
			t.Fatalf("accepted %q as %d", body, n)
		}
	})
}

// FuzzRoute feeds request lines' methods and paths to the router: it never
// panics, a matched route's method is the route's own, and a path
// parameter, once unescaped, is what the handlers validate.
func FuzzRoute(f *testing.F) {
	for _, s := range []string{"/v1/skus/A-1", "/v1/skus/A-1/restock", "/v1/orders/o_01J00000000000000000000001/pay",
		"/v1/skus/a%20b", "/v1/skus/%zz", "/v1/skus/%41", "//v1/skus/", "/v1/orders", "/metrics", "/v1/skus/A/limit/",
		"/v1/admin/cluster/members/node-b/forget", "/v1/admin/cluster/members/n%3A1/forget", "/v1/admin/cluster/members//forget"} {
		f.Add([]byte("GET"), []byte(s))
		f.Add([]byte("POST"), []byte(s))
	}
	f.Fuzz(func(t *testing.T, method, path []byte) {
		id, param, allow := match(method, path)
		if id == routeNone {
			return
		}
		if allow != "" || string(method) != routeTable[id].method {
			t.Fatalf("%s %q matched %v (allow %q)", method, path, routeTable[id].pattern, allow)
		}
		if seg, ok := unescapeSegment(nil, param); ok && len(seg) > len(param) {
			t.Fatalf("unescaping %q grew it to %q", param, seg)
		}
	})
}
