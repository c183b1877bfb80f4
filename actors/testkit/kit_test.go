package testkit_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
	"github.com/orderengine/orderengine/actors/testkit"
)

// A message the addressed kind of actor would not answer is refused before
// it is sent: no time passes, and the error names the type and the kind.
func TestAskRefusesWhatTheActorDoesNotAnswer(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		c := testkit.NewCheckout(t, actors.OrderConfig{})
		for _, tc := range []struct {
			name string
			ask  func() error
			want []string
		}{
			{"order command to a SKU", func() error {
				_, err := c.TryAskSKU("A", &pb.PayOrder{OrderId: "o1", PaymentRef: "p"})
				return err
			}, []string{"sku actor", "*pb.PayOrder", "*pb.ReserveStock"}},
			{"SKU command to an order", func() error {
				_, err := c.TryAskOrder("o1", &pb.ReserveStock{OrderId: "o1", Quantity: 1})
				return err
			}, []string{"order actor", "*pb.ReserveStock", "*pb.PlaceOrder"}},
			{"unanswered SKU tick", func() error {
				_, err := c.TryAskSKU("A", &pb.SweepReservations{})
				return err
			}, []string{"*pb.SweepReservations", "never answers", "SendSKU"}},
			{"unanswered order tick", func() error {
				_, err := c.TryAskOrder("o1", &pb.ExpireOrder{})
				return err
			}, []string{"*pb.ExpireOrder", "SendOrder"}},
			{"async", func() error {
				_, err := c.AskOrderAsync("o1", &pb.Restock{OpId: "r", Quantity: 1}).Result()
				return err
			}, []string{"order actor", "*pb.Restock"}},
		} {
			start := time.Now()
			err := tc.ask()
			if !errors.Is(err, testkit.ErrUnhandled) {
				t.Fatalf("%s: %v, want ErrUnhandled", tc.name, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: %q does not say %q", tc.name, err, w)
				}
			}
			if d := time.Since(start); d != 0 {
				t.Errorf("%s: refused after %v, want at once", tc.name, d)
			}
		}
	})
}

func TestSendRefusesWhatTheActorDoesNotHandle(t *testing.T) {
	c := testkit.NewCheckout(catchTB{t}, actors.OrderConfig{})
	if msg := fatalOf(func() { c.SendSKU("A", &pb.CancelOrder{OrderId: "o1"}) }); !strings.Contains(msg, "*pb.CancelOrder") {
		t.Errorf("SendSKU of an order command: %q", msg)
	}
	if msg := fatalOf(func() { c.SendOrder("o1", &pb.GetStock{}) }); !strings.Contains(msg, "*pb.GetStock") {
		t.Errorf("SendOrder of a SKU command: %q", msg)
	}
	if msg := fatalOf(func() { c.SendSKU("A", &pb.SweepReservations{}) }); msg != "" {
		t.Errorf("SendSKU of a sweep: %q", msg)
	}
}

// A request that gets no answer fails after Timeout (DefaultTimeout unless
// WithTimeout) and says the journal is paused.
func TestTimeoutSaysTheJournalIsPaused(t *testing.T) {
	for _, tc := range []struct {
		opts []testkit.Option
		want time.Duration
	}{
		{nil, testkit.DefaultTimeout},
		{[]testkit.Option{testkit.WithTimeout(3 * time.Second)}, 3 * time.Second},
	} {
		inBubble(t, func(t *testing.T) {
			k := testkit.New(t, tc.opts...)
			k.AskSKU("A", &pb.Restock{OpId: "r1", Quantity: 5})
			k.Journal.Pause()
			start := time.Now()
			_, err := k.TryAskSKU("A", &pb.Restock{OpId: "r2", Quantity: 5})
			if d := time.Since(start); d != tc.want {
				t.Errorf("gave up after %v, want %v", d, tc.want)
			}
			if !errors.Is(err, actors.ErrTimeout) || !strings.Contains(err.Error(), "journal is paused with 1 write(s) pending") {
				t.Errorf("error %v, want a timeout that names the paused journal", err)
			}
			k.Journal.Resume()
			if v := k.AskSKU("A", &pb.GetStock{}).View; v.Available != 10 {
				t.Errorf("after Resume: %d available, want 10", v.Available)
			}
		})
	}
}

// An actor that crashed while its write was in flight recovers only once
// that write is done; a request meanwhile times out and says both why.
// The caller whose write was in flight gets that write's outcome, not the
// crash: the reply left with the write.
func TestTimeoutSaysTheActorCrashed(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		k := testkit.New(t)
		k.AskSKU("A", &pb.Restock{OpId: "r1", Quantity: 5})
		k.Journal.Pause()
		// The caller of the write in flight waits longer than the kit's
		// timeout, so that it is still there when the write lands.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		inFlight := make(chan *pb.StockResult, 1)
		go func() {
			r, err := k.Registry.AskSKU(ctx, "A", &pb.Restock{OpId: "r2", Quantity: 5})
			if err != nil {
				t.Errorf("caller of the crashed instance: %v", err)
			}
			inFlight <- r
		}()
		k.Eventually("the restock waits for the journal", func() bool { return k.Journal.Pending() == 1 })
		k.CrashSKU("A")
		_, err := k.TryAskSKU("A", &pb.GetStock{})
		for _, want := range []string{"journal is paused", "sku/A crashed 1 time(s)", "crash requested", "restarted"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q does not say %q", err, want)
			}
		}
		k.Journal.Resume()
		if r := <-inFlight; r.GetOutcome() != pb.Outcome_OUTCOME_APPLIED {
			t.Errorf("caller of the crashed instance got %v, want APPLIED (its restock was made durable)", r.Outcome)
		}
		if v := k.AskSKU("A", &pb.GetStock{}).View; v.Available != 10 {
			t.Errorf("recovered with %d available, want 10 (the restock was made durable)", v.Available)
		}
	})
}

func TestTimeoutSaysTheLinkHoldsCommands(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		c := testkit.NewCheckout(t, actors.OrderConfig{}, testkit.WithTimeout(time.Second))
		c.AskSKU("A", &pb.Restock{OpId: "r1", Quantity: 5})
		c.Link.SetRule(func(testkit.LinkMessage) testkit.LinkAction { return testkit.Hold })
		_, err := c.TryAskOrder("o1", &pb.PlaceOrder{OrderId: "o1", Customer: "c", Items: []*pb.OrderLine{{Sku: "A", Quantity: 1}}})
		if !errors.Is(err, actors.ErrTimeout) || !strings.Contains(err.Error(), "Link holds 1 SKU command(s)") ||
			!strings.Contains(err.Error(), "SKU_STEP_RESERVE A for o1") {
			t.Errorf("error %v, want a timeout that names the held reserve", err)
		}
		c.Link.SetRule(nil)
		c.Link.ReleaseAll()
	})
}

func TestExpectNoReply(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		k := testkit.New(catchTB{t})
		k.Journal.Pause()
		call := k.AskSKUAsync("A", &pb.Restock{OpId: "r1", Quantity: 5})
		if msg := fatalOf(func() { call.ExpectNoReply(time.Second) }); msg != "" {
			t.Fatalf("a restock waiting for a paused journal: %s", msg)
		}
		if call.Ready() {
			t.Fatal("Ready before the journal resumed")
		}
		k.Journal.Resume()
		<-call.Done()
		msg := fatalOf(func() { call.ExpectNoReply(time.Second) })
		// The kit's request sent the restock again while the journal was
		// paused, so the answer may be the retry's ALREADY_DONE.
		if !strings.Contains(msg, "answered within 1s") || !strings.Contains(msg, "available:5") {
			t.Errorf("ExpectNoReply on an answered call: %q", msg)
		}
		if r := call.Wait(); r.View.Available != 5 {
			t.Errorf("%d available, want 5", r.View.Available)
		}
	})
}

func TestEventuallyReportsTheLastValueSeen(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		k := testkit.New(catchTB{t}, testkit.WithTimeout(time.Second))
		k.AskSKU("A", &pb.Restock{OpId: "r1", Quantity: 5})
		k.Journal.Pause()
		msg := fatalOf(func() {
			testkit.EventuallyValue(k, "stock of A", func() int64 { return k.SKUState("A").Available },
				func(n int64) bool { return n == 6 })
		})
		for _, want := range []string{"not within 1s", "stock of A", "last seen: 5", "journal is paused"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%q does not say %q", msg, want)
			}
		}
		if msg := fatalOf(func() { k.Eventually("never", func() bool { return false }) }); !strings.Contains(msg, "never") {
			t.Errorf("Eventually: %q", msg)
		}
		k.Journal.Resume()
		got := testkit.EventuallyValue(k, "stock of A", func() int64 { return k.SKUState("A").Available },
			func(n int64) bool { return n == 5 })
		if got != 5 {
			t.Errorf("returned %d, want 5", got)
		}
	})
}

// A SKU's answer that is lost (here dropped by the Link) leaves the order
// waiting: it sends the command again once the fake clock passes its retry
// time, and a request that times out meanwhile says so.
func TestTimeoutSaysTheSagaWaitsForTheClock(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		c := testkit.NewCheckout(t, actors.OrderConfig{})
		c.AskSKU("A", &pb.Restock{OpId: "r1", Quantity: 5})
		c.Link.SetRule(func(testkit.LinkMessage) testkit.LinkAction { return testkit.DropReply })
		cmd := &pb.PlaceOrder{OrderId: "o1", Customer: "c", Items: []*pb.OrderLine{{Sku: "A", Quantity: 1}}}
		call := c.AskOrderAsync("o1", cmd)
		_, err := call.Result()
		c.Link.SetRule(nil)
		if !errors.Is(err, actors.ErrTimeout) || !strings.Contains(err.Error(), "order o1 is ") ||
			!strings.Contains(err.Error(), "(Advance)") {
			t.Fatalf("error %v, want a timeout that points at the clock", err)
		}
		c.Advance(time.Minute)
		if r := c.AskOrder("o1", cmd); r.Order.GetStatus() != pb.OrderStatus_ORDER_STATUS_RESERVED {
			t.Fatalf("after Advance: %v", r)
		}
	})
}
