package main

import (
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Bounds of the node's part of GET /v1/dashboard.
const (
	// dashRefreshMin: journal rates, actor counts and the wake backlog
	// are measured at most this often, however often the gateway asks.
	dashRefreshMin = time.Second
	// dashDueCountMax bounds the overdue wake entries counted (one bounded
	// read of the journal's wake index); beyond it the page shows "N+".
	dashDueCountMax = 1000
)

// dashNode is the "node" member of GET /v1/dashboard (docs/openapi.yaml has
// its schema): what this node knows of the cluster, and its own journal,
// actors and storage.
type dashNode struct {
	Mode       string          `json:"mode"` // "cluster" or "single-node"
	Self       string          `json:"self"`
	HTTP       string          `json:"http"`
	Joined     bool            `json:"joined"`
	Partitions int             `json:"partitions"`
	Members    []dashMember    `json:"members"`
	Table      []dashPartition `json:"table"`
	Journal    dashJournal     `json:"journal"`
	Actors     dashActors      `json:"actors"`
	Storage    *dashStorage    `json:"storage"` // null until the journal is open
	Expiry     *dashExpiry     `json:"expiry"`  // null until the journal is open
}

type dashMember struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	// Generation is a decimal string: generations (nanoseconds) exceed
	// the integers a browser's JSON parser holds exactly.
	Generation uint64 `json:"generation,string"`
	State      string `json:"state"`
	Self       bool   `json:"self"`
	Partitions int    `json:"partitions"`
}

// dashPartition is one partition, at its index in the table.
type dashPartition struct {
	Holder string `json:"holder"`
	State  string `json:"state"`
}

type dashJournal struct {
	FlushesPerSecond float64  `json:"flushes_per_second"`
	EntriesPerSecond float64  `json:"entries_per_second"`
	P50Ms            *float64 `json:"p50_ms"` // null in a second without flushes
	P99Ms            *float64 `json:"p99_ms"`
	Failures         uint64   `json:"failures"`
}

type dashActors struct {
	Resident    int `json:"resident"`
	ResidentMax int `json:"resident_max"` // 0: no bound
	SKUs        int `json:"skus"`
	Orders      int `json:"orders"`
}

type dashStorage struct {
	FreeBytes    uint64 `json:"free_bytes"`
	ReserveBytes uint64 `json:"reserve_bytes"`
	Full         bool   `json:"full"`
}

// dashExpiry is the wake backlog: actors whose wake time (an unpaid
// order's expiry, a SKU's safety release, a terminal order's end of
// retention) has passed and that the waker has not woken yet.
type dashExpiry struct {
	Overdue int  `json:"overdue"`
	Capped  bool `json:"capped"` // more than Overdue are due
}

// nodeDashboard builds dashNode. The gateway calls it at most twice a
// second; the parts that cost a read of every actor or of the journal are
// measured at most once per dashRefreshMin.
type nodeDashboard struct {
	status      *nodeStatus
	eng         *engine
	http        string
	self        string
	clustered   bool
	partitions  int
	residentMax int
	flushes     prometheus.Gatherer // the journal's flush histograms alone

	mu       sync.Mutex
	measured time.Time
	prev     flushTotals
	journal  dashJournal
	actors   dashActors
	expiry   *dashExpiry
}

func newNodeDashboard(cfg config, status *nodeStatus, eng *engine, jm *journalMetrics, httpAddr string) *nodeDashboard {
	g := prometheus.NewRegistry()
	g.MustRegister(jm.flushSeconds, jm.flushEntries, jm.failures)
	self := cfg.nodeName
	if self == "" {
		self = "local"
	}
	return &nodeDashboard{status: status, eng: eng, http: httpAddr, self: self, clustered: cfg.clustered(),
		partitions: cfg.partitions, residentMax: max(cfg.residentMax, 0), flushes: g}
}

// view is gateway.Config.Dashboard.
func (d *nodeDashboard) view() any {
	out := dashNode{Mode: "single-node", Self: d.self, HTTP: d.http, Partitions: d.partitions}
	j := d.status.journal.Load()
	if j != nil {
		out.Partitions = j.Partitions()
		st := j.Storage()
		out.Storage = &dashStorage{FreeBytes: st.Free, ReserveBytes: st.Reserve, Full: st.Full}
	}
	d.members(&out)
	d.mu.Lock()
	defer d.mu.Unlock()
	if now := time.Now(); now.Sub(d.measured) >= dashRefreshMin {
		d.measure(now)
	}
	out.Journal, out.Actors, out.Expiry = d.journal, d.actors, d.expiry
	return out
}

// members fills the members and the partition table: the cluster's as
// this node sees it, or this node alone holding every partition.
func (d *nodeDashboard) members(out *dashNode) {
	if d.clustered {
		out.Mode = "cluster"
		out.Members, out.Table = []dashMember{}, []dashPartition{}
		m := d.status.member.Load()
		if m == nil {
			return
		}
		v := newClusterView(m.node.View())
		out.Self, out.Joined, out.Partitions = v.Self, v.Ready, v.Partitions
		for _, mb := range v.Members {
			out.Members = append(out.Members, dashMember{Name: mb.Name, Address: mb.Address, Generation: mb.Generation,
				State: mb.State, Self: mb.Self, Partitions: len(mb.Partitions)})
		}
		out.Table = make([]dashPartition, len(v.Table))
		for i, p := range v.Table {
			out.Table[i] = dashPartition{Holder: p.Holder, State: p.State}
		}
		return
	}
	out.Joined = true
	state := "serving"
	if d.status.journal.Load() == nil {
		state = "pending" // the journal is not open yet
	}
	out.Members = []dashMember{{Name: d.self, Address: d.http, State: "alive", Self: true, Partitions: out.Partitions}}
	out.Table = make([]dashPartition, out.Partitions)
	for i := range out.Table {
		out.Table[i] = dashPartition{Holder: d.self, State: state}
	}
}

// measure refreshes the journal's rates since the last measurement, the
// actor counts and the wake backlog. d.mu is held.
func (d *nodeDashboard) measure(now time.Time) {
	seconds := now.Sub(d.measured).Seconds()
	cur := d.flushTotals()
	if !d.measured.IsZero() && seconds > 0 {
		d.journal = journalRates(d.prev, cur, seconds)
	}
	d.prev, d.measured = cur, now
	d.actors.ResidentMax = d.residentMax
	if n := d.eng.node.Load(); n != nil {
		d.actors.Resident = n.skus.Resident()
		d.actors.SKUs, d.actors.Orders = n.skus.Count()
	}
	if j := d.status.journal.Load(); j != nil {
		e := &dashExpiry{}
		err := j.Due(now.UnixNano(), dashDueCountMax+1, func(string, int64) bool { e.Overdue++; return true })
		if err == nil {
			e.Capped = e.Overdue > dashDueCountMax
			e.Overdue = min(e.Overdue, dashDueCountMax)
			d.expiry = e
		}
	}
}

// flushTotals are the journal's flush histograms since the start.
type flushTotals struct {
	flushes, entries float64
	failures         float64
	bounds           []float64 // upper bounds of the latency buckets, seconds
	cumulative       []uint64  // flushes at or below each bound
}

func (d *nodeDashboard) flushTotals() flushTotals {
	var t flushTotals
	mfs, err := d.flushes.Gather()
	if err != nil {
		return t
	}
	for _, mf := range mfs {
		if len(mf.GetMetric()) == 0 {
			continue
		}
		m := mf.GetMetric()[0]
		switch mf.GetName() {
		case "orderengine_journal_flush_seconds":
			h := m.GetHistogram()
			t.flushes = float64(h.GetSampleCount())
			for _, b := range h.GetBucket() {
				t.bounds = append(t.bounds, b.GetUpperBound())
				t.cumulative = append(t.cumulative, b.GetCumulativeCount())
			}
		case "orderengine_journal_flush_entries":
			t.entries = m.GetHistogram().GetSampleSum()
		case "orderengine_journal_flush_failures_total":
			t.failures = m.GetCounter().GetValue()
		}
	}
	return t
}

// journalRates are the flushes between two totals taken seconds apart.
func journalRates(prev, cur flushTotals, seconds float64) dashJournal {
	j := dashJournal{
		FlushesPerSecond: (cur.flushes - prev.flushes) / seconds,
		EntriesPerSecond: (cur.entries - prev.entries) / seconds,
		Failures:         uint64(cur.failures),
	}
	if len(prev.cumulative) != len(cur.cumulative) {
		return j
	}
	counts := make([]uint64, len(cur.cumulative))
	for i := range counts {
		counts[i] = cur.cumulative[i] - prev.cumulative[i]
	}
	total := uint64(cur.flushes - prev.flushes)
	if p := bucketQuantile(cur.bounds, counts, total, 0.50); !math.IsNaN(p) {
		j.P50Ms = &p
	}
	if p := bucketQuantile(cur.bounds, counts, total, 0.99); !math.IsNaN(p) {
		j.P99Ms = &p
	}
	return j
}

// bucketQuantile is the q quantile in milliseconds of total observations
// in cumulative buckets with upper bounds (seconds), interpolated within
// its bucket; observations above the last bound count as the last bound.
// NaN when total is 0.
func bucketQuantile(bounds []float64, cumulative []uint64, total uint64, q float64) float64 {
	if total == 0 || len(bounds) == 0 {
		return math.NaN()
	}
	rank := q * float64(total)
	lower, below := 0.0, uint64(0)
	for i, c := range cumulative {
		if float64(c) >= rank && c > below {
			frac := (rank - float64(below)) / float64(c-below)
			return (lower + (bounds[i]-lower)*frac) * 1000
		}
		lower, below = bounds[i], c
	}
	return bounds[len(bounds)-1] * 1000
}
