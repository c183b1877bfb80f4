package main

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/orderengine/orderengine/cluster"
)

// TestRemoteAndGossipDefaultToLoopback: a clustered node given neither
// -gossip nor -remote gossips on 127.0.0.1 and starts remote on the gossip
// host.
func TestRemoteAndGossipDefaultToLoopback(t *testing.T) {
	cfg, err := parseConfig([]string{"-seeds", "127.0.0.1:7000"}, io.Discard, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	host, _, err := net.SplitHostPort(cfg.gossip())
	if err != nil || host != "127.0.0.1" || cfg.remoteAddr != "" {
		t.Fatalf("gossip %q, remote %q: want loopback by default", cfg.gossip(), cfg.remoteAddr)
	}
}

// TestRemoteRefusesAnOpenKeyFile: remote does not start with a key file
// that others may read.
func TestRemoteRefusesAnOpenKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseConfig([]string{"-seeds", "127.0.0.1:7000", "-gossip-key-file", path}, io.Discard, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := startRemote(cfg, actor.NewActorSystem()); !errors.Is(err, cluster.ErrKeyFileMode) {
		t.Fatalf("startRemote with a key file of mode 0644: %v, want ErrKeyFileMode", err)
	}
}
