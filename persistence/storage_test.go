package persistence

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeVolume is an Options.FreeSpace whose free space the test sets; calls
// receives a value (without blocking) on every measurement.
type fakeVolume struct {
	free  atomic.Uint64
	calls chan struct{}
}

func newFakeVolume(free uint64) *fakeVolume {
	v := &fakeVolume{calls: make(chan struct{}, 1)}
	v.free.Store(free)
	return v
}

func (v *fakeVolume) freeSpace(string) (uint64, error) {
	select {
	case v.calls <- struct{}{}:
	default:
	}
	return v.free.Load(), nil
}

// logCounter counts the records of each message at or above its level.
type logCounter struct {
	mu   sync.Mutex
	msgs map[string]int
}

func (c *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCounter) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *logCounter) WithGroup(string) slog.Handler            { return c }
func (c *logCounter) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs[r.Level.String()+" "+r.Message]++
	return nil
}

func (c *logCounter) count(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for m, k := range c.msgs {
		if strings.HasPrefix(m, prefix) {
			n += k
		}
	}
	return n
}

// storageOptions are test options on a fake volume, with the background
// loops out of the way unless a test shortens their intervals.
func storageOptions(t *testing.T, v *fakeVolume) (Options, *logCounter) {
	logs := &logCounter{msgs: map[string]int{}}
	o := testOptions(t)
	o.Logger = slog.New(logs)
	o.FreeSpace = v.freeSpace
	o.StorageReserveBytes = 1 << 20
	o.CompactInterval = time.Hour
	return o, logs
}

// Writes are refused below the reserve, change nothing, and resume only
// once free space reaches the reserve plus a memtable; the episode is
// logged once on entering (ERROR) and once on leaving (INFO).
func TestStorageReserveRefusesAndResumesWithHysteresis(t *testing.T) {
	v := newFakeVolume(plentyFree)
	o, logs := storageOptions(t, v)
	j := openTest(t, t.TempDir(), o)
	if err := appendWake(t, j, "x", 1, 5, []byte("1")); err != nil {
		t.Fatal(err)
	}
	st := j.Storage()
	if st.Full || st.Free != plentyFree || st.Reserve < fixedReserveBytes(j.opts) {
		t.Fatalf("storage status with room: %+v", st)
	}

	v.free.Store(st.Reserve - 1)
	for range 3 {
		err := appendWake(t, j, "x", 2, 9, []byte("2"))
		if !errors.Is(err, ErrStorageFull) || !strings.Contains(err.Error(), "free on the data volume") {
			t.Fatalf("below the reserve: got %v, want ErrStorageFull saying how much is free", err)
		}
	}
	if err := snapshotSync(t, j, "x", 1, []byte("s")); !errors.Is(err, ErrStorageFull) {
		t.Fatalf("snapshot below the reserve: %v", err)
	}
	if err := deleteSync(t, j, "x"); !errors.Is(err, ErrStorageFull) {
		t.Fatalf("delete below the reserve: %v", err)
	}
	// Refused requests change nothing, and reads go on.
	if got := replayAll(t, j, "x", 0); !slices.Equal(got, []event{{1, "1"}}) {
		t.Fatalf("events after refusals: %v", got)
	}
	if seq, _, err := j.LoadSnapshot("x"); err != nil || seq != 0 {
		t.Fatalf("snapshot after refusals: %d %v", seq, err)
	}
	checkWake(t, j, "x", 5)
	if !j.Storage().Full {
		t.Fatal("status not full below the reserve")
	}

	// At the reserve it is still full: writes resume a memtable above it.
	v.free.Store(st.Reserve + uint64(j.opts.MemTableBytes) - 1)
	if err := appendSync(t, j, "x", 2, []byte("2")); !errors.Is(err, ErrStorageFull) {
		t.Fatalf("between the reserve and the resume mark: got %v, want ErrStorageFull", err)
	}
	v.free.Store(st.Reserve + uint64(j.opts.MemTableBytes))
	if err := appendSync(t, j, "x", 2, []byte("2")); err != nil {
		t.Fatalf("at the resume mark: %v", err)
	}
	if got := logs.count("ERROR journal refuses writes"); got != 1 {
		t.Errorf("%d ERROR records for one episode, want 1", got)
	}
	if got := logs.count("INFO journal accepts writes again"); got != 1 {
		t.Errorf("%d INFO records on resuming, want 1", got)
	}
	// Once accepting, writes go on down to the reserve itself.
	v.free.Store(st.Reserve)
	if err := appendSync(t, j, "x", 3, []byte("3")); err != nil {
		t.Fatalf("at the reserve while accepting: %v", err)
	}
}

// A request larger than a regular batch needs its own size beyond the
// reserve.
func TestStorageReserveCountsALargeRequest(t *testing.T) {
	v := newFakeVolume(plentyFree)
	o, _ := storageOptions(t, v)
	j := openTest(t, t.TempDir(), o)
	if err := appendSync(t, j, "x", 1, []byte("1")); err != nil {
		t.Fatal(err)
	}
	st := j.Storage()
	v.free.Store(st.Reserve) // room for a regular batch only
	big := make([]byte, 4*j.opts.BatchBytes)
	if err := snapshotSync(t, j, "x", 1, big); !errors.Is(err, ErrStorageFull) {
		t.Fatalf("large snapshot without room for it: got %v, want ErrStorageFull", err)
	}
	if err := appendSync(t, j, "x", 2, []byte("2")); err != nil {
		t.Fatalf("a regular append still fits: %v", err)
	}
	v.free.Store(st.Reserve + uint64(len(big)))
	if err := snapshotSync(t, j, "x", 2, big); err != nil {
		t.Fatalf("large snapshot with room: %v", err)
	}
}

// The compactor deletes nothing while the volume is below the reserve,
// and catches up once space is freed.
func TestCompactionWaitsForStorage(t *testing.T) {
	v := newFakeVolume(plentyFree)
	o, _ := storageOptions(t, v)
	o.CompactInterval = 5 * time.Millisecond
	j := openTest(t, t.TempDir(), o)
	fillEvents(t, j, "x", 20)
	// The volume fills as the snapshot commits, after the writer's check:
	// the compactor never sees room for the events it makes due.
	reserve := j.Storage().Reserve
	j.beforeCommit = func() error { v.free.Store(reserve - 1); return nil }
	if err := snapshotSync(t, j, "x", 20, []byte("s")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-v.calls: // the writer's measurement
	default:
	}
	for range 3 { // then passes of the compactor, which find no room
		<-v.calls
	}
	if s := j.Stats(); s.Compacted != 0 {
		t.Fatalf("compacted %d events below the reserve", s.Compacted)
	}
	if got := len(replayAll(t, j, "x", 0)); got != 20 {
		t.Fatalf("%d events left below the reserve, want 20", got)
	}
	v.free.Store(plentyFree)
	deadline := time.Now().Add(waitMax)
	for j.Stats().Compacted < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("compaction did not resume: %+v", j.Stats())
		}
		select {
		case <-v.calls:
		case <-time.After(o.CompactInterval):
		}
	}
}

// Background writers need room for what they write on top of the
// reserve, and none while writes are refused.
func TestBackgroundWritesNeedRoomBeyondTheReserve(t *testing.T) {
	v := newFakeVolume(plentyFree)
	o, _ := storageOptions(t, v)
	j := openTest(t, t.TempDir(), o)
	reserve := j.Storage().Reserve
	gc := uint64(j.opts.ValueLogFileBytes) // what value-log GC asks room for
	v.free.Store(reserve + gc - 1)
	if j.roomFor(gc) {
		t.Fatal("room for a value-log rewrite that does not fit")
	}
	v.free.Store(reserve + gc)
	if !j.roomFor(gc) {
		t.Fatal("no room for a value-log rewrite that fits")
	}
	v.free.Store(reserve - 1)
	if j.roomFor(0) {
		t.Fatal("room below the reserve")
	}
	v.free.Store(reserve + 1) // above the reserve, still in the episode
	if j.roomFor(0) {
		t.Fatal("room while writes are refused")
	}
}

// Open refuses a volume without room for the tables and logs it finds plus
// the reserve, with an error that says so, and opens once there is room.
func TestOpenRefusesATooFullVolume(t *testing.T) {
	dir := t.TempDir()
	v := newFakeVolume(plentyFree)
	o, _ := storageOptions(t, v)
	j, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	fillEvents(t, j, "x", 100)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	need := fixedReserveBytes(o.withDefaults())
	v.free.Store(need - 1)
	_, err = Open(dir, o)
	if !errors.Is(err, ErrStorageFull) || !strings.Contains(err.Error(), "opening needs") {
		t.Fatalf("open on a too-full volume: got %v, want ErrStorageFull saying what opening needs", err)
	}
	v.free.Store(plentyFree)
	j = openTest(t, dir, o)
	if got := len(replayAll(t, j, "x", 0)); got != 100 {
		t.Fatalf("%d events after the refused open, want 100", got)
	}
}

// Close leaves Badger open on a full volume (closing would flush the
// memtable into a table), and the commits are in the write-ahead log for
// the next open.
func TestCloseOnAFullVolumeLeavesBadgerOpen(t *testing.T) {
	dir := t.TempDir()
	v := newFakeVolume(plentyFree)
	o, logs := storageOptions(t, v)
	j, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	fillEvents(t, j, "x", 10)
	v.free.Store(0)
	if err := j.Close(); err != nil {
		t.Fatalf("close on a full volume: %v", err)
	}
	if logs.count("ERROR journal left badger open") != 1 {
		t.Fatal("close on a full volume did not say it left badger open")
	}
	v.free.Store(plentyFree)
	if _, err := Open(dir, o); !errors.Is(err, ErrDirectoryLocked) {
		t.Fatalf("badger was closed after all: second open got %v", err)
	}
	if err := j.db.Close(); err != nil { // what the process's exit does
		t.Fatal(err)
	}
	j = openTest(t, dir, o)
	if got := len(replayAll(t, j, "x", 0)); got != 10 {
		t.Fatalf("%d events after reopening, want 10", got)
	}
}
