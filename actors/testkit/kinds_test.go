package testkit

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"testing/synctest"
	"time"

	"github.com/orderengine/orderengine/actors"
)

// The kinds' lists say what the actors' Receive does: every message in an
// ask list is answered (a zero one too, refused as INVALID or NOT_FOUND),
// and no message in a send list is.
func TestKindsAnswerWhatTheyList(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t.Cleanup(func() { time.Sleep(time.Second) }) // see inBubble
		c := NewCheckout(t, actors.OrderConfig{})
		ask := map[string]func(ctx context.Context, msg any) error{
			"sku": func(ctx context.Context, msg any) error {
				_, err := c.Registry.AskSKU(ctx, "A", msg)
				return err
			},
			"order": func(ctx context.Context, msg any) error {
				_, err := c.Orders.Ask(ctx, "o1", msg)
				return err
			},
		}
		zero := func(m any) any { return reflect.New(reflect.TypeOf(m).Elem()).Interface() }
		for _, kind := range []actorKind{skuKind, orderKind} {
			for _, m := range kind.ask {
				ctx, cancel := context.WithTimeout(t.Context(), time.Second)
				if err := ask[kind.name](ctx, zero(m)); err != nil {
					t.Errorf("%s actor, %T: %v, want an answer", kind.name, m, err)
				}
				cancel()
				if kind.checkAsk(m) != nil || kind.checkSend(m) != nil {
					t.Errorf("%s %T: refused", kind.name, m)
				}
			}
			for _, m := range kind.send {
				ctx, cancel := context.WithTimeout(t.Context(), time.Second)
				if err := ask[kind.name](ctx, zero(m)); !errors.Is(err, actors.ErrTimeout) {
					t.Errorf("%s actor, %T: %v, want no answer", kind.name, m, err)
				}
				cancel()
				if kind.checkAsk(m) == nil || kind.checkSend(m) != nil {
					t.Errorf("%s %T: asks taken or sends refused", kind.name, m)
				}
			}
		}
	})
}
