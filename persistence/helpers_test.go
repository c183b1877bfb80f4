package persistence

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// waitMax bounds every wait in these tests.
const waitMax = 20 * time.Second

func testOptions(t testing.TB) Options {
	o := DefaultOptions()
	o.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	return o
}

func openTest(t testing.TB, dir string, opts Options) *Journal {
	t.Helper()
	j, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := j.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return j
}

// result is a done function and the channel it reports to.
func result() (func(error), chan error) {
	ch := make(chan error, 1)
	return func(err error) { ch <- err }, ch
}

func wait(t testing.TB, ch chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(waitMax):
		t.Fatal("done not called in time")
		return nil
	}
}

func appendSync(t testing.TB, j *Journal, id string, first uint64, events ...[]byte) error {
	t.Helper()
	done, ch := result()
	j.Append(id, first, events, 0, done)
	return wait(t, ch)
}

func snapshotSync(t testing.TB, j *Journal, id string, seq uint64, state []byte) error {
	t.Helper()
	done, ch := result()
	j.SaveSnapshot(id, seq, state, done)
	return wait(t, ch)
}

type event struct {
	seq  uint64
	data string
}

func replayAll(t testing.TB, j *Journal, id string, after uint64) []event {
	t.Helper()
	var got []event
	if err := j.Replay(id, after, func(seq uint64, e []byte) error {
		got = append(got, event{seq, string(e)})
		return nil
	}); err != nil {
		t.Fatalf("replay %q: %v", id, err)
	}
	return got
}

func asCorrupt(err error) (*CorruptRecordError, bool) {
	var c *CorruptRecordError
	ok := errors.As(err, &c)
	return c, ok
}

// testSeed returns PERSISTENCE_SEED when set, to replay a failure, or a
// fresh seed; either way it is logged.
func testSeed(t testing.TB) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("PERSISTENCE_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("PERSISTENCE_SEED: %v", err)
		}
	}
	t.Logf("seed %d (rerun with PERSISTENCE_SEED=%d)", seed, seed)
	return seed
}

func appendWake(t testing.TB, j *Journal, id string, first uint64, wake int64, events ...[]byte) error {
	t.Helper()
	done, ch := result()
	j.Append(id, first, events, wake, done)
	return wait(t, ch)
}

func deleteSync(t testing.TB, j *Journal, id string) error {
	t.Helper()
	done, ch := result()
	j.Delete(id, done)
	return wait(t, ch)
}

// keysOf returns every stored key that belongs to id, of any kind, wake
// index entries included, straight from Badger.
func keysOf(t testing.TB, j *Journal, id string) [][]byte {
	t.Helper()
	p := j.partition(id)
	var keys [][]byte
	err := j.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{byte(p >> 8), byte(p)}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			_, eid, _, _ := parseEventKey(k)
			ref, _ := parseSnapshotKey(k)
			_, _, wid, _ := parseWakeKey(k)
			_, kid, _ := parseWakeOfKey(k)
			if eid == id || ref.id == id || wid == id || kid == id {
				keys = append(keys, k)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// due lists Due(before, limit) as id@wake strings.
func due(t testing.TB, j *Journal, before int64, limit int) []string {
	t.Helper()
	var got []string
	if err := j.Due(before, limit, func(id string, wake int64) bool {
		got = append(got, fmt.Sprintf("%s@%d", id, wake))
		return true
	}); err != nil {
		t.Fatalf("due: %v", err)
	}
	return got
}

// holdFirstCommit holds the writer at its first commit: entered is closed
// once it is there, and it goes on when the test closes release, that
// commit failing with err (nil: succeeding). What is submitted meanwhile
// lands in the writer's next batch.
func holdFirstCommit(j *Journal, err error) (entered, release chan struct{}) {
	entered, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	j.beforeCommit = func() error {
		first := false
		once.Do(func() { first = true; close(entered); <-release })
		if first {
			return err
		}
		return nil
	}
	return entered, release
}

// plentyFree is what a fake volume reports when it has room.
const plentyFree = 1 << 50

// holdFirstRefusal holds the writer at its first storage check: entered is
// closed once it is there, and when the test closes release the check
// finds the volume full, refusing that batch (ErrStorageFull), and finds
// plenty of room from then on. What is submitted meanwhile lands in the
// writer's next batch. The tests that use it have no compaction due, so
// that only the writer measures.
func holdFirstRefusal(j *Journal) (entered, release chan struct{}) {
	entered, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	j.opts.FreeSpace = func(string) (uint64, error) {
		first := false
		once.Do(func() { first = true; close(entered); <-release })
		if first {
			return 0, nil
		}
		return plentyFree, nil
	}
	return entered, release
}
