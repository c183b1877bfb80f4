package sim

import (
	"flag"
	"fmt"
	"testing"
)

var (
	seedsFlag  = flag.Int("seeds", 0, "number of seeds to run (default: 12, or 3 with -short)")
	seedFlag   = flag.Int64("seed", -1, "run only this seed")
	firstFlag  = flag.Uint64("first", 1, "first seed of the range")
	ordersFlag = flag.Int("orders", 0, "orders per seed (default: sim.DefaultConfig.Orders)")
)

// TestSimulation runs seeded simulations of checkout with faults; a
// failing seed prints the command that replays it. make test runs a
// CI-sized count; make sim runs many more:
//
//	go test ./actors/sim -run TestSimulation -seeds 500 -v
func TestSimulation(t *testing.T) {
	cfg := Config{Orders: *ordersFlag}
	first, n := *firstFlag, *seedsFlag
	if n <= 0 {
		n = 10
		if testing.Short() {
			n = 3
		}
	}
	if *seedFlag >= 0 {
		first, n = uint64(*seedFlag), 1
	}
	for seed := first; seed < first+uint64(n); seed++ {
		rep, err := Run(seed, cfg)
		if err != nil {
			t.Fatalf("seed %d: %v\n%v\nreproduce: go test ./actors/sim -run TestSimulation -seed %d%s -v",
				seed, err, rep, seed, ordersArg())
		}
		t.Logf("seed %d: %v", seed, rep)
	}
}

func ordersArg() string {
	if *ordersFlag == 0 {
		return ""
	}
	return fmt.Sprintf(" -orders %d", *ordersFlag)
}

// The same seed gives the same run.
func TestSimulationIsDeterministic(t *testing.T) {
	a, errA := Run(7, Config{Orders: 200})
	b, errB := Run(7, Config{Orders: 200})
	if a != b || fmt.Sprint(errA) != fmt.Sprint(errB) {
		t.Fatalf("seed 7 twice:\n%v (%v)\n%v (%v)", a, errA, b, errB)
	}
}
