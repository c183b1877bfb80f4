package actors

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orderengine/orderengine/actors/pb"
)

// The scenario scripts in testdata/order_*.txt drive the pure order core
// one command per line; the indented lines after a command are what it did
// (events, reply, status, owed SKU commands). Run with -rewrite to
// regenerate them, and review the diff.
//
// Commands: at DURATION (the clock, from the script's start), place
// CUSTOMER SKU:QTY... [ttl=SECONDS], pay REF, cancel, ship, complete, get,
// expire, retry, answer SKU STEP OUTCOME [available=N].

func init() {
	// Shared with other script tests of the package, whichever registers
	// it first.
	if flag.Lookup("rewrite") == nil {
		flag.Bool("rewrite", false, "rewrite the expected output of testdata scripts")
	}
}

func TestOrderScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/order_*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	rewrite := flag.Lookup("rewrite").Value.String() == "true"
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := runOrderScript(t, string(b))
			if rewrite {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != string(b) {
				t.Errorf("%s differs; run with -rewrite and review the diff:\n%s", file, got)
			}
		})
	}
}

// runOrderScript runs the commands of a script and returns it with fresh
// output under every command.
func runOrderScript(t *testing.T, script string) string {
	t.Helper()
	id := KeyedOrderID("script", "key")
	s := NewOrderState(id)
	now := orderTestT0
	var out strings.Builder
	for n, line := range strings.Split(strings.TrimRight(script, "\n"), "\n") {
		if strings.HasPrefix(line, "  ") {
			continue // old output
		}
		out.WriteString(line + "\n")
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if f[0] == "at" {
			d, err := time.ParseDuration(f[1])
			if err != nil {
				t.Fatalf("line %d: %v", n+1, err)
			}
			now = orderTestT0.Add(d)
			continue
		}
		cmd, err := orderScriptCommand(id, f)
		if err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		d := s.Step(cmd, now)
		if err := s.Check(); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		orderScriptOutput(&out, s, d)
	}
	return out.String()
}

func orderScriptCommand(id string, f []string) (any, error) {
	arg := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	switch f[0] {
	case "place":
		p := &pb.PlaceOrder{OrderId: id, Customer: arg(1)}
		for _, it := range f[2:] {
			if ttl, ok := strings.CutPrefix(it, "ttl="); ok {
				n, err := strconv.ParseInt(ttl, 10, 64)
				if err != nil {
					return nil, err
				}
				p.TtlSeconds = n
				continue
			}
			sku, qty, _ := strings.Cut(it, ":")
			n, err := strconv.ParseInt(qty, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("line item %q: %v", it, err)
			}
			p.Items = append(p.Items, &pb.OrderLine{Sku: sku, Quantity: n})
		}
		return p, nil
	case "pay":
		return &pb.PayOrder{OrderId: id, PaymentRef: arg(1)}, nil
	case "cancel":
		return &pb.CancelOrder{OrderId: id}, nil
	case "ship":
		return &pb.ShipOrder{OrderId: id}, nil
	case "complete":
		return &pb.CompleteOrder{OrderId: id}, nil
	case "get":
		return &pb.GetOrder{OrderId: id}, nil
	case "expire":
		return &pb.ExpireOrder{}, nil
	case "retry":
		return &pb.RetryOrderSaga{}, nil
	case "answer":
		step, ok := pb.SKUStep_value["SKU_STEP_"+strings.ToUpper(arg(2))]
		outcome, ok2 := pb.Outcome_value["OUTCOME_"+strings.ToUpper(arg(3))]
		if !ok || !ok2 {
			return nil, fmt.Errorf("answer SKU STEP OUTCOME: %v", f)
		}
		a := &pb.StockAnswered{Sku: arg(1), Step: pb.SKUStep(step), Outcome: pb.Outcome(outcome)}
		if v, ok := strings.CutPrefix(arg(4), "available="); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, err
			}
			a.Available = n
		}
		return a, nil
	}
	return nil, fmt.Errorf("unknown command %q", f[0])
}

func orderScriptOutput(out *strings.Builder, s *OrderState, d OrderDecision) {
	var evs []string
	for _, ev := range d.Events {
		evs = append(evs, orderEventSummary(ev))
	}
	if len(evs) > 0 {
		fmt.Fprintf(out, "  events: %s\n", strings.Join(evs, ", "))
	}
	switch {
	case d.Wait:
		out.WriteString("  reply: (when the saga ends)\n")
	case d.Reply != nil:
		r := strings.TrimPrefix(d.Reply.Code.String(), "ORDER_CODE_")
		if d.Reply.Sku != "" {
			r += fmt.Sprintf(" sku=%s available=%d", d.Reply.Sku, d.Reply.Available)
		}
		if d.Reply.OrderStatus != pb.OrderStatus_ORDER_STATUS_UNSPECIFIED {
			r += " order_status=" + orderStatusName(d.Reply.OrderStatus)
		}
		fmt.Fprintf(out, "  reply: %s\n", r)
	}
	if s.Status == pb.OrderStatus_ORDER_STATUS_UNSPECIFIED {
		return
	}
	status := orderStatusName(s.Status)
	for _, ev := range d.Events {
		if ev.GetReserved() != nil || ev.GetRejected() != nil || ev.GetExpired().GetFromStatus() == pb.OrderStatus_ORDER_STATUS_RESERVING {
			r := OrderPlaceOutcome(s, false)
			status += " (the checkout is answered " + strings.TrimPrefix(r.Code.String(), "ORDER_CODE_") + ")"
		}
	}
	fmt.Fprintf(out, "  status: %s\n", status)
	var owed []string
	for _, c := range OrderOwed(s) {
		owed = append(owed, strings.ToLower(strings.TrimPrefix(c.Step.String(), "SKU_STEP_"))+" "+c.SKU)
	}
	if len(owed) > 0 {
		fmt.Fprintf(out, "  owed: %s\n", strings.Join(owed, ", "))
	}
}

// orderEventSummary names an event and its interesting fields.
func orderEventSummary(ev *pb.OrderEvent) string {
	switch b := ev.Body.(type) {
	case *pb.OrderEvent_Placed:
		return fmt.Sprintf("OrderPlaced(ttl=%ds)", b.Placed.TtlSeconds)
	case *pb.OrderEvent_LineReserved:
		return "LineReserved(" + b.LineReserved.Sku + ")"
	case *pb.OrderEvent_LineRefused:
		return fmt.Sprintf("LineRefused(%s, available=%d)", b.LineRefused.Sku, b.LineRefused.Available)
	case *pb.OrderEvent_Reserved:
		return "OrderReserved"
	case *pb.OrderEvent_Rejected:
		return fmt.Sprintf("OrderRejected(%s, available=%d)", b.Rejected.Sku, b.Rejected.Available)
	case *pb.OrderEvent_LineReleased:
		return "LineReleased(" + b.LineReleased.Sku + ")"
	case *pb.OrderEvent_Paid:
		return "OrderPaid(" + b.Paid.PaymentRef + ")"
	case *pb.OrderEvent_LineCommitted:
		return "LineCommitted(" + b.LineCommitted.Sku + ")"
	case *pb.OrderEvent_LineFailed:
		return "LineFailed(" + b.LineFailed.Sku + ")"
	case *pb.OrderEvent_Cancelled:
		return "OrderCancelled(from " + orderStatusName(b.Cancelled.FromStatus) + ")"
	case *pb.OrderEvent_LineReturned:
		return "LineReturned(" + b.LineReturned.Sku + ")"
	case *pb.OrderEvent_Expired:
		return "OrderExpired(from " + orderStatusName(b.Expired.FromStatus) + ")"
	case *pb.OrderEvent_Shipped:
		return "OrderShipped"
	case *pb.OrderEvent_Completed:
		return "OrderCompleted"
	}
	return fmt.Sprintf("%T", ev.Body)
}
