package main

import (
	"strings"
	"testing"

	"github.com/orderengine/orderengine/persistence"
)

// A node's name and generation are recorded at its first start and kept;
// a directory that served a node running alone may found a cluster but
// not join one (its data would be dropped).
func TestNodeIdentity(t *testing.T) {
	dir := t.TempDir()
	j, err := persistence.Open(dir, persistence.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	done := make(chan error, 1)
	j.Append("sku/tea", 1, [][]byte{[]byte("restocked")}, 0, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	join := config{nodeName: "n1", seeds: []string{"127.0.0.1:7946"}}
	if _, _, err := nodeIdentity(join, j); err == nil || !strings.Contains(err.Error(), "ran alone") {
		t.Fatalf("joining with a single node's data: %v", err)
	}
	found := config{nodeName: "n1", gossipAddr: "127.0.0.1:7946"}
	name, gen, err := nodeIdentity(found, j)
	if err != nil || name != "n1" || gen == 0 {
		t.Fatalf("founding: %q %d %v", name, gen, err)
	}
	again, gen2, err := nodeIdentity(config{gossipAddr: "127.0.0.1:7946"}, j) // no -node: the recorded one
	if err != nil || again != "n1" || gen2 != gen {
		t.Fatalf("restart: %q %d %v; want n1 %d", again, gen2, err, gen)
	}
	if _, _, err := nodeIdentity(config{nodeName: "n2", gossipAddr: "127.0.0.1:7946"}, j); err == nil {
		t.Fatal("another -node was accepted for n1's data directory")
	}
	// Once clustered, the same directory may rejoin with seeds.
	if _, _, err := nodeIdentity(join, j); err != nil {
		t.Fatalf("rejoin: %v", err)
	}
}
