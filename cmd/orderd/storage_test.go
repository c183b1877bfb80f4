package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderengine/orderengine/persistence"
)

// lockedBuffer is a bytes.Buffer that run's logger and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// inProcess is run() started by a test, with the journal options hook set.
type inProcess struct {
	node
	logs   *lockedBuffer
	cancel context.CancelFunc
	err    chan error
}

func startInProcess(t *testing.T, hook func(*persistence.Options)) *inProcess {
	t.Helper()
	testHookJournalOptions = hook
	t.Cleanup(func() { testHookJournalOptions = nil })
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	p := &inProcess{
		node:   node{t: t, base: "http://" + addr, token: "in-process-token"},
		logs:   &lockedBuffer{},
		cancel: cancel,
		err:    make(chan error, 1),
	}
	args := []string{"-data", t.TempDir(), "-http", addr, "-admin-token", p.token, "-log-level", "info"}
	go func() { p.err <- run(ctx, args, p.logs, p.logs, func(string) string { return "" }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.err:
		case <-time.After(2 * shutdownTimeout):
			t.Error("run did not return after cancel")
		}
		if t.Failed() {
			t.Logf("orderd output:\n%s", p.logs.String())
		}
	})
	p.waitFor("/healthz", http.StatusOK)
	return p
}

// waitFor polls path until it answers status (bounded).
func (p *inProcess) waitFor(path string, status int) map[string]any {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := p.try("GET", path, nil, false)
		if r.code == status {
			return r.body
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: %d %v %v, want %d within 30s", path, r.code, r.body, r.err, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A failed commit stops the journal, and orderd exits with an error that
// says so (the supervisor restarts it, and it recovers from disk).
func TestJournalFailureStopsOrderd(t *testing.T) {
	var fail atomic.Bool
	boom := errors.New("fsync: input/output error")
	p := startInProcess(t, func(o *persistence.Options) {
		o.BeforeCommit = func() error {
			if fail.Load() {
				return boom
			}
			return nil
		}
	})
	p.waitFor("/readyz", http.StatusOK)
	if code, body := p.call("POST", "/v1/skus/S-1/restock", map[string]any{"quantity": 5}, true); code != 200 {
		t.Fatalf("restock: %d %v", code, body)
	}
	fail.Store(true)
	if code, _ := p.call("POST", "/v1/skus/S-1/restock", map[string]any{"quantity": 5}, true); code != 503 {
		t.Fatalf("restock with a failing commit: %d, want 503", code)
	}
	select {
	case err := <-p.err:
		if !errors.Is(err, persistence.ErrJournalFailed) || !strings.Contains(err.Error(), "journal failed") {
			t.Fatalf("run returned %v, want the journal's failure", err)
		}
		p.err <- err // for the cleanup
	case <-time.After(2 * shutdownTimeout):
		t.Fatal("orderd did not exit after its journal failed")
	}
	if !strings.Contains(p.logs.String(), "level=ERROR msg=\"orderd exits: its journal failed") {
		t.Fatalf("no ERROR saying why orderd exits:\n%s", p.logs.String())
	}
}

// A node whose volume is too full to open its journal stays up, not
// ready, says why, answers writes 503, and opens once space is freed.
func TestOrderdWaitsForSpaceToOpen(t *testing.T) {
	var free atomic.Uint64 // nearly nothing free at first
	p := startInProcess(t, func(o *persistence.Options) {
		o.FreeSpace = func(string) (uint64, error) { return free.Load(), nil }
	})
	// The node says it is starting until its first attempt to open the
	// journal has failed; from then on it says why.
	deadline := time.Now().Add(30 * time.Second)
	for {
		body := p.waitFor("/readyz", http.StatusServiceUnavailable)
		detail, _ := body["detail"].(string)
		if strings.Contains(detail, "storage full") {
			break
		}
		if !strings.Contains(detail, "starting") || time.Now().After(deadline) {
			t.Fatalf("readyz on a too-full volume: %v, want the reason", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := p.call("POST", "/v1/skus/S-1/restock", map[string]any{"quantity": 5}, true); code != 503 {
		t.Fatalf("restock before the journal opens: %d %v, want 503", code, body)
	}
	if !strings.Contains(p.logs.String(), "level=ERROR msg=\"journal not opened: its volume is too full") {
		t.Fatalf("no ERROR saying why the journal is not open:\n%s", p.logs.String())
	}
	free.Store(1 << 50)
	p.waitFor("/readyz", http.StatusOK)
	if code, body := p.call("POST", "/v1/skus/S-1/restock", map[string]any{"quantity": 5}, true); code != 200 {
		t.Fatalf("restock once open: %d %v", code, body)
	}
}
