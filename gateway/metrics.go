package gateway

import (
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

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
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
	for _, c := range []prometheus.Collector{m.requests, latency, m.inFlight, shed} {
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
	return m, nil
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
