package actors

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
)

// ErrNotServed is the answer of an ask for an identity that the node's
// activation gate refuses: in a cluster, one whose partition this node
// does not serve now. Nothing was sent to any actor.
var ErrNotServed = errors.New("identity not served on this node")

// SetGate installs admit as the node's activation gate: an identity (its
// actor name, "sku/…" or "order/…") is activated only while admit returns
// true for it. A lookup of a refused identity yields a PID whose requests
// are answered at once with a refusal (an ask returns ErrNotServed), so
// nothing waits for an actor that will not exist. admit runs under an
// activation lock and must be fast and must not call the registry. Call
// it before the first activation; nil admits everything.
//
// Together with StopWhere it is how a cluster node stops serving a
// partition: make admit refuse the partition's names first, then stop
// the ones already resident. No activation of the partition can slip in
// between, because admit is asked under the same lock that StopWhere
// takes to list the resident actors.
func (r *Registry) SetGate(admit func(name string) bool) {
	r.gate = admit
	if r.refused == nil {
		r.refused, _ = r.system.ProcessRegistry.Add(refusedProcess{system: r.system}, "refused$"+r.system.ProcessRegistry.NextId())
	}
}

// notServed answers a message sent to a refused identity.
type notServed struct{}

// refusedProcess stands for every identity the gate refuses: a request
// gets notServed back, anything else is dropped.
type refusedProcess struct{ system *actor.ActorSystem }

func (p refusedProcess) SendUserMessage(_ *actor.PID, m any) {
	if _, _, sender := actor.UnwrapEnvelope(m); sender != nil {
		p.system.Root.Send(sender, &notServed{})
	}
}

func (refusedProcess) SendSystemMessage(*actor.PID, any) {}
func (refusedProcess) Stop(*actor.PID)                   {}

// StopWhere stops every resident actor whose name match accepts, each
// after the messages already in its mailbox (it snapshots as it stops,
// as on passivation), and waits until they have stopped or ctx is done.
// Orders stop before SKUs, so SKU answers to their last commands can
// still arrive. It returns how many actors it stopped.
func (r *Registry) StopWhere(ctx context.Context, match func(name string) bool) (int, error) {
	var names []string
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for name := range sh.byName {
			if match(name) {
				names = append(names, name)
			}
		}
		sh.mu.Unlock()
	}
	stopped := 0
	for _, prefix := range []string{"order/", "sku/"} {
		var futures []*actor.Future
		for _, name := range names {
			if strings.HasPrefix(name, prefix) {
				futures = append(futures, r.system.Root.PoisonFuture(actor.NewPID(r.system.Address(), name)))
			}
		}
		for _, f := range futures {
			if err := ctx.Err(); err != nil {
				return stopped, fmt.Errorf("stop actors: %w", err)
			}
			_ = f.Wait() // a timeout or dead letter means it is gone already
			stopped++
		}
	}
	return stopped, nil
}
