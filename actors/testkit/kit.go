package testkit

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
)

// TB is the part of testing.TB the kit uses; *testing.T and *testing.B
// are TBs, and Standalone makes one for programs and examples.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
	Output() io.Writer
}

// Kit is an actor system wired to an in-memory journal and a fake clock.
type Kit struct {
	T        TB
	System   *actor.ActorSystem
	Journal  *Journal
	Clock    *Clock
	Registry *actors.Registry
	// Logger is what the kit's actors log to: the test's output, warnings
	// and above.
	Logger *slog.Logger
	// Timeout bounds every request the kit makes and every Eventually:
	// DefaultTimeout unless WithTimeout says otherwise. A request that
	// gets no answer in time fails with an error wrapping
	// actors.ErrTimeout that says what the kit saw (a paused journal, a
	// crashed actor, commands the Link holds).
	Timeout time.Duration

	crashes *crashes
	calls   sync.WaitGroup // AskSKUAsync and AskOrderAsync requests in flight

	mu     sync.Mutex
	skus   map[string]bool            // SKUs the kit has talked to, for Advance
	causes []func(name string) string // more explanations for a timeout (a Checkout's)
}

// DefaultTimeout is the Kit's Timeout unless WithTimeout sets another.
const DefaultTimeout = 10 * time.Second

// Option changes the kit's configuration before its actors start.
type Option func(*config)

type config struct {
	sku     actors.SKUConfig
	start   time.Time
	timeout time.Duration
}

// WithSKUConfig sets the SKU actors' configuration; the kit fills in its
// journal, clock and logger.
func WithSKUConfig(c actors.SKUConfig) Option { return func(k *config) { k.sku = c } }

// WithStart sets the fake clock's start time (default 2026-01-01 UTC).
func WithStart(t time.Time) Option { return func(k *config) { k.start = t } }

// WithTimeout sets the kit's Timeout (default DefaultTimeout): how long a
// request waits for its answer and Eventually for its condition. Inside a
// testing/synctest bubble the wait is on the bubble's fake time.
func WithTimeout(d time.Duration) Option { return func(k *config) { k.timeout = d } }

// New starts a kit whose actor system and journal stop when the test ends.
// Actor logs go to the test's output.
func New(t TB, opts ...Option) *Kit {
	t.Helper()
	cfg := config{start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), timeout: DefaultTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	// Actors outlive the test by a little; what they log after it ends is
	// dropped, since writing to a finished test's output is a data race.
	logs := &untilDone{Handler: slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}), done: &atomic.Bool{}}
	logger := slog.New(logs)
	k := &Kit{
		Logger:  logger,
		T:       t,
		Journal: NewJournal(),
		Clock:   NewClock(cfg.start),
		Timeout: cfg.timeout,
		skus:    map[string]bool{},
	}
	k.System = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }))
	k.crashes = watchCrashes(k.System)
	skuCfg := cfg.sku
	skuCfg.Journal, skuCfg.Clock, skuCfg.Logger = k.Journal, k.Clock, logger
	k.Registry = actors.NewRegistry(k.System, skuCfg)
	t.Cleanup(func() {
		// protoactor's Shutdown leaves actors and their timers running, which
		// slows every later test: stop them first.
		ctx, cancel := context.WithTimeout(context.Background(), k.Timeout)
		defer cancel()
		_ = k.Registry.StopAll(ctx) // bounded; leftovers only cost time
		k.calls.Wait()              // each ends within Timeout, sooner once its actor stopped
		k.System.EventStream.Unsubscribe(k.crashes.sub)
		logs.done.Store(true)
		k.System.Shutdown()
		k.Journal.Close()
	})
	return k
}

// AskSKU sends cmd to the SKU's actor and returns its reply, failing the
// test if none comes within Timeout or if a SKU actor would not answer cmd
// (see TryAskSKU). Call it from the test's goroutine.
func (k *Kit) AskSKU(sku string, cmd any) *pb.StockResult {
	k.T.Helper()
	res, err := k.TryAskSKU(sku, cmd)
	if err != nil {
		k.T.Fatalf("ask sku %s %T: %v", sku, cmd, err)
	}
	return res
}

// TryAskSKU is AskSKU returning the error instead of failing the test; it
// is safe to call from any goroutine. A command a SKU actor does not answer
// (a *pb.PayOrder, or a *pb.SweepReservations, which SendSKU takes) is
// refused at once with an error wrapping ErrUnhandled; no answer within
// Timeout is an error wrapping actors.ErrTimeout that says what the kit saw.
func (k *Kit) TryAskSKU(sku string, cmd any) (*pb.StockResult, error) {
	return k.skuAsk(sku, cmd).try()
}

// AskSKUAsync sends cmd to the SKU's actor and returns at once; the Call
// gets the reply, or the error TryAskSKU would return. Safe from any
// goroutine.
func (k *Kit) AskSKUAsync(sku string, cmd any) *Call[*pb.StockResult] {
	return k.skuAsk(sku, cmd).async()
}

func (k *Kit) skuAsk(sku string, cmd any) request[*pb.StockResult] {
	return request[*pb.StockResult]{k: k, kind: skuKind, id: sku, cmd: cmd,
		remember: func() { k.rememberSKU(sku) }, ask: k.Registry.AskSKU}
}

// SendSKU delivers msg to the SKU's actor without waiting for, or getting,
// an answer: a *pb.SweepReservations, or any command whose answer does not
// matter. A message a SKU actor does not handle fails the test at once.
func (k *Kit) SendSKU(sku string, msg any) {
	k.T.Helper()
	if err := skuKind.checkSend(msg); err != nil {
		k.T.Fatalf("send sku %s: %v", sku, err)
	}
	k.rememberSKU(sku)
	k.System.Root.Send(k.Registry.SKUPID(sku), msg)
}

func (k *Kit) rememberSKU(sku string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.skus[sku] = true
}

// SKUEvents returns the SKU's durable events in order.
func (k *Kit) SKUEvents(sku string) []*pb.SKUEvent {
	k.T.Helper()
	var out []*pb.SKUEvent
	for i, b := range k.Journal.Events("sku/" + sku) {
		ev, err := actors.DecodeSKUEvent(b)
		if err != nil {
			k.T.Fatalf("sku %s event %d: %v", sku, i+1, err)
		}
		out = append(out, ev)
	}
	return out
}

// WaitSKUDurable returns once the SKU's actor has nothing applied that
// its journal does not hold (a GetStock is answered only then), so that
// SKUState and SKUEvents show what it last answered. It fails the test
// after the kit's timeout.
func (k *Kit) WaitSKUDurable(sku string) {
	k.T.Helper()
	k.AskSKU(sku, &pb.GetStock{})
}

// SKUState rebuilds the SKU's state from its journal: what a recovering
// actor would see. Compare it with the live view from GetStock, or call
// WaitSKUDurable first.
func (k *Kit) SKUState(sku string) *actors.SKUState {
	k.T.Helper()
	s, _, err := actors.LoadSKUState(k.Journal, sku)
	if err != nil {
		k.T.Fatalf("load sku %s: %v", sku, err)
	}
	return s
}

// Advance moves the clock forward and sweeps every SKU the kit has talked
// to, so reservations past deadline plus grace are released before it
// returns (up to the per-sweep bound).
func (k *Kit) Advance(d time.Duration) {
	k.T.Helper()
	k.Clock.Advance(d)
	k.mu.Lock()
	skus := make([]string, 0, len(k.skus))
	for s := range k.skus {
		skus = append(skus, s)
	}
	k.mu.Unlock()
	for _, s := range skus {
		k.System.Root.Send(k.Registry.SKUPID(s), &pb.SweepReservations{})
		k.AskSKU(s, &pb.GetStock{}) // answered once the sweep's events are durable
	}
}

// CrashSKU makes the SKU's actor panic. Its supervisor restarts it, and
// the new instance recovers from the journal: whatever it had applied but
// not made durable is gone, and callers still waiting are answered
// UNAVAILABLE.
//
// CrashSKU returns at once; it does not wait for the restart or the
// recovery. It needs not: messages sent after it are handled by the new
// instance, in order, once it has recovered. Recovery first waits for the
// journal writes the crashed instance had in flight (while the journal is
// paused, until Resume), then reads the journal. To wait for it, ask
// anything, such as a *pb.GetStock.
func (k *Kit) CrashSKU(sku string) {
	k.System.Root.Send(k.Registry.SKUPID(sku), actors.Crash{})
}

// StandaloneTB is a TB outside a test: Fatalf panics, output is dropped,
// and Close runs the cleanups.
type StandaloneTB struct {
	mu       sync.Mutex
	cleanups []func()
}

// Standalone returns a TB for using the kit outside a test.
func Standalone() *StandaloneTB { return &StandaloneTB{} }

// Helper does nothing.
func (*StandaloneTB) Helper() {}

// Fatalf panics with the message.
func (*StandaloneTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// Cleanup registers f to run at Close.
func (s *StandaloneTB) Cleanup(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanups = append(s.cleanups, f)
}

// Output discards.
func (*StandaloneTB) Output() io.Writer { return io.Discard }

// Close runs the cleanups, last registered first.
func (s *StandaloneTB) Close() {
	s.mu.Lock()
	c := s.cleanups
	s.cleanups = nil
	s.mu.Unlock()
	for i := len(c) - 1; i >= 0; i-- {
		c[i]()
	}
}
