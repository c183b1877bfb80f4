package actors

import (
	"fmt"
	"testing"
	"time"

	"github.com/orderengine/orderengine/actors/pb"
)

// benchHolds is the number of live reservations the snapshot and memory
// benchmarks hold: a flash sale's worth on one SKU.
const benchHolds = 1_000_000

// BenchmarkSKUSnapshotFreeze measures a snapshot of a SKU holding a million
// live reservations: "freeze" is what the actor's turn pays (copying the
// page pointers, and thawing later), "encode" what the snapshot goroutine
// pays, "first-writes" what the turns after a freeze pay to copy the pages
// they write (per write, while every write lands on a page not yet copied:
// the worst case).
//
//	go test -run '^$' -bench SKUSnapshotFreeze ./actors/
func BenchmarkSKUSnapshotFreeze(b *testing.B) {
	_, s := holdMemory(benchHolds)
	at := testNow.UnixNano()
	b.Run("freeze", func(b *testing.B) {
		for b.Loop() {
			s.freeze(at, DefaultSKURules)
			s.holds.thaw()
		}
	})
	b.Run("encode", func(b *testing.B) {
		var size int
		for b.Loop() {
			f := s.freeze(at, DefaultSKURules)
			out, err := f.encode()
			s.holds.thaw()
			if err != nil {
				b.Fatal(err)
			}
			size = len(out)
		}
		b.ReportMetric(float64(size), "snapshot-bytes")
	})
	b.Run("first-writes", func(b *testing.B) {
		s.freeze(at, DefaultSKURules)
		defer s.holds.thaw()
		pages := int32(len(s.holds.pages))
		i := int32(0)
		for b.Loop() {
			// One record on each page in turn, so every write copies.
			slot := (i % pages) * holdPageSlots
			r := *s.holds.rec(slot)
			s.holds.put(r, false)
			i++
			if i%pages == 0 {
				s.holds.thaw()
				s.freeze(at, DefaultSKURules)
			}
		}
	})
}

// BenchmarkSKUHoldMemory reports the Go heap per live reservation of a SKU
// holding a million, order IDs (28 bytes) included.
//
//	go test -run '^$' -bench SKUHoldMemory -benchtime 1x ./actors/
func BenchmarkSKUHoldMemory(b *testing.B) {
	for b.Loop() {
		perHold, _ := holdMemory(benchHolds)
		b.ReportMetric(perHold, "bytes/hold")
	}
}

// BenchmarkSKUReserveMillion measures a reservation (decide, apply, reply)
// on a SKU that already holds a million: the index and heaps keep it
// O(log n).
func BenchmarkSKUReserveMillion(b *testing.B) {
	_, s := holdMemory(benchHolds)
	dl := testNow.Add(time.Hour).UnixNano()
	i := 0
	for b.Loop() {
		i++
		if _, r := s.Step(&pb.ReserveStock{OrderId: fmt.Sprint("b", i), Quantity: 1, DeadlineUnixNano: dl}, testNow, DefaultSKURules); r.Outcome != pb.Outcome_OUTCOME_APPLIED {
			b.Fatal(r)
		}
	}
}
