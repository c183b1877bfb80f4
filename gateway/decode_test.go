package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestDecodePlaceOrder(t *testing.T) {
	for _, tc := range []struct {
		give string
		want string // fmt of the request, or "field=..." / "json"
	}{
		{`{"customer":"c-1","items":[{"sku":"A-1","quantity":2}],"ttl_seconds":60}`, `c-1 [{A-1 2}] 1m0s`},
		{` {"items":[{"quantity":1,"sku":"B"},{"sku":"A","quantity":10000}],"customer":"c"} `, `c [{B 1} {A 10000}] 15m0s`},
		{`{"customer":"c","items":[{"sku":"A","quantity":1,"x":{"y":"}]"}}],"extra":[1,{"a":"\""}],"ttl_seconds":null}`, `c [{A 1}] 15m0s`},
		{`{"\u0063ustomer":"c","items":[{"sku":"A\u002d1","quantity":1}]}`, `c [{A-1 1}] 15m0s`},
		{`{"Customer":"c","customer":"d","items":[{"sku":"A","quantity":1}]}`, `d [{A 1}] 15m0s`},
		{`{"customer":"c","items":[{"sku":"A","quantity":1}],"ttl_seconds":86400}`, `c [{A 1}] 24h0m0s`},
		{`{"customer":"c","items":[{"sku":"A","quantity":1}],"ttl_seconds":1.5}`, `field=ttl_seconds`},
		{`{"customer":"c","items":[{"sku":"A","quantity":1}],"ttl_seconds":-0}`, `field=ttl_seconds`},
		{`{"customer":"c","items":[{"sku":"A","quantity":1}],"items":[]}`, `field=items`},
		{`{"customer":"c","items":[{"sku":"A","sku":"B","quantity":1}]}`, `field=items[0].sku`},
		{`{"customer":"c","items":[{"sku":"A","quantity":1,"quantity":1}]}`, `field=items[0].quantity`},
		{`{"customer":"c","items":[{"sku":"A","quantity":1},{"sku":"B","quantity":1},{"sku":"A","quantity":1}]}`, `field=items[2].sku`},
		{`{"customer":"c","items":[{"sku":"A","quantity":1} , ]}`, `json`},
		{`{"customer":"c","items":[{"sku":"A","quantity":01}]}`, `json`},
		{`{"customer":"c","items":{"sku":"A"}}`, `field=items`},
		{`{"customer":"c","items":[[]]}`, `field=items[0]`},
		{`{"customer":"c","items":[{"sku":"A","quantity":1}]}` + "\x00", `json`},
		{`{"customer":"` + strings.Repeat("c", 128) + `","items":[{"sku":"A","quantity":1}]}`, strings.Repeat("c", 128) + ` [{A 1}] 15m0s`},
		{`{"customer":"c\n","items":[{"sku":"A","quantity":1}]}`, `field=customer`},
		{`true`, `json`},
		{``, `json`},
	} {
		req, err := decodePlaceOrder([]byte(tc.give))
		got := describe(fmt.Sprintf("%s %v %v", req.Customer, req.Items, req.TTL), err)
		if got != tc.want {
			t.Errorf("%s\n got %s\nwant %s", tc.give, got, tc.want)
		}
	}
}

func describe(ok string, err error) string {
	var f *InvalidFieldError
	var j *invalidJSONError
	switch {
	case err == nil:
		return ok
	case errors.As(err, &f):
		return "field=" + f.Field
	case errors.As(err, &j):
		return "json"
	}
	return "other: " + err.Error()
}

func TestDecodeQuantityAndPay(t *testing.T) {
	for give, want := range map[string]string{
		`{"quantity":1000000000}`:      "1000000000",
		`{"quantity":1,"note":"x"}`:    "1",
		`{"quantity":1000000001}`:      "field=quantity",
		`{"quantity":1E3}`:             "field=quantity",
		`{"quantity":-0}`:              "field=quantity",
		`{"quantity":[1]}`:             "field=quantity",
		`{"quantity":{}}`:              "field=quantity",
		`{"quantity":1}{"quantity":2}`: "json",
		`[{"quantity":1}]`:             "json",
	} {
		q, err := decodeQuantity([]byte(give))
		if got := describe(fmt.Sprint(q), err); got != want {
			t.Errorf("quantity %s: got %s, want %s", give, got, want)
		}
	}
	for give, want := range map[string]string{
		`{"payment_ref":"pay-77"}`:                          "pay-77",
		`{"payment_ref":"p:1.2_3-4"}`:                       "p:1.2_3-4",
		`{"payment_ref":"` + strings.Repeat("p", 65) + `"}`: "field=payment_ref",
		`{"payment_ref":"a","payment_ref":"a"}`:             "field=payment_ref",
		`{"payment_ref":["a"]}`:                             "field=payment_ref",
		`{"Payment_ref":"a"}`:                               "field=payment_ref",
		`"pay-77"`:                                          "json",
	} {
		ref, err := decodePay([]byte(give))
		if got := describe(ref, err); got != want {
			t.Errorf("pay %s: got %s, want %s", give, got, want)
		}
	}
}

func TestIdentifiersAndContentType(t *testing.T) {
	for s, want := range map[string]bool{
		"A-1": true, "a.b_c:d-e": true, strings.Repeat("x", 64): true,
		"": false, "a b": false, "a/b": false, "é": false, strings.Repeat("x", 65): false,
	} {
		if validIdentifier([]byte(s), identifierBytesMax) != want {
			t.Errorf("validIdentifier(%q) != %v", s, want)
		}
	}
	for s, want := range map[string]bool{
		"o_01J00000000000000000000001": true, "o_7ZZZZZZZZZZZZZZZZZZZZZZZZZ": true,
		"o_8ZZZZZZZZZZZZZZZZZZZZZZZZZ": false, "o_01J0000000000000000000000U": false,
		"o_01j00000000000000000000001": false, "x_01J00000000000000000000001": false, "o_01J": false,
	} {
		if validOrderID([]byte(s)) != want {
			t.Errorf("validOrderID(%q) != %v", s, want)
		}
	}
	for ct, want := range map[string]bool{
		"application/json": true, "Application/JSON": true, "application/json; charset=utf-8": true,
		`application/json;charset="UTF-8"`: true, "application/json; foo=bar": true,
		"application/json; charset=latin1": false, "text/json": false, "": false, "application/json-patch+json": false,
	} {
		if jsonContentType([]byte(ct)) != want {
			t.Errorf("jsonContentType(%q) != %v", ct, want)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"plain", "q\"b\\s", "ctl\x00\x1f\n\t", "<&>", "é€", "bad\xffutf8"} {
		var back string
		if err := json.Unmarshal(appendJSONString(nil, s), &back); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); back != want {
			t.Errorf("round trip %q -> %q", s, back)
		}
	}
	o := Order{ID: validID, Status: "paid", Customer: "c", Items: []Item{{"A", 1}},
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("x", 3600)), PaymentRef: "p"}
	if got := string(appendOrder(nil, o)); !strings.Contains(got, `"created_at":"2026-01-02T02:04:05.0000006Z"`) ||
		!strings.Contains(got, `"payment_ref":"p"`) || !json.Valid([]byte(got)) {
		t.Errorf("order: %s", got)
	}
}
