package gateway

import (
	"io"
	"net"
	"sync/atomic"
	"time"
)

// listener wraps every connection the server accepts in a *conn, so that
// the read-error handler can see what fasthttp does not tell it, and counts
// the connections open. Past max (0: no cap) a new connection is still
// served, but only to be told 503 unavailable and closed (server.go): a
// client at the cap gets a problem document rather than a reset.
type listener struct {
	net.Listener
	open *atomic.Int64
	max  int64
}

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		// fasthttp looks at Accept's error itself (a closed listener ends
		// Serve), so it is passed on as it is.
		return nil, err
	}
	n := l.open.Add(1)
	return &conn{Conn: c, open: l.open, refused: l.max > 0 && n > l.max}, nil
}

// conn is one client connection. It records two things for the read-error
// handler (server.go):
//
//   - whether any byte ever arrived. fasthttp passes the same error for a
//     connection that timed out before sending anything and for one that
//     stopped half-way through a request body, and only the second has a
//     request to answer.
//   - whether the last response was written with request bytes possibly left
//     unread (a request line over the buffer, a body over the limit, a client
//     still trickling). Closing a TCP socket with unread input makes the
//     kernel send a reset, and a client that gets it before reading may lose
//     the response; such a connection is closed after a lingering drain.
type conn struct {
	net.Conn
	// received is set by Read and read by the read-error handler; both run
	// on the connection's own serving goroutine, so it needs no lock.
	received bool
	// linger asks Close to drain first. It is atomic because fasthttp may
	// close connections from its shutdown goroutine too.
	linger atomic.Bool
	// refused: the connection came past the cap on open connections.
	refused bool
	open    *atomic.Int64 // the listener's count, less one at the first Close
	closed  atomic.Bool
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.received = true
	}
	return n, err
}

// Close closes the connection, first draining it when linger is set.
func (c *conn) Close() error {
	if c.open != nil && c.closed.CompareAndSwap(false, true) {
		c.open.Add(-1)
	}
	if c.linger.CompareAndSwap(true, false) {
		c.drain()
	}
	return c.Conn.Close()
}

// drain sends FIN after the response already written, then reads and drops
// what the client still sends until it closes its side, for at most
// closeLingerMax and closeLingerBytesMax, so that the final close does not
// reset a connection whose client has yet to read its answer. Connections
// that cannot half-close (in-memory pipes) are closed at once: they have no
// reset to avoid.
func (c *conn) drain() {
	hc, ok := c.Conn.(interface{ CloseWrite() error })
	if !ok || hc.CloseWrite() != nil {
		return
	}
	if c.Conn.SetReadDeadline(time.Now().Add(closeLingerMax)) != nil {
		return
	}
	// The copy ends at the client's EOF, at the deadline, or at the byte
	// limit; each of them is a reason to stop and none needs reporting.
	_, _ = io.CopyN(io.Discard, c.Conn, closeLingerBytesMax)
}
