package gateway

import (
	"bytes"
	"net/netip"
	"time"

	"github.com/valyala/fasthttp"
)

// limitReason says which rate limit refused a request, for the metrics.
type limitReason uint8

const (
	limitClient limitReason = iota
	limitCustomer
	limitReasons // count, keep last
)

// allowClient spends a token of the request's client address; when there
// is none it answers 429 rate-limited and returns false.
func (s *Server) allowClient(x *exchange) bool {
	wait := s.clients.take(s.clientAddr(x.ctx), x.start)
	if wait == 0 {
		return true
	}
	s.rateLimited(x, limitClient, wait, "too many requests from this client address")
	return false
}

// allowCustomer spends a token of customer's checkouts; when there is none
// it answers 429 rate-limited and returns false.
func (s *Server) allowCustomer(x *exchange, customer string) bool {
	wait := s.customers.take(customer, x.start)
	if wait == 0 {
		return true
	}
	s.rateLimited(x, limitCustomer, wait, "too many checkouts for this customer")
	return false
}

func (s *Server) rateLimited(x *exchange, r limitReason, wait time.Duration, detail string) {
	s.metrics.limited[r].Inc()
	s.problem(x, problem{kind: probRateLimited, detail: detail, retryAfter: retryAfterSecondsFor(wait)})
}

// clientAddr is the address a request counts against for the per-client
// rate limit: the connection's remote IP or, when the server is configured
// to trust the proxy in front of it, the last address of X-Forwarded-For.
//
// IPv6 addresses count per /64, the block one host or one customer line is
// usually given, so that a host cannot escape its limit by rotating through
// the addresses it holds. An IPv4 address in IPv6 form counts as IPv4.
// Connections without an IP address (a Unix socket) share the zero address.
func (s *Server) clientAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	if s.cfg.TrustForwardedFor {
		if a, ok := lastForwardedFor(ctx.Request.Header.PeekAll("X-Forwarded-For")); ok {
			return clientBlock(a)
		}
	}
	a, _ := netip.AddrFromSlice(ctx.RemoteIP())
	return clientBlock(a)
}

// lastForwardedFor parses the last address of the last X-Forwarded-For
// header: the one the trusted proxy appended. Earlier ones were written by
// whoever sent the request and prove nothing. ok is false when there is no
// header or its last entry is not a bare IP address.
func lastForwardedFor(headers [][]byte) (netip.Addr, bool) {
	if len(headers) == 0 {
		return netip.Addr{}, false
	}
	h := headers[len(headers)-1]
	if i := bytes.LastIndexByte(h, ','); i >= 0 {
		h = h[i+1:]
	}
	a, err := netip.ParseAddr(string(bytes.TrimSpace(h)))
	return a, err == nil
}

// clientBlock maps an address to its rate limit key.
func clientBlock(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if !a.Is6() {
		return a
	}
	p, _ := a.Prefix(64) // 64 is a valid length for every IPv6 address
	return p.Addr()
}
