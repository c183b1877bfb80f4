package main

import (
	"context"
	"fmt"
	"math/rand"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Bounds on the load shape.
const (
	concurrencyMax = 4096
	// openLoopQueueMax bounds scheduled open-loop requests waiting for a free
	// sender; one beyond it is counted as client_overflow and not sent, so a
	// slow server cannot make the generator's memory grow.
	openLoopQueueMax = 65536
	rateMax          = 1_000_000 // requests per second
)

// loadConfig is one measurement: what to send, how, for how long.
type loadConfig struct {
	Concurrency int           // closed loop: workers; open loop: senders (max in flight)
	Rate        int           // requests per second; 0 means closed loop
	Warmup      time.Duration // sent but not measured
	Duration    time.Duration // measured
	Seed        int64
}

// tally is one sender's counts, merged once at the end so the hot path takes no locks.
type tally struct {
	hist      *Histogram
	opHist    map[opKind]*Histogram
	status    map[int]uint64
	ops       map[opKind]uint64
	checkouts uint64 // successful checkouts, warm-up included (for the stock check)
	cancels   uint64 // successful cancels, warm-up included
	pays      uint64 // successful pays, warm-up included

	// lastAnswer is when the last measured request was answered; in the open
	// loop it gives the rate the server kept up (see answeredIn).
	lastAnswer time.Time
	// answeredIn is set on the merged tally of an open loop: from the start of
	// the measured window to lastAnswer, and at least the window.
	answeredIn time.Duration
}

func newTally() *tally {
	return &tally{hist: newHistogram(), opHist: map[opKind]*Histogram{}, status: map[int]uint64{}, ops: map[opKind]uint64{}}
}

func (t *tally) merge(o *tally) {
	t.hist.Merge(o.hist)
	for k, h := range o.opHist {
		if t.opHist[k] == nil {
			t.opHist[k] = newHistogram()
		}
		t.opHist[k].Merge(h)
	}
	for k, v := range o.status {
		t.status[k] += v
	}
	for k, v := range o.ops {
		t.ops[k] += v
	}
	t.checkouts += o.checkouts
	t.cancels += o.cancels
	t.pays += o.pays
	if o.lastAnswer.After(t.lastAnswer) {
		t.lastAnswer = o.lastAnswer
	}
}

// sender owns one request/response pair and one tally.
type sender struct {
	c        *client
	w        *workload
	t        *tally
	customer string
	req      *fasthttp.Request
	resp     *fasthttp.Response
	buf      []byte
	win      *windowSlot // per-window counts for the sustained mode; nil elsewhere
}

func newSender(c *client, w *workload, id int) *sender {
	return &sender{c: c, w: w, t: newTally(), customer: "bench-" + strconv.Itoa(id),
		req: &fasthttp.Request{}, resp: &fasthttp.Response{}, buf: make([]byte, 0, 256)}
}

// exec sends o; the latency runs from `from` (the intended send time in the
// open loop), and is recorded only when `measure` is set.
func (s *sender) exec(o op, from time.Time, measure bool) {
	var status int
	var id string
	status, id, s.buf = s.c.send(o, s.customer, s.req, s.resp, s.buf)
	answered := time.Now()
	lat := answered.Sub(from)
	if s.win != nil {
		// Every answer counts towards its window, warm-up included: the
		// reporter decides which windows it prints.
		s.win.record(o.Kind, status, lat)
	}
	if status >= 200 && status < 300 {
		switch o.Kind {
		case opCheckout:
			s.t.checkouts++
			s.w.addOrder(id)
		case opPay:
			s.t.pays++
		case opCancel:
			s.t.cancels++
		}
	}
	if measure {
		s.t.hist.Record(lat)
		h := s.t.opHist[o.Kind]
		if h == nil {
			h = newHistogram()
			s.t.opHist[o.Kind] = h
		}
		h.Record(lat)
		s.t.status[status]++
		s.t.ops[o.Kind]++
		s.t.lastAnswer = answered
	}
}

// runLoad drives the server for Warmup+Duration and returns the merged tally
// and the measured wall time.
func runLoad(ctx context.Context, c *client, w *workload, cfg loadConfig) (*tally, time.Duration, error) {
	if cfg.Concurrency < 1 || cfg.Concurrency > concurrencyMax {
		return nil, 0, fmt.Errorf("concurrency %d out of range 1..%d", cfg.Concurrency, concurrencyMax)
	}
	if cfg.Rate < 0 || cfg.Rate > rateMax {
		return nil, 0, fmt.Errorf("rate %d out of range 0..%d", cfg.Rate, rateMax)
	}
	if cfg.Duration <= 0 {
		return nil, 0, fmt.Errorf("duration must be positive, got %s", cfg.Duration)
	}
	senders := make([]*sender, cfg.Concurrency)
	for i := range senders {
		senders[i] = newSender(c, w, i)
	}
	start := time.Now()
	measureFrom := start.Add(cfg.Warmup)
	end := measureFrom.Add(cfg.Duration)
	if cfg.Rate == 0 {
		closedLoop(ctx, senders, cfg.Seed, measureFrom, end)
	} else {
		openLoop(ctx, senders, cfg, start, measureFrom, end)
	}
	total := newTally()
	for _, s := range senders {
		total.merge(s.t)
	}
	if cfg.Rate > 0 {
		// The queue a slow server leaves behind is answered after the window:
		// the time to answer it is part of what the schedule asked for.
		total.answeredIn = max(cfg.Duration, total.lastAnswer.Sub(measureFrom))
	}
	return total, cfg.Duration, nil
}

// closedLoop: every sender sends back to back until end.
func closedLoop(ctx context.Context, senders []*sender, seed int64, measureFrom, end time.Time) {
	var wg sync.WaitGroup
	for i, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewSource(seed + int64(i)))
			pick := s.w.picker(r)
			for ctx.Err() == nil {
				now := time.Now()
				if !now.Before(end) {
					return
				}
				s.exec(s.w.nextOp(r, pick), now, !now.Before(measureFrom))
			}
		}()
	}
	wg.Wait()
}

// openLoop schedules request i at start + i/rate and measures each from that
// intended time, so a server that stalls is charged for the queue it causes
// (no coordinated omission).
func openLoop(ctx context.Context, senders []*sender, cfg loadConfig, start, measureFrom, end time.Time) {
	type job struct {
		o  op
		at time.Time
	}
	jobs := make(chan job, openLoopQueueMax)
	var wg sync.WaitGroup
	for _, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				s.exec(j.o, j.at, !j.at.Before(measureFrom))
			}
		}()
	}
	r := rand.New(rand.NewSource(cfg.Seed))
	pick := senders[0].w.picker(r)
	interval := time.Second / time.Duration(cfg.Rate)
	overflow := senders[0].t // counted by the scheduler itself, before any sender runs it
	var overflowed uint64
	for i := 0; ctx.Err() == nil; i++ {
		at := start.Add(time.Duration(i) * interval)
		if !at.Before(end) {
			break
		}
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		select {
		case jobs <- job{o: senders[0].w.nextOp(r, pick), at: at}:
		default:
			if !at.Before(measureFrom) {
				overflowed++
			}
		}
	}
	close(jobs)
	wg.Wait()
	// Safe now: every sender has stopped.
	if overflowed > 0 {
		overflow.status[statusOverflow] += overflowed
	}
}
