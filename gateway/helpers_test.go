package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const testToken = "s3cret-admin-token"

// observed collects every (route, status) the test servers answered, so
// TestMain can check them against docs/openapi.yaml.
var observed = struct {
	sync.Mutex
	pairs map[string]map[string]bool // route label -> status -> seen
}{pairs: map[string]map[string]bool{}}

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 && !testing.Short() {
		if err := checkObservedAgainstOpenAPI(); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL: observed responses vs docs/openapi.yaml:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// testServer is a Server serving an in-memory listener, or a loopback port
// (then ln is nil).
type testServer struct {
	t      *testing.T
	srv    *Server
	ln     *fasthttputil.InmemoryListener
	client *fasthttp.HostClient
	reg    *prometheus.Registry
	local  net.Addr // the client's address on ln; nil for the listener's own
}

func newTestServer(t *testing.T, engine Engine, tweak ...func(*Config)) *testServer {
	t.Helper()
	ln := fasthttputil.NewInmemoryListener()
	ts := startTestServer(t, engine, ln, "gateway.test", func(string) (net.Conn, error) { return ln.Dial() }, tweak...)
	ts.ln = ln
	return ts
}

// startTestServer serves ln with a Server made from engine and tweak, and
// returns it with a client that dials through dial. Cleanup shuts it down
// and records what it answered.
func startTestServer(t *testing.T, engine Engine, ln net.Listener, addr string,
	dial fasthttp.DialFunc, tweak ...func(*Config)) *testServer {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := Config{
		Engine:     engine,
		AdminToken: testToken,
		Logger:     slog.New(slog.NewTextHandler(t.Output(), nil)),
		Registry:   reg,
	}
	for _, f := range tweak {
		f(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	ts := &testServer{t: t, srv: srv, reg: reg,
		client: &fasthttp.HostClient{
			Addr:                   addr,
			Dial:                   dial,
			MaxResponseBodySize:    1 << 20,
			DisablePathNormalizing: true,
			ReadTimeout:            30 * time.Second,
		}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		ts.recordObserved()
	})
	return ts
}

// recordObserved adds the server's requests_total series to observed.
func (ts *testServer) recordObserved() {
	mfs, err := ts.reg.Gather()
	if err != nil {
		ts.t.Errorf("gather: %v", err)
		return
	}
	observed.Lock()
	defer observed.Unlock()
	for _, mf := range mfs {
		if mf.GetName() != "orderengine_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var route, status string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "route":
					route = l.GetValue()
				case "status":
					status = l.GetValue()
				}
			}
			if observed.pairs[route] == nil {
				observed.pairs[route] = map[string]bool{}
			}
			observed.pairs[route][status] = true
		}
	}
}

// req describes a request; the zero value is a GET without headers.
type req struct {
	method, path, body string
	contentType        string // "" = application/json when body != ""
	token              string // "" = none
	headers            map[string]string
}

func post(path, body string) req { return req{method: "POST", path: path, body: body} }
func get(path string) req        { return req{method: "GET", path: path} }
func (r req) admin() req         { r.token = testToken; return r }
func (r req) with(k, v string) req {
	h := map[string]string{k: v}
	for k0, v0 := range r.headers {
		h[k0] = v0
	}
	r.headers = h
	return r
}

// resp is a received response.
type resp struct {
	status  int
	headers map[string]string
	body    []byte
	json    map[string]any
}

func (r resp) header(k string) string { return r.headers[strings.ToLower(k)] }
func (r resp) slug() string {
	t, _ := r.json["type"].(string)
	return strings.TrimPrefix(t, problemBase)
}
func (r resp) str(k string) string { s, _ := r.json[k].(string); return s }

func (ts *testServer) do(r req) resp {
	ts.t.Helper()
	hreq := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(hreq)
	hres := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(hres)
	if r.method == "" {
		r.method = "GET"
	}
	hreq.Header.SetMethod(r.method)
	hreq.SetRequestURI("http://gateway.test" + r.path)
	hreq.URI().DisablePathNormalizing = true
	if r.body != "" {
		hreq.SetBodyString(r.body)
		if r.contentType == "" {
			r.contentType = "application/json"
		}
	}
	if r.contentType != "" && r.contentType != "-" {
		hreq.Header.SetContentType(r.contentType)
	}
	if r.token != "" {
		hreq.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.headers {
		hreq.Header.Set(k, v)
	}
	if err := ts.client.DoTimeout(hreq, hres, 30*time.Second); err != nil {
		ts.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	return readResp(ts.t, hres)
}

func readResp(t *testing.T, hres *fasthttp.Response) resp {
	t.Helper()
	out := resp{status: hres.StatusCode(), headers: map[string]string{}, body: slices.Clone(hres.Body())}
	for k, v := range hres.Header.All() {
		out.headers[strings.ToLower(string(k))] = string(v)
	}
	ct := out.header("Content-Type")
	if strings.HasPrefix(ct, "application/json") || strings.HasPrefix(ct, "application/problem+json") {
		if err := json.Unmarshal(out.body, &out.json); err != nil {
			t.Fatalf("response body is not a JSON object: %v: %q", err, out.body)
		}
	}
	return out
}

// raw sends bytes as they are and reads one response.
func (ts *testServer) raw(request string) resp {
	ts.t.Helper()
	c, err := ts.ln.DialWithLocalAddr(ts.local)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer c.Close()
	go func() { _, _ = c.Write([]byte(request)) }()
	hres := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(hres)
	if err := hres.Read(bufio.NewReader(c)); err != nil {
		ts.t.Fatalf("reading response: %v", err)
	}
	return readResp(ts.t, hres)
}

// wantProblem checks status, slug, the problem content type and the field.
func wantProblem(t *testing.T, r resp, status int, slug, field string) {
	t.Helper()
	if r.status != status || r.slug() != slug {
		t.Fatalf("got %d %q, want %d %q; body %s", r.status, r.slug(), status, slug, r.body)
	}
	if ct := r.header("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if got, _ := r.json["status"].(float64); int(got) != status {
		t.Errorf("status member = %v", r.json["status"])
	}
	if r.str("title") == "" || r.str("detail") == "" {
		t.Errorf("title or detail missing: %s", r.body)
	}
	if field != "" && r.str("field") != field {
		t.Errorf("field = %q, want %q; body %s", r.str("field"), field, r.body)
	}
	if (status == 429 || status == 503) && r.header("Retry-After") == "" {
		t.Errorf("%d without Retry-After", status)
	}
}
