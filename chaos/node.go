package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// Bounds of a node's life in a test.
const (
	readyWaitMax = 30 * time.Second // from start to /readyz 200
	stopWaitMax  = 20 * time.Second // from SIGTERM to exit
	logBytesMax  = 1 << 20          // node output kept for a failure report
)

// buildOrderd compiles cmd/orderd once per test binary into a temporary
// directory and returns the binary's path.
var buildOrderd = sync.OnceValues(func() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the chaos package's source")
	}
	dir, err := os.MkdirTemp("", "orderd-chaos-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "orderd")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/orderd")
	cmd.Dir = filepath.Join(filepath.Dir(file), "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/orderd: %v\n%s", err, out)
	}
	return bin, nil
})

// Node is one orderd process on a fixed data directory and address; it can
// be killed, paused and started again on the same ones.
type Node struct {
	Bin, DataDir, Addr, Token string
	Flags                     []string
	// Tap, when set before Start, also receives the process's output.
	Tap io.Writer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process has exited
	logs *capped       // output of every process this Node started
}

// NewNode describes a node; Start runs it.
func NewNode(bin, dataDir, addr, token string, flags ...string) *Node {
	return &Node{Bin: bin, DataDir: dataDir, Addr: addr, Token: token, Flags: flags, logs: &capped{max: logBytesMax}}
}

// Base is the node's URL prefix.
func (n *Node) Base() string { return "http://" + n.Addr }

// Logs returns the most recent output of the node's processes.
func (n *Node) Logs() string { return n.logs.String() }

// Start runs the process and waits until /readyz answers 200. It fails if
// the process exits first or readiness takes longer than readyWaitMax.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	if n.cmd != nil {
		n.mu.Unlock()
		return errors.New("node already running")
	}
	args := append([]string{"-data", n.DataDir, "-http", n.Addr, "-admin-token", n.Token, "-log-level", "warn"}, n.Flags...)
	cmd := exec.Command(n.Bin, args...)
	// One writer for both, so that exec copies them with one goroutine
	// and lines of the two never interleave.
	var out io.Writer = n.logs
	if n.Tap != nil {
		out = io.MultiWriter(n.logs, n.Tap)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		n.mu.Unlock()
		return err
	}
	done := make(chan struct{})
	n.cmd, n.done = cmd, done
	n.mu.Unlock()
	go func() {
		_ = cmd.Wait() // the exit status is read from cmd.ProcessState
		close(done)
	}()
	return n.waitReady(ctx, done)
}

func (n *Node) waitReady(ctx context.Context, done <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, readyWaitMax)
	defer cancel()
	probe := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", n.Base()+"/readyz", nil)
		if resp, err := probe.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("orderd exited before it was ready:\n%s", n.logs.Tail(4096))
		case <-ctx.Done():
			return fmt.Errorf("orderd not ready within %v", readyWaitMax)
		case <-tick.C:
		}
	}
}

// Running reports whether a process is alive (it may be paused).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// Signal sends sig to the running process; it is a no-op when none runs.
func (n *Node) Signal(sig syscall.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return nil
	}
	err := n.cmd.Process.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// Kill sends SIGKILL (continuing a paused process is not needed: SIGKILL
// ends a stopped one) and waits for the exit.
func (n *Node) Kill() error {
	if err := n.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	n.reap(0)
	return nil
}

// Stop asks the node to stop cleanly (SIGTERM) and waits for it; past
// stopWaitMax it is killed and an error returned.
func (n *Node) Stop() error {
	if err := n.Signal(syscall.SIGCONT); err != nil {
		return err
	}
	if err := n.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if !n.reap(stopWaitMax) {
		if err := n.Kill(); err != nil {
			return err
		}
		return fmt.Errorf("orderd did not stop within %v of SIGTERM", stopWaitMax)
	}
	return nil
}

// reap waits for the current process to exit, for at most wait (0: no
// bound), and forgets it. It reports whether the process exited.
func (n *Node) reap(wait time.Duration) bool {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	if done == nil {
		return true
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			return false
		}
	} else {
		<-done
	}
	n.mu.Lock()
	n.cmd, n.done = nil, nil
	n.mu.Unlock()
	return true
}

// Exited reports whether the process has exited by itself (a crash) and,
// if so, forgets it so that Start can run a new one.
func (n *Node) Exited() bool {
	if n.Running() {
		return false
	}
	n.reap(0)
	return true
}

// FreeAddr returns a 127.0.0.1 address with a port nobody listens on now.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// capped is a goroutine-safe writer keeping the last max bytes written.
type capped struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	if over := c.buf.Len() - c.max; over > 0 {
		c.buf.Next(over)
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// Tail returns the last n bytes written.
func (c *capped) Tail(n int) string {
	s := c.String()
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
