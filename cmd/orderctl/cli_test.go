package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orderengine/orderengine/persistence"
)

// makeDataDir writes a stopped node's data directory holding ids, each
// with one event, straight through the journal.
func makeDataDir(t *testing.T, ids ...string) string {
	t.Helper()
	data := t.TempDir()
	j, err := persistence.Open(journalDir(data), persistence.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		done := make(chan error, 1)
		j.Append(id, 1, [][]byte{[]byte("event")}, 0, func(err error) { done <- err })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return data
}

func TestHelpOnEveryCommand(t *testing.T) {
	for _, c := range commands {
		_, errOut, err := orderctl(t, c.name, "-h")
		if !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut, "Examples:") || !strings.Contains(errOut, "orderctl "+c.name) {
			t.Errorf("%s -h: %v\n%s", c.name, err, errOut)
		}
	}
	if _, _, err := orderctl(t, "frobnicate"); err == nil || !strings.Contains(err.Error(), "orderctl -h") {
		t.Errorf("unknown command: %v", err)
	}
}

func TestRestoreRefusesCorruptAndTruncatedBackups(t *testing.T) {
	data := makeDataDir(t, "order/1", "order/2", "sku/A")
	dir := t.TempDir()
	good := filepath.Join(dir, "good.backup")
	mustOrderctl(t, "backup", "-data", data, "-o", good)
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := append([]byte(nil), b...)
	corrupt[len(corrupt)/2] ^= 1
	for name, content := range map[string][]byte{
		"corrupt":   corrupt,
		"truncated": b[:len(b)-40],
	} {
		file := filepath.Join(dir, name+".backup")
		if err := os.WriteFile(file, content, 0o600); err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(dir, "target-"+name)
		_, _, err := orderctl(t, "restore", "-i", file, "-data", target)
		if err == nil || !strings.Contains(err.Error(), "backup file is damaged") ||
			!strings.Contains(err.Error(), "nothing was restored") {
			t.Errorf("%s: %v", name, err)
		}
		t.Logf("%s: %v", name, err)
		if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: the refused restore left %s", name, target)
		}
		// An existing empty directory stays empty.
		empty := t.TempDir()
		if _, _, err := orderctl(t, "restore", "-i", file, "-data", empty); err == nil {
			t.Errorf("%s restored into an empty directory", name)
		}
		if entries, _ := os.ReadDir(empty); len(entries) != 0 {
			t.Errorf("%s: the refused restore wrote into %s", name, empty)
		}
	}
	// A non-empty target is refused with what to do.
	_, _, err = orderctl(t, "restore", "-i", good, "-data", data)
	if err == nil || !strings.Contains(err.Error(), "is not empty; restore into an empty or absent directory") {
		t.Errorf("restore into a non-empty directory: %v", err)
	}
}

func TestIncrementalChainThroughTheCLI(t *testing.T) {
	data := makeDataDir(t, "order/1", "sku/A")
	dir := t.TempDir()
	full := filepath.Join(dir, "full.backup")
	mustOrderctl(t, "backup", "-data", data, "-o", full)
	j, err := persistence.Open(journalDir(data), persistence.Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	j.Delete("order/1", func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	j.Append("order/2", 1, [][]byte{[]byte("event")}, 0, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	inc := filepath.Join(dir, "inc.backup")
	mustOrderctl(t, "backup", "-data", data, "-since", full, "-o", inc)
	target := filepath.Join(dir, "restored")
	mustOrderctl(t, "restore", "-i", full, "-i", inc, "-data", target)
	out := mustOrderctl(t, "inspect", "-data", target, "-json")
	if strings.Contains(out, `"id":"1"`) || !strings.Contains(out, `"id":"2"`) || !strings.Contains(out, `"id":"A"`) {
		t.Fatalf("the chain restored:\n%s", out)
	}
	// Out of order is refused.
	if _, _, err := orderctl(t, "restore", "-i", inc, "-i", full, "-data", filepath.Join(dir, "x")); err == nil {
		t.Fatal("an incremental before its full backup was restored")
	}
}

func TestVerifyExitsNonZeroOnABrokenDirectory(t *testing.T) {
	// Events that are not SKU or order events: their replay fails, and a
	// stray identity is neither kind.
	data := makeDataDir(t, "sku/A", "order/o_1", "junk/1")
	out, _, err := orderctl(t, "verify", "-data", data)
	if !errors.Is(err, errInvariants) {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	for _, want := range []string{"FAILED: 3 broken invariants", "sku A: ", "order o_1: ", "neither a SKU nor an order"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
