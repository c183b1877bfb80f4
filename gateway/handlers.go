package gateway

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"

	"github.com/valyala/fasthttp"
)

// serveRoute runs the route-specific part of a request whose route, token,
// size and content type have passed: JSON syntax (400), fields (422), then
// admission and the engine.
func (s *Server) serveRoute(x *exchange, id routeID, param, body []byte) {
	switch id {
	case routeHealthz:
		s.reply(x, fasthttp.StatusOK, append(x.buf[:0], `{"status":"ok"}`...))
	case routeReadyz:
		if err := s.cfg.Readiness(); err != nil {
			s.problem(x, problem{kind: probUnavailable, detail: "the node is not ready: " + err.Error()})
			return
		}
		s.reply(x, fasthttp.StatusOK, append(x.buf[:0], `{"status":"ready"}`...))
	case routeMetrics:
		s.metricsH(x.ctx)
	case routeCluster:
		s.cluster(x)
	case routeDashboard:
		s.serveDashboard(x)
	case routeUI:
		s.serveUI(x)
	case routeSKURestock, routeSKURemove:
		s.changeStock(x, id, param, body)
	case routeSKULimit:
		s.setLimit(x, param, body)
	case routeSKUGet:
		s.getSKU(x, param)
	case routeOrderPlace:
		s.placeOrder(x, body)
	case routeOrderGet, routeOrderPay, routeOrderCancel, routeOrderShip, routeOrderComplete:
		s.moveOrder(x, id, param, body)
	case routeAdminBackup:
		s.backup(x)
	case routeAdminForget:
		s.forgetNode(x, param, body)
	}
}

// skuParam unescapes and checks the {sku} path segment (422 "sku").
func (x *exchange) skuParam(raw []byte) (string, *problem) {
	seg, ok := raw, true
	if bytes.IndexByte(raw, '%') >= 0 {
		x.seg, ok = unescapeSegment(x.seg[:0], raw)
		seg = x.seg
	}
	if !ok || !validIdentifier(seg, identifierBytesMax) {
		p := fieldProblem("sku", identifierDetail(identifierBytesMax))
		return "", &p
	}
	return string(seg), nil
}

// idempotencyKey checks the optional Idempotency-Key header.
func (x *exchange) idempotencyKey() (string, *problem) {
	k := x.ctx.Request.Header.Peek("Idempotency-Key")
	if k == nil {
		return "", nil
	}
	if !validIdentifier(k, identifierBytesMax) {
		p := fieldProblem("Idempotency-Key", identifierDetail(identifierBytesMax))
		return "", &p
	}
	return string(k), nil
}

func (s *Server) changeStock(x *exchange, id routeID, param, body []byte) {
	sku, qty, ok := s.skuBody(x, param, body, decodeQuantity)
	if !ok {
		return
	}
	key, p := x.idempotencyKey()
	if p != nil {
		s.problem(x, *p)
		return
	}
	s.callSKU(x, sku, func(ctx context.Context) (SKUView, error) {
		if id == routeSKURestock {
			return s.engine.Restock(ctx, sku, qty, key)
		}
		return s.engine.Remove(ctx, sku, qty, key)
	})
}

// setLimit sets or removes a SKU's purchase limit per customer. Setting
// the limit in force again changes nothing, so a retry needs no key.
func (s *Server) setLimit(x *exchange, param, body []byte) {
	sku, limit, ok := s.skuBody(x, param, body, decodeLimit)
	if !ok {
		return
	}
	s.callSKU(x, sku, func(ctx context.Context) (SKUView, error) { return s.engine.SetLimit(ctx, sku, limit) })
}

func (s *Server) getSKU(x *exchange, param []byte) {
	sku, p := x.skuParam(param)
	if p != nil {
		s.problem(x, *p)
		return
	}
	s.callSKU(x, sku, func(ctx context.Context) (SKUView, error) { return s.engine.SKU(ctx, sku) })
}

// skuBody reads the {sku} segment and a body holding one number, in the
// order API.md fixes: JSON syntax (400), then the path, then the field
// (422). ok is false when a problem has been answered.
func (s *Server) skuBody(x *exchange, param, body []byte, decode func([]byte) (int64, error)) (sku string, n int64, ok bool) {
	n, err := decode(body)
	if isSyntaxError(err) {
		s.fail(x, err)
		return "", 0, false
	}
	sku, p := x.skuParam(param)
	if p != nil {
		s.problem(x, *p)
		return "", 0, false
	}
	if err != nil {
		s.fail(x, err)
		return "", 0, false
	}
	return sku, n, true
}

// callSKU runs one engine call for sku under admission control and the
// request timeout, and answers its SKU view.
func (s *Server) callSKU(x *exchange, sku string, call func(context.Context) (SKUView, error)) {
	lines := [1]Item{{SKU: sku}}
	if !s.acquire(x, lines[:]) {
		return
	}
	ctx, cancel := context.WithTimeout(s.base, s.cfg.RequestTimeout)
	v, err := call(ctx)
	cancel()
	s.release(lines[:])
	s.skuResult(x, v, err)
}

func (s *Server) skuResult(x *exchange, v SKUView, err error) {
	if err != nil {
		s.fail(x, err)
		return
	}
	s.reply(x, fasthttp.StatusOK, appendSKUView(x.buf[:0], v))
}

func (s *Server) placeOrder(x *exchange, body []byte) {
	req, err := decodePlaceOrder(body)
	if err != nil {
		s.fail(x, err)
		return
	}
	key, p := x.idempotencyKey()
	if p != nil {
		s.problem(x, *p)
		return
	}
	req.IdempotencyKey = key
	s.dash.c.sampleSKUs(req.Items)
	if !s.acquire(x, req.Items) {
		return
	}
	// The customer's bucket is only spent on a checkout that will reach
	// the engine: after admission, which it then gives back if refused.
	if s.customers != nil && !s.allowCustomer(x, req.Customer) {
		s.release(req.Items)
		return
	}
	ctx, cancel := context.WithTimeout(s.base, s.cfg.RequestTimeout)
	o, err := s.engine.PlaceOrder(ctx, req)
	cancel()
	s.release(req.Items)
	if err != nil {
		s.fail(x, err)
		return
	}
	x.hdr = append(append(x.hdr[:0], "/v1/orders/"...), o.ID...)
	x.ctx.Response.Header.SetBytesV("Location", x.hdr)
	s.reply(x, fasthttp.StatusCreated, appendOrder(x.buf[:0], o))
}

// moveOrder serves GET /v1/orders/{id} and the four transitions.
func (s *Server) moveOrder(x *exchange, id routeID, param, body []byte) {
	var ref string
	switch id {
	case routeOrderPay:
		var err error
		if ref, err = decodePay(body); err != nil {
			s.fail(x, err)
			return
		}
	case routeOrderCancel, routeOrderShip, routeOrderComplete:
		if err := checkOptionalBody(body); err != nil {
			s.fail(x, err)
			return
		}
	}
	// An ID the engine cannot have issued is an unknown resource: 404
	// without asking the engine. Valid IDs are plain ASCII, so a
	// percent-encoded segment is never one.
	if !validOrderID(param) {
		s.problem(x, problem{kind: probNotFound, detail: "no such order"})
		return
	}
	if !s.acquire(x, nil) {
		return
	}
	orderID := string(param)
	ctx, cancel := context.WithTimeout(s.base, s.cfg.RequestTimeout)
	var (
		o   Order
		err error
	)
	switch id {
	case routeOrderGet:
		o, err = s.engine.Order(ctx, orderID)
	case routeOrderPay:
		o, err = s.engine.Pay(ctx, orderID, ref)
	case routeOrderCancel:
		o, err = s.engine.Cancel(ctx, orderID)
	case routeOrderShip:
		o, err = s.engine.Ship(ctx, orderID)
	case routeOrderComplete:
		o, err = s.engine.Complete(ctx, orderID)
	}
	cancel()
	s.release(nil)
	if err != nil {
		s.fail(x, err)
		return
	}
	s.reply(x, fasthttp.StatusOK, appendOrder(x.buf[:0], o))
}

// singleNode is /v1/cluster when the node runs alone.
var singleNode = []byte(`{"mode":"single-node","members":[{"id":"local","state":"alive","self":true,"partitions":"all"}]}`)

func (s *Server) cluster(x *exchange) {
	if s.cfg.Cluster == nil {
		s.reply(x, fasthttp.StatusOK, append(x.buf[:0], singleNode...))
		return
	}
	b, err := json.Marshal(s.cfg.Cluster())
	if err != nil {
		s.fail(x, err)
		return
	}
	s.reply(x, fasthttp.StatusOK, b)
}

func isSyntaxError(err error) bool {
	var e *invalidJSONError
	return errors.As(err, &e)
}

// acquire admits a request; when it cannot it answers 429 and returns false.
func (s *Server) acquire(x *exchange, lines []Item) bool {
	if r := s.admit.acquire(lines); r != admitted {
		s.metrics.shed[r].Inc()
		detail := "too many requests in flight on this node"
		if r == shedSKUQueue {
			detail = "too many requests in flight for one of these SKUs"
		}
		s.problem(x, problem{kind: probOverloaded, detail: detail})
		return false
	}
	s.metrics.inFlight.Inc()
	return true
}

func (s *Server) release(lines []Item) {
	s.metrics.inFlight.Dec()
	s.admit.release(lines)
}

func (s *Server) reply(x *exchange, status int, body []byte) {
	x.buf = body[:0]
	x.ctx.SetStatusCode(status)
	x.ctx.SetContentType("application/json")
	x.ctx.SetBody(body)
}

// fail answers err with its problem. This is where an error is handled:
// the ones the table does not know, and the engine's unavailability, are
// logged here with the request ID, once (a full volume's refusals at debug
// level only).
func (s *Server) fail(x *exchange, err error) {
	p, known := problemFor(err)
	switch {
	case !known:
		s.cfg.Logger.Error("request failed", s.logAttrs(x, err)...)
	case errors.Is(err, ErrStorageFull):
		// The node logs the episode once; a line per refused write would
		// flood the log while it lasts.
		s.cfg.Logger.Debug("write refused: storage full", s.logAttrs(x, err)...)
	case p.kind == probUnavailable:
		s.cfg.Logger.Warn("engine unavailable", s.logAttrs(x, err)...)
	}
	s.problem(x, p)
}

func (s *Server) logAttrs(x *exchange, err error) []any {
	return []any{
		slog.String("request_id", string(x.requestID)),
		slog.String("route", routeTable[x.route].label()),
		slog.Any("err", err),
	}
}

// problem writes p as the response, with the request path as its instance.
func (s *Server) problem(x *exchange, p problem) {
	s.writeProblem(x, p, string(x.ctx.URI().PathOriginal()))
}

// writeProblem writes p as the response; instance is the request path, or
// "" to leave the member out.
func (s *Server) writeProblem(x *exchange, p problem, instance string) {
	spec := p.spec()
	if p.retryable() {
		x.ctx.Response.Header.Set("Retry-After", strconv.Itoa(cmp.Or(p.retryAfter, retryAfterSeconds)))
	}
	if p.kind == probUnauthorized {
		x.ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="orderengine"`)
	}
	x.buf = appendProblem(x.buf[:0], p, instance, string(x.requestID))
	x.ctx.SetStatusCode(spec.status)
	x.ctx.SetContentType("application/problem+json")
	x.ctx.SetBody(x.buf)
}
