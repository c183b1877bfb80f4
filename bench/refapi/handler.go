package refapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// Limits from API.md.
const (
	requestBodyBytesMax = 64 << 10
	orderLinesMax       = 100
	lineQuantityMax     = 10_000
	restockQuantityMax  = 1_000_000_000
	identBytesMax       = 64
	customerBytesMax    = 128
	ttlSecondsDefault   = 900
	ttlSecondsMax       = 86_400
	// storeTimeout bounds each Store call, so a stuck backend answers 503
	// instead of holding the connection.
	storeTimeout = 5 * time.Second
)

const problemBase = "https://orderengine.dev/problems/"

// Handler serves the checkout routes over a Store.
type Handler struct {
	store Store
	token string
	log   *slog.Logger
	now   func() time.Time
}

// NewHandler returns the API handler; token is the admin bearer token.
func NewHandler(store Store, token string, log *slog.Logger) *Handler {
	return &Handler{store: store, token: token, log: log, now: time.Now}
}

// Serve is the fasthttp.RequestHandler.
func (h *Handler) Serve(rc *fasthttp.RequestCtx) {
	path := string(rc.Path())
	method := string(rc.Method())
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case path == "/healthz" || path == "/readyz":
		rc.SetStatusCode(fasthttp.StatusOK)
	case len(parts) == 3 && parts[0] == "v1" && parts[1] == "skus":
		h.route(rc, method, "GET", func() { h.getSKU(rc, parts[2]) })
	case len(parts) == 4 && parts[0] == "v1" && parts[1] == "skus" && parts[3] == "restock":
		h.route(rc, method, "POST", func() { h.restock(rc, parts[2]) })
	case len(parts) == 2 && parts[0] == "v1" && parts[1] == "orders":
		h.route(rc, method, "POST", func() { h.place(rc) })
	case len(parts) == 3 && parts[0] == "v1" && parts[1] == "orders":
		h.route(rc, method, "GET", func() { h.getOrder(rc, parts[2]) })
	case len(parts) == 4 && parts[0] == "v1" && parts[1] == "orders" && parts[3] == "pay":
		h.route(rc, method, "POST", func() { h.pay(rc, parts[2]) })
	case len(parts) == 4 && parts[0] == "v1" && parts[1] == "orders" && parts[3] == "cancel":
		h.route(rc, method, "POST", func() { h.cancel(rc, parts[2]) })
	default:
		problem(rc, 404, "not-found", "no such route", nil)
	}
}

func (h *Handler) route(rc *fasthttp.RequestCtx, method, want string, f func()) {
	if method != want {
		rc.Response.Header.Set("Allow", want)
		problem(rc, 405, "method-not-allowed", "method not allowed", nil)
		return
	}
	f()
}

func (h *Handler) restock(rc *fasthttp.RequestCtx, sku string) {
	if string(rc.Request.Header.Peek("Authorization")) != "Bearer "+h.token || h.token == "" {
		problem(rc, 401, "unauthorized", "admin token missing or wrong", nil)
		return
	}
	var body struct {
		Quantity *int64 `json:"quantity"`
	}
	if !decodeBody(rc, &body) {
		return
	}
	switch {
	case !validIdent(sku, identBytesMax):
		invalidField(rc, "sku")
	case body.Quantity == nil || *body.Quantity < 1 || *body.Quantity > restockQuantityMax:
		invalidField(rc, "quantity")
	default:
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		v, err := h.store.Restock(ctx, sku, *body.Quantity)
		h.answer(rc, 200, v, err)
	}
}

func (h *Handler) getSKU(rc *fasthttp.RequestCtx, sku string) {
	if !validIdent(sku, identBytesMax) {
		invalidField(rc, "sku")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	v, err := h.store.SKU(ctx, sku)
	h.answer(rc, 200, v, err)
}

// checkoutRequest is the body of POST /v1/orders.
type checkoutRequest struct {
	Customer   *string `json:"customer"`
	Items      []Item  `json:"items"`
	TTLSeconds *int64  `json:"ttl_seconds"`
}

// validate checks the fields and returns the name of the first bad one.
func (r *checkoutRequest) validate() string {
	if r.Customer == nil || !validIdent(*r.Customer, customerBytesMax) {
		return "customer"
	}
	if len(r.Items) < 1 || len(r.Items) > orderLinesMax {
		return "items"
	}
	seen := make(map[string]bool, len(r.Items))
	for i, it := range r.Items {
		if !validIdent(it.SKU, identBytesMax) || seen[it.SKU] {
			return fmt.Sprintf("items[%d].sku", i)
		}
		seen[it.SKU] = true
		if it.Quantity < 1 || it.Quantity > lineQuantityMax {
			return fmt.Sprintf("items[%d].quantity", i)
		}
	}
	if r.TTLSeconds != nil && (*r.TTLSeconds < 1 || *r.TTLSeconds > ttlSecondsMax) {
		return "ttl_seconds"
	}
	return ""
}

func (h *Handler) place(rc *fasthttp.RequestCtx) {
	var req checkoutRequest
	if !decodeBody(rc, &req) {
		return
	}
	if f := req.validate(); f != "" {
		invalidField(rc, f)
		return
	}
	ttl := int64(ttlSecondsDefault)
	if req.TTLSeconds != nil {
		ttl = *req.TTLSeconds
	}
	now := h.now().UTC()
	o := &Order{ID: NewOrderID(), Status: StatusReserved, Customer: *req.Customer, Items: req.Items,
		CreatedAt: now, ExpiresAt: now.Add(time.Duration(ttl) * time.Second)}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	err := h.store.Place(ctx, o)
	if err == nil {
		rc.Response.Header.Set("Location", "/v1/orders/"+o.ID)
	}
	h.answer(rc, 201, o, err)
}

func (h *Handler) getOrder(rc *fasthttp.RequestCtx, id string) {
	if !ValidOrderID(id) {
		problem(rc, 404, "not-found", "no such order", nil)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	o, err := h.store.Order(ctx, id)
	h.answer(rc, 200, o, err)
}

func (h *Handler) pay(rc *fasthttp.RequestCtx, id string) {
	if !ValidOrderID(id) {
		problem(rc, 404, "not-found", "no such order", nil)
		return
	}
	var body struct {
		PaymentRef *string `json:"payment_ref"`
	}
	if !decodeBody(rc, &body) {
		return
	}
	if body.PaymentRef == nil || !validIdent(*body.PaymentRef, identBytesMax) {
		invalidField(rc, "payment_ref")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	o, err := h.store.Pay(ctx, id, *body.PaymentRef, h.now())
	h.answer(rc, 200, o, err)
}

func (h *Handler) cancel(rc *fasthttp.RequestCtx, id string) {
	if !ValidOrderID(id) {
		problem(rc, 404, "not-found", "no such order", nil)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	o, err := h.store.Cancel(ctx, id)
	h.answer(rc, 200, o, err)
}

// answer writes v with status ok, or the problem that err maps to.
func (h *Handler) answer(rc *fasthttp.RequestCtx, ok int, v any, err error) {
	var oos *OutOfStockError
	var te *TransitionError
	switch {
	case err == nil:
		writeJSON(rc, ok, "application/json", v)
	case errors.Is(err, ErrNotFound):
		problem(rc, 404, "not-found", "not found", nil)
	case errors.As(err, &oos):
		problem(rc, 409, "out-of-stock", "out of stock", map[string]any{"sku": oos.SKU, "available": oos.Available})
	case errors.As(err, &te):
		problem(rc, 409, "invalid-transition", "invalid transition", map[string]any{"order_status": te.Status})
	default:
		h.log.Error("store failed", "path", string(rc.Path()), "err", err)
		rc.Response.Header.Set("Retry-After", "1")
		problem(rc, 503, "unavailable", "storage unavailable", nil)
	}
}

// decodeBody checks content type and JSON; on failure it has answered.
func decodeBody(rc *fasthttp.RequestCtx, dst any) bool {
	ct := string(rc.Request.Header.ContentType())
	if mt, _, _ := strings.Cut(ct, ";"); strings.TrimSpace(mt) != "application/json" {
		problem(rc, 415, "unsupported-media-type", "want application/json", nil)
		return false
	}
	body := rc.PostBody()
	if err := json.Unmarshal(body, dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && json.Valid(body) && len(body) > 0 && body[0] == '{' {
			invalidField(rc, te.Field)
			return false
		}
		problem(rc, 400, "invalid-json", "body is not the expected JSON", nil)
		return false
	}
	return true
}

func invalidField(rc *fasthttp.RequestCtx, field string) {
	problem(rc, 422, "invalid-field", "invalid field", map[string]any{"field": field})
}

func problem(rc *fasthttp.RequestCtx, status int, slug, title string, ext map[string]any) {
	p := map[string]any{"type": problemBase + slug, "title": title, "status": status}
	for k, v := range ext {
		p[k] = v
	}
	writeJSON(rc, status, "application/problem+json", p)
}

func writeJSON(rc *fasthttp.RequestCtx, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = 500, []byte(`{"status":500}`)
	}
	rc.SetStatusCode(status)
	rc.SetContentType(contentType)
	rc.SetBody(b)
}

// validIdent is 1–max characters of [A-Za-z0-9._:-].
func validIdent(s string, max int) bool {
	if len(s) < 1 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}
