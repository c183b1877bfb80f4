package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"
)

// replyProcess receives the one reply to a request the router sent to a
// peer. It is registered in the actor system's process registry, so its
// PID carries this node's remote address and a peer's actor can answer it
// directly. It is lighter than an actor.Future (no timer: the caller's
// context bounds the wait) and lets the caller wait on its context and on
// the peer's breaker at once.
type replyProcess struct{ ch chan any }

func (p *replyProcess) SendUserMessage(_ *actor.PID, message any) {
	_, msg, _ := actor.UnwrapEnvelope(message)
	select {
	case p.ch <- msg:
	default: // a second answer (a duplicate delivery) is dropped
	}
}

func (p *replyProcess) SendSystemMessage(*actor.PID, any) {}
func (p *replyProcess) Stop(*actor.PID)                   {}

// request sends msg to the router actor of the peer at addr, with a reply
// process as its sender, and waits for the first message that comes back.
// A reply that is a DeadLetterResponse tells nothing about the peer's
// health (remote answers one itself while it cannot connect); any other
// reply is a success for the peer's breaker and a timeout is a failure. An
// error wraps ErrUnavailable, or is ctx's error when ctx was cancelled.
func (r *Router) request(ctx context.Context, addr string, msg proto.Message) (any, error) {
	tk, ok := r.breakers.allow(addr)
	if !ok {
		r.stats.unavailable.Add(1)
		return nil, fmt.Errorf("%w: circuit breaker open for %s", ErrUnavailable, addr)
	}
	reg := r.system.ProcessRegistry
	rp := &replyProcess{ch: make(chan any, 1)}
	self, ok := reg.Add(rp, "router-reply"+reg.NextId())
	if !ok {
		tk.cancel()
		return nil, fmt.Errorf("cluster: reply process %v already registered", self)
	}
	defer reg.Remove(self)
	r.system.Root.RequestWithCustomSender(actor.NewPID(addr, RouterActorName), msg, self)
	select {
	case reply := <-rp.ch:
		if _, dead := reply.(*actor.DeadLetterResponse); dead {
			tk.cancel()
		} else {
			tk.success()
		}
		return reply, nil
	case <-tk.down:
		tk.cancel()
		r.stats.unavailable.Add(1)
		return nil, fmt.Errorf("%w: remote endpoint %s terminated", ErrUnavailable, addr)
	case <-ctx.Done():
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			tk.cancel()
			return nil, ctx.Err()
		}
		tk.failure()
		r.stats.timeouts.Add(1)
		r.stats.unavailable.Add(1)
		return nil, fmt.Errorf("%w: no answer from %s: %w", ErrUnavailable, addr, ctx.Err())
	}
}
