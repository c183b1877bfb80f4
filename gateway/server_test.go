package gateway

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

func TestNewChecksConfig(t *testing.T) {
	if _, err := New(Config{AdminToken: "t"}); err == nil {
		t.Error("no engine accepted")
	}
	if _, err := New(Config{Engine: newFakeEngine()}); err == nil {
		t.Error("no admin token accepted")
	}
	reg := prometheus.NewRegistry()
	if _, err := New(Config{Engine: newFakeEngine(), AdminToken: "t", Registry: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Engine: newFakeEngine(), AdminToken: "t", Registry: reg}); err == nil {
		t.Error("second registration on one registry accepted")
	}
}

// TestServeTCP serves a real loopback port.
func TestServeTCP(t *testing.T) {
	srv, err := New(Config{Engine: newFakeEngine(), AdminToken: testToken})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	status, body, err := fasthttp.GetTimeout(nil, "http://"+ln.Addr().String()+"/healthz", 5*time.Second)
	if err != nil || status != 200 || string(body) != `{"status":"ok"}` {
		t.Fatalf("healthz: %d %s %v", status, body, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestMalformedHTTP sends requests that fasthttp cannot read over the
// in-memory listener; transport_test.go does the same over TCP.
func TestMalformedHTTP(t *testing.T) {
	ts := newTestServer(t, newFakeEngine())
	cases := []struct {
		name, request string
		status        int
		slug          string
	}{
		{"headers over the buffer", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", headerBytesMax) + "\r\n\r\n", 431, "headers-too-large"},
		{"broken chunk", "POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "bad-request"},
		{"no method", " /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad-request"},
		{"header without colon", "GET /healthz HTTP/1.1\r\nHost: x\r\nnot a header\r\n\r\n", 400, "bad-request"},
	}
	for _, tc := range cases {
		r := ts.raw(tc.request)
		wantProblem(t, r, tc.status, tc.slug, "")
		if _, ok := r.json["instance"]; ok {
			t.Errorf("%s: instance %v, but the request was never read", tc.name, r.json["instance"])
		}
	}
}
