package gateway

import (
	"bytes"
	"slices"
)

// routeID names a route of the API. Routing is a switch over path segments:
// no allocation, no regular expressions.
type routeID uint8

const (
	routeNone routeID = iota // no route matched (404 or 405)
	routeHealthz
	routeReadyz
	routeMetrics
	routeCluster
	routeDashboard
	routeUI
	routeSKURestock // first of the API's routes, which the dashboard counts
	routeSKURemove
	routeSKULimit
	routeSKUGet
	routeOrderPlace
	routeOrderGet
	routeOrderPay
	routeOrderCancel
	routeOrderShip
	routeOrderComplete
	routeAdminBackup
	routeAdminForget
	routeCount // count, keep last
)

// bodyKind says what a route does with a request body.
type bodyKind uint8

const (
	bodyIgnored  bodyKind = iota // GET: a body is not looked at
	bodyRequired                 // a JSON object is expected (415 without the JSON type)
	bodyOptional                 // none is expected; one that is present must be JSON
)

// routeSpec describes one route. statuses lists every status code the route
// can answer; docs/openapi.yaml must document exactly these (openapi_test.go
// checks it, and checks that the tests never see another).
type routeSpec struct {
	method   string
	pattern  string
	admin    bool
	body     bodyKind
	statuses []int
}

// label is the metrics label and log attribute of the route.
func (r routeSpec) label() string {
	if r.method == "" {
		return r.pattern
	}
	return r.method + " " + r.pattern
}

// Statuses that routes share. transportStatuses can answer any request,
// before its route is known, because fasthttp could not read it: 400 (not
// HTTP), 408 (not received within the read timeout), 413 (a body over the
// limit), 431 (a request line or headers over the read buffer). The metrics
// count these as route "unmatched", since the request that would name the
// route was not read (only a 413 whose headers were read keeps its route),
// but a client of any route can get them. engineStatuses are those of routes
// that call the engine: 429 and 503 for load and shutdown, 500 for an engine
// error the problem table does not know. routeStatuses are those every
// matched route can answer: the transport's, and 429 rate-limited when a
// per-client rate limit is configured.
var (
	transportStatuses = []int{400, 408, 413, 431}
	routeStatuses     = append([]int{429}, transportStatuses...)
	engineStatuses    = []int{429, 500, 503}
)

// statuses merges status lists into one sorted list without repeats.
func statuses(lists ...[]int) []int {
	var all []int
	for _, l := range lists {
		all = append(all, l...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

var routeTable = [routeCount]routeSpec{
	routeNone:          {method: "", pattern: "unmatched", statuses: statuses([]int{404, 405}, transportStatuses)},
	routeHealthz:       {method: "GET", pattern: "/healthz", statuses: statuses([]int{200}, routeStatuses)},
	routeReadyz:        {method: "GET", pattern: "/readyz", statuses: statuses([]int{200, 503}, routeStatuses)},
	routeMetrics:       {method: "GET", pattern: "/metrics", statuses: statuses([]int{200, 503}, routeStatuses)},
	routeCluster:       {method: "GET", pattern: "/v1/cluster", statuses: statuses([]int{200, 500, 503}, routeStatuses)},
	routeDashboard:     {method: "GET", pattern: "/v1/dashboard", statuses: statuses([]int{200, 500}, routeStatuses)},
	routeUI:            {method: "GET", pattern: "/ui", statuses: statuses([]int{200}, routeStatuses)},
	routeSKURestock:    {method: "POST", pattern: "/v1/skus/{sku}/restock", admin: true, body: bodyRequired, statuses: statuses([]int{200, 400, 401, 415, 422}, routeStatuses, engineStatuses)},
	routeSKURemove:     {method: "POST", pattern: "/v1/skus/{sku}/remove", admin: true, body: bodyRequired, statuses: statuses([]int{200, 400, 401, 409, 415, 422}, routeStatuses, engineStatuses)},
	routeSKULimit:      {method: "PUT", pattern: "/v1/skus/{sku}/limit", admin: true, body: bodyRequired, statuses: statuses([]int{200, 400, 401, 415, 422}, routeStatuses, engineStatuses)},
	routeSKUGet:        {method: "GET", pattern: "/v1/skus/{sku}", statuses: statuses([]int{200, 404, 422}, routeStatuses, engineStatuses)},
	routeOrderPlace:    {method: "POST", pattern: "/v1/orders", body: bodyRequired, statuses: statuses([]int{201, 400, 409, 415, 422}, routeStatuses, engineStatuses)},
	routeOrderGet:      {method: "GET", pattern: "/v1/orders/{id}", statuses: statuses([]int{200, 404}, routeStatuses, engineStatuses)},
	routeOrderPay:      {method: "POST", pattern: "/v1/orders/{id}/pay", body: bodyRequired, statuses: statuses([]int{200, 400, 404, 409, 415, 422}, routeStatuses, engineStatuses)},
	routeOrderCancel:   {method: "POST", pattern: "/v1/orders/{id}/cancel", body: bodyOptional, statuses: statuses([]int{200, 400, 404, 409, 415}, routeStatuses, engineStatuses)},
	routeOrderShip:     {method: "POST", pattern: "/v1/orders/{id}/ship", admin: true, body: bodyOptional, statuses: statuses([]int{200, 400, 401, 404, 409, 415}, routeStatuses, engineStatuses)},
	routeOrderComplete: {method: "POST", pattern: "/v1/orders/{id}/complete", admin: true, body: bodyOptional, statuses: statuses([]int{200, 400, 401, 404, 409, 415}, routeStatuses, engineStatuses)},
	routeAdminBackup:   {method: "GET", pattern: "/v1/admin/backup", admin: true, statuses: statuses([]int{200, 401, 404, 422, 500, 503}, routeStatuses)},
	// Forget calls the cluster, not the engine: no admission, so its 429 is
	// only the client rate limit; 503 is a node that has not joined yet.
	routeAdminForget: {method: "POST", pattern: "/v1/admin/cluster/members/{node}/forget", admin: true, body: bodyOptional,
		statuses: statuses([]int{200, 400, 401, 404, 409, 415, 422, 500, 503}, routeStatuses)},
}

// match finds the route of method and the raw (still percent-encoded) path.
// param is the raw {sku}, {id} or {node} segment. When the path exists but not with
// this method, id is routeNone and allow lists the methods it has.
func match(method, path []byte) (id routeID, param []byte, allow string) {
	id, param = matchPath(path)
	if id == routeNone {
		return routeNone, nil, ""
	}
	if string(method) == routeTable[id].method {
		return id, param, ""
	}
	// /v1/skus/{sku} and /v1/orders/{id} are GET; everything else has one
	// method, so the Allow header is that method.
	return routeNone, nil, routeTable[id].method
}

// matchPath matches the path alone.
func matchPath(path []byte) (routeID, []byte) {
	switch string(path) {
	case "/healthz":
		return routeHealthz, nil
	case "/readyz":
		return routeReadyz, nil
	case "/metrics":
		return routeMetrics, nil
	case "/v1/cluster":
		return routeCluster, nil
	case "/v1/dashboard":
		return routeDashboard, nil
	case "/ui":
		return routeUI, nil
	case "/v1/orders":
		return routeOrderPlace, nil
	case "/v1/admin/backup":
		return routeAdminBackup, nil
	}
	var rest []byte
	var skus bool
	switch {
	case bytes.HasPrefix(path, []byte(membersPrefix)):
		return matchMember(path[len(membersPrefix):])
	case bytes.HasPrefix(path, []byte("/v1/skus/")):
		rest, skus = path[len("/v1/skus/"):], true
	case bytes.HasPrefix(path, []byte("/v1/orders/")):
		rest = path[len("/v1/orders/"):]
	default:
		return routeNone, nil
	}
	param, action := rest, []byte(nil)
	if i := bytes.IndexByte(rest, '/'); i >= 0 {
		param, action = rest[:i], rest[i+1:]
		if len(action) == 0 { // trailing slash
			return routeNone, nil
		}
	}
	if len(param) == 0 {
		return routeNone, nil
	}
	if skus {
		switch {
		case action == nil:
			return routeSKUGet, param
		case string(action) == "restock":
			return routeSKURestock, param
		case string(action) == "remove":
			return routeSKURemove, param
		case string(action) == "limit":
			return routeSKULimit, param
		}
		return routeNone, nil
	}
	switch {
	case action == nil:
		return routeOrderGet, param
	case string(action) == "pay":
		return routeOrderPay, param
	case string(action) == "cancel":
		return routeOrderCancel, param
	case string(action) == "ship":
		return routeOrderShip, param
	case string(action) == "complete":
		return routeOrderComplete, param
	}
	return routeNone, nil
}

// membersPrefix starts the paths of one cluster member.
const membersPrefix = "/v1/admin/cluster/members/"

// matchMember matches what follows membersPrefix: {node}/forget.
func matchMember(rest []byte) (routeID, []byte) {
	param, action, ok := bytes.Cut(rest, []byte("/"))
	if !ok || len(param) == 0 || string(action) != "forget" {
		return routeNone, nil
	}
	return routeAdminForget, param
}

// unescapeSegment appends the percent-decoded path segment seg to dst. ok is
// false for a malformed escape.
func unescapeSegment(dst, seg []byte) (out []byte, ok bool) {
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c != '%' {
			dst = append(dst, c)
			continue
		}
		if i+2 >= len(seg) {
			return dst, false
		}
		h, l := unhex(seg[i+1]), unhex(seg[i+2])
		if h < 0 || l < 0 {
			return dst, false
		}
		dst = append(dst, byte(h<<4|l))
		i += 2
	}
	return dst, true
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// jsonContentType reports whether a Content-Type is application/json, with
// at most a charset parameter that says UTF-8 (other parameters are ignored).
func jsonContentType(ct []byte) bool {
	mediaType, params, _ := bytes.Cut(ct, []byte(";"))
	if !bytes.EqualFold(bytes.TrimSpace(mediaType), []byte("application/json")) {
		return false
	}
	for len(params) > 0 {
		var p []byte
		p, params, _ = bytes.Cut(params, []byte(";"))
		name, value, _ := bytes.Cut(p, []byte("="))
		if !bytes.EqualFold(bytes.TrimSpace(name), []byte("charset")) {
			continue
		}
		value = bytes.Trim(bytes.TrimSpace(value), `"`)
		if !bytes.EqualFold(value, []byte("utf-8")) && !bytes.EqualFold(value, []byte("utf8")) {
			return false
		}
	}
	return true
}
