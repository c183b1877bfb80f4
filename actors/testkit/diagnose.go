package testkit

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/eventstream"

	"github.com/orderengine/orderengine/actors"
)

// crashes records what the actor system's supervisors did to failing
// actors, by actor name, so that a timeout can say an actor crashed.
type crashes struct {
	mu     sync.Mutex
	byName map[string]crashRecord
	sub    *eventstream.Subscription
}

type crashRecord struct {
	count     int
	reason    any
	directive actor.Directive
}

func watchCrashes(system *actor.ActorSystem) *crashes {
	c := &crashes{byName: map[string]crashRecord{}}
	c.sub = system.EventStream.Subscribe(func(evt any) {
		e, ok := evt.(*actor.SupervisorEvent)
		if !ok || e.Child == nil {
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		r := c.byName[e.Child.Id]
		r.count++
		r.reason, r.directive = e.Reason, e.Directive
		c.byName[e.Child.Id] = r
	})
	return c
}

// describe says how the named actor failed, "" if it never did; the
// empty name describes every actor that failed.
func (c *crashes) describe(name string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := []string{name}
	if name == "" {
		names = slices.Sorted(maps.Keys(c.byName))
	}
	var out []string
	for _, n := range names {
		r, ok := c.byName[n]
		if !ok {
			continue
		}
		what := "was restarted to recover from its journal"
		if r.directive == actor.StopDirective {
			what = "was stopped by its supervisor (too many crashes in a row)"
		}
		out = append(out, fmt.Sprintf("%s crashed %d time(s), last with %q, and %s", n, r.count, fmt.Sprint(r.reason), what))
	}
	return strings.Join(out, "; ")
}

// explain turns a request error into one that says what the kit knows
// about why no answer came: a paused or slow journal, a crashed actor, or
// (for a Checkout) commands the Link holds.
func (k *Kit) explain(err error, name string) error {
	if !errors.Is(err, actors.ErrTimeout) {
		return err
	}
	return fmt.Errorf("%w after %v: %s", err, k.Timeout, k.why(name))
}

// why lists the likely causes of a missing answer from the named actor,
// or of a condition that did not come true ("" names no actor).
func (k *Kit) why(name string) string {
	var causes []string
	if h := k.Journal.hold(); h != "" {
		causes = append(causes, h)
	}
	if c := k.crashes.describe(name); c != "" {
		causes = append(causes, c)
	}
	k.mu.Lock()
	more := k.causes
	k.mu.Unlock()
	for _, f := range more {
		if c := f(name); c != "" {
			causes = append(causes, c)
		}
	}
	if len(causes) == 0 {
		return "no cause the kit knows of (journal running, no crash seen)"
	}
	return strings.Join(causes, "; ")
}
