package actors

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/actors/pb"
)

// Registry finds the actor of an identity on this node and activates it on
// first use. An actor that passivated is activated again by the next
// request. Activation is by name in the actor system's process registry,
// so two concurrent first requests still make one actor.
//
// It also bounds how many actors are resident: beyond ResidentMax, each
// activation asks the least recently used actors of its shard to
// passivate. An actor that is busy (a write in flight, a saga owing a
// command) declines and is asked again later, so the bound is soft; what
// it keeps small is the memory of actors that are merely remembered.
type Registry struct {
	system *actor.ActorSystem
	sku    SKUConfig
	// shards serialize lookup and activation per name (by hash) and keep
	// each shard's resident actors in least-recently-used order.
	// protoactor registers a name before its mailbox can take messages,
	// so a send by name to an actor another goroutine is still spawning
	// would race; under the shard's lock a name is either absent or ready.
	shards      [activationShards]residentShard
	resident    atomic.Int64
	residentMax int64
	roomCursor  atomic.Uint32 // the shard makeRoom starts at
	// gate, when set, decides which names may be activated (SetGate);
	// refused is the PID that stands for the ones it refuses.
	gate    func(name string) bool
	refused *actor.PID
	// boxes are registered reply boxes of asks that got every answer
	// they could get, for the next askOnce (see replyBoxFor).
	boxes chan *replyBox
	// dispatcher runs the actors' mailboxes.
	dispatcher *workerDispatcher
}

// replyBoxesKept bounds the idle reply boxes a registry keeps: about the
// asks a node has in flight at once.
const replyBoxesKept = 4096

// activationShards spreads activation locks so unrelated names rarely wait
// for each other.
const activationShards = 256

// DefaultResidentMax bounds the actors a node keeps in memory (see
// Registry). A resident order or SKU costs a few KiB.
const DefaultResidentMax = 20_000

const (
	// evictScanMax bounds the passivation requests one activation sends
	// when the node is over its resident bound.
	evictScanMax = 4
	// evictAskAgainAfter spaces passivation requests to one actor that
	// declined, so a busy actor is not asked on every activation.
	evictAskAgainAfter = time.Second
	// evictLookMax bounds how far from the least recently used end one
	// eviction looks for actors to ask.
	evictLookMax = 64
	// skuEvictIdleMin spares SKUs used more recently than this: a node has
	// far fewer SKUs than orders, a SKU is costly to bring back (its
	// snapshot on the way out, its holds on the way in) and likely to be
	// used again soon, while a settled order is neither.
	skuEvictIdleMin = time.Minute
)

type residentShard struct {
	mu     sync.Mutex
	lru    list.List // of *residentActor, most recently used first
	byName map[string]*list.Element
}

// residentActor is one activation of a name, tracked until it stops.
type residentActor struct {
	name  string
	sku   bool
	used  time.Time // when it was last activated or looked up
	asked time.Time // when it was last asked to passivate
	// mailbox is the activation's mailbox, set while it is spawned (under
	// the shard's lock), for MailboxDepths.
	mailbox actor.Mailbox
	// pid is the activation's PID. A send through it reaches the
	// process it caches without looking the name up again; once the
	// process is dead, protoactor looks the name up as for any PID.
	pid *actor.PID
}

// evictable reports whether ra may be asked to passivate at now.
func (ra *residentActor) evictable(now time.Time) bool {
	return now.Sub(ra.asked) >= evictAskAgainAfter && (!ra.sku || now.Sub(ra.used) >= skuEvictIdleMin)
}

// passivateRequest asks an actor to stop if it is idle, as its receive
// timeout would; it does not count as activity.
type passivateRequest struct{}

func (*passivateRequest) NotInfluenceReceiveTimeout() {}

// IgnoreDeadLetterLogging: an actor that stopped before the request
// arrived is what the request asked for.
func (*passivateRequest) IgnoreDeadLetterLogging() {}

// wakeUp activates an actor whose wake time passed while it was not in
// memory (Orders.WakeDue).
type wakeUp struct{}

func (*wakeUp) NotInfluenceReceiveTimeout() {}

// NewRegistry returns a registry that activates SKU actors with cfg and
// keeps at most DefaultResidentMax actors resident (SetResidentMax).
func NewRegistry(system *actor.ActorSystem, sku SKUConfig) *Registry {
	return &Registry{system: system, sku: sku.withDefaults(), residentMax: DefaultResidentMax,
		boxes: make(chan *replyBox, replyBoxesKept), dispatcher: newWorkerDispatcher(mailboxWorkersMax, mailboxThroughput)}
}

// SetResidentMax changes the bound on resident actors; 0 or less removes
// it. Call it before the first activation.
func (r *Registry) SetResidentMax(n int) { r.residentMax = int64(n) }

// Resident returns how many actors the registry activated that have not
// stopped yet.
func (r *Registry) Resident() int { return int(r.resident.Load()) }

// System returns the actor system the registry spawns into.
func (r *Registry) System() *actor.ActorSystem { return r.system }

// SKUPID returns the PID of the SKU's actor, activating it if needed.
func (r *Registry) SKUPID(sku string) *actor.PID {
	return r.activate(skuActorName(sku), func() *actor.Props { return SKUProps(sku, r.sku) })
}

// RequestSKU implements OrderSKULink for SKUs on this node.
func (r *Registry) RequestSKU(ctx actor.Context, sku string, msg proto.Message) {
	ctx.Request(r.SKUPID(sku), msg)
}

func skuActorName(sku string) string { return "sku/" + sku }

func (r *Registry) activate(name string, props func() *actor.Props) *actor.PID {
	h := fnv.New32a()
	h.Write([]byte(name))
	sh := &r.shards[h.Sum32()%activationShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if r.gate != nil && !r.gate(name) {
		return r.refused
	}
	now := time.Now()
	if _, ok := r.system.ProcessRegistry.GetLocal(name); ok {
		if e := sh.byName[name]; e != nil {
			sh.lru.MoveToFront(e)
			ra := e.Value.(*residentActor)
			ra.used = now
			if ra.pid != nil {
				return ra.pid
			}
		}
		return actor.NewPID(r.system.Address(), name)
	}
	ra := &residentActor{name: name, sku: strings.HasPrefix(name, skuActorName("")), used: now}
	// The registry's actors take protoactor's default mailbox; the
	// registry keeps a handle on it to report its depth.
	mailbox := func() actor.Mailbox {
		ra.mailbox = actor.Unbounded()()
		return ra.mailbox
	}
	pid, err := r.system.Root.SpawnNamed(props().Configure(
		actor.WithReceiverMiddleware(r.untrackOnStop(sh, ra)), actor.WithMailbox(mailbox),
		actor.WithDispatcher(r.dispatcher)), name)
	if err != nil && !errors.Is(err, actor.ErrNameExists) {
		// SpawnNamed fails only on a taken name; anything else is a bug.
		panic(fmt.Sprintf("activate %s: %v", name, err))
	}
	if err == nil {
		ra.pid = pid
	}
	if sh.byName == nil {
		sh.byName = make(map[string]*list.Element)
	}
	if old := sh.byName[name]; old != nil {
		sh.lru.Remove(old) // a stop not yet reported; the new activation replaces it
		r.resident.Add(-1)
	}
	sh.byName[name] = sh.lru.PushFront(ra)
	if n := r.resident.Add(1); r.residentMax > 0 && n > r.residentMax {
		r.askToPassivate(sh, ra, now, evictScanMax)
	}
	return pid
}

// askToPassivate sends up to n passivation requests to the least recently
// used evictable actors of sh, other than spare, and returns how many it
// sent. The caller holds sh.mu.
func (r *Registry) askToPassivate(sh *residentShard, spare *residentActor, now time.Time, n int) int {
	asked := 0
	e := sh.lru.Back()
	for looked := 0; e != nil && asked < n && looked < evictLookMax; e, looked = e.Prev(), looked+1 {
		ra := e.Value.(*residentActor)
		if ra == spare || !ra.evictable(now) {
			continue
		}
		ra.asked = now
		r.system.Root.Send(actor.NewPID(r.system.Address(), ra.name), &passivateRequest{})
		asked++
	}
	return asked
}

// MailboxDepth sums up the messages waiting in the mailboxes of one kind
// of resident actor.
type MailboxDepth struct {
	Queued  int // messages waiting, over all actors of the kind
	Deepest int // the most waiting in one actor's mailbox
}

// MailboxDepths reports the waiting messages of the resident SKU and order
// actors, reading every mailbox's counter (one pass over the resident
// actors, meant for a metrics scrape).
func (r *Registry) MailboxDepths() (skus, orders MailboxDepth) {
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for e := sh.lru.Front(); e != nil; e = e.Next() {
			ra := e.Value.(*residentActor)
			if ra.mailbox == nil {
				continue
			}
			d := &orders
			if ra.sku {
				d = &skus
			}
			n := ra.mailbox.UserMessageCount()
			d.Queued += n
			d.Deepest = max(d.Deepest, n)
		}
		sh.mu.Unlock()
	}
	return skus, orders
}

// room returns how many more actors may be activated before the resident
// bound is reached (a large number when there is no bound).
func (r *Registry) room() int {
	if r.residentMax <= 0 {
		return wakeBatchMax
	}
	return max(int(r.residentMax-r.resident.Load()), 0)
}

// makeRoom asks up to n of the least recently used actors to passivate,
// taking one from each shard in turn, starting where the last call
// stopped so every shard gives its share.
func (r *Registry) makeRoom(n int) {
	now := time.Now()
	for tried := 0; n > 0 && tried < activationShards; tried++ {
		sh := &r.shards[r.roomCursor.Add(1)%activationShards]
		sh.mu.Lock()
		n -= r.askToPassivate(sh, nil, now, 1)
		sh.mu.Unlock()
	}
}

// untrackOnStop returns a middleware that forgets ra once its actor has
// stopped, unless a newer activation of the name replaced it already.
func (r *Registry) untrackOnStop(sh *residentShard, ra *residentActor) actor.ReceiverMiddleware {
	return func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
			next(c, env)
			if _, ok := env.Message.(*actor.Stopped); !ok {
				return
			}
			sh.mu.Lock()
			defer sh.mu.Unlock()
			if e := sh.byName[ra.name]; e != nil && e.Value == ra {
				sh.lru.Remove(e)
				delete(sh.byName, ra.name)
				r.resident.Add(-1)
			}
		}
	}
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

// askResendFirst is how long an ask waits before it sends its command
// again; each later wait doubles, until the caller's deadline. protoactor
// silently drops what is still in an actor's mailbox when it stops, so a
// command that reached an actor just as it passivated gets no answer and
// no dead letter. Every command is idempotent, so sending it again is
// safe; a command that was only slow gets its first answer from whichever
// copy the actor answers first.
const askResendFirst = time.Second

// AskSKU sends a command to a SKU actor and waits for its StockResult
// until ctx is done. The SKU commands are idempotent, so a request that met
// a passivating actor is sent again to its next activation.
func (r *Registry) AskSKU(ctx context.Context, sku string, cmd any) (*pb.StockResult, error) {
	reply, err := r.ask(ctx, func() *actor.PID { return r.SKUPID(sku) }, cmd)
	if err != nil {
		return nil, err
	}
	res, ok := reply.(*pb.StockResult)
	if !ok {
		return nil, fmt.Errorf("%w: %T from sku %s", ErrUnexpectedReply, reply, sku)
	}
	return res, nil
}

// ask is a request-reply bounded by ctx: it sends cmd, sends it again
// after askResendFirst and then after doubling waits, and at once after a
// dead letter (up to requestAttemptsMax in all), and returns the first
// answer to any of the copies. Every copy carries the same reply address,
// a replyBox, so an answer to an early copy that comes after a resend
// still counts; with a future per copy it would go to one already given
// up, and the caller would wait for a later copy's answer.
func (r *Registry) ask(ctx context.Context, pid func() *actor.PID, cmd any) (any, error) {
	return r.askResending(ctx, pid, cmd, true, nil)
}

// askOnce is ask for a command that must not run twice: it is sent again
// only after a dead letter (the copy never reached the actor), never
// because its answer is slow. Its reply box may have served an earlier
// askOnce; ours tells this ask's answers from anything else, which is
// dropped (it would be a bug: a box is reused only once every copy sent
// to it was answered).
func (r *Registry) askOnce(ctx context.Context, pid func() *actor.PID, cmd any, ours func(any) bool) (any, error) {
	return r.askResending(ctx, pid, cmd, false, ours)
}

func (r *Registry) askResending(ctx context.Context, pid func() *actor.PID, cmd any, resend bool, ours func(any) bool) (any, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, askTimeoutMax)
		defer cancel()
	}
	box := r.replyBoxFor(resend)
	reply, sent := box.pid, 0
	clean := false // every copy sent was answered: the box may serve another ask
	defer func() { r.doneWith(box, clean) }()
	var resendC <-chan time.Time // nil: never
	var timer *time.Timer
	if resend {
		timer = time.NewTimer(askResendFirst)
		defer timer.Stop()
		resendC = timer.C
	}
	wait, deadLetters := askResendFirst, 0
	r.system.Root.RequestWithCustomSender(pid(), cmd, reply)
	sent++
	for received := 0; ; {
		select {
		case m := <-box.ch:
			if ours != nil && !ours(m) {
				continue
			}
			received++
			clean = !resend && received == sent
			if _, refused := m.(*notServed); refused {
				return nil, ErrNotServed
			}
			if _, dead := m.(*actor.DeadLetterResponse); !dead {
				return m, nil
			}
			// The actor stopped before the copy reached it; its next
			// activation answers the next copy.
			if deadLetters++; deadLetters >= requestAttemptsMax {
				return nil, fmt.Errorf("actor request: %w", actor.ErrDeadLetter)
			}
		case <-resendC:
			wait *= 2 // lost, or only slow: send again, waiting longer
			timer.Reset(wait)
		case <-ctx.Done():
			return nil, ErrTimeout
		}
		r.system.Root.RequestWithCustomSender(pid(), cmd, reply)
		sent++
	}
}

// replyBoxFor returns the reply box of one ask: a kept one for an ask
// that sends each copy only after the previous one was answered (askOnce:
// once it has every answer, nothing more can arrive for it), a new one
// otherwise.
func (r *Registry) replyBoxFor(resend bool) *replyBox {
	if !resend {
		select {
		case b := <-r.boxes:
			return b
		default:
		}
	}
	b := &replyBox{ch: make(chan any, replyBoxSlots)}
	b.pid = r.register(b)
	return b
}

// doneWith keeps a box that got every answer it was sent for, or removes
// it: an answer may still come to one given up, and must reach no other
// ask.
func (r *Registry) doneWith(b *replyBox, clean bool) {
	if clean && len(b.ch) == 0 {
		select {
		case r.boxes <- b:
			return
		default:
		}
	}
	r.system.ProcessRegistry.Remove(b.pid)
}

// askTimeoutMax bounds an ask whose context has no deadline.
const askTimeoutMax = time.Minute

// replyBoxSlots bounds the answers a replyBox keeps: the first counts, the
// rest are copies of it or dead-letter notices.
const replyBoxSlots = 4

// replyBox is the reply address of one ask: a process whose messages go
// to a channel; once it is full, later ones are dropped. Each ask has its
// own, never reused: an answer may still arrive after the ask returned.
type replyBox struct {
	ch  chan any
	pid *actor.PID
}

func (b *replyBox) SendUserMessage(_ *actor.PID, m any) {
	select {
	case b.ch <- actor.UnwrapEnvelopeMessage(m):
	default:
	}
}

func (b *replyBox) SendSystemMessage(*actor.PID, any) {}
func (b *replyBox) Stop(*actor.PID)                   {}

// register adds box to the process registry under a fresh name.
func (r *Registry) register(box *replyBox) *actor.PID {
	for {
		if pid, ok := r.system.ProcessRegistry.Add(box, "ask$"+r.system.ProcessRegistry.NextId()); ok {
			return pid
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
	defer r.dispatcher.stop() // the mailboxes' kept goroutines go too
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
