package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/cluster"
	"github.com/orderengine/orderengine/persistence"
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
	reg.MustRegister(mailboxCollector{skus})
}

var (
	mailboxQueuedDesc = prometheus.NewDesc("orderengine_mailbox_messages",
		"Messages waiting in the mailboxes of resident actors, by kind.", []string{"kind"}, nil)
	mailboxDeepestDesc = prometheus.NewDesc("orderengine_mailbox_depth_max",
		"Messages waiting in the fullest mailbox of one resident actor, by kind (a hot SKU shows here).", []string{"kind"}, nil)
)

// mailboxCollector reads every resident actor's mailbox once per scrape.
type mailboxCollector struct{ reg *actors.Registry }

func (c mailboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- mailboxQueuedDesc
	ch <- mailboxDeepestDesc
}

func (c mailboxCollector) Collect(ch chan<- prometheus.Metric) {
	skus, orders := c.reg.MailboxDepths()
	for _, k := range []struct {
		kind string
		d    actors.MailboxDepth
	}{{"sku", skus}, {"order", orders}} {
		ch <- prometheus.MustNewConstMetric(mailboxQueuedDesc, prometheus.GaugeValue, float64(k.d.Queued), k.kind)
		ch <- prometheus.MustNewConstMetric(mailboxDeepestDesc, prometheus.GaugeValue, float64(k.d.Deepest), k.kind)
	}
}

// registerPartitionMetrics exports how many of the journal's partitions
// this node holds. A single node holds every partition of its data
// directory; a clustered node reports its share, and partitions moving or
// without a live holder under their own states.
func registerPartitionMetrics(reg prometheus.Registerer, held func() int, total int) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "orderengine_partitions", Help: "Journal partitions by state on this node (held: served here).",
		ConstLabels: prometheus.Labels{"state": "held"},
	}, func() float64 { return float64(held()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "orderengine_partitions_total", Help: "Partitions identities are spread over, fixed when the data directory was created.",
	}, func() float64 { return float64(total) }))
}

// registerStorageMetrics exports the free space on the journal's volume
// against its reserve, measured when scraped: writes are refused while
// free is below the reserve (orderengine_storage_full is then 1).
func registerStorageMetrics(reg prometheus.Registerer, j *persistence.Journal) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "orderengine_storage_free_bytes", Help: "Bytes free on the data volume.",
	}, func() float64 { return float64(j.Storage().Free) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "orderengine_storage_reserve_bytes", Help: "Free bytes the journal keeps on its volume; writes are refused below it (-storage-reserve is its fixed part).",
	}, func() float64 { return float64(j.Storage().Reserve) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "orderengine_storage_full", Help: "1 while writes are refused because the data volume is below the reserve, else 0.",
	}, func() float64 {
		if j.Storage().Full {
			return 1
		}
		return 0
	}))
}

// memberCollector exports a cluster member's membership, partitions and
// routing, read when scraped.
type memberCollector struct {
	m                                                      *member
	members, partitions, route, breakers, handoff, refused *prometheus.Desc
	handoffs, handoffBytes, handoffsInFlight, handoffLast  *prometheus.Desc
}

func registerMemberMetrics(reg prometheus.Registerer, m *member) {
	reg.MustRegister(&memberCollector{
		m: m,
		members: prometheus.NewDesc("orderengine_cluster_members",
			"Cluster members this node knows, by state (alive, dead), itself included.", []string{"state"}, nil),
		partitions: prometheus.NewDesc("orderengine_cluster_partitions",
			"Partitions of the cluster's table by state as this node sees them (serving, pending, handing-off, unavailable, none).", []string{"state"}, nil),
		route: prometheus.NewDesc("orderengine_route_messages_total",
			"Routed messages by event: envelopes out and in, not-mine sent and received, unavailable sent and returned, timeouts, dead-letter retries, unexpected.",
			[]string{"event"}, nil),
		breakers: prometheus.NewDesc("orderengine_route_breaker_opens_total",
			"Times a peer's circuit breaker opened (its partitions then answer 503 at once).", nil, nil),
		handoff: prometheus.NewDesc("orderengine_handoff_chunks_total",
			"Handoff chunks by direction (out, in) and refused ones.", []string{"event"}, nil),
		handoffs: prometheus.NewDesc("orderengine_handoffs_total",
			"Partition handoffs from this node by event: started, completed, failed (an attempt, retried), given_up (the partition is served here again).",
			[]string{"event"}, nil),
		handoffBytes: prometheus.NewDesc("orderengine_handoff_bytes_total",
			"Partition data handed off, by direction (sent, received).", []string{"direction"}, nil),
		handoffsInFlight: prometheus.NewDesc("orderengine_handoffs_in_flight",
			"Partitions this node is handing off now.", nil, nil),
		handoffLast: prometheus.NewDesc("orderengine_handoff_last_seconds",
			"How long the last completed handoff from this node took, from marking the partition handing off to the commit.", nil, nil),
		refused: prometheus.NewDesc("orderengine_remote_refused_total",
			"Connections and calls to the remote port refused for lacking the cluster key (only with -gossip-key-file).", nil, nil),
	})
}

func (c *memberCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.members, c.partitions, c.route, c.breakers, c.handoff, c.refused,
		c.handoffs, c.handoffBytes, c.handoffsInFlight, c.handoffLast} {
		ch <- d
	}
}

func (c *memberCollector) Collect(ch chan<- prometheus.Metric) {
	v := c.m.node.View()
	alive, dead := 0, 0
	for _, mb := range v.Members {
		if mb.Alive || mb.Name == v.Self.Name {
			alive++
		} else {
			dead++
		}
	}
	ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, float64(alive), "alive")
	ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, float64(dead), "dead")
	states := map[string]int{}
	for _, s := range []cluster.State{cluster.StateNone, cluster.StatePending, cluster.StateServing, cluster.StateHandingOff, cluster.StateUnavailable} {
		states[s.String()] = 0
	}
	for p := range v.Table.Partitions {
		states[v.Assignment(p).State.String()]++
	}
	for s, n := range states {
		ch <- prometheus.MustNewConstMetric(c.partitions, prometheus.GaugeValue, float64(n), s)
	}
	st := c.m.router.Stats()
	for event, n := range map[string]uint64{
		"envelope_out": st.EnvelopesOut, "envelope_in": st.EnvelopesIn, "not_mine_sent": st.NotMineSent,
		"not_mine_received": st.NotMineReceived, "unavailable_sent": st.UnavailableSent, "unavailable": st.Unavailable,
		"timeout": st.Timeouts, "retry": st.Retries, "unexpected": st.Unexpected,
	} {
		ch <- prometheus.MustNewConstMetric(c.route, prometheus.CounterValue, float64(n), event)
	}
	ch <- prometheus.MustNewConstMetric(c.breakers, prometheus.CounterValue, float64(st.BreakerOpens))
	ch <- prometheus.MustNewConstMetric(c.handoff, prometheus.CounterValue, float64(st.HandoffChunksOut), "out")
	ch <- prometheus.MustNewConstMetric(c.handoff, prometheus.CounterValue, float64(st.HandoffChunksIn), "in")
	ch <- prometheus.MustNewConstMetric(c.handoff, prometheus.CounterValue, float64(st.HandoffRefused), "refused")
	hs := c.m.node.HandoffStats()
	for event, n := range map[string]uint64{"started": hs.Started, "completed": hs.Completed, "failed": hs.Failed, "given_up": hs.GivenUp} {
		ch <- prometheus.MustNewConstMetric(c.handoffs, prometheus.CounterValue, float64(n), event)
	}
	ch <- prometheus.MustNewConstMetric(c.handoffBytes, prometheus.CounterValue, float64(hs.BytesSent), "sent")
	ch <- prometheus.MustNewConstMetric(c.handoffBytes, prometheus.CounterValue, float64(hs.BytesReceived), "received")
	ch <- prometheus.MustNewConstMetric(c.handoffsInFlight, prometheus.GaugeValue, float64(hs.InFlight))
	ch <- prometheus.MustNewConstMetric(c.handoffLast, prometheus.GaugeValue, hs.LastDuration.Seconds())
	if c.m.auth != nil {
		ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(c.m.auth.Refused()))
	}
}
