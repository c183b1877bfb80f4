package actors

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/actors/pb"
)

var (
	skuSeeds = flag.Int("sku.seeds", 2000, "random command sequences in TestSkuProperty")
	skuSeed  = flag.Uint64("sku.seed", 0, "run only this seed of TestSkuProperty (0: all)")
)

// TestSkuProperty runs random command sequences against the pure SKU and
// checks, after every step, the full invariant (apply checks conservation;
// CheckHolds recomputes from the holds), and at the end that replaying the
// journaled events, and restoring a snapshot taken midway plus the tail,
// both give the live state. Reproduce a failure with
// go test ./actors -run TestSkuProperty -sku.seed=N.
func TestSkuProperty(t *testing.T) {
	first, last := uint64(1), uint64(*skuSeeds)
	if *skuSeed != 0 {
		first, last = *skuSeed, *skuSeed
	}
	if testing.Short() {
		last = min(last, first+200)
	}
	for seed := first; seed <= last; seed++ {
		if err := runSkuSequence(seed, 200); err != nil {
			t.Fatalf("seed %d: %v\nreproduce: go test ./actors -run TestSkuProperty -sku.seed=%d", seed, err, seed)
		}
	}
}

func runSkuSequence(seed uint64, steps int) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	rules := SkuRules{Grace: 30 * time.Second, SweepMax: 1 + rng.IntN(4)}
	live := NewSkuState("P")
	now := testNow
	var journal [][]byte
	var mid []byte
	ended := map[string]bool{} // orders whose units were released or returned
	for i := range steps {
		now = now.Add(time.Duration(rng.IntN(20)) * time.Second)
		cmd := randomSkuCommand(rng, now)
		events, reply := live.Step(cmd, now, rules)
		for _, ev := range events {
			journal = append(journal, encodeSkuEvent(ev))
		}
		if err := live.CheckHolds(); err != nil {
			return fmt.Errorf("step %d %T: %w", i, cmd, err)
		}
		for _, ev := range events {
			switch b := ev.Body.(type) {
			case *pb.SkuEvent_Released:
				ended[b.Released.OrderId] = true
			case *pb.SkuEvent_Returned:
				ended[b.Returned.OrderId] = true
			case *pb.SkuEvent_Reserved:
				if ended[b.Reserved.OrderId] {
					return fmt.Errorf("step %d: order %s reserved again after its units were released", i, b.Reserved.OrderId)
				}
			}
		}
		if reply != nil && reply.Outcome == pb.Outcome_OUTCOME_APPLIED && len(events) == 0 && !isQuery(cmd) {
			return fmt.Errorf("step %d %T: applied without an event", i, cmd)
		}
		if i == steps/2 {
			mid, _ = proto.Marshal(live.Snapshot())
		}
	}
	replayed := NewSkuState("P")
	for i, b := range journal {
		ev, err := DecodeSkuEvent(b)
		if err != nil {
			return err
		}
		replayed.apply(uint64(i+1), ev)
	}
	if err := sameSku(live, replayed); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	restored, err := DecodeSkuSnapshot("P", mid)
	if err != nil {
		return err
	}
	for i := restored.Sequence; i < uint64(len(journal)); i++ {
		ev, _ := DecodeSkuEvent(journal[i])
		restored.apply(i+1, ev)
	}
	if err := sameSku(live, restored); err != nil {
		return fmt.Errorf("snapshot plus tail: %w", err)
	}
	return nil
}

func isQuery(cmd any) bool {
	_, ok := cmd.(*pb.GetStock)
	return ok
}

func randomSkuCommand(rng *rand.Rand, now time.Time) any {
	order := fmt.Sprintf("o%d", rng.IntN(30))
	op := fmt.Sprintf("op%d", rng.IntN(20))
	qty := int64(1 + rng.IntN(8))
	switch rng.IntN(10) {
	case 0:
		return &pb.Restock{OpId: op, Quantity: qty * 3}
	case 1:
		return &pb.Remove{OpId: op, Quantity: qty}
	case 2, 3:
		return &pb.ReserveStock{OrderId: order, Quantity: qty, DeadlineUnixNano: now.Add(time.Duration(rng.IntN(60)) * time.Second).UnixNano()}
	case 4:
		return &pb.CommitReservation{OrderId: order}
	case 5:
		return &pb.ReleaseReservation{OrderId: order, Reason: pb.ReleaseReason(1 + rng.IntN(3))}
	case 6:
		return &pb.ReturnStock{OrderId: order}
	case 7:
		return &pb.SweepReservations{}
	case 8:
		return &pb.GetStock{}
	default:
		return &pb.Restock{OpId: op, Quantity: qty} // often a conflicting reuse
	}
}

// sameSku compares two states through their snapshots, which hold all of
// it.
func sameSku(a, b *SkuState) error {
	if !proto.Equal(a.Snapshot(), b.Snapshot()) {
		return fmt.Errorf("states differ:\n live %v\n other %v", a.Snapshot(), b.Snapshot())
	}
	return nil
}
