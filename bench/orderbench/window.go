package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// windowCounts is what one sender, or all of them together, saw during one
// window of a sustained run.
type windowCounts struct {
	hist      *Histogram // every answered request, whatever its kind
	checkouts uint64     // 201 checkouts
	ok        uint64     // any 2xx
	conflict  uint64     // 409: out of stock, limits, transitions; answers, not failures
	errs      uint64     // everything else, pseudo statuses (timeouts, refused connections) included
}

func newWindowCounts() *windowCounts { return &windowCounts{hist: newHistogram()} }

func (w *windowCounts) add(o *windowCounts) {
	w.hist.Merge(o.hist)
	w.checkouts += o.checkouts
	w.ok += o.ok
	w.conflict += o.conflict
	w.errs += o.errs
}

func (w *windowCounts) reset() {
	w.hist.Reset()
	w.checkouts, w.ok, w.conflict, w.errs = 0, 0, 0, 0
}

// windowSlot is one sender's counts for the window now open. The sender and
// the reporter share it through a mutex that only the reporter ever contends
// for, once per window: an uncontended lock costs tens of nanoseconds against
// a request of milliseconds, and it lets the reporter take the counts and the
// histogram together, so that no request is split between two windows and
// nothing is allocated while the load runs.
type windowSlot struct {
	mu  sync.Mutex
	cur *windowCounts
}

func (s *windowSlot) record(kind opKind, status int, lat time.Duration) {
	s.mu.Lock()
	c := s.cur
	c.hist.Record(lat)
	switch {
	case status >= 200 && status < 300:
		c.ok++
		if kind == opCheckout {
			c.checkouts++
		}
	case status == 409:
		c.conflict++
	default:
		c.errs++
	}
	s.mu.Unlock()
}

// swap installs fresh (already empty) counts and returns the filled ones.
func (s *windowSlot) swap(fresh *windowCounts) *windowCounts {
	s.mu.Lock()
	old := s.cur
	s.cur = fresh
	s.mu.Unlock()
	return old
}

// windowSet is the slots of one phase's senders, with one spare set of counts
// per slot and one aggregate, all allocated before the load starts and reused
// for every window.
type windowSet struct {
	slots  []*windowSlot
	spares []*windowCounts
	sum    *windowCounts
}

func newWindowSet(n int) *windowSet {
	ws := &windowSet{slots: make([]*windowSlot, n), spares: make([]*windowCounts, n), sum: newWindowCounts()}
	for i := range n {
		ws.slots[i] = &windowSlot{cur: newWindowCounts()}
		ws.spares[i] = newWindowCounts()
	}
	return ws
}

// take closes the current window of every slot and returns the counts of all
// of them together; the result is valid until the next call.
func (ws *windowSet) take() *windowCounts {
	ws.sum.reset()
	for i, s := range ws.slots {
		old := s.swap(ws.spares[i])
		ws.sum.add(old)
		old.reset()
		ws.spares[i] = old
	}
	return ws.sum
}

// windowRow is one line of the sustained table and CSV.
type windowRow struct {
	Index     int
	Phase     string
	StartS    float64 // seconds from the start of the first measured window
	DurationS float64
	Checkouts uint64 // 201 checkouts in the window
	OK        uint64
	Conflict  uint64
	Errors    uint64
	P50, P99  time.Duration
	RSSBytes  int64  // the server's resident set at the end of the window; -1 when unknown
	Total     uint64 // successful checkouts since the run began, warm-up included
}

// Rate is successful checkouts per second over the window.
func (r windowRow) Rate() float64 {
	if r.DurationS <= 0 {
		return 0
	}
	return float64(r.Checkouts) / r.DurationS
}

// windowRecorder turns closed windows into rows. It runs on one goroutine
// (the phase's reporter), so it needs no lock.
type windowRecorder struct {
	origin  time.Time // offset 0: the start of the first measured window
	pid     int       // server process whose RSS is sampled; 0 for none
	rows    []windowRow
	total   uint64
	onRow   func(windowRow) // called as each row is made (the live table, the CSV)
	readRSS func(pid int) int64
}

func newWindowRecorder(pid int, onRow func(windowRow)) *windowRecorder {
	return &windowRecorder{pid: pid, onRow: onRow, readRSS: processRSS}
}

// close ends the window of phase that began at from, now, and returns the
// moment it did so, which is where the next window begins. A window that is
// not emitted (the warm-up) still adds its checkouts to the running total,
// since the server holds those orders too.
func (r *windowRecorder) close(ws *windowSet, phase string, from time.Time, emit bool) time.Time {
	now := time.Now()
	c := ws.take()
	r.total += c.checkouts
	if !emit || !now.After(from) {
		return now
	}
	if r.origin.IsZero() {
		r.origin = from
	}
	row := windowRow{Index: len(r.rows), Phase: phase, StartS: from.Sub(r.origin).Seconds(),
		DurationS: now.Sub(from).Seconds(), Checkouts: c.checkouts, OK: c.ok, Conflict: c.conflict,
		Errors: c.errs, P50: c.hist.Quantile(0.50), P99: c.hist.Quantile(0.99), RSSBytes: -1, Total: r.total}
	if r.pid > 0 {
		row.RSSBytes = r.readRSS(r.pid)
	}
	r.rows = append(r.rows, row)
	if r.onRow != nil {
		r.onRow(row)
	}
	return now
}

// processRSS reads VmRSS from /proc/PID/status, in bytes; -1 when the process
// is gone or the line is missing.
func processRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1
	}
	return parseVmRSS(b)
}

func parseVmRSS(status []byte) int64 {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return -1
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return -1
		}
		return kb * 1024
	}
	return -1
}

// phase is one stretch of a sustained run: a workload for a duration.
type phase struct {
	Name     string // the workload's name
	Duration time.Duration
	w        *workload
}

// runPhase drives ph in a closed loop of conc senders and closes a window
// every `window`; load sent during warmup goes into no window. It returns the
// phase's tally (for the stock check) once every sender has stopped.
func runPhase(ctx context.Context, c *client, ph phase, conc int, seed int64, warmup, window time.Duration, rec *windowRecorder) (*tally, error) {
	if window <= 0 {
		return nil, fmt.Errorf("window must be positive, got %s", window)
	}
	ws := newWindowSet(conc)
	senders := make([]*sender, conc)
	for i := range senders {
		senders[i] = newSender(c, ph.w, i)
		senders[i].win = ws.slots[i]
	}
	measureFrom := time.Now().Add(warmup)
	end := measureFrom.Add(ph.Duration)
	done := make(chan struct{})
	go func() {
		defer close(done)
		closedLoop(ctx, senders, seed, measureFrom, end)
	}()
	from := measureFrom
	if warmup > 0 && waitUntil(measureFrom, done) {
		from = rec.close(ws, ph.Name, measureFrom, false)
	}
	for next := measureFrom.Add(window); next.Before(end); next = next.Add(window) {
		if !waitUntil(next, done) {
			break
		}
		from = rec.close(ws, ph.Name, from, true)
	}
	<-done
	// The last window runs until the last sender has its answer, so that
	// requests in flight at the deadline are counted where they finished.
	rec.close(ws, ph.Name, from, true)
	total := newTally()
	for _, s := range senders {
		total.merge(s.t)
	}
	return total, nil
}

// waitUntil sleeps until t and reports true, or reports false as soon as done
// is closed (the load stopped early, e.g. on an interrupt).
func waitUntil(t time.Time, done <-chan struct{}) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-done:
		return false
	}
}
