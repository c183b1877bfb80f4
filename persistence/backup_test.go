package persistence

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// dump returns every key and value of db.
func dump(t testing.TB, db *badger.DB) map[string]string {
	t.Helper()
	all := map[string]string{}
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			all[string(it.Item().Key())] = string(v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// dumpDir opens a closed journal read-only and dumps it.
func dumpDir(t testing.TB, dir string) map[string]string {
	t.Helper()
	r, err := OpenReader(dir)
	if err != nil {
		t.Fatalf("open reader: %v", err)
	}
	defer r.Close()
	return dump(t, r.db)
}

func writeBackupFile(t testing.TB, j *Journal, name string, opts BackupOptions) BackupInfo {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := j.Backup(f, opts)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return info
}

func mustAppend(t testing.TB, j *Journal, id string, first uint64, events ...string) {
	t.Helper()
	b := make([][]byte, len(events))
	for i, e := range events {
		b[i] = []byte(e)
	}
	if err := appendWake(t, j, id, first, int64(first)*1000, b...); err != nil {
		t.Fatalf("append %s: %v", id, err)
	}
}

func TestBackupRestoreFullRoundTrip(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, filepath.Join(dir, "src"), testOptions(t))
	for i := range 50 {
		id := fmt.Sprintf("order/%d", i)
		mustAppend(t, j, id, 1, "placed", "reserved")
		if i%5 == 0 {
			if err := snapshotSync(t, j, id, 2, bytes.Repeat([]byte{byte(i)}, 100)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A snapshot big enough to be chunked travels as several keys.
	mustAppend(t, j, "sku/big", 1, "restocked")
	if err := snapshotSync(t, j, "sku/big", 1, bytes.Repeat([]byte("x"), 3<<20)); err != nil {
		t.Fatal(err)
	}
	want := dump(t, j.db)
	name := filepath.Join(dir, "full.bak")
	info := writeBackupFile(t, j, name, BackupOptions{Partition: AllPartitions, Node: "n1"})
	if info.Identities != 51 || info.Keeps != 0 || info.Header.Version == 0 {
		t.Fatalf("backup info %+v", info)
	}
	// Writes after the backup began are not in it.
	mustAppend(t, j, "order/late", 1, "placed")

	target := filepath.Join(dir, "restored", "journal")
	ri, err := Restore(target, []string{name}, RestoreOptions{})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if ri.Version != info.Header.Version {
		t.Fatalf("restored version %d, backup %d", ri.Version, info.Header.Version)
	}
	if got := dumpDir(t, target); !maps.Equal(got, want) {
		t.Fatalf("restored %d keys, want %d", len(got), len(want))
	}
	// The restored directory is a journal the node can open and serve.
	r := openTest(t, target, testOptions(t))
	if got := replayAll(t, r, "order/7", 0); len(got) != 2 || got[1].data != "reserved" {
		t.Fatalf("replay after restore: %v", got)
	}
	if _, state, err := r.LoadSnapshot("sku/big"); err != nil || len(state) != 3<<20 {
		t.Fatalf("chunked snapshot after restore: %d bytes, %v", len(state), err)
	}
}

func TestBackupIncrementalChain(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t)
	j := openTest(t, filepath.Join(dir, "src"), opts)
	for i := range 20 {
		mustAppend(t, j, fmt.Sprintf("order/%d", i), 1, "placed")
	}
	full := filepath.Join(dir, "0.bak")
	f0 := writeBackupFile(t, j, full, BackupOptions{Partition: AllPartitions})

	// Changes of every kind: new identities, appends, a snapshot (whose
	// covered events the compactor may delete), deletes.
	for i := range 5 {
		mustAppend(t, j, fmt.Sprintf("order/%d", i), 2, "paid")
	}
	if err := snapshotSync(t, j, "order/1", 2, []byte("state")); err != nil {
		t.Fatal(err)
	}
	for i := 10; i < 15; i++ {
		if err := deleteSync(t, j, fmt.Sprintf("order/%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	mustAppend(t, j, "sku/new", 1, "restocked")
	inc1 := filepath.Join(dir, "1.bak")
	f1 := writeBackupFile(t, j, inc1, BackupOptions{Partition: AllPartitions, Since: f0.Header.Version, Parent: f0.Checksum})
	if f1.Keeps == 0 || f1.Puts == 0 {
		t.Fatalf("incremental %+v: want both kept and changed keys", f1)
	}
	if err := deleteSync(t, j, "order/0"); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, j, "sku/new", 2, "reserved")
	want := dump(t, j.db)
	inc2 := filepath.Join(dir, "2.bak")
	f2 := writeBackupFile(t, j, inc2, BackupOptions{Partition: AllPartitions, Since: f1.Header.Version, Parent: f1.Checksum})
	if f2.Puts >= f0.Puts+f1.Puts {
		t.Fatalf("incremental puts %d: not smaller than a full backup", f2.Puts)
	}

	target := filepath.Join(dir, "restored")
	if _, err := Restore(target, []string{full, inc1, inc2}, RestoreOptions{}); err != nil {
		t.Fatalf("restore chain: %v", err)
	}
	if got := dumpDir(t, target); !maps.Equal(got, want) {
		t.Fatalf("chain restored %d keys, want %d:\n%v\n%v", len(got), len(want), got, want)
	}

	// Out of order, or with a link missing, nothing is written.
	for _, files := range [][]string{{full, inc2}, {inc1, inc2}, {full, inc2, inc1}} {
		bad := filepath.Join(dir, "bad")
		_, err := Restore(bad, files, RestoreOptions{})
		if !errors.Is(err, ErrBackupChain) {
			t.Fatalf("restore %v: %v, want ErrBackupChain", files, err)
		}
		if _, serr := os.Stat(bad); !errors.Is(serr, os.ErrNotExist) {
			t.Fatalf("restore %v left %s behind", files, bad)
		}
	}
}

func TestBackupOnePartition(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t)
	opts.Partitions = 4
	j := openTest(t, filepath.Join(dir, "src"), opts)
	ids := map[int][]string{}
	for i := range 40 {
		id := fmt.Sprintf("order/%d", i)
		mustAppend(t, j, id, 1, "placed")
		p := Partition(id, 4)
		ids[p] = append(ids[p], id)
	}
	name := filepath.Join(dir, "p2.bak")
	info := writeBackupFile(t, j, name, BackupOptions{Partition: 2})
	if info.Identities != int64(len(ids[2])) {
		t.Fatalf("partition backup holds %d identities, want %d", info.Identities, len(ids[2]))
	}
	target := filepath.Join(dir, "restored")
	if _, err := Restore(target, []string{name}, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := OpenReader(target)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []string
	if err := r.Identities(func(info IdentityInfo) error {
		got = append(got, info.ID)
		if info.Partition != 2 || !info.HasWake || info.Events != 1 {
			t.Errorf("identity %+v", info)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ids[2]) || r.Partitions() != 4 {
		t.Fatalf("restored identities %v, want %v", got, ids[2])
	}
}

func TestRestoreRefusesDamagedBackups(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, filepath.Join(dir, "src"), testOptions(t))
	for i := range 30 {
		mustAppend(t, j, fmt.Sprintf("order/%d", i), 1, "placed", strings.Repeat("e", 200))
	}
	name := filepath.Join(dir, "full.bak")
	writeBackupFile(t, j, name, BackupOptions{Partition: AllPartitions})
	good, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"flipped byte in the data": flip(good, len(good)/2),
		"flipped byte in a key":    flip(good, 200),
		"flipped checksum":         flip(good, len(good)-1),
		"truncated in the data":    good[:len(good)/2],
		"truncated checksum":       good[:len(good)-10],
		"no checksum":              good[:len(good)-32],
		"only the header":          good[:60],
		"empty":                    nil,
		"not a backup":             []byte("hello, this is not a backup file at all"),
		"bytes after the end":      append(bytes.Clone(good), 0),
	}
	for what, data := range cases {
		t.Run(what, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "bad.bak")
			if err := os.WriteFile(bad, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := CheckBackup(bytes.NewReader(data), nil); !errors.Is(err, ErrBackupCorrupt) {
				t.Fatalf("check: %v, want ErrBackupCorrupt", err)
			}
			// An existing empty directory stays empty; an absent one absent.
			empty := t.TempDir()
			if _, err := Restore(empty, []string{bad}, RestoreOptions{}); !errors.Is(err, ErrBackupCorrupt) {
				t.Fatalf("restore: %v, want ErrBackupCorrupt", err)
			}
			if entries, _ := os.ReadDir(empty); len(entries) != 0 {
				t.Fatalf("a refused restore wrote %d entries", len(entries))
			}
			absent := filepath.Join(empty, "absent")
			if _, err := Restore(absent, []string{name, bad}, RestoreOptions{}); err == nil {
				t.Fatal("restore with a damaged incremental succeeded")
			}
			if _, err := os.Stat(absent); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("a refused restore created its target")
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x40
	return c
}

func TestRestoreRefusesNonEmptyTarget(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, filepath.Join(dir, "src"), testOptions(t))
	mustAppend(t, j, "order/1", 1, "placed")
	name := filepath.Join(dir, "full.bak")
	writeBackupFile(t, j, name, BackupOptions{Partition: AllPartitions})
	target := t.TempDir()
	if err := os.WriteFile(filepath.Join(target, "keep-me"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(target, []string{name}, RestoreOptions{}); !errors.Is(err, ErrRestoreTarget) {
		t.Fatalf("restore into a non-empty directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(target, "keep-me")); err != nil {
		t.Fatal("the refused restore touched the directory")
	}
}

func TestBackupDirOfAStoppedAndARunningJournal(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	j, err := Open(src, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, j, "order/1", 1, "placed")
	var buf bytes.Buffer
	if _, err := BackupDir(src, &buf, BackupOptions{Partition: AllPartitions}); !errors.Is(err, ErrDirectoryLocked) {
		t.Fatalf("backup of a directory in use: %v, want ErrDirectoryLocked", err)
	}
	want := dump(t, j.db)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := BackupDir(src, &buf, BackupOptions{Partition: AllPartitions, Node: "stopped"})
	if err != nil {
		t.Fatalf("backup of a stopped journal: %v", err)
	}
	if info.Identities != 1 || info.Header.Node != "stopped" {
		t.Fatalf("info %+v", info)
	}
	name := filepath.Join(dir, "b.bak")
	if err := os.WriteFile(name, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "restored")
	if _, err := Restore(target, []string{name}, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := dumpDir(t, target); !maps.Equal(got, want) {
		t.Fatalf("restored %v, want %v", got, want)
	}
}
