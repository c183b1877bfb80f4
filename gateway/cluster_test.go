package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeCluster plays Config.ForgetNode: node-a is alive, node-b is dead,
// node-c is dead until forgotten, and the node is not ready until ready
// is set. It records every call.
type fakeCluster struct {
	mu    sync.Mutex
	ready bool
	calls []string
	dead  map[string]bool
}

func newFakeCluster() *fakeCluster {
	return &fakeCluster{ready: true, dead: map[string]bool{"node-b": true, "node-c:7946": true}}
}

func (f *fakeCluster) forget(ctx context.Context, node string) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, node)
	if _, ok := ctx.Deadline(); !ok {
		return nil, errors.New("no deadline")
	}
	switch {
	case !f.ready:
		return nil, fmt.Errorf("forget %s: %w", node, ErrUnavailable)
	case node == "node-a":
		return nil, &ConflictError{Detail: "the node is alive; make sure it is down before forgetting it"}
	case !f.dead[node]:
		return nil, fmt.Errorf("forget %s: %w", node, ErrNotFound)
	}
	delete(f.dead, node)
	return map[string]any{"mode": "cluster", "self": "node-a", "tombstones": map[string]int64{node: 1764500000000000000}}, nil
}

func (f *fakeCluster) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func forgetPath(node string) string { return "/v1/admin/cluster/members/" + node + "/forget" }

func TestForgetNode(t *testing.T) {
	fc := newFakeCluster()
	ts := newTestServer(t, newFakeEngine(), func(c *Config) { c.ForgetNode = fc.forget })

	r := ts.do(post(forgetPath("node-b"), "").admin())
	if r.status != 200 || r.header("Content-Type") != "application/json" ||
		string(r.body) != `{"mode":"cluster","self":"node-a","tombstones":{"node-b":1764500000000000000}}` {
		t.Fatalf("forget node-b: %d %q %s", r.status, r.header("Content-Type"), r.body)
	}
	// A percent-encoded name is the name; a body is ignored but must be JSON.
	if r := ts.do(post(forgetPath("node-c%3A7946"), `{"why":"disk died"}`).admin()); r.status != 200 {
		t.Fatalf("forget node-c:7946: %d %s", r.status, r.body)
	}

	r = ts.do(post(forgetPath("node-a"), "").admin())
	wantProblem(t, r, 409, "conflict", "")
	if r.str("detail") != "the node is alive; make sure it is down before forgetting it" {
		t.Errorf("409 detail: %s", r.body)
	}
	r = ts.do(post(forgetPath("node-z"), "").admin())
	wantProblem(t, r, 404, "not-found", "")
	if !strings.Contains(r.str("detail"), "no member named node-z") {
		t.Errorf("404 detail: %s", r.body)
	}
	// Forgetting twice: the second time the node is unknown.
	wantProblem(t, ts.do(post(forgetPath("node-b"), "").admin()), 404, "not-found", "")

	fc.mu.Lock()
	fc.ready = false
	fc.mu.Unlock()
	r = ts.do(post(forgetPath("node-b"), "").admin())
	wantProblem(t, r, 503, "unavailable", "")
	if r.header("Retry-After") != "1" || !strings.Contains(r.str("detail"), "not joined") {
		t.Errorf("503: Retry-After %q, %s", r.header("Retry-After"), r.body)
	}
	want := []string{"node-b", "node-c:7946", "node-a", "node-z", "node-b", "node-b"}
	if got := fc.called(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("calls %q, want %q", got, want)
	}
}

func TestForgetNodeRefusedCallsNothing(t *testing.T) {
	fc := newFakeCluster()
	ts := newTestServer(t, newFakeEngine(), func(c *Config) { c.ForgetNode = fc.forget })
	long := strings.Repeat("n", nodeNameBytesMax+1)
	for _, tc := range []struct {
		name   string
		r      req
		status int
		slug   string
		field  string
	}{
		{"no token", post(forgetPath("node-b"), ""), 401, "unauthorized", ""},
		{"wrong token", req{method: "POST", path: forgetPath("node-b"), token: "guess"}, 401, "unauthorized", ""},
		{"401 before 422", post(forgetPath("a%20b"), ""), 401, "unauthorized", ""},
		{"GET", get(forgetPath("node-b")).admin(), 405, "method-not-allowed", ""},
		{"body not JSON", post(forgetPath("node-b"), "{").admin(), 400, "invalid-json", ""},
		{"400 before 422", post(forgetPath("a%20b"), "{").admin(), 400, "invalid-json", ""},
		{"body not JSON typed", req{method: "POST", path: forgetPath("node-b"), body: "yes", contentType: "text/plain", token: testToken}, 415, "unsupported-media-type", ""},
		{"space", post(forgetPath("a%20b"), "").admin(), 422, "invalid-field", "node"},
		{"slash", post(forgetPath("a%2Fb"), "").admin(), 422, "invalid-field", "node"},
		{"bad escape", post(forgetPath("a%zz"), "").admin(), 422, "invalid-field", "node"},
		{"too long", post(forgetPath(long), "").admin(), 422, "invalid-field", "node"},
		{"non-ASCII", post(forgetPath("n%C3%B6de"), "").admin(), 422, "invalid-field", "node"},
		{"empty name", post(forgetPath(""), "").admin(), 404, "not-found", ""},
		{"no action", post("/v1/admin/cluster/members/node-b", "").admin(), 404, "not-found", ""},
		{"other action", post("/v1/admin/cluster/members/node-b/kill", "").admin(), 404, "not-found", ""},
		{"trailing slash", post(forgetPath("node-b")+"/", "").admin(), 404, "not-found", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantProblem(t, ts.do(tc.r), tc.status, tc.slug, tc.field)
		})
	}
	if got := fc.called(); len(got) != 0 {
		t.Fatalf("refused requests called ForgetNode with %q", got)
	}
	// The longest name passes validation and reaches the cluster.
	wantProblem(t, ts.do(post(forgetPath(long[1:]), "").admin()), 404, "not-found", "")
	if got := fc.called(); len(got) != 1 || got[0] != long[1:] {
		t.Fatalf("calls %q", got)
	}
}

func TestForgetNodeNotClustered(t *testing.T) {
	ts := newTestServer(t, newFakeEngine())
	r := ts.do(post(forgetPath("node-b"), "").admin())
	wantProblem(t, r, 404, "not-found", "")
	if r.str("detail") != "this node is not clustered" {
		t.Fatalf("detail: %s", r.body)
	}
	// The name is checked first, as for any route.
	wantProblem(t, ts.do(post(forgetPath("a%20b"), "").admin()), 422, "invalid-field", "node")
	wantProblem(t, ts.do(post(forgetPath("node-b"), "")), 401, "unauthorized", "")
}

func TestForgetNodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		forget func(context.Context, string) (any, error)
		status int
		slug   string
	}{
		{"unknown error", func(context.Context, string) (any, error) { return nil, errors.New("gossip on fire") }, 500, "internal"},
		{"view not JSON", func(context.Context, string) (any, error) { return func() {}, nil }, 500, "internal"},
		{"timeout", func(ctx context.Context, _ string) (any, error) { <-ctx.Done(); return nil, ctx.Err() }, 503, "unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, newFakeEngine(), func(c *Config) {
				c.ForgetNode = tc.forget
				c.RequestTimeout = 50 * time.Millisecond
			})
			wantProblem(t, ts.do(post(forgetPath("node-b"), "").admin()), tc.status, tc.slug, "")
		})
	}
}

func TestMatchForgetAllocatesNothing(t *testing.T) {
	method, path := []byte("POST"), []byte(forgetPath("node-b"))
	var id routeID
	var param []byte
	allocs := testing.AllocsPerRun(100, func() { id, param, _ = match(method, path) })
	if allocs != 0 || id != routeAdminForget || string(param) != "node-b" {
		t.Fatalf("match: %v %q, %v allocations", routeTable[id].pattern, param, allocs)
	}
}
