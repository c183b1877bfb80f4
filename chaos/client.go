package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Outcome is what a client can know of a request's effect.
type Outcome uint8

const (
	// Done: a 2xx answer; the effect happened.
	Done Outcome = iota
	// Refused: an answer that by contract changed nothing (4xx).
	Refused
	// NotSent: the request never reached the node (the connection was
	// refused) or was shed before any work (429), so it changed nothing.
	NotSent
	// Unknown: no answer (timeout, cut connection) or 503/5xx, which may
	// come after the engine took the command; it may or may not have
	// happened.
	Unknown
)

func (o Outcome) String() string {
	return [...]string{"done", "refused", "not-sent", "unknown"}[o]
}

// Answer is one HTTP exchange as the client saw it.
type Answer struct {
	Outcome Outcome
	Status  int            // 0 without an answer
	Body    map[string]any // decoded JSON, nil if none
	Err     error          // transport error, if any
	Took    time.Duration  // from sending to the end of the answer
}

// Slug is the problem type's last path segment, "" for non-problems.
func (a Answer) Slug() string {
	t, _ := a.Body["type"].(string)
	if i := strings.LastIndexByte(t, '/'); i >= 0 {
		return t[i+1:]
	}
	return ""
}

// Int reads a numeric field of the body, -1 when absent.
func (a Answer) Int(field string) int64 {
	if f, ok := a.Body[field].(float64); ok {
		return int64(f)
	}
	return -1
}

// Str reads a string field of the body.
func (a Answer) Str(field string) string {
	s, _ := a.Body[field].(string)
	return s
}

// Client sends JSON requests to one node and classifies the answers.
type Client struct {
	Base, Token string
	http        *http.Client
	mu          sync.Mutex
	waitMax     time.Duration // the longest a request waited
}

// NewClient makes a client whose requests wait at most timeout.
func NewClient(base, token string, timeout time.Duration) *Client {
	return &Client{Base: base, Token: token, http: &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256},
	}}
}

// ForgetConnections drops idle keep-alive connections, which a restarted
// node no longer has.
func (c *Client) ForgetConnections() { c.http.CloseIdleConnections() }

// WaitMax is the longest any request of this client took.
func (c *Client) WaitMax() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waitMax
}

// Do sends method path with body (JSON-encoded when not nil) and headers
// given as name, value pairs; admin adds the bearer token.
func (c *Client) Do(ctx context.Context, method, path string, body any, admin bool, headers ...string) Answer {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			panic(fmt.Sprintf("chaos: request body: %v", err)) // the bodies are ours
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		panic(fmt.Sprintf("chaos: request: %v", err)) // the paths are ours
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		// Without GetBody the transport never sends the request again by
		// itself. It would for a request with an Idempotency-Key whose
		// connection broke after the request was written, and the error
		// of a failed second dial would then hide that the first may
		// have been served.
		req.GetBody = nil
	}
	if admin {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	var a Answer
	if err == nil {
		var b []byte
		b, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			a.Status = resp.StatusCode
			_ = json.Unmarshal(b, &a.Body) // a body that is not JSON stays nil
		}
	}
	a.Took = time.Since(start)
	c.mu.Lock()
	c.waitMax = max(c.waitMax, a.Took)
	c.mu.Unlock()
	a.Err = err
	a.Outcome = classify(a.Status, err)
	return a
}

func classify(status int, err error) Outcome {
	switch {
	case err != nil && refusedConnection(err):
		return NotSent
	case err != nil:
		return Unknown
	case status >= 200 && status < 300:
		return Done
	case status == http.StatusTooManyRequests:
		return NotSent
	case status >= 400 && status < 500:
		return Refused
	default:
		return Unknown
	}
}

// refusedConnection reports whether err is a failure to connect: nothing
// of the request was sent.
func refusedConnection(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
