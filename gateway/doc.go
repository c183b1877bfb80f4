// Package gateway is the HTTP API of the order engine: fasthttp handlers,
// request validation, RFC 9457 problem responses, admin authentication,
// admission control and metrics. The contract it implements is the checkout
// API (shared/API.md, docs/openapi.yaml).
//
// The gateway declares the Engine interface it calls and knows nothing about
// actors, so its tests run against an in-memory fake. cmd/orderd wires a real
// engine in.
//
// # Request pipeline
//
// Every request runs the checks in the order the contract fixes, and the
// first that fails answers: route (404, 405), the client address's rate
// limit (429), admin token (401, before the body is looked at), body size
// (413), content type (415), JSON syntax (400), fields (422), then admission
// (429), the customer's rate limit on checkouts (429) and the engine (404,
// 409, 503). A refused request never reaches the engine, so it changes
// nothing.
//
// # Requests that cannot be read
//
// fasthttp reads the request line, headers and body before the handler runs;
// what it cannot read reaches Server.ErrorHandler (handleReadError), which
// answers through the same problem table and closes the connection: a body
// over the limit is 413 payload-too-large (after the route and token checks
// when the headers were read), a request line and headers over the 8 KiB read
// buffer 431 headers-too-large, a request not wholly received within
// ReadTimeout 408 request-timeout, and anything else that is not HTTP 400
// bad-request. A connection that never sent a byte is closed without an
// answer, like an idle keep-alive connection: there is no request to answer.
// The listener wraps each connection (conn.go) to tell those two apart and to
// drain a connection briefly before closing it after such an answer, so that
// the close does not reset it before the client has read the answer.
//
// # JSON rules
//
// Bodies must be a single JSON object (anything else that is valid JSON is
// 400 invalid-json). Field names match exactly (case-sensitive). Unknown
// fields are ignored. A known field that appears twice is 422 invalid-field
// naming it: taking the first or the last occurrence silently would let two
// parsers read one request differently. null is the same as an absent field.
// Quantities and ttl_seconds must be integer literals (no fraction, no
// exponent); strings, fractions and out-of-range values are 422.
//
// # Admission
//
// Admission is counted, never queued: a request is admitted when the node has
// fewer than InFlightMax engine calls running and each SKU it touches has
// fewer than SKUQueueMax; otherwise it is answered 429 overloaded with
// Retry-After at once. Every engine call gets a context with the
// RequestTimeout deadline; an engine that gives up on it answers 503
// unavailable with Retry-After.
//
// # Rate limits
//
// Two optional token buckets, off by default: ClientRate per client address
// (the connection's IP, an IPv6 client per /64; X-Forwarded-For only with
// TrustForwardedFor) on every route, and CustomerRate per customer on
// checkouts. A request over either is answered 429 rate-limited with a
// Retry-After of the whole seconds until its bucket has a token again, and
// spends none. When a limit is off its table is nil and the request pays one
// nil check. The buckets live in a bounded table (ratelimit.go): beyond
// RateLimitEntriesMax keys the least recently used go, and one that returns
// starts with a full bucket.
package gateway
