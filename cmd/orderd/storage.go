package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/orderengine/orderengine/gateway"
	"github.com/orderengine/orderengine/persistence"
)

// journalOpenRetry is how often a node whose data volume is too full to
// open the journal tries again.
const journalOpenRetry = 2 * time.Second

// testHookJournalOptions, when a test sets it, adjusts the journal's
// options before Open (to inject a failure).
var testHookJournalOptions func(*persistence.Options)

// journalOptions are the journal's options for cfg: its logs, flush
// metrics, storage reserve, and the fatal channel that a failed commit is
// reported on (once; the channel holds it).
func journalOptions(cfg config, log *slog.Logger, jm *journalMetrics, fatal chan<- error) persistence.Options {
	o := persistence.DefaultOptions()
	o.Logger, o.OnFlush = log.With("component", "journal"), jm.observe
	o.StorageReserveBytes = int64(cfg.storageReserve)
	o.MemTableBytes = int64(cfg.memtable)
	o.Partitions = cfg.partitions
	// A cluster member writes only the partitions it serves.
	o.Fenced = cfg.clustered()
	o.OnFatal = func(err error) {
		select {
		case fatal <- err:
		default:
		}
	}
	if testHookJournalOptions != nil {
		testHookJournalOptions(&o)
	}
	return o
}

// openJournal opens the journal in dir. While its volume has too little
// free space to open safely it stays not ready, says why (status, an
// ERROR once), and tries again every journalOpenRetry, until ctx ends; it
// then returns a nil journal and no error. Any other failure is returned.
func openJournal(ctx context.Context, dir string, opts persistence.Options, status *nodeStatus, log *slog.Logger) (*persistence.Journal, error) {
	waited := false
	for {
		j, err := persistence.Open(dir, opts)
		switch {
		case err == nil:
			if waited {
				log.Info("journal opened: space was freed on its volume", "dir", dir)
			}
			return j, nil
		case !errors.Is(err, persistence.ErrStorageFull):
			return nil, err
		case !waited:
			log.Error("journal not opened: its volume is too full; the node stays not ready and retries",
				"err", err, "retry", journalOpenRetry)
			waited = true
		}
		status.waiting(err)
		t := time.NewTimer(journalOpenRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil
		case <-t.C:
		}
	}
}

// nodeStatus answers /readyz: not ready while starting (with the reason
// the journal cannot open, if any), while the journal's volume is below
// its reserve, and once stopping.
type nodeStatus struct {
	journal  atomic.Pointer[persistence.Journal] // set once the node serves
	member   atomic.Pointer[member]              // set once a cluster member has started
	openErr  atomic.Pointer[error]               // why the journal is not open yet
	stopping atomic.Bool
}

var (
	errStarting = errors.New("starting")
	errStopping = errors.New("stopping")
)

func (s *nodeStatus) waiting(err error)              { s.openErr.Store(&err) }
func (s *nodeStatus) serving(j *persistence.Journal) { s.journal.Store(j) }
func (s *nodeStatus) stop()                          { s.stopping.Store(true) }

// clusterView is GET /v1/cluster on a clustered node.
func (s *nodeStatus) clusterView() any {
	if m := s.member.Load(); m != nil {
		return m.view()
	}
	return map[string]any{"mode": "cluster", "ready": false, "members": []any{}, "table": []any{}}
}

// forgetNode is POST /v1/admin/cluster/members/{node}/forget.
func (s *nodeStatus) forgetNode(ctx context.Context, node string) (any, error) {
	if m := s.member.Load(); m != nil {
		return m.forget(ctx, node)
	}
	return nil, fmt.Errorf("%w: this node has not joined the cluster yet", gateway.ErrUnavailable)
}

func (s *nodeStatus) readiness() error {
	if s.stopping.Load() {
		return errStopping
	}
	j := s.journal.Load()
	if j == nil {
		if err := s.openErr.Load(); err != nil {
			return *err
		}
		return errStarting
	}
	if m := s.member.Load(); m != nil {
		if err := m.ready(); err != nil {
			return err
		}
	}
	if st := j.Storage(); st.Full {
		return fmt.Errorf("storage full: %d MiB free on the data volume, below the reserve of %d MiB; writes are refused",
			st.Free>>20, st.Reserve>>20)
	}
	return nil
}
