package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// These tests drive a server on a real loopback port byte by byte, because
// what they check (read deadlines, a read buffer that fills up, connections
// closed with or without a response) is the kernel's and fasthttp's doing,
// not the handler's.

const (
	// transportTimeout is the ReadTimeout and IdleTimeout of the server
	// under test: short, so that the tests wait little, and long enough
	// that a healthy server answers a normal request well within it.
	transportTimeout = time.Second
	// clientWaitMax bounds every read and write of a test client, so that a
	// server that never answers or never closes fails the test instead of
	// hanging it.
	clientWaitMax = 10 * time.Second
)

// newTCPTestServer serves a fake engine on 127.0.0.1 and returns the server
// and its address.
func newTCPTestServer(t *testing.T, tweak ...func(*Config)) (*testServer, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	dial := func(a string) (net.Conn, error) { return net.DialTimeout("tcp", a, clientWaitMax) }
	return startTestServer(t, newFakeEngine(), ln, addr, dial, tweak...), addr
}

// dialRaw opens a connection whose every read and write ends by
// clientWaitMax from now.
func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, clientWaitMax)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.SetDeadline(time.Now().Add(clientWaitMax)); err != nil {
		t.Fatal(err)
	}
	return c
}

// send writes s to c and fails the test if it cannot.
func send(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatalf("writing the request: %v", err)
	}
}

// sendAsync writes s to c from another goroutine, for requests that the
// server may stop reading half-way: a client that waited for its own write
// to finish could then wait until its deadline. The channel reports the
// write's error once it has ended.
func sendAsync(c net.Conn, s string) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := io.WriteString(c, s)
		done <- err
	}()
	return done
}

// closedStream is what a client read from a connection until the server
// closed it.
type closedStream struct {
	data      []byte
	firstByte time.Time // when the first byte arrived; zero if none did
	err       error     // nil when the server closed the connection (EOF)
}

// drain reads c until the server closes it (or the client's deadline ends
// the read) in its own goroutine, and then sends what came on the channel.
func drain(c net.Conn) <-chan closedStream {
	out := make(chan closedStream, 1)
	go func() {
		var s closedStream
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if s.firstByte.IsZero() {
					s.firstByte = time.Now()
				}
				s.data = append(s.data, buf[:n]...)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				s.err = err
				break
			}
		}
		out <- s
	}()
	return out
}

// closed waits for a drain and fails the test unless the server closed the
// connection.
func closed(t *testing.T, name string, ch <-chan closedStream) closedStream {
	t.Helper()
	s := <-ch
	if s.err != nil {
		t.Fatalf("%s: the server did not close the connection cleanly: %v (read %q)", name, s.err, s.data)
	}
	return s
}

// parseResponses parses data as a sequence of whole HTTP responses; bytes
// that are not one fail the test.
func parseResponses(t *testing.T, data []byte) []resp {
	t.Helper()
	var out []resp
	br := bufio.NewReader(bytes.NewReader(data))
	for {
		if _, err := br.Peek(1); err == io.EOF {
			return out
		}
		hres := fasthttp.AcquireResponse()
		if err := hres.Read(br); err != nil {
			t.Fatalf("response %d: %v; the stream was %q", len(out)+1, err, data)
		}
		out = append(out, readResp(t, hres))
		fasthttp.ReleaseResponse(hres)
	}
}

// wantLastProblem checks that data is exactly one problem response that
// closes the connection and carries the request ID in both places.
func wantLastProblem(t *testing.T, name string, data []byte, status int, slug string) {
	t.Helper()
	rs := parseResponses(t, data)
	if len(rs) != 1 {
		t.Fatalf("%s: %d responses, want 1; the stream was %q", name, len(rs), data)
	}
	r := rs[0]
	wantProblem(t, r, status, slug, "")
	if !strings.EqualFold(r.header("Connection"), "close") {
		t.Errorf("%s: Connection = %q, want close", name, r.header("Connection"))
	}
	if rid := r.header("X-Request-ID"); rid == "" || r.str("request_id") != rid {
		t.Errorf("%s: X-Request-ID %q, request_id %q", name, rid, r.str("request_id"))
	}
}

// unmatchedCount is requests_total of the requests that matched no route and
// were answered status.
func unmatchedCount(t *testing.T, ts *testServer, status int) float64 {
	t.Helper()
	mfs, err := ts.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "orderengine_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == routeTable[routeNone].label() && labels["status"] == fmt.Sprint(status) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestSlowClients stalls clients at each point of a request and checks what
// each gets once the read timeout passes, while a normal client on another
// connection is answered in the meantime.
func TestSlowClients(t *testing.T) {
	ts, addr := newTCPTestServer(t, func(c *Config) {
		c.ReadTimeout = transportTimeout
		c.IdleTimeout = transportTimeout
	})

	halfHead := dialRaw(t, addr) // stops in the middle of the headers
	send(t, halfHead, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-I")
	halfBody := dialRaw(t, addr) // sends its headers and part of the body
	send(t, halfBody, "POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"customer\":")
	trickle := dialRaw(t, addr) // keeps sending, too slowly to finish in time
	send(t, trickle, "GET /healthz HTTP/1.1\r\n")
	idle := dialRaw(t, addr) // one whole keep-alive request, then nothing
	send(t, idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	silent := dialRaw(t, addr) // connects and never sends a byte
	streams := map[string]<-chan closedStream{
		"half head": drain(halfHead),
		"half body": drain(halfBody),
		"trickle":   drain(trickle),
		"idle":      drain(idle),
		"silent":    drain(silent),
	}

	// The trickling client sends a header line now and then, each well
	// within the timeout, until the server gives up on it (a write fails)
	// or the client's own bound is reached.
	trickleDone := make(chan struct{})
	go func() {
		defer close(trickleDone)
		tick := time.NewTicker(transportTimeout / 5)
		defer tick.Stop()
		for i := 0; i < int(clientWaitMax/(transportTimeout/5)); i++ {
			<-tick.C
			if _, err := fmt.Fprintf(trickle, "X-Line-%d: x\r\n", i); err != nil {
				return
			}
		}
	}()

	// A normal client on other connections is answered while the others
	// stall.
	for i := range 5 {
		if r := ts.do(get("/healthz")); r.status != 200 {
			t.Fatalf("normal request %d: %d %s", i, r.status, r.body)
		}
	}
	answered := time.Now()

	for _, name := range []string{"half head", "half body", "trickle"} {
		s := closed(t, name, streams[name])
		wantLastProblem(t, name, s.data, 408, "request-timeout")
		if !s.firstByte.After(answered) {
			t.Errorf("%s: answered at %v, before the normal client (%v): the read timeout did not wait",
				name, s.firstByte, answered)
		}
	}
	<-trickleDone

	// The idle keep-alive connection got its one answer and then was closed
	// without another byte.
	s := closed(t, "idle", streams["idle"])
	if rs := parseResponses(t, s.data); len(rs) != 1 || rs[0].status != 200 {
		t.Fatalf("idle: want one 200 response and nothing after it, got %q", s.data)
	}
	// A connection that never sent a byte has no request to answer: it is
	// closed like an idle keep-alive connection.
	if s := closed(t, "silent", streams["silent"]); len(s.data) != 0 {
		t.Fatalf("silent: want no bytes before the close, got %q", s.data)
	}

	if got := unmatchedCount(t, ts, 408); got != 3 {
		t.Errorf("requests_total{route=unmatched,status=408} = %v, want 3", got)
	}
}

// TestOversizedRequestHead sends request lines and headers that do not fit
// the server's read buffer.
func TestOversizedRequestHead(t *testing.T) {
	ts, addr := newTCPTestServer(t)
	// head builds a GET request whose head (request line, headers, the
	// empty line) is exactly n bytes, padded in an X-Pad header.
	head := func(n int) string {
		const start, end = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: ", "\r\n\r\n"
		return start + strings.Repeat("p", n-len(start)-len(end)) + end
	}
	var many strings.Builder
	many.WriteString("GET /healthz HTTP/1.1\r\nHost: x\r\n")
	for i := 0; many.Len() <= 2*headerBytesMax; i++ {
		fmt.Fprintf(&many, "X-Filler-%04d: %s\r\n", i, strings.Repeat("f", 50))
	}
	many.WriteString("\r\n")

	cases := []struct {
		name, request string
		status        int
		slug          string
	}{
		{"10 000-character sku", "GET /v1/skus/" + strings.Repeat("A", 10_000) + " HTTP/1.1\r\nHost: x\r\n\r\n", 431, "headers-too-large"},
		{"10 000-character order id", "POST /v1/orders/" + strings.Repeat("o", 10_000) + "/pay HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 431, "headers-too-large"},
		{"one big header", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", headerBytesMax) + "\r\n\r\n", 431, "headers-too-large"},
		{"many headers", many.String(), 431, "headers-too-large"},
		{"head one byte over the buffer", head(headerBytesMax + 1), 431, "headers-too-large"},
		{"head exactly the buffer", head(headerBytesMax), 200, ""},
	}
	for _, tc := range cases {
		c := dialRaw(t, addr)
		wrote := sendAsync(c, tc.request)
		s := closed(t, tc.name, drain(c))
		if tc.status == 200 {
			if rs := parseResponses(t, s.data); len(rs) != 1 || rs[0].status != 200 {
				t.Errorf("%s: want one 200, got %q", tc.name, s.data)
			}
		} else {
			wantLastProblem(t, tc.name, s.data, tc.status, tc.slug)
		}
		if err := <-wrote; err != nil {
			t.Logf("%s: the client's write ended with %v (the server may stop reading)", tc.name, err)
		}
	}
	// The server is still serving.
	if r := ts.do(get("/healthz")); r.status != 200 {
		t.Fatalf("after: %d %s", r.status, r.body)
	}
	if got := unmatchedCount(t, ts, 431); got != 5 {
		t.Errorf("requests_total{route=unmatched,status=431} = %v, want 5", got)
	}
}

// TestConnectionCap holds the server at its cap on open connections: one
// more is answered 503 unavailable with Retry-After and closed, and once
// the idle connections are closed by the idle timeout a normal client is
// answered again.
func TestConnectionCap(t *testing.T) {
	const capConns = 3
	ts, addr := newTCPTestServer(t, func(c *Config) {
		c.MaxConns = capConns
		c.IdleTimeout = transportTimeout
	})
	var idle []<-chan closedStream
	for range capConns { // each sends one request and stays open
		c := dialRaw(t, addr)
		send(t, c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		idle = append(idle, drain(c))
	}
	// Connections are accepted in the order their handshakes completed,
	// so this one is the first past the cap.
	over := dialRaw(t, addr)
	send(t, over, "GET /v1/skus/A-1 HTTP/1.1\r\nHost: x\r\n\r\n")
	s := closed(t, "over the cap", drain(over))
	rs := parseResponses(t, s.data)
	wantLastProblem(t, "over the cap", s.data, 503, "unavailable")
	if len(rs) != 1 || rs[0].header("Retry-After") == "" {
		t.Fatalf("over the cap: want one 503 with Retry-After, got %q", s.data)
	}
	for i, ch := range idle {
		if rs := parseResponses(t, closed(t, fmt.Sprint("idle ", i), ch).data); len(rs) != 1 || rs[0].status != 200 {
			t.Fatalf("idle %d: want its one 200 then the close", i)
		}
	}
	if r := ts.do(get("/healthz")); r.status != 200 {
		t.Fatalf("after the idle connections closed: %d %s", r.status, r.body)
	}
}
