package persistence

import (
	"errors"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// writeRaw writes key = value into dir with Badger directly, as an older or
// foreign program would have.
func writeRaw(t *testing.T, dir string, key, value []byte) {
	t.Helper()
	db, err := badger.Open(testOptions(t).withDefaults().badgerOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(txn *badger.Txn) error { return txn.Set(key, value) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFormatOneDirectoryIsRefused(t *testing.T) {
	dir := t.TempDir()
	writeRaw(t, dir, []byte{'m', 'f', 'o', 'r', 'm', 'a', 't'}, []byte{0x01})
	_, err := Open(dir, testOptions(t))
	if !errors.Is(err, ErrFormat) {
		t.Fatalf("got %v, want ErrFormat", err)
	}
	for _, want := range []string{"older orderd", "journal format 1", "reads journal format 2", "empty data directory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	t.Log(err)
}

func TestForeignDirectoryIsRefused(t *testing.T) {
	dir := t.TempDir()
	writeRaw(t, dir, []byte("someone else's key"), []byte("x"))
	if _, err := Open(dir, testOptions(t)); !errors.Is(err, ErrFormat) {
		t.Fatalf("got %v, want ErrFormat", err)
	}
}

func TestPartitionCountIsFixed(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t)
	o.Partitions = 16
	j := openTest(t, dir, o)
	if j.Partitions() != 16 {
		t.Fatalf("Partitions() = %d", j.Partitions())
	}
	if err := appendSync(t, j, "x", 1, []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	o.Partitions = 0 // the default, 64
	_, err := Open(dir, o)
	if !errors.Is(err, ErrPartitionCount) || !strings.Contains(err.Error(), "16 partitions") {
		t.Fatalf("got %v, want ErrPartitionCount naming 16 partitions", err)
	}
	t.Log(err)
	o.Partitions = 16
	j = openTest(t, dir, o)
	if got := replayAll(t, j, "x", 0); len(got) != 1 {
		t.Fatalf("replay: %v", got)
	}
}

func TestPartitionsOptionIsValidated(t *testing.T) {
	for _, n := range []int{-1, partitionsMax + 1} {
		o := DefaultOptions()
		o.Partitions = n
		if err := o.Validate(); err == nil {
			t.Errorf("%d partitions accepted", n)
		}
	}
	if j := openTest(t, t.TempDir(), testOptions(t)); j.Partitions() != 64 || j.AppendEventsMax() != 1024 {
		t.Fatalf("defaults: %d partitions, %d events per append", j.Partitions(), j.AppendEventsMax())
	}
}
