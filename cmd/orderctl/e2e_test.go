package main

import (
	"bytes"
	"context"
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
	logs  *syncBuffer
	done  chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// buildOrderd compiles the daemon once per test binary run.
var buildOrderd = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "orderctl-e2e")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "orderd")
	out, err := exec.Command("go", "build", "-o", bin, "../orderd").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func startNode(t *testing.T, dataDir string) *node {
	t.Helper()
	bin, err := buildOrderd()
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	n := &node{t: t, base: "http://" + addr, token: "e2e-admin-token", logs: &syncBuffer{}, done: make(chan struct{})}
	n.cmd = exec.Command(bin, "-data", dataDir, "-http", addr, "-admin-token", n.token, "-log-level", "warn")
	n.cmd.Stdout, n.cmd.Stderr = n.logs, n.logs
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	t.Cleanup(func() {
		n.signal(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("orderd output:\n%s", n.logs.String())
		}
	})
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
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

// stop stops the node cleanly and waits for it.
func (n *node) stop() {
	n.t.Helper()
	n.signal(syscall.SIGTERM)
}

func (n *node) signal(sig os.Signal) {
	if n.cmd.Process == nil {
		return
	}
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Signal(sig)
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		n.t.Errorf("orderd did not stop within 30s")
		_ = n.cmd.Process.Kill()
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

var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// call sends a JSON request and decodes the JSON answer.
func (n *node) call(method, path string, body any, admin bool) (int, map[string]any) {
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
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// orderctl runs the CLI in-process and returns its output.
func orderctl(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	err = run(context.Background(), args, &o, &e)
	return o.String(), e.String(), err
}

func mustOrderctl(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := orderctl(t, args...)
	if err != nil {
		t.Fatalf("orderctl %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	t.Logf("orderctl %s:\n%s", args[0], out)
	return out
}

// opRecord is what a load worker saw of one request on an order.
type opRecord struct {
	status      string
	sent, acked time.Time
}

// tracked is every order the test made, with what it saw of each.
type tracked struct {
	mu     sync.Mutex
	orders map[string][]opRecord
}

func (tr *tracked) add(id string, r opRecord) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.orders[id] = append(tr.orders[id], r)
}

// work places orders on skus until stop is closed, paying one in three
// and cancelling one in three.
func work(n *node, tr *tracked, skus []string, worker int, stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		sku := skus[(worker+i)%len(skus)]
		sent := time.Now()
		code, o := n.call("POST", "/v1/orders", map[string]any{"customer": fmt.Sprintf("c-%d", worker),
			"items": []map[string]any{{"sku": sku, "quantity": 1 + i%3}}}, false)
		if code != 201 {
			continue // out of stock: nothing is left behind
		}
		id := o["id"].(string)
		tr.add(id, opRecord{status: "reserved", sent: sent, acked: time.Now()})
		var path string
		var body any
		switch i % 3 {
		case 0:
			path, body = "/v1/orders/"+id+"/pay", map[string]any{"payment_ref": "pay-" + id}
		case 1:
			path = "/v1/orders/" + id + "/cancel"
		default:
			continue
		}
		sent = time.Now()
		if code, o := n.call("POST", path, body, false); code == 200 {
			tr.add(id, opRecord{status: o["status"].(string), sent: sent, acked: time.Now()})
		}
	}
}

// TestBackupUnderLoadRestoresWhatTheNodeReported takes a live backup of a
// node under load, restores it, starts orderd on it and compares; then an
// incremental backup after the load restores to exactly the node's final
// state; verify passes on both.
func TestBackupUnderLoadRestoresWhatTheNodeReported(t *testing.T) {
	if testing.Short() {
		t.Skip("starts orderd processes")
	}
	dir := t.TempDir()
	live := startNode(t, filepath.Join(dir, "live"))
	skus := []string{"A", "B", "C", "D", "E", "F", "G", "H"}
	for _, s := range skus {
		if code, _ := live.call("POST", "/v1/skus/"+s+"/restock", map[string]any{"quantity": 5000}, true); code != 200 {
			t.Fatalf("restock %s: %d", s, code)
		}
	}
	tr := &tracked{orders: map[string][]opRecord{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(live, tr, skus, w, stop)
		}()
	}
	// Let the load run a little before and during the backup.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		tr.mu.Lock()
		n := len(tr.orders)
		tr.mu.Unlock()
		if n >= 200 || time.Now().After(deadline) {
			break
		}
	}
	full := filepath.Join(dir, "full.backup")
	backupStart := time.Now()
	mustOrderctl(t, "backup", "-from", live.base, "-token", live.token, "-o", full)
	backupEnd := time.Now()
	close(stop)
	wg.Wait()

	// The full backup, restored and served.
	restored := filepath.Join(dir, "restored")
	mustOrderctl(t, "restore", "-i", full, "-data", restored)
	node2 := startNode(t, restored)
	checked := 0
	tr.mu.Lock()
	for id, ops := range tr.orders {
		if ops[0].acked.After(backupStart) {
			continue // placed while the backup ran: either way is right
		}
		allowed := map[string]bool{}
		for _, op := range ops {
			if !op.acked.After(backupStart) {
				allowed = map[string]bool{op.status: true} // the last acknowledged before
			}
		}
		for _, op := range ops {
			if op.sent.Before(backupEnd) && op.acked.After(backupStart) {
				allowed[op.status] = true // in flight during the backup
			}
		}
		code, o := node2.call("GET", "/v1/orders/"+id, nil, false)
		if code != 200 || !allowed[o["status"].(string)] {
			t.Errorf("restored order %s: %d %v, want one of %v (ops %+v)", id, code, o["status"], allowed, ops)
		}
		checked++
	}
	tr.mu.Unlock()
	if checked < 50 {
		t.Fatalf("only %d orders were acknowledged before the backup", checked)
	}
	for _, s := range skus {
		_, v := node2.call("GET", "/v1/skus/"+s, nil, false)
		if v["available"].(float64)+v["reserved"].(float64)+v["sold"].(float64) != 5000 {
			t.Errorf("restored sku %s does not conserve stock: %v", s, v)
		}
	}
	node2.stop()
	mustOrderctl(t, "verify", "-data", restored)
	mustOrderctl(t, "verify", "-i", full)

	// Quiet now: an incremental backup on top of the full one restores to
	// exactly what the live node reports.
	inc := filepath.Join(dir, "inc.backup")
	out := mustOrderctl(t, "backup", "-from", live.base, "-token", live.token, "-since", full, "-o", inc)
	if !strings.Contains(out, "incremental") {
		t.Fatalf("incremental backup output: %s", out)
	}
	chain := filepath.Join(dir, "chain")
	mustOrderctl(t, "restore", "-i", full, "-i", inc, "-data", chain)
	node3 := startNode(t, chain)
	for id := range tr.orders {
		c1, want := live.call("GET", "/v1/orders/"+id, nil, false)
		c2, got := node3.call("GET", "/v1/orders/"+id, nil, false)
		if c1 != c2 || fmt.Sprint(want) != fmt.Sprint(got) {
			t.Errorf("order %s: live %d %v, restored chain %d %v", id, c1, want, c2, got)
		}
	}
	for _, s := range skus {
		_, want := live.call("GET", "/v1/skus/"+s, nil, false)
		_, got := node3.call("GET", "/v1/skus/"+s, nil, false)
		if fmt.Sprint(want) != fmt.Sprint(got) {
			t.Errorf("sku %s: live %v, restored chain %v", s, want, got)
		}
	}
	node3.stop()
	mustOrderctl(t, "verify", "-data", chain)

	// The live node's directory cannot be read while it runs, and the
	// error says what to do; once it is stopped it can.
	_, _, err := orderctl(t, "backup", "-data", filepath.Join(dir, "live"), "-o", filepath.Join(dir, "x.backup"))
	if err == nil || !strings.Contains(err.Error(), "in use by a running orderd; stop it, or back the running node up with orderctl backup -from") {
		t.Fatalf("offline backup of a running node: %v", err)
	}
	live.stop()
	mustOrderctl(t, "backup", "-data", filepath.Join(dir, "live"), "-o", filepath.Join(dir, "offline.backup"))
	mustOrderctl(t, "inspect", "-i", filepath.Join(dir, "offline.backup"), "-kind", "sku")
}
