package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/orderengine/orderengine/gateway/ui"
)

// Bounds of the dashboard (GET /v1/dashboard, and the page at /ui that
// polls it).
const (
	dashSamplesMax   = 300                    // one-second samples kept: five minutes of charts
	dashTick         = time.Second            // how often the sampler reads the counters
	dashHotTracked   = 64                     // SKUs whose sampled rate is remembered
	dashHotShown     = 5                      // hottest SKUs shown, each with its stock
	dashHotDecay     = 0.7                    // weight of the old rate in each second's update
	dashHotRateMin   = 0.05                   // checkouts/s below which a SKU is forgotten
	dashCacheFor     = 500 * time.Millisecond // a response serves every poll this long
	dashWatchedFor   = 10 * time.Second       // stock of hot SKUs is read only while someone polls
	dashSKUTimeout   = 500 * time.Millisecond // per SKU view read for the dashboard
	dashLazyTickFrom = 2 * dashTick           // a poll samples itself when the sampler is not running
)

// dashSample is one interval's traffic.
type dashSample struct {
	at        int64   // end of the interval, Unix milliseconds
	seconds   float64 // its length
	checkouts uint64
	requests  [statusClassCount]uint64
	p50, p99  float64 // checkout latency in ms; NaN when there was none
}

// HotSKU is one of the hottest SKUs on the dashboard: its sampled rate of
// checkouts through this node, and its stock when it could be read.
type HotSKU struct {
	SKU       string  `json:"sku"`
	Rate      float64 `json:"rate"`
	Available *int64  `json:"available"`
	Reserved  *int64  `json:"reserved"`
	Sold      *int64  `json:"sold"`
}

// dashboard keeps the last minutes of per-second samples and the hot SKUs,
// and renders GET /v1/dashboard.
type dashboard struct {
	c      dashCounters
	engine Engine
	now    func() time.Time

	mu         sync.Mutex // everything below; never taken on the request path
	last       time.Time  // of the last sample; zero before the first
	prevReq    [statusClassCount]uint64
	prevCheck  [statusClassCount]uint64
	prevLat    [latencyBuckets]uint64
	prevHotPos uint64
	samples    [dashSamplesMax]dashSample // a ring; next is the oldest once full
	count      int
	next       int
	hotRates   map[string]float64
	hot        []HotSKU
	polled     time.Time // last GET /v1/dashboard
	cached     []byte
	cachedAt   time.Time

	stop    chan struct{}
	done    chan struct{}
	started sync.Once
	stopped sync.Once
	running bool // guarded by mu
}

func newDashboard(e Engine, now func() time.Time) *dashboard {
	return &dashboard{engine: e, now: now, hotRates: map[string]float64{},
		stop: make(chan struct{}), done: make(chan struct{})}
}

// start runs the sampler until close; Serve starts it.
func (d *dashboard) start() {
	d.started.Do(func() {
		d.mu.Lock()
		d.running = true
		d.mu.Unlock()
		d.tick(d.now())
		go func() {
			defer close(d.done)
			t := time.NewTicker(dashTick)
			defer t.Stop()
			for {
				select {
				case <-d.stop:
					return
				case <-t.C:
					d.tick(d.now())
				}
			}
		}()
	})
}

// close stops the sampler and waits for it, if it was started.
func (d *dashboard) close() {
	d.stopped.Do(func() { close(d.stop) })
	d.mu.Lock()
	running := d.running
	d.mu.Unlock()
	if running {
		<-d.done
	}
}

// tick takes one sample: the counters' increase since the last one. The
// first call only sets the baseline.
func (d *dashboard) tick(now time.Time) {
	d.mu.Lock()
	first := d.last.IsZero()
	seconds := now.Sub(d.last).Seconds()
	var s dashSample
	var lat [latencyBuckets]uint64
	for i := range d.prevReq {
		s.requests[i] = diff(&d.prevReq[i], d.c.requests[i].Load())
		s.checkouts += diff(&d.prevCheck[i], d.c.checkouts[i].Load())
	}
	for i := range lat {
		lat[i] = diff(&d.prevLat[i], d.c.latency[i].Load())
	}
	hotPos := d.c.hotPos.Load()
	counts, sampled := d.readHot(hotPos)
	d.prevHotPos = hotPos
	d.last = now
	if first || seconds <= 0 {
		d.mu.Unlock()
		return
	}
	s.at, s.seconds = now.UnixMilli(), seconds
	s.p50, s.p99 = latencyQuantile(&lat, 0.50), latencyQuantile(&lat, 0.99)
	d.samples[d.next] = s
	d.next = (d.next + 1) % dashSamplesMax
	d.count = min(d.count+1, dashSamplesMax)
	d.updateHot(counts, sampled, float64(s.checkouts)/seconds)
	watched := now.Sub(d.polled) < dashWatchedFor
	names := d.hottest()
	d.mu.Unlock()

	if !watched {
		return
	}
	// Read the stock of the few hottest SKUs outside the lock: each is
	// one actor ask, perhaps on another node.
	hot := make([]HotSKU, 0, len(names))
	for _, h := range names {
		ctx, cancel := context.WithTimeout(context.Background(), dashSKUTimeout)
		v, err := d.engine.SKU(ctx, h.SKU)
		cancel()
		if err == nil {
			h.Available, h.Reserved, h.Sold = &v.Available, &v.Reserved, &v.Sold
		}
		hot = append(hot, h)
	}
	d.mu.Lock()
	d.hot = hot
	d.mu.Unlock()
}

// diff returns cur less *prev and keeps cur as the new *prev.
func diff(prev *uint64, cur uint64) uint64 {
	n := cur - *prev
	*prev = cur
	return n
}

// readHot counts the SKUs sampled since the last tick (at most the ring's
// worth, the latest ones).
func (d *dashboard) readHot(pos uint64) (map[string]int, int) {
	from := d.prevHotPos
	if pos-from > hotRingSlots {
		from = pos - hotRingSlots
	}
	counts := map[string]int{}
	sampled := 0
	for p := from; p < pos; p++ {
		if sku, ok := d.c.hot[p%hotRingSlots].load(); ok {
			counts[sku]++
			sampled++
		}
	}
	return counts, sampled
}

// updateHot folds one interval's samples into each SKU's rate: a SKU's
// share of the samples times the checkout rate, smoothed over the last
// few seconds. It keeps at most dashHotTracked SKUs.
func (d *dashboard) updateHot(counts map[string]int, sampled int, checkoutRate float64) {
	for sku, r := range d.hotRates {
		d.hotRates[sku] = r * dashHotDecay
	}
	for sku, n := range counts {
		d.hotRates[sku] += (1 - dashHotDecay) * checkoutRate * float64(n) / float64(sampled)
	}
	for sku, r := range d.hotRates {
		if r < dashHotRateMin {
			delete(d.hotRates, sku)
		}
	}
	if len(d.hotRates) > dashHotTracked {
		for _, h := range d.ranked()[dashHotTracked:] {
			delete(d.hotRates, h.SKU)
		}
	}
}

// ranked lists the tracked SKUs, hottest first.
func (d *dashboard) ranked() []HotSKU {
	all := make([]HotSKU, 0, len(d.hotRates))
	for sku, r := range d.hotRates {
		all = append(all, HotSKU{SKU: sku, Rate: r})
	}
	slices.SortFunc(all, func(a, b HotSKU) int {
		return cmp.Or(cmp.Compare(b.Rate, a.Rate), cmp.Compare(a.SKU, b.SKU))
	})
	return all
}

func (d *dashboard) hottest() []HotSKU {
	r := d.ranked()
	r = r[:min(len(r), dashHotShown)]
	for i := range r {
		r[i].Rate = math.Round(r[i].Rate*10) / 10
	}
	return r
}

// render returns the body of GET /v1/dashboard, made at most every
// dashCacheFor however many pollers there are. node is the node's own
// part (Config.Dashboard), ready its readiness.
func (d *dashboard) render(node func() any, ready func() error) ([]byte, error) {
	now := d.now()
	d.mu.Lock()
	d.polled = now
	if d.cached != nil && now.Sub(d.cachedAt) < dashCacheFor {
		b := d.cached
		d.mu.Unlock()
		return b, nil
	}
	lazy := !d.running && now.Sub(d.last) >= dashLazyTickFrom
	d.mu.Unlock()
	if lazy { // a server used through Handler only, as in tests
		d.tick(now)
	}
	var nodeJSON []byte
	if node != nil {
		var err error
		if nodeJSON, err = json.Marshal(node()); err != nil {
			return nil, err
		}
	} else {
		nodeJSON = []byte(`{"mode":"single-node","self":"local"}`)
	}
	b := make([]byte, 0, 4096+len(nodeJSON)+dashSamplesMax*64)
	b = append(b, `{"version":1,"time":"`...)
	b = now.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","ready":`...)
	if err := ready(); err != nil {
		b = append(b, `false,"reason":`...)
		b = strconv.AppendQuote(b, err.Error())
	} else {
		b = append(b, `true,"reason":""`...)
	}
	b = append(b, `,"node":`...)
	b = append(b, nodeJSON...)
	d.mu.Lock()
	defer d.mu.Unlock()
	b = d.appendTraffic(append(b, `,"traffic":`...))
	hot, err := json.Marshal(d.hot)
	if err != nil {
		return nil, err
	}
	if d.hot == nil {
		hot = []byte("[]")
	}
	b = append(append(append(b, `,"hot_skus":`...), hot...), `,"hot_sample_every":`...)
	b = strconv.AppendInt(b, hotSampleEvery, 10)
	b = append(b, '}')
	d.cached, d.cachedAt = b, now
	return b, nil
}

// appendTraffic writes the samples as columns, oldest first.
func (d *dashboard) appendTraffic(b []byte) []byte {
	b = append(b, `{"interval_seconds":`...)
	b = strconv.AppendFloat(b, dashTick.Seconds(), 'f', -1, 64)
	cols := []struct {
		name string
		val  func(s *dashSample) float64
		prec int
	}{
		{"t", func(s *dashSample) float64 { return float64(s.at) / 1000 }, 3},
		{"checkouts", func(s *dashSample) float64 { return float64(s.checkouts) / s.seconds }, 1},
		{"ok", func(s *dashSample) float64 { return float64(s.requests[class2xx]) / s.seconds }, 1},
		{"conflict", func(s *dashSample) float64 { return float64(s.requests[class409]) / s.seconds }, 1},
		{"overloaded", func(s *dashSample) float64 { return float64(s.requests[class429]) / s.seconds }, 1},
		{"unavailable", func(s *dashSample) float64 { return float64(s.requests[class503]) / s.seconds }, 1},
		{"other_errors", func(s *dashSample) float64 { return float64(s.requests[classOther]) / s.seconds }, 1},
		{"p50_ms", func(s *dashSample) float64 { return s.p50 }, 3},
		{"p99_ms", func(s *dashSample) float64 { return s.p99 }, 3},
	}
	start := (d.next - d.count + dashSamplesMax) % dashSamplesMax
	for _, c := range cols {
		b = append(append(append(b, `,"`...), c.name...), `":[`...)
		for i := range d.count {
			if i > 0 {
				b = append(b, ',')
			}
			v := c.val(&d.samples[(start+i)%dashSamplesMax])
			if math.IsNaN(v) || math.IsInf(v, 0) {
				b = append(b, "null"...)
				continue
			}
			b = strconv.AppendFloat(b, v, 'f', c.prec, 64)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// serveDashboard answers GET /v1/dashboard.
func (s *Server) serveDashboard(x *exchange) {
	b, err := s.dash.render(s.cfg.Dashboard, s.cfg.Readiness)
	if err != nil {
		s.fail(x, err)
		return
	}
	x.ctx.Response.Header.Set("Cache-Control", "no-store")
	// The cached body is shared: copy it into this exchange's buffer.
	s.reply(x, fasthttp.StatusOK, append(x.buf[:0], b...))
}

// uiPolicy lets the page run its own inline script and style and fetch
// from its node only: nothing is loaded from anywhere else.
const uiPolicy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// serveUI answers GET /ui: the dashboard page, embedded in the binary.
func (s *Server) serveUI(x *exchange) {
	h := &x.ctx.Response.Header
	h.Set("Content-Security-Policy", uiPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	x.ctx.SetStatusCode(fasthttp.StatusOK)
	x.ctx.SetContentType("text/html; charset=utf-8")
	x.ctx.SetBody(ui.Page)
}
