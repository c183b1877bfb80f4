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

// call sends a JSON request and decodes the JSON answer into a map; a
// request that gets no answer fails the test.
func (n *node) call(method, path string, body any, admin bool) (int, map[string]any) {
	n.t.Helper()
	r := n.try(method, path, body, admin)
	if r.err != nil {
		n.t.Errorf("%s %s: %v", method, path, r.err)
	}
	return r.code, r.body
}

// reply is one HTTP answer, or the error of a request that got none.
type reply struct {
	code   int
	body   map[string]any
	header http.Header
	err    error
}

// try sends a JSON request without failing the test: the node may be
// full, starting, or dead.
func (n *node) try(method, path string, body any, admin bool) reply {
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
		return reply{err: err}
	}
	defer resp.Body.Close()
	r := reply{code: resp.StatusCode, header: resp.Header}
	json.NewDecoder(resp.Body).Decode(&r.body)
	return r
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
	code, v := n.call("GET", "/v1/skus/FLASH-1", nil, false)
	if code != 200 || v["available"] != available || v["reserved"] != reserved || v["sold"] != sold {
		t.Fatalf("sku view %d %v, want available %v reserved %v sold %v", code, v, available, reserved, sold)
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
