package main

import (
	"os"
	"sync"
	"testing"
	"time"
)

// Concurrent senders and a reporter swapping windows under them: every
// request lands in exactly one window.
func TestWindowSwapsLoseNothing(t *testing.T) {
	const senders, perSender = 8, 20_000
	ws := newWindowSet(senders)
	var wg sync.WaitGroup
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perSender {
				status := 201
				switch j % 10 {
				case 7:
					status = 409
				case 8:
					status = statusTimeout
				}
				ws.slots[i].record(opCheckout, status, time.Duration(j)*time.Microsecond)
			}
		}()
	}
	var got windowCounts
	got.hist = newHistogram()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			got.add(ws.take())
			select {
			case <-stop:
				return
			default:
				time.Sleep(50 * time.Microsecond)
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-done
	got.add(ws.take())
	const n = senders * perSender
	if got.hist.Count() != n || got.checkouts != n*8/10 || got.ok != n*8/10 || got.conflict != n/10 || got.errs != n/10 {
		t.Errorf("after swaps: count %d checkouts %d ok %d 409 %d errors %d; want %d, %d, %d, %d, %d",
			got.hist.Count(), got.checkouts, got.ok, got.conflict, got.errs, n, n*8/10, n*8/10, n/10, n/10)
	}
}

func TestWindowRecordDoesNotAllocate(t *testing.T) {
	ws := newWindowSet(1)
	allocs := testing.AllocsPerRun(1000, func() {
		ws.slots[0].record(opCheckout, 201, 3*time.Millisecond)
	})
	if allocs != 0 {
		t.Errorf("record allocates %.1f times per request", allocs)
	}
	ws.take()
	allocs = testing.AllocsPerRun(100, func() { ws.take() })
	if allocs != 0 {
		t.Errorf("take allocates %.1f times per window", allocs)
	}
}

func TestWindowRecorderRows(t *testing.T) {
	ws := newWindowSet(2)
	var printed []windowRow
	rec := newWindowRecorder(42, func(r windowRow) { printed = append(printed, r) })
	rec.readRSS = func(pid int) int64 {
		if pid != 42 {
			t.Errorf("RSS read for pid %d", pid)
		}
		return 100 << 20
	}
	// Warm-up: counted in the total, in no row.
	ws.slots[0].record(opCheckout, 201, time.Millisecond)
	t0 := time.Now()
	from := rec.close(ws, "hot", t0.Add(-time.Second), false)
	for range 3 {
		ws.slots[1].record(opCheckout, 201, 2*time.Millisecond)
	}
	ws.slots[0].record(opCheckout, 409, 4*time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	from = rec.close(ws, "hot", from, true)
	ws.slots[0].record(opGetSKU, 200, time.Millisecond) // a 2xx that is no checkout
	time.Sleep(5 * time.Millisecond)
	rec.close(ws, "uniform", from, true)

	if len(rec.rows) != 2 || len(printed) != 2 {
		t.Fatalf("%d rows, %d printed; want 2", len(rec.rows), len(printed))
	}
	r0, r1 := rec.rows[0], rec.rows[1]
	if r0.Index != 0 || r0.Phase != "hot" || r0.StartS != 0 || r0.Checkouts != 3 || r0.OK != 3 || r0.Conflict != 1 ||
		r0.Total != 4 || r0.RSSBytes != 100<<20 || r0.DurationS < 0.004 || r0.P99 < 4*time.Millisecond {
		t.Errorf("first row %+v", r0)
	}
	if r1.Index != 1 || r1.Phase != "uniform" || r1.StartS < r0.DurationS-1e-9 || r1.Checkouts != 0 || r1.OK != 1 || r1.Total != 4 {
		t.Errorf("second row %+v", r1)
	}
	if r0.Rate() <= 0 || (windowRow{}).Rate() != 0 {
		t.Errorf("rates %v and %v", r0.Rate(), windowRow{}.Rate())
	}
}

func TestWindowParseVmRSS(t *testing.T) {
	status := []byte("Name:\torderd\nVmPeak:\t  900 kB\nVmRSS:\t  123456 kB\nThreads:\t12\n")
	if got := parseVmRSS(status); got != 123456*1024 {
		t.Errorf("VmRSS = %d", got)
	}
	for _, bad := range []string{"Name:\tx\n", "VmRSS:\tlots kB\n", "VmRSS:\t12 MB\n"} {
		if got := parseVmRSS([]byte(bad)); got != -1 {
			t.Errorf("%q: %d, want -1", bad, got)
		}
	}
	if processRSS(0) != -1 || processRSS(-5) != -1 {
		t.Error("RSS of a process that cannot exist")
	}
	if processRSS(os.Getpid()) <= 0 {
		t.Error("no RSS for this very process")
	}
}
