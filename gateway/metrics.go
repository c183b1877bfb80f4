package gateway

import (
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus collectors. Labels are route patterns
// and status codes only: never an order ID or a SKU.
type metrics struct {
	requests *prometheus.CounterVec
	latency  [routeCount]prometheus.Observer
	inFlight prometheus.Gauge
	shed     [3]prometheus.Counter // by shedReason; [admitted] counts shutdown refusals
	limited  [limitReasons]prometheus.Counter

	// counters caches requests' children, so the hot path does no label
	// hashing: [route][status-statusMin].
	counters [routeCount][statusSpan]atomic.Pointer[prometheus.Counter]
}

const (
	statusMin  = 100
	statusSpan = 500 // 100..599
)

var statusLabels = func() (t [statusSpan]string) {
	for i := range t {
		t[i] = strconv.Itoa(statusMin + i)
	}
	return t
}()

// newMetrics registers the gateway's collectors on reg. The rate limit
// tables are nil when their limit is off; their series then stay zero.
func newMetrics(reg *prometheus.Registry, customers *limiterTable[string], clients *limiterTable[netip.Addr]) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "orderengine", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "status"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "orderengine", Subsystem: "http", Name: "engine_calls_in_flight",
			Help: "Engine calls admitted and not yet answered.",
		}),
	}
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "orderengine", Subsystem: "http", Name: "request_duration_seconds",
		Help:    "Time from routing to the response being ready, by route pattern.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route"})
	shed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "orderengine", Subsystem: "http", Name: "shed_total",
		Help: "Requests refused by admission control, by reason.",
	}, []string{"reason"})
	limited := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "orderengine", Subsystem: "http", Name: "rate_limited_total",
		Help: "Requests refused by a per-client rate limit, by reason (customer, client).",
	}, []string{"reason"})
	collectors := []prometheus.Collector{m.requests, latency, m.inFlight, shed, limited}
	collectors = append(collectors, rateLimitTableMetrics("customer", customers.stats)...)
	collectors = append(collectors, rateLimitTableMetrics("client", clients.stats)...)
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for id := range routeTable {
		m.latency[id] = latency.WithLabelValues(routeTable[id].label())
	}
	m.shed[admitted] = shed.WithLabelValues("shutdown")
	m.shed[shedInFlight] = shed.WithLabelValues("in_flight")
	m.shed[shedSKUQueue] = shed.WithLabelValues("sku_queue")
	m.limited[limitClient] = limited.WithLabelValues("client")
	m.limited[limitCustomer] = limited.WithLabelValues("customer")
	return m, nil
}

// rateLimitTableMetrics reads a rate limit table when scraped: how many keys
// it holds, its bound, and how many keys it forgot before their bucket had
// refilled (each of those came back with a full bucket).
func rateLimitTableMetrics(table string, stats func() limiterStats) []prometheus.Collector {
	labels := prometheus.Labels{"table": table}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "orderengine", Subsystem: "http", Name: "rate_limit_entries", ConstLabels: labels,
			Help: "Keys (customers, client addresses) the rate limit table holds a bucket for.",
		}, func() float64 { return float64(stats().entries) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "orderengine", Subsystem: "http", Name: "rate_limit_entries_max", ConstLabels: labels,
			Help: "The bound of the rate limit table (0: the limit is off).",
		}, func() float64 { return float64(stats().entriesMax) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "orderengine", Subsystem: "http", Name: "rate_limit_evictions_total", ConstLabels: labels,
			Help: "Keys evicted from a full rate limit table before their bucket had refilled.",
		}, func() float64 { return float64(stats().evicted) }),
	}
}

func (m *metrics) observe(id routeID, status int, d time.Duration) {
	m.latency[id].Observe(d.Seconds())
	if status < statusMin || status >= statusMin+statusSpan {
		m.requests.WithLabelValues(routeTable[id].label(), strconv.Itoa(status)).Inc()
		return
	}
	slot := &m.counters[id][status-statusMin]
	c := slot.Load()
	if c == nil {
		cc := m.requests.WithLabelValues(routeTable[id].label(), statusLabels[status-statusMin])
		c = &cc
		slot.Store(c)
	}
	(*c).Inc()
}
