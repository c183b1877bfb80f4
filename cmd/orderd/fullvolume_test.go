package main

import (
	"fmt"
	"io"
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

// The tests here run orderd on a small tmpfs of its own, which needs root
// (CI runs as root); elsewhere they skip. The node's reserve has a fixed
// part of 1 MiB (-storage-reserve), so that the volumes stay small.
const (
	fullReserveFlag = "1MiB"
	fullSKUs        = 5
	fullWorkers     = 16
	fullWaitMax     = 40 * time.Second
)

func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs orderd")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root (CI runs as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v: %s", err, out)
	}
	// Registered after TempDir's removal, so it runs before it; after the
	// node's kill, which is registered later still.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func resizeTmpfs(t *testing.T, dir string, size int64) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", fmt.Sprintf("remount,size=%d", size), dir).CombinedOutput(); err != nil {
		t.Fatalf("grow the tmpfs: %v: %s", err, out)
	}
}

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

func (r reply) storageFull() bool {
	detail, _ := r.body["detail"].(string)
	return r.code == 503 && strings.HasSuffix(fmt.Sprint(r.body["type"]), "/unavailable") &&
		strings.Contains(detail, "storage is full") && r.header.Get("Retry-After") != ""
}

// startFullNode starts orderd on dir with the small reserve and stocks the
// SKUs that the checkouts buy.
func startFullNode(t *testing.T, dir, addr string) *node {
	t.Helper()
	n := startNode(t, dir, addr, "-storage-reserve", fullReserveFlag, "-journal-memtable", "8MiB")
	for i := range fullSKUs {
		if code, body := n.call("POST", fmt.Sprintf("/v1/skus/FULL-%d/restock", i), map[string]any{"quantity": 1_000_000_000}, true); code != 200 {
			t.Fatalf("restock: %d %v", code, body)
		}
	}
	return n
}

// fullCheckout is a checkout of one unit of every SKU, with a long
// customer name: a few KiB of journal per order.
func fullCheckout(worker int) map[string]any {
	items := make([]map[string]any, fullSKUs)
	for i := range items {
		items[i] = map[string]any{"sku": fmt.Sprintf("FULL-%d", i), "quantity": 1}
	}
	return map[string]any{"customer": fmt.Sprintf("customer-%03d-%s", worker, strings.Repeat("x", 100)), "items": items}
}

// load places orders from several workers until stopped, and remembers
// every acknowledged one.
type load struct {
	mu       sync.Mutex
	acked    []string
	attempts atomic.Int64
	full     atomic.Int64 // 503s that say storage is full
	stop     atomic.Bool
	wg       sync.WaitGroup
}

func startLoad(t *testing.T, n *node) *load {
	l := &load{}
	for w := range fullWorkers {
		l.wg.Go(func() {
			for !l.stop.Load() {
				r := n.try("POST", "/v1/orders", fullCheckout(w), false)
				l.attempts.Add(1)
				switch {
				case r.code == 201:
					l.mu.Lock()
					l.acked = append(l.acked, r.body["id"].(string))
					l.mu.Unlock()
				case r.storageFull():
					l.full.Add(1)
				case r.err != nil || r.code == 503:
					// the node died, or refused; nothing was acknowledged
				default:
					t.Errorf("checkout: %d %v", r.code, r.body)
				}
			}
		})
	}
	t.Cleanup(func() { l.end() })
	return l
}

// end stops the workers and returns the acknowledged orders.
func (l *load) end() []string {
	l.stop.Store(true)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.acked...)
}

// waitUntil polls cond until it holds, failing the test after fullWaitMax.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(fullWaitMax)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", fullWaitMax, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkAcked reads back every acknowledged order.
func checkAcked(t *testing.T, n *node, ids []string) {
	t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range fullWorkers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(ids)); i = next.Add(1) - 1 {
				// A saga whose last steps were refused shows reserving
				// until it writes them again; the order is there.
				r := n.try("GET", "/v1/orders/"+ids[i], nil, false)
				if status := r.body["status"]; r.code != 200 || (status != "reserved" && status != "reserving") {
					t.Errorf("acknowledged order %s: %d %v %v", ids[i], r.code, r.body, r.err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func (n *node) dead() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// Filling the node's own volume through the API never crashes it: writes
// are refused with 503s that say storage is full, /readyz says so, reads
// go on, writes resume by themselves once the volume grows, and after a
// kill -9 every acknowledged order is there.
func TestFullVolumeRefusesWritesAndResumes(t *testing.T) {
	dir, addr := mountTmpfs(t, 72<<20), freeAddr(t)
	n := startFullNode(t, dir, addr)

	l := startLoad(t, n)
	waitUntil(t, "checkouts refused for storage", func() bool { return l.full.Load() >= 20 || n.dead() })
	acked := l.end()
	if n.dead() {
		t.Fatal("orderd died while its volume filled")
	}
	if len(acked) == 0 {
		t.Fatal("no checkout was acknowledged before the volume filled")
	}
	t.Logf("%d checkouts acknowledged before the volume filled; %d bytes free", len(acked), freeBytes(t, dir))
	if r := n.try("POST", "/v1/orders", fullCheckout(0), false); !r.storageFull() {
		t.Fatalf("checkout on a full volume: %d %v %v, want 503 saying storage is full", r.code, r.body, r.header)
	}
	if r := n.try("GET", "/readyz", nil, false); r.code != 503 || !strings.Contains(fmt.Sprint(r.body["detail"]), "storage full") {
		t.Fatalf("readyz on a full volume: %d %v", r.code, r.body)
	}
	// Reads go on. One that waits behind a write of the same actor (sagas
	// keep retrying their reservations) shares that write's refusal, so a
	// read may need a retry, as a client would.
	for _, path := range []string{"/v1/orders/" + acked[0], "/v1/skus/FULL-0"} {
		waitUntil(t, "read "+path+" on a full volume", func() bool { return n.try("GET", path, nil, false).code == 200 })
	}
	if resp, err := client.Get(n.base + "/metrics"); err != nil {
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), "\norderengine_storage_full 1\n") {
			t.Fatalf("metrics on a full volume lack orderengine_storage_full 1:\n%s", b)
		}
	}

	resizeTmpfs(t, dir, 160<<20)
	waitUntil(t, "writes resume once the volume grows", func() bool {
		return n.try("POST", "/v1/orders", fullCheckout(0), false).code == 201
	})
	if r := n.try("GET", "/readyz", nil, false); r.code != 200 {
		t.Fatalf("readyz once the volume grew: %d %v", r.code, r.body)
	}

	n.kill()
	n = startNode(t, dir, addr, "-storage-reserve", fullReserveFlag, "-journal-memtable", "8MiB") // stocked already
	checkAcked(t, n, acked)
}

// When another process fills the volume to the last byte, Badger may die
// of SIGBUS (its files are sparse memory maps); whatever happens, once the
// file is gone and the node restarted if it died, every acknowledged order
// is there.
func TestVolumeFilledFromOutsideLosesNothingAcknowledged(t *testing.T) {
	dir, addr := mountTmpfs(t, 96<<20), freeAddr(t)
	n := startFullNode(t, dir, addr)

	l := startLoad(t, n)
	waitUntil(t, "some checkouts", func() bool { return l.attempts.Load() >= 200 })
	fill, err := os.Create(filepath.Join(dir, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	// Nearly full first (the node refuses writes), then full to the last
	// byte, while the checkouts go on.
	if err := syscall.Fallocate(int(fill.Fd()), 0, 0, freeBytes(t, dir)-(2<<20)); err != nil {
		t.Fatalf("fill nearly: %v", err)
	}
	at := l.attempts.Load()
	waitUntil(t, "checkouts on a nearly full volume", func() bool { return l.attempts.Load() >= at+200 || n.dead() })
	for chunk := int64(1 << 20); chunk >= 4096; chunk /= 2 {
		st, _ := fill.Stat()
		for syscall.Fallocate(int(fill.Fd()), 0, st.Size(), chunk) == nil {
			st, _ = fill.Stat()
		}
	}
	at = l.attempts.Load()
	waitUntil(t, "checkouts on a full volume", func() bool { return l.attempts.Load() >= at+200 || n.dead() })
	acked := l.end()
	t.Logf("%d checkouts acknowledged", len(acked))

	if err := fill.Close(); err != nil { // an open file keeps its space
		t.Fatal(err)
	}
	if err := os.Remove(fill.Name()); err != nil {
		t.Fatal(err)
	}
	// A node that survived serves again by itself; one that died (now or
	// as the file went) is restarted.
	waitUntil(t, "ready, or dead, once the file is gone", func() bool {
		return n.dead() || n.try("GET", "/readyz", nil, false).code == 200
	})
	if n.dead() {
		t.Logf("orderd died (as Badger may on a volume full to the last byte); restarting it")
		n = startNode(t, dir, addr, "-storage-reserve", fullReserveFlag, "-journal-memtable", "8MiB") // stocked already
	}
	checkAcked(t, n, acked)
	if r := n.try("POST", "/v1/orders", fullCheckout(0), false); r.code != 201 {
		t.Fatalf("checkout once the file is gone: %d %v %v", r.code, r.body, r.err)
	}
}
