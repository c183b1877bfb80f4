package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// node is an orderd process started by a test.
type node struct {
	t     *testing.T
	cmd   *exec.Cmd
	base  string
	token string
	logs  *bytes.Buffer
	done  chan struct{}
}

// buildOrderd compiles the daemon once per test binary run.
var buildOrderd = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "orderd-e2e")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "orderd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// startNode starts orderd on dataDir and addr, with flags added to the
// test's own, and waits until it is ready.
func startNode(t *testing.T, dataDir, addr string, flags ...string) *node {
	t.Helper()
	bin, err := buildOrderd()
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, base: "http://" + addr, token: "e2e-admin-token", logs: &bytes.Buffer{}, done: make(chan struct{})}
	n.cmd = exec.Command(bin, append([]string{"-data", dataDir, "-http", addr, "-admin-token", n.token, "-log-level", "warn"}, flags...)...)
	pr, pw := io.Pipe()
	n.cmd.Stdout, n.cmd.Stderr = pw, pw
	var logMu sync.Mutex
	go func() {
		s := bufio.NewScanner(pr)
		for s.Scan() {
			logMu.Lock()
			n.logs.WriteString(s.Text() + "\n")
			logMu.Unlock()
		}
	}()
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.cmd.Wait(); pw.Close(); close(n.done) }()
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			logMu.Lock()
			t.Logf("orderd output:\n%s", n.logs.String())
			logMu.Unlock()
		}
	})
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("orderd not ready within 30s")
		}
		select {
		case <-n.done:
			t.Fatalf("orderd exited before it was ready")
		default:
		}
		if resp, err := http.Get(n.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return n
			}
		}
	}
}

func (n *node) kill() {
	if n.cmd.Process != nil {
		n.cmd.Process.Signal(syscall.SIGKILL)
		<-n.done
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

// call sends a JSON request and decodes the JSON answer into a map.
func (n *node) call(method, path string, body any, admin bool) (int, map[string]any) {
	n.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, n.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if admin {
		req.Header.Set("Authorization", "Bearer "+n.token)
	}
	resp, err := client.Do(req)
	if err != nil {
		n.t.Errorf("%s %s: %v", method, path, err)
		return 0, nil
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// A flash sale against a real orderd: exactly the stock is sold, every
// other attempt is told out-of-stock, and after kill -9 and a restart every
// acknowledged order is still there.
func TestFlashSaleSurvivesKill9(t *testing.T) {
	const stock, attempts, clients = 1000, 20000, 200
	if testing.Short() {
		t.Skip("builds and runs orderd")
	}
	dataDir, addr := t.TempDir(), freeAddr(t)
	n := startNode(t, dataDir, addr)
	if code, body := n.call("POST", "/v1/skus/FLASH-1/restock", map[string]any{"quantity": stock}, true); code != 200 {
		t.Fatalf("restock: %d %v", code, body)
	}

	var next atomic.Int64
	var mu sync.Mutex
	won := map[string]string{} // order id -> status
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for next.Add(1) <= attempts {
				code, body := n.call("POST", "/v1/orders", map[string]any{
					"customer": fmt.Sprint("c-", c),
					"items":    []map[string]any{{"sku": "FLASH-1", "quantity": 1}},
				}, false)
				mu.Lock()
				statuses[code]++
				if code == 201 {
					won[body["id"].(string)] = body["status"].(string)
				} else if code == 409 && !strings.HasSuffix(fmt.Sprint(body["type"]), "/out-of-stock") {
					t.Errorf("409 that is not out-of-stock: %v", body)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(won) != stock || statuses[201] != stock || statuses[409] != attempts-stock {
		t.Fatalf("statuses %v, %d distinct orders won; want %d x 201 and %d x 409", statuses, len(won), stock, attempts-stock)
	}
	skuBefore := checkSKU(t, n, 0, stock, 0)

	n.kill()
	n = startNode(t, dataDir, addr)
	for id, status := range won {
		code, body := n.call("GET", "/v1/orders/"+id, nil, false)
		if code != 200 || body["status"] != status {
			t.Fatalf("order %s after restart: %d %v, want status %s", id, code, body, status)
		}
	}
	if skuAfter := checkSKU(t, n, 0, stock, 0); fmt.Sprint(skuAfter) != fmt.Sprint(skuBefore) {
		t.Fatalf("SKU view changed across kill -9: %v -> %v", skuBefore, skuAfter)
	}
}

func checkSKU(t *testing.T, n *node, available, reserved, sold float64) map[string]any {
	t.Helper()
	return checkStock(t, n, "FLASH-1", available, reserved, sold)
}

// checkStock fails the test unless sku's view shows these counts.
func checkStock(t *testing.T, n *node, sku string, available, reserved, sold float64) map[string]any {
	t.Helper()
	code, v := n.call("GET", "/v1/skus/"+sku, nil, false)
	if code != 200 || v["available"] != available || v["reserved"] != reserved || v["sold"] != sold {
		t.Fatalf("sku %s view %d %v, want available %v reserved %v sold %v", sku, code, v, available, reserved, sold)
	}
	return v
}

// SIGTERM stops the node cleanly (exit status 0), and a restart serves the
// same state; a second node on the same data directory is refused.
func TestSigtermStopsCleanlyAndDataDirIsExclusive(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs orderd")
	}
	dataDir := t.TempDir()
	n := startNode(t, dataDir, freeAddr(t))
	n.call("POST", "/v1/skus/S-1/restock", map[string]any{"quantity": 5}, true)
	code, order := n.call("POST", "/v1/orders", map[string]any{"customer": "c", "items": []map[string]any{{"sku": "S-1", "quantity": 2}}}, false)
	if code != 201 {
		t.Fatalf("checkout: %d %v", code, order)
	}

	bin, _ := buildOrderd()
	out, err := exec.Command(bin, "-data", dataDir, "-http", freeAddr(t), "-admin-token", "x").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another orderd is using this data directory") {
		t.Fatalf("second node on the same data directory: %v\n%s", err, out)
	}

	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(20 * time.Second):
		t.Fatal("orderd did not stop within 20s of SIGTERM")
	}
	if st := n.cmd.ProcessState; st == nil || st.ExitCode() != 0 {
		t.Fatalf("exit after SIGTERM: %v", st)
	}
	n = startNode(t, dataDir, freeAddr(t))
	if code, v := n.call("GET", "/v1/skus/S-1", nil, false); code != 200 || v["available"] != 3.0 || v["reserved"] != 2.0 {
		t.Fatalf("after restart: %d %v", code, v)
	}
	if code, o := n.call("GET", "/v1/orders/"+order["id"].(string), nil, false); code != 200 || o["status"] != "reserved" {
		t.Fatalf("order after restart: %d %v", code, o)
	}
}

// metric returns the value of an unlabelled sample on /metrics, or -1.
func (n *node) metric(name string) float64 {
	n.t.Helper()
	resp, err := client.Get(n.base + "/metrics")
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	s := bufio.NewScanner(resp.Body)
	for s.Scan() {
		var v float64
		if f := strings.Fields(s.Text()); len(f) == 2 && f[0] == name {
			if _, err := fmt.Sscan(f[1], &v); err == nil {
				return v
			}
		}
	}
	return -1
}

// Refused checkouts without a key and reads of unknown SKUs, the requests
// anyone can send, leave nothing behind: no order to read, no order id in
// the 409, and the node's resident actors fall back to where they were.
func TestRefusalsLeaveNothingBehind(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs orderd")
	}
	const requests, clients = 3000, 32
	n := startNode(t, t.TempDir(), freeAddr(t))
	n.call("POST", "/v1/skus/S-1/restock", map[string]any{"quantity": 1}, true)
	if code, _ := n.call("GET", "/v1/skus/S-1", nil, false); code != 200 {
		t.Fatalf("restocked SKU: %d", code)
	}
	baseline := n.metric("orderengine_actors_resident")

	var next atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for i := next.Add(1); i <= requests; i = next.Add(1) {
				sku := fmt.Sprint("NOPE-", i)
				code, p := n.call("POST", "/v1/orders", map[string]any{"customer": "c",
					"items": []map[string]any{{"sku": "S-1", "quantity": 2}, {"sku": sku, "quantity": 1}}}, false)
				if _, named := p["order_id"]; code != 409 || p["sku"] != "S-1" || named {
					t.Errorf("refused checkout: %d %v", code, p)
					return
				}
				if code, _ := n.call("GET", "/v1/skus/"+sku, nil, false); code != 404 {
					t.Errorf("unknown SKU: %d", code)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	deadline := time.Now().Add(20 * time.Second)
	for got := n.metric("orderengine_actors_resident"); got > baseline; got = n.metric("orderengine_actors_resident") {
		if time.Now().After(deadline) {
			resp, _ := client.Get(n.base + "/metrics")
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var live []string
			for _, l := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(l, "orderengine_actors_live") {
					live = append(live, l)
				}
			}
			t.Fatalf("%v actors resident 20s after %d refusals, want %v as before; %s", got, requests, baseline, live)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, v := n.call("GET", "/v1/skus/S-1", nil, false); code != 200 || v["available"] != 1.0 || v["reserved"] != 0.0 {
		t.Fatalf("S-1 after the refusals: %d %v", code, v)
	}
	resp, err := client.Get(n.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`orderengine_mailbox_messages{kind="sku"} 0`, `orderengine_mailbox_depth_max{kind="order"} 0`,
		`orderengine_partitions{state="held"} 64`, `orderengine_partitions_total 64`} {
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// The rate limit flags reach the gateway: a customer over its rate is
// refused with Retry-After and nothing reserved, another customer is not.
func TestCustomerRateLimitFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs orderd")
	}
	n := startNode(t, filepath.Join(t.TempDir(), "data"), freeAddr(t), "-customer-rate", "1/h", "-customer-burst", "1")
	if code, _ := n.call("POST", "/v1/skus/FLASH-1/restock", map[string]any{"quantity": 10}, true); code != 200 {
		t.Fatalf("restock: %d", code)
	}
	order := func(customer string) (int, map[string]any) {
		return n.call("POST", "/v1/orders", map[string]any{"customer": customer, "items": []any{map[string]any{"sku": "FLASH-1", "quantity": 1}}}, false)
	}
	if code, body := order("c-1"); code != 201 {
		t.Fatalf("first checkout: %d %v", code, body)
	}
	if code, body := order("c-1"); code != 429 || !strings.HasSuffix(fmt.Sprint(body["type"]), "/rate-limited") {
		t.Fatalf("second checkout of c-1: %d %v", code, body)
	}
	if code, body := order("c-2"); code != 201 {
		t.Fatalf("another customer: %d %v", code, body)
	}
	checkSKU(t, n, 8, 2, 0)
}

// checkoutAll sends n checkouts of one unit of sku from clients goroutines;
// customer(i) names the customer of the i-th. It returns the ids of the
// orders placed and counts the other answers by status and problem slug.
func checkoutAll(t *testing.T, n *node, sku string, total, clients int, customer func(i int) string) (placed map[string]string, refused map[string]int) {
	t.Helper()
	var mu sync.Mutex
	placed, refused = map[string]string{}, map[string]int{}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for i := int(next.Add(1)); i <= total; i = int(next.Add(1)) {
				c := customer(i)
				code, body := n.call("POST", "/v1/orders", map[string]any{"customer": c,
					"items": []map[string]any{{"sku": sku, "quantity": 1}}}, false)
				mu.Lock()
				if code == 201 {
					placed[body["id"].(string)] = c
				} else {
					refused[fmt.Sprint(code, " ", body["type"])]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return placed, refused
}

// 200 racing checkouts of one customer against a limit of 2: exactly two
// pass; after one is cancelled, exactly one more.
func TestPurchaseLimitUnderRacingCheckouts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs orderd")
	}
	n := startNode(t, t.TempDir(), freeAddr(t))
	n.call("POST", "/v1/skus/L-1/restock", map[string]any{"quantity": 1000}, true)
	if code, v := n.call("PUT", "/v1/skus/L-1/limit", map[string]any{"per_customer": 2}, true); code != 200 || v["per_customer_limit"] != 2.0 {
		t.Fatalf("set limit: %d %v", code, v)
	}
	one := func(int) string { return "scalper" }
	placed, refused := checkoutAll(t, n, "L-1", 200, 50, one)
	const limited = "409 https://orderengine.dev/problems/limit-exceeded"
	if len(placed) != 2 || refused[limited] != 198 {
		t.Fatalf("placed %d, refused %v; want 2 placed and 198 limit-exceeded", len(placed), refused)
	}
	checkStock(t, n, "L-1", 998, 2, 0)
	for id := range placed {
		if code, o := n.call("POST", "/v1/orders/"+id+"/cancel", nil, false); code != 200 {
			t.Fatalf("cancel: %d %v", code, o)
		}
		break
	}
	placed, refused = checkoutAll(t, n, "L-1", 50, 25, one)
	if len(placed) != 1 || refused[limited] != 49 {
		t.Fatalf("after a cancel: placed %d, refused %v; want 1 and 49 limit-exceeded", len(placed), refused)
	}
	checkStock(t, n, "L-1", 998, 2, 0)
}

// A flash sale with a limit of one: 1 000 customers try 5 times each for
// 500 units; exactly 500 distinct customers hold one unit each.
func TestFlashSaleWithALimitOfOne(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs orderd")
	}
	const customers, tries, stock = 1000, 5, 500
	n := startNode(t, t.TempDir(), freeAddr(t))
	n.call("PUT", "/v1/skus/SALE/limit", map[string]any{"per_customer": 1}, true)
	n.call("POST", "/v1/skus/SALE/restock", map[string]any{"quantity": stock}, true)
	placed, refused := checkoutAll(t, n, "SALE", customers*tries, 64, func(i int) string { return fmt.Sprint("c-", i%customers) })
	holders := map[string]bool{}
	for _, c := range placed {
		if holders[c] {
			t.Fatalf("customer %s holds two units", c)
		}
		holders[c] = true
	}
	other := 0
	for k, v := range refused {
		if !strings.HasSuffix(k, "/limit-exceeded") && !strings.HasSuffix(k, "/out-of-stock") {
			other += v
			t.Errorf("unexpected answers: %d × %s", v, k)
		}
	}
	if len(placed) != stock || other != 0 {
		t.Fatalf("%d orders placed by %d customers, refused %v; want %d", len(placed), len(holders), refused, stock)
	}
	checkStock(t, n, "SALE", 0, stock, 0)
}
