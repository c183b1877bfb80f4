package refapi

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// Server timeouts, the same for every server in the comparison.
const (
	serverReadTimeout  = 10 * time.Second
	serverWriteTimeout = 10 * time.Second
	serverIdleTimeout  = 60 * time.Second
	shutdownTimeout    = 5 * time.Second
)

// NewServer wraps h in a fasthttp server configured like our gateway's.
func NewServer(h fasthttp.RequestHandler) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:            h,
		Name:               "refapi",
		ReadTimeout:        serverReadTimeout,
		WriteTimeout:       serverWriteTimeout,
		IdleTimeout:        serverIdleTimeout,
		MaxRequestBodySize: requestBodyBytesMax,
	}
}

// ListenAndServe serves h on addr until ctx ends, then shuts down gracefully.
func ListenAndServe(ctx context.Context, addr string, h fasthttp.RequestHandler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := NewServer(h)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.ShutdownWithContext(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return <-done
}
