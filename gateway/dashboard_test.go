package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orderengine/orderengine/gateway/ui"
)

// requiredOf reads the "required: [...]" list of a schema in
// docs/openapi.yaml, so that the shape the server answers and the one the
// document promises cannot drift apart.
func requiredOf(t *testing.T, schema string) []string {
	t.Helper()
	raw, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	i := strings.Index(doc, "\n    "+schema+":\n")
	if i < 0 {
		t.Fatalf("schema %s is not in openapi.yaml", schema)
	}
	m := regexp.MustCompile(`required: \[([^\]]*)\]`).FindStringSubmatch(doc[i:])
	if m == nil {
		t.Fatalf("schema %s has no required list", schema)
	}
	var out []string
	for f := range strings.SplitSeq(m[1], ",") {
		out = append(out, strings.TrimSpace(f))
	}
	slices.Sort(out)
	return out
}

func keysOf(m map[string]any) []string {
	return slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
}

func TestDashboardShape(t *testing.T) {
	node := map[string]any{"mode": "cluster", "self": "n1"}
	ts := newTestServer(t, newFakeEngine(), func(c *Config) { c.Dashboard = func() any { return node } })
	ts.do(post("/v1/skus/A-1/restock", `{"quantity": 1000}`).admin().with("Content-Type", "application/json"))
	if r := ts.do(get("/v1/dashboard")); r.status != 200 { // someone watches: stock of hot SKUs is read
		t.Fatalf("GET /v1/dashboard: %d %s", r.status, r.body)
	}
	const checkouts = 2 * hotSampleEvery
	for i := range checkouts {
		r := ts.do(post("/v1/orders", fmt.Sprintf(`{"customer":"c-%d","items":[{"sku":"A-1","quantity":1}]}`, i)).
			with("Content-Type", "application/json"))
		if r.status != 201 {
			t.Fatalf("checkout: %d %s", r.status, r.body)
		}
	}
	ts.do(post("/v1/orders", `{"customer":"c-x","items":[{"sku":"A-1","quantity":5000}]}`).with("Content-Type", "application/json"))
	ts.srv.dash.tick(time.Now())
	ts.srv.dash.mu.Lock()
	ts.srv.dash.cached = nil // answer from this sample, not the cached one
	ts.srv.dash.mu.Unlock()

	r := ts.do(get("/v1/dashboard"))
	if r.status != 200 || r.header("Content-Type") != "application/json" {
		t.Fatalf("GET /v1/dashboard: %d %s %s", r.status, r.header("Content-Type"), r.body)
	}
	if got, want := keysOf(r.json), requiredOf(t, "Dashboard"); !slices.Equal(got, want) {
		t.Errorf("members %v, openapi.yaml requires %v", got, want)
	}
	if r.json["ready"] != true || r.json["reason"] != "" {
		t.Errorf("ready %v reason %v, want true and empty", r.json["ready"], r.json["reason"])
	}
	if n, _ := r.json["node"].(map[string]any); n["self"] != "n1" {
		t.Errorf("node %v, want what Config.Dashboard returns", r.json["node"])
	}
	traffic, _ := r.json["traffic"].(map[string]any)
	if got, want := keysOf(traffic), requiredOf(t, "DashboardTraffic"); !slices.Equal(got, want) {
		t.Errorf("traffic members %v, openapi.yaml requires %v", got, want)
	}
	cols := map[string][]any{}
	for k, v := range traffic {
		if a, ok := v.([]any); ok {
			cols[k] = a
		}
	}
	n := len(cols["t"])
	if n == 0 {
		t.Fatal("no samples")
	}
	for k, c := range cols {
		if len(c) != n {
			t.Errorf("column %s has %d samples, t has %d", k, len(c), n)
		}
	}
	var placed, conflicts float64
	for i := range n {
		placed += cols["checkouts"][i].(float64)
		conflicts += cols["conflict"][i].(float64)
	}
	if placed == 0 || conflicts == 0 {
		t.Errorf("the samples show %v checkouts and %v conflicts; want both", placed, conflicts)
	}
	if p99, ok := cols["p99_ms"][n-1].(float64); !ok || p99 <= 0 {
		t.Errorf("last p99 %v, want a positive latency", cols["p99_ms"][n-1])
	}
	hot, _ := r.json["hot_skus"].([]any)
	if len(hot) != 1 {
		t.Fatalf("hot_skus %v, want A-1 alone", r.json["hot_skus"])
	}
	h := hot[0].(map[string]any)
	if got, want := keysOf(h), requiredOf(t, "HotSKU"); !slices.Equal(got, want) {
		t.Errorf("hot SKU members %v, openapi.yaml requires %v", got, want)
	}
	if h["sku"] != "A-1" || h["rate"].(float64) <= 0 || h["reserved"] != float64(checkouts) {
		t.Errorf("hot SKU %v, want A-1 with a rate and %d reserved", h, checkouts)
	}
}

func TestDashboardNotReady(t *testing.T) {
	ts := newTestServer(t, newFakeEngine(), func(c *Config) {
		c.Readiness = func() error { return errors.New("not joined to the cluster yet") }
	})
	r := ts.do(get("/v1/dashboard"))
	if r.status != 200 || r.json["ready"] != false || r.json["reason"] != "not joined to the cluster yet" {
		t.Fatalf("GET /v1/dashboard of a node not ready: %d %s", r.status, r.body)
	}
	if n, _ := r.json["node"].(map[string]any); n["mode"] != "single-node" {
		t.Errorf("node %v without Config.Dashboard, want a single node", r.json["node"])
	}
}

func TestUIPage(t *testing.T) {
	ts := newTestServer(t, newFakeEngine())
	r := ts.do(get("/ui"))
	if r.status != 200 || !strings.HasPrefix(r.header("Content-Type"), "text/html") {
		t.Fatalf("GET /ui: %d %s", r.status, r.header("Content-Type"))
	}
	if !strings.Contains(r.header("Content-Security-Policy"), "connect-src 'self'") {
		t.Errorf("policy %q lets the page reach other hosts", r.header("Content-Security-Policy"))
	}
	if !bytes.Equal(r.body, ui.Page) || !bytes.Contains(r.body, []byte(`fetch("/v1/dashboard"`)) {
		t.Error("the page is not the embedded one, or does not poll /v1/dashboard")
	}
	// Self-contained: no script, style, font or image from anywhere else.
	if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//`).Find(r.body); m != nil {
		t.Errorf("the page loads something from elsewhere: %s", m)
	}
	// A token unlocks nothing more.
	if r2 := ts.do(get("/ui").admin()); !bytes.Equal(r2.body, r.body) {
		t.Error("the page differs with the admin token")
	}
}

func TestLatencyBuckets(t *testing.T) {
	prev := -1
	for us := range 20_000_000 / 997 {
		d := time.Duration(us*997) * time.Microsecond
		i := latencyBucket(d)
		if i < prev {
			t.Fatalf("bucket of %v is %d, below %d of a shorter latency", d, i, prev)
		}
		prev = i
		lo, hi := latencyBounds(i)
		if v := float64(d / time.Microsecond); i < latencyBuckets-1 && (v < lo || v >= hi) {
			t.Fatalf("%v is in bucket %d [%v, %v) µs", d, i, lo, hi)
		}
	}
	var counts [latencyBuckets]uint64
	for ms := 1; ms <= 100; ms++ {
		counts[latencyBucket(time.Duration(ms)*time.Millisecond)]++
	}
	for _, c := range []struct{ q, want float64 }{{0.5, 50}, {0.99, 99}} {
		if got := latencyQuantile(&counts, c.q); math.Abs(got-c.want)/c.want > 0.25 {
			t.Errorf("q%v of 1..100 ms is %.2f ms, want within 25%% of %v", c.q, got, c.want)
		}
	}
	if got := latencyQuantile(&[latencyBuckets]uint64{}, 0.5); !math.IsNaN(got) {
		t.Errorf("quantile of nothing is %v, want NaN", got)
	}
}

// The request path's part of the dashboard allocates nothing.
func TestDashboardCountersAllocateNothing(t *testing.T) {
	var c dashCounters
	items := []Item{{SKU: "A-1", Quantity: 1}, {SKU: "B-2", Quantity: 2}}
	if n := testing.AllocsPerRun(1000, func() {
		c.sampleSKUs(items)
		c.record(routeOrderPlace, 201, time.Millisecond)
	}); n != 0 {
		t.Errorf("%v allocations per checkout", n)
	}
}

func TestHotSKUsFromSamples(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	d := newDashboard(newFakeEngine(), func() time.Time { return now })
	d.tick(now)
	hot, cold := []Item{{SKU: "hot"}}, []Item{{SKU: "cold"}}
	for i := range 100 * hotSampleEvery {
		if i%10 == 0 {
			d.c.sampleSKUs(cold)
		} else {
			d.c.sampleSKUs(hot)
		}
		d.c.record(routeOrderPlace, 201, time.Millisecond)
	}
	now = now.Add(time.Second)
	d.tick(now)
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.ranked()
	if len(r) != 2 || r[0].SKU != "hot" || r[1].SKU != "cold" || r[0].Rate < 5*r[1].Rate {
		t.Fatalf("ranked %+v, want hot well above cold", r)
	}
}
