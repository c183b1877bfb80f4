package gateway

import (
	"cmp"
	"context"
	"errors"
	"strconv"

	"github.com/valyala/fasthttp"
)

// problemBase is the prefix of every problem type URI; the slug follows it.
// docs/openapi.yaml documents it.
const problemBase = "https://orderengine.dev/problems/"

// problemKind indexes problemTable.
type problemKind uint8

const (
	probInvalidJSON problemKind = iota
	probBadRequest
	probUnauthorized
	probNotFound
	probMethodNotAllowed
	probRequestTimeout
	probPayloadTooLarge
	probUnsupportedMediaType
	probHeadersTooLarge
	probInvalidField
	probIdempotencyKeyReused
	probOutOfStock
	probLimitExceeded
	probInsufficientStock
	probInvalidTransition
	probConflict
	probOverloaded
	probRateLimited
	probInternal
	probUnavailable
	problemKinds // count, keep last
)

// problemSpec is one row of the problem table.
type problemSpec struct {
	slug   string
	status int
	title  string
}

// problemTable is the one place that fixes every problem slug, status and
// title. testdata/problems.golden shows it; changing it is changing the API.
var problemTable = [problemKinds]problemSpec{
	probInvalidJSON:          {"invalid-json", 400, "Request body is not the expected JSON"},
	probBadRequest:           {"bad-request", 400, "Malformed HTTP request"},
	probUnauthorized:         {"unauthorized", 401, "Missing or wrong admin token"},
	probNotFound:             {"not-found", 404, "Not found"},
	probMethodNotAllowed:     {"method-not-allowed", 405, "Method not allowed"},
	probRequestTimeout:       {"request-timeout", 408, "Request not received in time"},
	probPayloadTooLarge:      {"payload-too-large", 413, "Request body too large"},
	probUnsupportedMediaType: {"unsupported-media-type", 415, "Content-Type must be application/json"},
	probHeadersTooLarge:      {"headers-too-large", 431, "Request line or headers too large"},
	probInvalidField:         {"invalid-field", 422, "Invalid field"},
	probIdempotencyKeyReused: {"idempotency-key-reused", 422, "Idempotency key reused with a different request"},
	probOutOfStock:           {"out-of-stock", 409, "Out of stock"},
	probLimitExceeded:        {"limit-exceeded", 409, "Purchase limit exceeded"},
	probInsufficientStock:    {"insufficient-stock", 409, "Insufficient stock"},
	probInvalidTransition:    {"invalid-transition", 409, "Invalid order status transition"},
	probConflict:             {"conflict", 409, "Conflicts with the current state"},
	probOverloaded:           {"overloaded", 429, "Overloaded, retry later"},
	probRateLimited:          {"rate-limited", 429, "Rate limit exceeded, retry later"},
	probInternal:             {"internal", 500, "Internal error"},
	probUnavailable:          {"unavailable", 503, "Temporarily unavailable, retry later"},
}

// problem is one problem response before it is written. Extensions that are
// empty are left out (hasAvailable marks a meaningful zero).
type problem struct {
	kind         problemKind
	detail       string
	field        string // "field" extension
	sku          string // "sku" extension
	available    int64  // "available" extension
	hasAvailable bool
	limit        int64  // "limit" extension, when positive
	orderID      string // "order_id" extension
	orderStatus  string // "order_status" extension
	retryAfter   int    // Retry-After seconds of a retryable problem; 0 takes retryAfterSeconds
}

func (p problem) spec() problemSpec { return problemTable[p.kind] }

// retryable problems carry Retry-After.
func (p problem) retryable() bool {
	return p.kind == probOverloaded || p.kind == probRateLimited || p.kind == probUnavailable
}

func fieldProblem(field, detail string) problem {
	return problem{kind: probInvalidField, field: field, detail: detail}
}

// problemFor maps an error from the engine or from validation to its problem.
// The bool is false for errors the table does not know: they answer 500 and
// are logged.
func problemFor(err error) (problem, bool) {
	var (
		oos *OutOfStockError
		lim *LimitExceededError
		ins *InsufficientStockError
		inv *InvalidTransitionError
		cfl *ConflictError
		inf *InvalidFieldError
		ijs *invalidJSONError
	)
	switch {
	case errors.As(err, &ijs):
		return problem{kind: probInvalidJSON, detail: ijs.detail}, true
	case errors.As(err, &inf):
		return fieldProblem(inf.Field, inf.Detail), true
	case errors.As(err, &oos):
		return problem{kind: probOutOfStock, detail: "sku " + oos.SKU + " cannot be reserved",
			sku: oos.SKU, available: oos.Available, hasAvailable: true, orderID: oos.OrderID}, true
	case errors.As(err, &lim):
		return problem{kind: probLimitExceeded, detail: "the customer would hold more units of sku " + lim.SKU + " than its limit",
			sku: lim.SKU, limit: lim.Limit, orderID: lim.OrderID}, true
	case errors.As(err, &ins):
		return problem{kind: probInsufficientStock, detail: "fewer units of sku " + ins.SKU + " are available",
			sku: ins.SKU, available: ins.Available, hasAvailable: true}, true
	case errors.As(err, &inv):
		return problem{kind: probInvalidTransition, detail: "not allowed from status " + inv.Status,
			orderStatus: inv.Status}, true
	case errors.As(err, &cfl):
		return problem{kind: probConflict, detail: cmp.Or(cfl.Detail, "the request conflicts with the current state")}, true
	case errors.Is(err, ErrNotFound):
		return problem{kind: probNotFound, detail: "no such resource"}, true
	case errors.Is(err, ErrIdempotencyKeyReused):
		return problem{kind: probIdempotencyKeyReused, field: "Idempotency-Key",
			detail: "this key was used with a different request"}, true
	case errors.Is(err, ErrOverloaded):
		return problem{kind: probOverloaded, detail: "the engine is shedding load"}, true
	case errors.Is(err, ErrStorageFull):
		return problem{kind: probUnavailable,
			detail: "the node's storage is full: writes are refused until space is freed; reads go on"}, true
	case errors.Is(err, ErrUnavailable):
		return problem{kind: probUnavailable, detail: "the owner of this resource is unavailable"}, true
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return problem{kind: probUnavailable, detail: "the engine did not answer in time"}, true
	}
	return problem{kind: probInternal, detail: "internal error"}, false
}

// The problems of requests that fasthttp could not read (readProblemFor).
var (
	badRequest     = problem{kind: probBadRequest, detail: "the HTTP request could not be read"}
	requestTimeout = problem{kind: probRequestTimeout,
		detail: "the whole request must arrive within the server's read timeout"}
	headersTooLarge = problem{kind: probHeadersTooLarge,
		detail: "the request line and headers are at most " + strconv.Itoa(headerBytesMax) + " bytes"}
	tooLarge = problem{kind: probPayloadTooLarge,
		detail: "request bodies are at most " + strconv.Itoa(requestBodyBytesMax) + " bytes"}
)

// readProblemFor maps an error that fasthttp reports while reading a request
// (the error of Server.ErrorHandler) to its problem. fasthttp v1.74 reports:
//
//   - a body over MaxRequestBodySize as ErrBodyTooLarge, possibly wrapped;
//   - a request line or headers that fill ReadBufferSize without ending as
//     *ErrSmallBuffer;
//   - a read deadline as the connection's own timeout error: bare when it
//     struck before the first byte or inside the body, wrapped when it
//     struck inside the headers. Both TCP (*net.OpError) and in-memory
//     (fasthttputil) connections say so through a Timeout method;
//   - anything else that is not HTTP (a bad request line or header, a broken
//     chunk, a client gone half-way) as an error of its own.
//
// The last are 400 bad-request, not invalid-json: the body was never
// reached, so nothing about JSON can be said.
func readProblemFor(err error) problem {
	var (
		small   *fasthttp.ErrSmallBuffer
		timeout interface{ Timeout() bool }
	)
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return tooLarge
	case errors.As(err, &small):
		return headersTooLarge
	case errors.As(err, &timeout) && timeout.Timeout():
		return requestTimeout
	}
	return badRequest
}

// appendProblem appends p as an RFC 9457 JSON document.
func appendProblem(dst []byte, p problem, instance, requestID string) []byte {
	s := p.spec()
	dst = append(dst, `{"type":"`...)
	dst = append(dst, problemBase...)
	dst = append(dst, s.slug...)
	dst = append(dst, `","title":`...)
	dst = appendJSONString(dst, s.title)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(s.status), 10)
	dst = append(dst, `,"detail":`...)
	dst = appendJSONString(dst, p.detail)
	if instance != "" {
		dst = append(dst, `,"instance":`...)
		dst = appendJSONString(dst, instance)
	}
	if requestID != "" {
		dst = append(dst, `,"request_id":`...)
		dst = appendJSONString(dst, requestID)
	}
	if p.field != "" {
		dst = append(dst, `,"field":`...)
		dst = appendJSONString(dst, p.field)
	}
	if p.sku != "" {
		dst = append(dst, `,"sku":`...)
		dst = appendJSONString(dst, p.sku)
	}
	if p.hasAvailable {
		dst = append(dst, `,"available":`...)
		dst = strconv.AppendInt(dst, p.available, 10)
	}
	if p.limit > 0 {
		dst = append(dst, `,"limit":`...)
		dst = strconv.AppendInt(dst, p.limit, 10)
	}
	if p.orderID != "" {
		dst = append(dst, `,"order_id":`...)
		dst = appendJSONString(dst, p.orderID)
	}
	if p.orderStatus != "" {
		dst = append(dst, `,"order_status":`...)
		dst = appendJSONString(dst, p.orderStatus)
	}
	return append(dst, '}')
}
