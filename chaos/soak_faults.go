package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// injectFaults hits the node until ctx ends: SIGKILL and restart, SIGSTOP
// for up to pauseMax then SIGCONT, a clean restart (SIGTERM), and once,
// half-way, a full volume. A node that exits by itself outside the full
// volume is a problem of the run; it is started again either way.
func (s *soak) injectFaults(ctx context.Context, rng *rand.Rand) error {
	filled := s.cfg.FillDir == ""
	half := time.Now().Add(s.cfg.Duration / 2)
	for {
		gap := s.cfg.FaultGapMax/4 + time.Duration(rng.Int64N(int64(s.cfg.FaultGapMax*3/4)))
		t := time.NewTimer(gap)
		select {
		case <-ctx.Done():
			t.Stop()
			return s.ensureUp(context.Background(), "end of the run")
		case <-t.C:
		}
		if s.node.Exited() {
			s.problem(&s.report.Problems, "orderd exited by itself:\n%s", s.node.logs.Tail(2048))
			if err := s.restart(ctx, false); err != nil {
				return err
			}
			continue
		}
		var err error
		switch p := rng.IntN(100); {
		case !filled && time.Now().After(half):
			filled = true
			err = s.fillVolume(ctx)
		case p < 45:
			err = s.restart(ctx, true)
			s.count("sigkill")
		case p < 80:
			err = s.pause(ctx, time.Duration(rng.Int64N(int64(pauseMax))))
			s.count("sigstop")
		default:
			err = s.stopAndStart(ctx)
			s.count("sigterm restart")
		}
		if err != nil {
			return err
		}
	}
}

func (s *soak) count(fault string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.report.Faults[fault]++
}

// restart kills the node (when kill is set) and starts it again, holding
// the clients back meanwhile.
func (s *soak) restart(ctx context.Context, kill bool) error {
	s.gate.shut()
	defer s.gate.release()
	if kill {
		if err := s.node.Kill(); err != nil {
			return err
		}
	}
	s.client.ForgetConnections()
	return s.node.Start(context.WithoutCancel(ctx))
}

func (s *soak) stopAndStart(ctx context.Context) error {
	s.gate.shut()
	defer s.gate.release()
	if err := s.node.Stop(); err != nil {
		s.problem(&s.report.Problems, "clean stop: %v", err)
	}
	s.client.ForgetConnections()
	return s.node.Start(context.WithoutCancel(ctx))
}

// pause stops the process for d while the clients keep sending: their
// requests wait, which is what the longest wait measures.
func (s *soak) pause(ctx context.Context, d time.Duration) error {
	if err := s.node.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return s.node.Signal(syscall.SIGCONT)
}

// ensureUp leaves the node running and ready at the end of the run.
func (s *soak) ensureUp(ctx context.Context, why string) error {
	if err := s.node.Signal(syscall.SIGCONT); err != nil {
		return err
	}
	if s.node.Exited() {
		s.logf("starting orderd again (%s)", why)
		return s.restart(ctx, false)
	}
	return nil
}

// fillVolume writes a file into the data directory's filesystem until it
// is full, keeps it for fullHold while the clients go on, then removes it.
// The node may answer writes 503 or die (Badger maps its files and cannot
// report a full volume on every path); either is accepted, and a node that
// died is started again once there is space. Only losses count.
func (s *soak) fillVolume(ctx context.Context) error {
	path := filepath.Join(s.cfg.FillDir, "fill")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	chunk := make([]byte, fillChunkBytes)
	var wrote int64
	for {
		n, err := f.Write(chunk)
		wrote += int64(n)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			f.Close()
			return fmt.Errorf("filling the volume: %w", err)
		}
	}
	s.count("disk full")
	s.logf("volume full after %d MiB more", wrote>>20)
	s.mu.Lock()
	s.filling = true
	s.mu.Unlock()
	t := time.NewTimer(fullHold)
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	t.Stop()
	s.mu.Lock()
	s.filling = false
	s.mu.Unlock()
	if err := errors.Join(f.Close(), os.Remove(path)); err != nil {
		return err
	}
	if s.node.Exited() {
		s.count("crash while full")
		return s.restart(ctx, false)
	}
	return nil
}
