package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// TestProblemsGolden makes every change to the problem table, and to how
// errors map onto it, visible in testdata/problems.golden. Rewrite it with
// go test -run ProblemsGolden -update and review the diff.
func TestProblemsGolden(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("# slug status title\n")
	for _, p := range problemTable {
		fmt.Fprintf(&b, "%s %d %q\n", p.slug, p.status, p.title)
	}
	b.WriteString("\n# error -> known problem document\n")
	samples := []error{
		ErrNotFound,
		fmt.Errorf("order o_1: %w", ErrNotFound),
		ErrIdempotencyKeyReused,
		ErrUnavailable,
		fmt.Errorf("%w: %w: journal refused the write", ErrUnavailable, ErrStorageFull),
		ErrOverloaded,
		context.DeadlineExceeded,
		context.Canceled,
		&OutOfStockError{OrderID: "o_01J00000000000000000000001", SKU: "A-1", Available: 0},
		&OutOfStockError{SKU: "A-2", Available: 3},
		&LimitExceededError{SKU: "A-3", Limit: 2},
		&LimitExceededError{OrderID: "o_41J00000000000000000000002", SKU: "A-3", Limit: 1},
		fmt.Errorf("reserve: %w", &InsufficientStockError{SKU: "A-1", Available: 2}),
		&InvalidTransitionError{Status: "shipped"},
		fmt.Errorf("forget node-b: %w", &ConflictError{Detail: "the node is alive; make sure it is down before forgetting it"}),
		&ConflictError{},
		&InvalidFieldError{Field: "items[2].quantity", Detail: "must be between 1 and 10000"},
		errNotJSON,
		errNotObject,
		errors.New("disk on fire"),
	}
	for _, err := range samples {
		p, known := problemFor(err)
		fmt.Fprintf(&b, "%q %v %s\n", err.Error(), known, appendProblem(nil, p, "/v1/x", "rid-1"))
	}
	b.WriteString("\n# what fasthttp reports while reading a request -> problem document\n")
	for _, e := range readErrorSamples(t) {
		fmt.Fprintf(&b, "%q %s\n", e.name, appendProblem(nil, readProblemFor(e.err), "", "rid-1"))
	}
	golden := filepath.Join("testdata", "problems.golden")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("problem table changed; run go test -run ProblemsGolden -update and review.\ngot:\n%s", b.Bytes())
	}
}

func TestProblemTableComplete(t *testing.T) {
	seen := map[string]bool{}
	for k, p := range problemTable {
		if p.slug == "" || p.status == 0 || p.title == "" {
			t.Errorf("problem kind %d has an empty row", k)
		}
		if seen[p.slug] {
			t.Errorf("slug %q twice", p.slug)
		}
		seen[p.slug] = true
	}
}

// readErrorSample is an error as fasthttp hands it to Server.ErrorHandler.
type readErrorSample struct {
	name string
	err  error
}

// readErrorSamples makes fasthttp itself produce each kind of read error, so
// that the golden file shows when a fasthttp upgrade changes how one is
// reported. The names stand in for fasthttp's messages, which quote the
// request and would make the file change with every wording.
func readErrorSamples(t *testing.T) []readErrorSample {
	t.Helper()
	deadline := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	// then feeds head to fasthttp's request reader and then fails with err,
	// as a connection whose read deadline passes or whose peer goes away.
	then := func(head string, err error) io.Reader {
		return io.MultiReader(strings.NewReader(head), iotest.ErrReader(err))
	}
	readRequest := func(r io.Reader, bufBytes int) error {
		var req fasthttp.Request
		return req.ReadLimitBody(bufio.NewReaderSize(r, bufBytes), requestBodyBytesMax)
	}
	samples := []struct {
		name string
		r    io.Reader
		buf  int
	}{
		{"body over the limit", strings.NewReader("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n"), 4096},
		{"chunked body over the limit", strings.NewReader("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n11171\r\n" + strings.Repeat("x", 70001) + "\r\n0\r\n\r\n"), 4096},
		{"request line over the buffer", strings.NewReader("GET /" + strings.Repeat("a", 100) + " HTTP/1.1\r\n\r\n"), 64},
		{"headers over the buffer", strings.NewReader("GET / HTTP/1.1\r\nX-Big: " + strings.Repeat("b", 100) + "\r\n\r\n"), 64},
		{"timeout inside the headers", then("GET / HTTP/1.1\r\nHo", deadline), 4096},
		{"timeout inside the body", then("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{\"a\"", deadline), 4096},
		{"timeout inside a chunked body", then("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{", deadline), 4096},
		{"in-memory timeout inside the headers", then("GET / HTTP/1.1\r\n", fasthttputil.ErrTimeout), 4096},
		{"reset inside the headers", then("GET / HTTP/1.1\r\n", reset), 4096},
		{"end of input inside the headers", strings.NewReader("GET / HTTP/1.1\r\nHost: x\r\n"), 4096},
		{"no method", strings.NewReader(" / HTTP/1.1\r\nHost: x\r\n\r\n"), 4096},
		{"no Host header", strings.NewReader("GET / HTTP/1.1\r\n\r\n"), 4096},
		{"header without colon", strings.NewReader("GET / HTTP/1.1\r\nHost: x\r\nnot a header\r\n\r\n"), 4096},
		{"broken chunk", strings.NewReader("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), 4096},
	}
	out := []readErrorSample{
		// Before the first byte of a request fasthttp passes the
		// connection's error through untouched (the gateway closes such
		// connections without an answer; see handleReadError).
		{"timeout before the first byte", deadline},
	}
	for _, s := range samples {
		err := readRequest(s.r, s.buf)
		if err == nil {
			t.Fatalf("%s: fasthttp read it without an error", s.name)
		}
		out = append(out, readErrorSample{s.name, err})
	}
	return out
}
