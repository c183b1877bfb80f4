package chaos

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	chaosDuration = flag.Duration("chaos.duration", 20*time.Second, "length of TestChaos's workload under faults (make chaos sets DURATION)")
	chaosFill     = flag.Bool("chaos.fill", true, "fill the data volume once (needs root for a tmpfs mount; skipped with a message otherwise)")
)

// volumeMiB is the size of the tmpfs the data directory lives on when the
// run fills the volume: room for Badger's memtables, value log and tables,
// for what the soak writes (up to about 80 MiB a minute), and for the
// node's storage reserve on top, which grows with its tables (the node
// refuses writes, and refuses to open, with less free space than its
// tables take plus its memtables), so that only the fill makes it full.
// A 10-minute run sized at 128 MiB a minute ended with 306 MiB of tables
// and 412 MiB free, below its 426 MiB reserve: the node rightly stayed
// closed after a restart. The base holds the reserve's memtable part,
// about 221 MiB with orderd's default 32 MiB memtables (-journal-memtable),
// and the memtables' own files.
func volumeMiB() int {
	return 512 + 256*int(chaosDuration.Minutes())
}

// mountVolume mounts a tmpfs of volumeMiB() under dir and returns its root,
// or "" and why it could not.
func mountVolume(t *testing.T, dir string) (string, string) {
	if !*chaosFill {
		return "", "-chaos.fill=false"
	}
	if os.Geteuid() != 0 {
		return "", "not root, so no tmpfs can be mounted"
	}
	root := filepath.Join(dir, "volume")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.Itoa(volumeMiB())+"m", "tmpfs", root).CombinedOutput()
	if err != nil {
		return "", "mount -t tmpfs failed: " + strings.TrimSpace(string(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", root).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", root, err, out)
		}
	})
	return root, ""
}

// A mixed workload against a real orderd while it is SIGKILLed, paused,
// restarted and (as root) starved of disk; at the end every acknowledged
// order and every SKU reads back as acknowledged, nothing is oversold and
// stock is conserved. make test runs -chaos.duration's default; make chaos
// runs DURATION.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs orderd")
	}
	dir := t.TempDir()
	root, skipped := mountVolume(t, dir)
	if skipped != "" {
		t.Logf("the volume will not be filled: %s", skipped)
		root = ""
	}
	dataRoot := root
	if dataRoot == "" {
		dataRoot = dir
	}
	n := startNode(t, filepath.Join(dataRoot, "data"))
	rep, err := Soak(t.Context(), n, SoakConfig{
		Duration: *chaosDuration, Clients: 16, SKUs: 4, Seed: uint64(time.Now().UnixNano()),
		RequestTimeout: 10 * time.Second, FaultGapMax: 4 * time.Second, FillDir: root, Log: t.Output(),
	})
	if rep != nil {
		rep.FillSkipped = skipped
		t.Log("\n" + rep.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		path, err := rep.SaveLedger(*historyDir)
		t.Fatalf("the chaos run found losses or breaches (above); its ledger is in %s (%v)", path, err)
	}
}
