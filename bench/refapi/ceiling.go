package refapi

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/valyala/fasthttp"
)

// Ceiling is the handler every figure is compared with: it parses a checkout
// the way a real server must and answers 201 with an order view, but keeps no
// state. Other routes answer 200 with a fixed view so any workload runs.
// Nothing a real checkout server does can be faster on the same HTTP stack.
func Ceiling(rc *fasthttp.RequestCtx) {
	path := rc.Path()
	switch {
	case rc.IsPost() && bytes.Equal(path, []byte("/v1/orders")):
		var req checkoutRequest
		if err := json.Unmarshal(rc.PostBody(), &req); err != nil || req.validate() != "" {
			problem(rc, 400, "invalid-json", "bad checkout", nil)
			return
		}
		now := time.Now().UTC()
		o := Order{ID: NewOrderID(), Status: StatusReserved, Customer: *req.Customer, Items: req.Items,
			CreatedAt: now, ExpiresAt: now.Add(ttlSecondsDefault * time.Second)}
		rc.Response.Header.Set("Location", "/v1/orders/"+o.ID)
		writeJSON(rc, 201, "application/json", o)
	case bytes.HasPrefix(path, []byte("/v1/skus/")):
		writeJSON(rc, 200, "application/json", SKUView{SKU: "ceiling"})
	case bytes.HasPrefix(path, []byte("/v1/orders/")):
		writeJSON(rc, 200, "application/json", Order{ID: "o_00000000000000000000000000", Status: StatusReserved})
	default:
		rc.SetStatusCode(fasthttp.StatusOK)
	}
}
