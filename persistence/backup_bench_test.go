package persistence

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestBackupThroughput measures backup and restore of a node-sized journal
// (BACKUP_BENCH_SKUS SKUs, default 100 000, and BACKUP_BENCH_ORDERS
// orders, default 1 000 000, with event and snapshot sizes like the
// actors'). It runs only when BACKUP_BENCH=1:
//
//	BACKUP_BENCH=1 go test -run TestBackupThroughput -v -timeout 30m ./persistence/
func TestBackupThroughput(t *testing.T) {
	if os.Getenv("BACKUP_BENCH") != "1" {
		t.Skip("set BACKUP_BENCH=1 to measure backup and restore throughput")
	}
	skus, orders := envInt(t, "BACKUP_BENCH_SKUS", 100_000), envInt(t, "BACKUP_BENCH_ORDERS", 1_000_000)
	dir := t.TempDir()
	opts := testOptions(t)
	j := openTest(t, filepath.Join(dir, "src"), opts)

	start := time.Now()
	fill(t, j, skus, orders)
	t.Logf("generated %d SKUs and %d orders in %s", skus, orders, time.Since(start).Round(time.Millisecond))

	name := filepath.Join(dir, "full.backup")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	info, err := j.Backup(f, BackupOptions{Partition: AllPartitions})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	report(t, "backup (live journal, to a synced file)", info.Bytes, info.Identities, time.Since(start))

	start = time.Now()
	if _, err := Restore(filepath.Join(dir, "restored"), []string{name}, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	report(t, "restore (check, then write and close)", info.Bytes, info.Identities, time.Since(start))
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return n
}

func report(t *testing.T, what string, bytes, actors int64, d time.Duration) {
	t.Logf("%s: %.1f MiB, %d actors in %s: %.1f MiB/s, %.0f actors/s", what, float64(bytes)/(1<<20), actors,
		d.Round(time.Millisecond), float64(bytes)/(1<<20)/d.Seconds(), float64(actors)/d.Seconds())
}

// fill writes skus SKUs (a restock event and a 400-byte snapshot each) and
// orders orders (three events of 90 to 160 bytes and a wake time each),
// keeping a bounded number of appends in flight.
func fill(t *testing.T, j *Journal, skus, orders int) {
	const inflightMax = 4096
	sem := make(chan struct{}, inflightMax)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	done := func(err error) {
		if err != nil {
			mu.Lock()
			firstErr = err
			mu.Unlock()
		}
		<-sem
		wg.Done()
	}
	submit := func(f func(done func(error))) {
		sem <- struct{}{}
		wg.Add(1)
		f(done)
	}
	pad := func(n int) []byte { return make([]byte, n) }
	for i := range skus {
		id := fmt.Sprintf("sku/SKU-%06d", i)
		submit(func(d func(error)) { j.Append(id, 1, [][]byte{pad(60)}, 0, d) })
	}
	wg.Wait()
	for i := range skus {
		id := fmt.Sprintf("sku/SKU-%06d", i)
		submit(func(d func(error)) { j.SaveSnapshot(id, 1, pad(400), d) })
	}
	wake := time.Now().Add(time.Hour).UnixNano()
	for i := range orders {
		id := fmt.Sprintf("order/o_%026d", i)
		submit(func(d func(error)) { j.Append(id, 1, [][]byte{pad(160), pad(90), pad(90)}, wake, d) })
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
}
