package actors

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// A command that reaches an actor as it stops is dropped by protoactor
// without a dead letter. The ask sends it again after askResendFirst, so
// the caller gets an answer from the next attempt instead of waiting for
// its whole deadline.
func TestAskSendsAgainWhenAnAnswerDoesNotCome(t *testing.T) {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer system.Shutdown()
	r := NewRegistry(system, SKUConfig{})
	var got atomic.Int32
	props := func() *actor.Props {
		return actor.PropsFromFunc(func(c actor.Context) {
			if s, ok := c.Message().(string); ok && got.Add(1) > 1 { // the first is lost
				c.Respond("answer to " + s)
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	reply, err := r.ask(ctx, func() *actor.PID { return r.activate("test/lossy", props) }, "hello")
	if err != nil || reply != "answer to hello" {
		t.Fatalf("ask: %v, %v", reply, err)
	}
	if took := time.Since(start); took > 5*askResendFirst {
		t.Fatalf("answered after %v, want about %v", took, askResendFirst)
	}
	if got.Load() != 2 {
		t.Fatalf("the actor got the command %d times, want 2", got.Load())
	}

	// An actor that never answers still ends at the caller's deadline.
	short, cancelShort := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancelShort()
	silent := func() *actor.Props { return actor.PropsFromFunc(func(actor.Context) {}) }
	if _, err := r.ask(short, func() *actor.PID { return r.activate("test/silent", silent) }, "x"); err != ErrTimeout {
		t.Fatalf("ask of a silent actor: %v, want ErrTimeout", err)
	}
}

// An answer to the first copy of a command that comes after the ask sent
// it again is the answer: the copies share one reply address.
func TestAskTakesALateAnswerToAnEarlierCopy(t *testing.T) {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer system.Shutdown()
	r := NewRegistry(system, SKUConfig{})
	var copies atomic.Int32
	done := make(chan struct{})
	defer close(done)
	props := func() *actor.Props {
		return actor.PropsFromFunc(func(c actor.Context) {
			if _, ok := c.Message().(string); !ok || copies.Add(1) > 1 {
				return // later copies are ignored
			}
			sender, root := c.Sender(), c.ActorSystem().Root
			go func() { // answers the first copy after the ask has resent it
				select {
				case <-time.After(askResendFirst + askResendFirst/2):
					root.Send(sender, "late answer")
				case <-done:
				}
			}()
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := r.ask(ctx, func() *actor.PID { return r.activate("slow", props) }, "question")
	if err != nil || got != "late answer" {
		t.Fatalf("got %v, %v; want the late answer", got, err)
	}
	if n := copies.Load(); n < 2 {
		t.Fatalf("%d copies sent, want the resend to have happened", n)
	}
}
