package gateway

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// trivialEngine answers every checkout with the same order.
type trivialEngine struct{ fakeEngine }

func (*trivialEngine) PlaceOrder(_ context.Context, req PlaceOrderRequest) (Order, error) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	return Order{ID: validID, Status: "reserved", Customer: req.Customer, Items: req.Items,
		CreatedAt: now, ExpiresAt: now.Add(req.TTL)}, nil
}

// BenchmarkCheckoutHandler runs the whole handler path of POST /v1/orders
// (routing, request ID, content type, decoding, admission, engine call,
// encoding, metrics) on a reused RequestCtx, as fasthttp does.
func BenchmarkCheckoutHandler(b *testing.B) {
	srv, err := New(Config{Engine: &trivialEngine{}, AdminToken: testToken, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	body := []byte(`{"customer":"c-1","items":[{"sku":"A-1","quantity":2},{"sku":"B-2","quantity":1}],"ttl_seconds":900}`)
	var ctx fasthttp.RequestCtx
	var req fasthttp.Request
	req.Header.SetMethod("POST")
	req.SetRequestURI("/v1/orders")
	req.Header.SetContentType("application/json")
	req.SetBody(body)
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}, nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		ctx.Response.Reset()
		h(&ctx)
		if ctx.Response.StatusCode() != 201 {
			b.Fatalf("%d %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}
