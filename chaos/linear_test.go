package chaos

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// make chaos sets these for the long check; make test uses the defaults.
var (
	linearOps       = flag.Int("linear.ops", 300, "operations per recorded history")
	linearHistories = flag.Int("linear.histories", 1, "histories to record and check per test")
	linearKills     = flag.Int("linear.kills", 2, "SIGKILLs per history in TestLinearizableStockAcrossKill")
	linearStrict    = flag.Bool("linear.strict", false, "check read-your-writes of pay and cancel on the SKU too (model.go)")
	historyDir      = flag.String("history.dir", "", "directory for failing histories' HTML (default: the system's temporary directory)")
)

// startNode builds and starts orderd on a fresh data directory.
func startNode(t *testing.T, dataDir string, flags ...string) *Node {
	t.Helper()
	bin, err := buildOrderd()
	if err != nil {
		t.Fatal(err)
	}
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	n := NewNode(bin, dataDir, addr, "chaos-admin-token", flags...)
	if err := n.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Kill(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("orderd output (last 8 KiB):\n%s", n.logs.Tail(8<<10))
		}
	})
	return n
}

// checkHistories records and checks *linearHistories histories against one
// node each, with kills SIGKILLs and restarts during each.
func checkHistories(t *testing.T, kills int) {
	if testing.Short() {
		t.Skip("builds and runs orderd")
	}
	for h := range *linearHistories {
		n := startNode(t, filepath.Join(t.TempDir(), "data"))
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
		rec, err := RecordHistory(ctx, n, LinearConfig{
			Ops: *linearOps, Clients: 8, SKUs: 3, Kills: kills, Seed: uint64(time.Now().UnixNano()),
			RequestTimeout: 10 * time.Second, Strict: *linearStrict,
		})
		cancel()
		if err != nil {
			t.Fatalf("history %d: %v", h, err)
		}
		began := time.Now()
		res, err := rec.Check(*historyDir)
		t.Logf("history %d: %v: %s (checked in %v)", h, rec.Stats(), res, time.Since(began).Round(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Kill(); err != nil {
			t.Fatal(err)
		}
	}
}

// Concurrent restocks, removes, checkouts (with retries of their key),
// pays, cancels and reads on one node form a linearizable history of every
// SKU.
func TestLinearizableStock(t *testing.T) { checkHistories(t, 0) }

// The same while the node is SIGKILLed and restarted during the history:
// requests cut by the kill may or may not have happened, but what was
// answered, and what is read after the restart, fits one order of events.
func TestLinearizableStockAcrossKill(t *testing.T) { checkHistories(t, *linearKills) }

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(m.Run())
}
