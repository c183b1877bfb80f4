package testkit

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/orderengine/orderengine/actors/pb"
)

// ErrUnhandled is returned, wrapped, for a message the addressed kind of
// actor would not answer: the kit refuses it at once instead of sending it
// and timing out. The error names the message type and the kind, and lists
// what the kind takes.
var ErrUnhandled = errors.New("not handled by this kind of actor")

// actorKind lists the messages one kind of actor takes: those it answers
// (ask) and those it only acts on (send). The lists mirror the type switch
// in the actor's Receive; TestKindsAnswerWhatTheyList keeps them honest.
type actorKind struct {
	name     string
	ask      []any // answered; the kit's Ask methods take these
	send     []any // taken but not answered; the kit's Send methods take these too
	sendWith string
}

var (
	skuKind = actorKind{
		name: "sku",
		ask: []any{(*pb.Restock)(nil), (*pb.Remove)(nil), (*pb.ReserveStock)(nil),
			(*pb.CommitReservation)(nil), (*pb.ReleaseReservation)(nil), (*pb.ReturnStock)(nil),
			(*pb.SetPurchaseLimit)(nil), (*pb.GetStock)(nil)},
		send:     []any{(*pb.SweepReservations)(nil)},
		sendWith: "SendSKU",
	}
	orderKind = actorKind{
		name: "order",
		ask: []any{(*pb.PlaceOrder)(nil), (*pb.PayOrder)(nil), (*pb.CancelOrder)(nil),
			(*pb.ShipOrder)(nil), (*pb.CompleteOrder)(nil), (*pb.GetOrder)(nil)},
		send:     []any{(*pb.ExpireOrder)(nil), (*pb.RetryOrderSaga)(nil), (*pb.StockAnswered)(nil)},
		sendWith: "SendOrder",
	}
)

func listed(list []any, msg any) bool {
	t := reflect.TypeOf(msg)
	for _, m := range list {
		if reflect.TypeOf(m) == t {
			return true
		}
	}
	return false
}

func typeNames(list []any) string {
	names := make([]string, len(list))
	for i, m := range list {
		names[i] = fmt.Sprintf("%T", m)
	}
	return strings.Join(names, ", ")
}

// checkAsk returns nil when the kind answers msg.
func (k actorKind) checkAsk(msg any) error {
	switch {
	case listed(k.ask, msg):
		return nil
	case listed(k.send, msg):
		return fmt.Errorf("%w: a %s actor takes %T but never answers it; send it with %s",
			ErrUnhandled, k.name, msg, k.sendWith)
	}
	return fmt.Errorf("%w: a %s actor does not handle %T; it answers %s", ErrUnhandled, k.name, msg, typeNames(k.ask))
}

// checkSend returns nil when the kind takes msg.
func (k actorKind) checkSend(msg any) error {
	if listed(k.ask, msg) || listed(k.send, msg) {
		return nil
	}
	return fmt.Errorf("%w: a %s actor does not handle %T; it takes %s, %s",
		ErrUnhandled, k.name, msg, typeNames(k.ask), typeNames(k.send))
}
