package testkit

import (
	"context"
	"fmt"
	"time"
)

// Call is a request in flight, from AskSKUAsync or AskOrderAsync: send
// now, look at the reply later. Its reply arrives at most Timeout after it
// was sent. Done, Result and Ready are safe from any goroutine; Wait and
// ExpectNoReply fail the test, so call them from the test's goroutine.
type Call[R any] struct {
	t    TB
	what string
	done chan struct{}
	res  R
	err  error
}

// request is one command the kit asks an actor.
type request[R any] struct {
	k        *Kit
	kind     actorKind
	id       string // the SKU or order ID
	cmd      any
	remember func() // records the actor for Advance
	ask      func(ctx context.Context, id string, cmd any) (R, error)
}

// try refuses a command the kind does not answer, and otherwise asks and
// waits at most the kit's Timeout.
func (r request[R]) try() (R, error) {
	if err := r.kind.checkAsk(r.cmd); err != nil {
		var none R
		return none, err
	}
	r.remember()
	ctx, cancel := context.WithTimeout(context.Background(), r.k.Timeout)
	defer cancel()
	res, err := r.ask(ctx, r.id, r.cmd)
	return res, r.k.explain(err, r.kind.name+"/"+r.id)
}

// async is try on a goroutine the kit waits for as it stops.
func (r request[R]) async() *Call[R] {
	call := newCall[R](r.k.T, fmt.Sprintf("ask %s %s %T", r.kind.name, r.id, r.cmd))
	if err := r.kind.checkAsk(r.cmd); err != nil {
		var none R
		call.finish(none, err)
		return call
	}
	r.remember() // before returning, so that an Advance right after reaches the actor
	r.k.calls.Go(func() { call.finish(r.try()) })
	return call
}

func newCall[R any](t TB, what string) *Call[R] {
	return &Call[R]{t: t, what: what, done: make(chan struct{})}
}

func (c *Call[R]) finish(res R, err error) {
	c.res, c.err = res, err
	close(c.done)
}

// Done is closed once the reply or the error is in.
func (c *Call[R]) Done() <-chan struct{} { return c.done }

// Ready reports, without waiting, whether the reply or the error is in.
func (c *Call[R]) Ready() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Result waits for the reply and returns it, or the error.
func (c *Call[R]) Result() (R, error) {
	<-c.done
	return c.res, c.err
}

// Wait waits for the reply and returns it, failing the test on an error.
func (c *Call[R]) Wait() R {
	c.t.Helper()
	res, err := c.Result()
	if err != nil {
		c.t.Fatalf("%s: %v", c.what, err)
	}
	return res
}

// ExpectNoReply fails the test if the reply, or an error, comes within d:
// the actor must still be working on the request (say, waiting for a
// paused journal) d after ExpectNoReply was called. The Call stays usable.
func (c *Call[R]) ExpectNoReply(within time.Duration) {
	c.t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case <-c.done:
		c.t.Fatalf("%s: answered within %v, want no answer yet: %s", c.what, within, c.describe())
	case <-timer.C:
	}
}

func (c *Call[R]) describe() string {
	if c.err != nil {
		return "error: " + c.err.Error()
	}
	return fmt.Sprint(c.res)
}
