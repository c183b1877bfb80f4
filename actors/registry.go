package actors

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/orderengine/orderengine/actors/pb"
)

// Registry finds the actor of an identity on this node and activates it on
// first use. An actor that passivated is activated again by the next
// request. Activation is by name in the actor system's process registry,
// so two concurrent first requests still make one actor.
type Registry struct {
	system *actor.ActorSystem
	sku    SkuConfig
	// spawning serializes lookup and activation per name (by hash shard).
	// protoactor registers a name before its mailbox can take messages,
	// so a send by name to an actor another goroutine is still spawning
	// would race; under the shard's lock a name is either absent or ready.
	spawning [activationShards]sync.Mutex
}

// activationShards spreads activation locks so unrelated names rarely wait
// for each other.
const activationShards = 256

// NewRegistry returns a registry that activates SKU actors with cfg.
func NewRegistry(system *actor.ActorSystem, sku SkuConfig) *Registry {
	return &Registry{system: system, sku: sku.withDefaults()}
}

// System returns the actor system the registry spawns into.
func (r *Registry) System() *actor.ActorSystem { return r.system }

// SkuPID returns the PID of the SKU's actor, activating it if needed.
func (r *Registry) SkuPID(sku string) *actor.PID {
	return r.activate(skuActorName(sku), func() *actor.Props { return SkuProps(sku, r.sku) })
}

func skuActorName(sku string) string { return "sku/" + sku }

func (r *Registry) activate(name string, props func() *actor.Props) *actor.PID {
	h := fnv.New32a()
	h.Write([]byte(name))
	mu := &r.spawning[h.Sum32()%activationShards]
	mu.Lock()
	defer mu.Unlock()
	if _, ok := r.system.ProcessRegistry.GetLocal(name); ok {
		return actor.NewPID(r.system.Address(), name)
	}
	pid, err := r.system.Root.SpawnNamed(props(), name)
	if err != nil && !errors.Is(err, actor.ErrNameExists) {
		// SpawnNamed fails only on a taken name; anything else is a bug.
		panic(fmt.Sprintf("activate %s: %v", name, err))
	}
	return pid
}

// Errors of actor requests.
var (
	// ErrTimeout: the actor did not answer in time. The command may or may
	// not have been applied; retrying with the same ID is safe.
	ErrTimeout = errors.New("actor request timed out")
	// ErrUnexpectedReply is a reply of the wrong type: a bug.
	ErrUnexpectedReply = errors.New("unexpected actor reply")
)

// requestAttemptsMax bounds retries of a request that reached an actor as
// it passivated (a dead letter).
const requestAttemptsMax = 3

// AskSku sends a command to a SKU actor and waits for its StockResult
// until ctx is done. The SKU commands are idempotent, so a request that met
// a passivating actor is sent again to its next activation.
func (r *Registry) AskSku(ctx context.Context, sku string, cmd any) (*pb.StockResult, error) {
	reply, err := r.ask(ctx, func() *actor.PID { return r.SkuPID(sku) }, cmd)
	if err != nil {
		return nil, err
	}
	res, ok := reply.(*pb.StockResult)
	if !ok {
		return nil, fmt.Errorf("%w: %T from sku %s", ErrUnexpectedReply, reply, sku)
	}
	return res, nil
}

// ask is a request-reply bounded by ctx, retried on dead letters.
func (r *Registry) ask(ctx context.Context, pid func() *actor.PID, cmd any) (any, error) {
	for attempt := 1; ; attempt++ {
		timeout := time.Minute
		if d, ok := ctx.Deadline(); ok {
			timeout = time.Until(d)
		}
		if timeout <= 0 {
			return nil, ErrTimeout
		}
		reply, err := r.system.Root.RequestFuture(pid(), cmd, timeout).Result()
		switch {
		case err == nil:
			return reply, nil
		case errors.Is(err, actor.ErrTimeout):
			return nil, ErrTimeout
		case errors.Is(err, actor.ErrDeadLetter) && attempt < requestAttemptsMax:
			continue
		default:
			return nil, fmt.Errorf("actor request: %w", err)
		}
	}
}

// Count returns how many SKU and order actors are live on this node.
func (r *Registry) Count() (skus, orders int) {
	for _, name := range r.localNames() {
		switch {
		case strings.HasPrefix(name, "sku/"):
			skus++
		case strings.HasPrefix(name, "order/"):
			orders++
		}
	}
	return skus, orders
}

// StopAll stops every SKU and order actor of the node, each after the
// messages already in its mailbox, and waits until they have stopped or
// ctx is done. Actors snapshot their state as they stop, so the next start
// reads short tails. Orders stop first, so SKU answers to their last
// commands can still arrive.
func (r *Registry) StopAll(ctx context.Context) error {
	for _, prefix := range []string{"order/", "sku/"} {
		var futures []*actor.Future
		for _, name := range r.localNames() {
			if strings.HasPrefix(name, prefix) {
				futures = append(futures, r.system.Root.PoisonFuture(actor.NewPID(r.system.Address(), name)))
			}
		}
		for _, f := range futures {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("stop actors: %w", err)
			}
			_ = f.Wait() // a timeout or dead letter means it is gone already
		}
	}
	return nil
}

func (r *Registry) localNames() []string {
	var names []string
	for _, bucket := range r.system.ProcessRegistry.LocalPIDs.LocalPIDs {
		names = append(names, bucket.Keys()...)
	}
	return names
}
