package gateway

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
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
	benchCheckout(b, Config{}, 201)
}

// BenchmarkCheckoutRateLimits is the same checkout with the per-client rate
// limits off (the default: a nil check), on with a rate the client never
// reaches (both buckets are taken from and the request goes on), and on with
// the customer over its rate (the 429 answer, after admission).
func BenchmarkCheckoutRateLimits(b *testing.B) {
	high := RateLimit{PerSecond: 1e9, Burst: 1e9}
	b.Run("off", func(b *testing.B) { benchCheckout(b, Config{}, 201) })
	b.Run("on", func(b *testing.B) {
		benchCheckout(b, Config{CustomerRate: high, ClientRate: high}, 201)
	})
	b.Run("limited", func(b *testing.B) {
		benchCheckout(b, Config{CustomerRate: RateLimit{PerSecond: 1e-3, Burst: 1}, ClientRate: high}, 429)
	})
}

// benchCheckout serves one checkout per iteration with cfg (its Engine and
// AdminToken are filled in) and expects status, but for the first request,
// which may find a full bucket.
func benchCheckout(b *testing.B, cfg Config, status int) {
	cfg.Engine, cfg.AdminToken, cfg.Logger = &trivialEngine{}, testToken, slog.New(slog.DiscardHandler)
	srv, err := New(cfg)
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
	h(&ctx)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		ctx.Response.Reset()
		h(&ctx)
		if ctx.Response.StatusCode() != status {
			b.Fatalf("%d %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}

// BenchmarkLimiterTableTake is one token taken from a bucket that is never
// empty: the cost of a limit that is on, alone. "parallel" has every worker
// on its own client addresses, spread over the shards.
func BenchmarkLimiterTableTake(b *testing.B) {
	high := RateLimit{PerSecond: 1e9, Burst: 1e9}
	b.Run("client", func(b *testing.B) {
		tab := newLimiterTable[netip.Addr](high, DefaultRateLimitEntriesMax, limiterShards)
		a := netip.MustParseAddr("192.0.2.1")
		b.ReportAllocs()
		for b.Loop() {
			tab.take(a, time.Now())
		}
	})
	b.Run("customer", func(b *testing.B) {
		tab := newLimiterTable[string](high, DefaultRateLimitEntriesMax, limiterShards)
		b.ReportAllocs()
		for b.Loop() {
			tab.take("c-1", time.Now())
		}
	})
	b.Run("parallel", func(b *testing.B) {
		tab := newLimiterTable[netip.Addr](high, DefaultRateLimitEntriesMax, limiterShards)
		var worker atomic.Uint32
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			w := worker.Add(1)
			for i := uint32(0); pb.Next(); i++ {
				tab.take(netip.AddrFrom4([4]byte{10, byte(w), byte(i>>8) & 3, byte(i)}), time.Now())
			}
		})
	})
}
