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

func TestMalformedHTTP(t *testing.T) {
	ts := newTestServer(t, newFakeEngine())
	r := ts.raw("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", headerBytesMax) + "\r\n\r\n")
	wantProblem(t, r, 400, "bad-request", "")
	r = ts.raw("POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
	wantProblem(t, r, 400, "bad-request", "")
}
