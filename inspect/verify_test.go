package inspect

import (
	"context"
	"crypto/rand"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/actors/pb"
	"github.com/orderengine/orderengine/persistence"
)

// shop is a node's actors on a real journal, without HTTP.
type shop struct {
	t      *testing.T
	dir    string
	j      *persistence.Journal
	skus   *actors.Registry
	orders *actors.Orders
}

func openShop(t *testing.T, dir string) *shop {
	t.Helper()
	j, err := persistence.Open(dir, persistence.Options{})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return log }))
	skus := actors.NewRegistry(system, actors.SKUConfig{Journal: j, Logger: log})
	orders := actors.NewOrders(skus, actors.OrderConfig{Journal: j, Logger: log})
	s := &shop{t: t, dir: dir, j: j, skus: skus, orders: orders}
	t.Cleanup(func() { s.close() })
	return s
}

func (s *shop) close() {
	if s.j == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.skus.StopAll(ctx); err != nil {
		s.t.Error(err)
	}
	s.skus.System().Shutdown()
	if err := s.j.Close(); err != nil {
		s.t.Error(err)
	}
	s.j = nil
}

func (s *shop) restock(sku string, qty int64) {
	s.t.Helper()
	res, err := s.skus.AskSKU(context.Background(), sku, &pb.Restock{OpId: "op-" + sku, Quantity: qty})
	if err != nil || res.Outcome != pb.Outcome_OUTCOME_APPLIED {
		s.t.Fatalf("restock %s: %v %v", sku, res, err)
	}
}

func (s *shop) place(lines map[string]int64) string {
	s.t.Helper()
	id, err := actors.NewOrderID(time.Now(), rand.Reader)
	if err != nil {
		s.t.Fatal(err)
	}
	var items []*pb.OrderLine
	for sku, q := range lines {
		items = append(items, &pb.OrderLine{Sku: sku, Quantity: q})
	}
	res, err := s.orders.AskNew(context.Background(), id,
		&pb.PlaceOrder{OrderId: id, Customer: "c-1", Items: items, TtlSeconds: 900})
	if err != nil || res.Code != pb.OrderCode_ORDER_CODE_OK {
		s.t.Fatalf("place: %v %v", res, err)
	}
	return id
}

func (s *shop) order(id string, cmd any) {
	s.t.Helper()
	res, err := s.orders.Ask(context.Background(), id, cmd)
	if err != nil || res.Code != pb.OrderCode_ORDER_CODE_OK {
		s.t.Fatalf("%T %s: %v %v", cmd, id, res, err)
	}
}

// appendRaw appends one encoded event after id's last one, as a broken
// node or a bad tool would.
func appendRaw(t *testing.T, dir, journalID string, event []byte) {
	t.Helper()
	j, err := persistence.Open(dir, persistence.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	last, err := j.LastSequence(journalID)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	j.Append(journalID, last+1, [][]byte{event}, 0, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func verifyDir(t *testing.T, dir string) *Report {
	t.Helper()
	r, err := persistence.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rep, err := Verify(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestVerifyPassesAndCatchesBrokenJournals(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "journal")
	s := openShop(t, dir)
	s.restock("A", 10)
	s.restock("B", 5)
	reserved := s.place(map[string]int64{"A": 2, "B": 1})
	paid := s.place(map[string]int64{"A": 3})
	s.order(paid, &pb.PayOrder{OrderId: paid, PaymentRef: "pay-1"})
	cancelled := s.place(map[string]int64{"B": 2})
	s.order(cancelled, &pb.CancelOrder{OrderId: cancelled})
	s.order(reserved, &pb.GetOrder{OrderId: reserved})
	s.close()

	rep := verifyDir(t, dir)
	if !rep.OK() || rep.SKUs != 2 || rep.Orders != 3 || rep.Reservations != 2 {
		t.Fatalf("a consistent journal: %+v", rep)
	}

	// Each break below is caught, and named.
	onA := func(ev *pb.OrderEvent) []byte {
		ev.SchemaVersion, ev.AtUnixNano = 1, time.Now().UnixNano()
		return actors.EncodeOrderEvent(ev)
	}
	skuEvent := func(ev *pb.SKUEvent) []byte {
		ev.SchemaVersion, ev.AtUnixNano = 2, time.Now().UnixNano()
		b, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	steps := []struct {
		what, id, journalID string
		event               []byte
		want                string
	}{
		{"an order that lets go of units its SKU still reserves", reserved, actors.OrderJournalID(reserved),
			onA(&pb.OrderEvent{Body: &pb.OrderEvent_LineReleased{LineReleased: &pb.LineReleased{Sku: "A"}}}),
			"the order let its units go, the SKU still reserves them"},
		{"a SKU reservation for a cancelled order", "B", actors.SKUJournalID("B"),
			skuEvent(&pb.SKUEvent{Body: &pb.SKUEvent_Reserved{Reserved: &pb.StockReserved{OrderId: cancelled, Quantity: 2,
				DeadlineUnixNano: time.Now().Add(time.Hour).UnixNano()}}}),
			"the order let its units go, the SKU still reserves them"},
		{"a removal of more units than the SKU has", "A", actors.SKUJournalID("A"),
			skuEvent(&pb.SKUEvent{Body: &pb.SKUEvent_Removed{Removed: &pb.StockRemoved{OpId: "rm", Quantity: 100}}}),
			"negative stock"},
	}
	for _, step := range steps {
		appendRaw(t, dir, step.journalID, step.event)
		rep := verifyDir(t, dir)
		found := false
		for _, p := range rep.Problems {
			found = found || strings.Contains(p.Detail, step.want)
		}
		if rep.OK() || !found {
			t.Fatalf("%s: problems %v, want one saying %q", step.what, rep.Problems, step.want)
		}
		t.Logf("%s: %v", step.what, rep.Problems)
	}
}

func TestListAndShow(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "journal")
	s := openShop(t, dir)
	s.restock("A", 10)
	id := s.place(map[string]int64{"A": 4})
	s.order(id, &pb.PayOrder{OrderId: id, PaymentRef: "pay-9"})
	s.close()

	r, err := persistence.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []Actor
	if err := List(r, func(a Actor) error { got = append(got, a); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("listed %+v", got)
	}
	for _, a := range got {
		switch {
		case a.Error != "":
			t.Errorf("%s %s: %s", a.Kind, a.ID, a.Error)
		case a.Kind == KindSKU && (a.SKU.Available != 6 || a.SKU.Sold != 4):
			t.Errorf("sku %+v", a.SKU)
		case a.Kind == KindOrder && (a.ID != id || a.Order.Status != "paid" || a.Order.PaymentRef != "pay-9"):
			t.Errorf("order %+v", a.Order)
		}
	}
	d, err := Show(r, KindOrder, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Events) == 0 && d.SnapshotState == nil {
		t.Fatalf("order detail without snapshot or events: %+v", d)
	}
	if d, err := Show(r, KindSKU, "A"); err != nil || len(d.Holds) != 1 {
		t.Fatalf("sku detail %+v, %v", d, err)
	}
	if _, err := Show(r, KindSKU, "nope"); err == nil {
		t.Fatal("an unknown SKU was shown")
	}
}
