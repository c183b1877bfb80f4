package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderengine/orderengine/actors"
)

// journalMetrics records every group-commit flush of the journal.
type journalMetrics struct {
	flushSeconds prometheus.Histogram
	flushEntries prometheus.Histogram
	failures     prometheus.Counter
}

func newJournalMetrics(reg prometheus.Registerer) *journalMetrics {
	m := &journalMetrics{
		flushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "orderengine_journal_flush_seconds", Help: "Duration of one synced journal flush.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 14),
		}),
		flushEntries: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "orderengine_journal_flush_entries", Help: "Records written by one journal flush (group commit size).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orderengine_journal_flush_failures_total", Help: "Journal flushes that failed; their waiters were failed.",
		}),
	}
	reg.MustRegister(m.flushSeconds, m.flushEntries, m.failures)
	return m
}

// observe is the journal's OnFlush hook; it runs on the writer goroutine.
func (m *journalMetrics) observe(_, entries, _ int, d time.Duration, err error) {
	if err != nil {
		m.failures.Inc()
		return
	}
	m.flushSeconds.Observe(d.Seconds())
	m.flushEntries.Observe(float64(entries))
}

// registerActorMetrics exports the number of live actors by kind, counted
// when scraped.
func registerActorMetrics(reg prometheus.Registerer, skus *actors.Registry, residentMax int) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "orderengine_actors_live", Help: "Actors active on this node, by kind.", ConstLabels: prometheus.Labels{"kind": "sku"},
	}, func() float64 { n, _ := skus.Count(); return float64(n) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "orderengine_actors_live", Help: "Actors active on this node, by kind.", ConstLabels: prometheus.Labels{"kind": "order"},
	}, func() float64 { _, n := skus.Count(); return float64(n) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "orderengine_actors_resident", Help: "Actors the registry keeps in memory (all kinds); compare with orderengine_actors_resident_max.",
	}, func() float64 { return float64(skus.Resident()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "orderengine_actors_resident_max", Help: "The bound beyond which least recently used actors are asked to passivate (-max-resident).",
	}, func() float64 { return float64(max(residentMax, 0)) }))
}
