package sim

import (
	"flag"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

var (
	seedsFlag  = flag.Int("seeds", 0, "number of seeds to run (default: 1000 for the real shells, 10 for the model; a tenth with -short)")
	seedFlag   = flag.Int64("seed", -1, "run only this seed")
	firstFlag  = flag.Uint64("first", 1, "first seed of the range")
	ordersFlag = flag.Int("orders", 0, "orders per seed (default: 40 for the real shells, sim.DefaultConfig.Orders for the model)")
)

// shellTestOrders is the size of one seed of TestSimulation unless -orders
// says otherwise: small, so that make test runs a thousand seeds under the
// race detector in about a minute on two cores. make sim runs larger ones.
const shellTestOrders = 40

// TestSimulation runs the real SKU and order actors under the
// deterministic scheduler, one seed per run, the seeds in parallel. A
// failing seed prints the command that replays it. make test runs a
// thousand small seeds; make sim runs as many as asked:
//
//	go test ./actors/sim -run 'TestSimulation$' -seeds 5000 -orders 200 -v
func TestSimulation(t *testing.T) {
	runSeeds(t, Config{Orders: orDefault(*ordersFlag, shellTestOrders)}, 1000)
}

// TestModelSimulation runs the model of the shells (the pure cores plus a
// model of their durable log), which is cheap enough for runs of a
// thousand orders.
func TestModelSimulation(t *testing.T) {
	runSeeds(t, Config{Orders: *ordersFlag, Model: true}, 10)
}

func orDefault(n, d int) int {
	if n > 0 {
		return n
	}
	return d
}

// runSeeds runs the seeds of the flags (n by default) on every CPU.
func runSeeds(t *testing.T, cfg Config, n int) {
	first := *firstFlag
	n = orDefault(*seedsFlag, n)
	if testing.Short() && *seedsFlag == 0 {
		n = max(n/10, 3)
	}
	if *seedFlag >= 0 {
		first, n = uint64(*seedFlag), 1
	}
	start := time.Now()
	seeds := make(chan uint64)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var total Report
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for seed := range seeds {
				rep, err := Run(seed, cfg)
				mu.Lock()
				if err != nil {
					t.Errorf("seed %d: %v\n%v\nreproduce: go test ./actors/sim -run '%s$' -seed %d%s -v",
						seed, err, rep, t.Name(), seed, ordersArg())
				} else if testing.Verbose() && n <= 20 {
					t.Logf("seed %d: %v", seed, rep)
				}
				total.add(rep)
				mu.Unlock()
			}
		})
	}
	for seed := first; seed < first+uint64(n); seed++ {
		seeds <- seed
	}
	close(seeds)
	wg.Wait()
	t.Logf("%d seeds from %d in %v; all together: %v", n, first, time.Since(start).Round(time.Millisecond), total)
}

func ordersArg() string {
	if *ordersFlag == 0 {
		return ""
	}
	return fmt.Sprintf(" -orders %d", *ordersFlag)
}

// The same seed gives the same run, with the real shells and with the
// model.
func TestSimulationIsDeterministic(t *testing.T) {
	for _, cfg := range []Config{{Orders: 60}, {Orders: 200, Model: true}} {
		a, errA := Run(7, cfg)
		b, errB := Run(7, cfg)
		if a != b || fmt.Sprint(errA) != fmt.Sprint(errB) {
			t.Fatalf("seed 7 twice (model %v):\n%v (%v)\n%v (%v)", cfg.Model, a, errA, b, errB)
		}
	}
}

// TestSplitFlushWakeTime replays the seeds that found a bug of
// durableLog.flush: a buffer longer than AppendEventsMax went out as
// several appends that all carried the wake time of the whole buffer's
// final state. A node crash that kept the first append and lost the next
// left the journal with the events of an intermediate state and the wake
// time of a state that never became durable: here an expired order that
// still owed releases was stored with wake time 0, so the waker never
// brought it back and the releases were never sent. Each append now ends
// at a command boundary and carries the wake time of the state there.
func TestSplitFlushWakeTime(t *testing.T) {
	for _, seed := range []uint64{2146, 9280} {
		if rep, err := Run(seed, Config{Orders: shellTestOrders}); err != nil {
			t.Errorf("seed %d: %v\n%v", seed, err, rep)
		}
	}
}
