package persistence

import (
	"sync"
	"time"
)

// Stats are the journal's counters since Open, for metrics and tests.
type Stats struct {
	Flushes        uint64        // synced transactions committed
	FlushFailures  uint64        // synced transactions that failed
	Requests       uint64        // appends, snapshots and deletes committed
	Entries        uint64        // events, snapshots and deletes committed
	Bytes          uint64        // encoded record bytes committed
	LastFlush      time.Duration // duration of the latest commit
	MaxFlush       time.Duration // longest commit
	MaxBatch       int           // most entries in one commit
	QueuedRequests int           // requests waiting for the writer now
	Compacted      uint64        // events deleted by the compactor
	ValueLogGCs    uint64        // value-log files rewritten by GC
}

type stats struct {
	mu sync.Mutex
	s  Stats
}

func (st *stats) flushed(requests, entries, bytes int, d time.Duration, err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if err != nil {
		st.s.FlushFailures++
		return
	}
	st.s.Flushes++
	st.s.Requests += uint64(requests)
	st.s.Entries += uint64(entries)
	st.s.Bytes += uint64(bytes)
	st.s.LastFlush = d
	st.s.MaxFlush = max(st.s.MaxFlush, d)
	st.s.MaxBatch = max(st.s.MaxBatch, entries)
}

func (st *stats) add(compacted, gcs uint64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.s.Compacted += compacted
	st.s.ValueLogGCs += gcs
}

// Stats returns a copy of the journal's counters.
func (j *Journal) Stats() Stats {
	j.mu.Lock()
	queued := len(j.queue)
	j.mu.Unlock()
	j.stats.mu.Lock()
	defer j.stats.mu.Unlock()
	s := j.stats.s
	s.QueuedRequests = queued
	return s
}
