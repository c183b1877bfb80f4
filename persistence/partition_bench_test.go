package persistence

import (
	"fmt"
	"io"
	"testing"
)

// BenchmarkExportPartition exports a partition of 10 000 SKU-sized
// identities, each with a 1 KiB snapshot and three events after it, and
// reports MB/s of keys and values.
func BenchmarkExportPartition(b *testing.B) {
	const p, identities = 5, 10_000
	j := openTest(b, b.TempDir(), benchOptions(b))
	ids := idsIn(p, j.Partitions(), identities, "sku")
	state, event := make([]byte, 1024), make([]byte, 120)
	submitAll(b, j, ids, func(id string, done func(error)) {
		j.Append(id, 1, [][]byte{event, event}, 0, done)
	})
	submitAll(b, j, ids, func(id string, done func(error)) { j.SaveSnapshot(id, 2, state, done) })
	submitAll(b, j, ids, func(id string, done func(error)) {
		j.Append(id, 3, [][]byte{event, event, event}, 0, done)
	})
	if err := j.Release(p); err != nil {
		b.Fatal(err)
	}
	var info PartitionInfo
	b.ResetTimer()
	for b.Loop() {
		var err error
		info, err = j.ExportPartition(p, 0, func(c []byte) error { _, err := io.Discard.Write(c); return err })
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(info.Bytes)
	}
	b.ReportMetric(float64(info.Keys), "keys")
	b.ReportMetric(float64(info.Chunks), "chunks")
}

// submitAll submits one request per id and waits for them all.
func submitAll(b *testing.B, j *Journal, ids []string, submit func(id string, done func(error))) {
	errs := make(chan error, len(ids))
	for _, id := range ids {
		submit(id, func(err error) { errs <- err })
	}
	for range ids {
		if err := <-errs; err != nil {
			b.Fatal(fmt.Errorf("fill: %w", err))
		}
	}
}
