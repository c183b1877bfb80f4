package chaos

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// serveLine is a line as orderd logs it with -log-format json.
func serveLine(ms int, msg, node string, p int, epoch uint64) string {
	return fmt.Sprintf(`{"time":%q,"level":"INFO","msg":%q,"node":%q,"partition":%d,"epoch":%d}`+"\n",
		at(ms).Format(time.RFC3339Nano), msg, node, p, epoch)
}

func serving(ms int, node string, p int, e uint64) string {
	return serveLine(ms, msgServing, node, p, e)
}
func stopped(ms int, node string, p int, e uint64) string {
	return serveLine(ms, msgStopped, node, p, e)
}

// process is the log of one process, killed at killMs unless it is 0.
type process struct {
	node   string
	lines  []string
	killMs int
}

// tapLogs runs procs' output through serveTaps, in pieces that cut lines,
// with other log lines between, as a node's stderr arrives.
func tapLogs(procs []process) []ProcessLog {
	taps := map[string]*serveTap{}
	var order []string
	for _, p := range procs {
		tap := taps[p.node]
		if tap == nil {
			tap = &serveTap{node: p.node}
			taps[p.node] = tap
			order = append(order, p.node)
		}
		tap.begin()
		out := `{"time":"2026-11-30T12:00:00Z","level":"INFO","msg":"orderd listening"}` + "\n" + strings.Join(p.lines, `{"msg":"partition table","partition":"not a number"}`+"\n")
		for len(out) > 0 {
			n := min(len(out), 37)
			tap.Write([]byte(out[:n]))
			out = out[n:]
		}
		if p.killMs != 0 {
			tap.killed(at(p.killMs))
		}
	}
	var all []ProcessLog
	for _, n := range order {
		logs, _ := taps[n].logs()
		all = append(all, logs...)
	}
	return all
}

func TestParseServeLine(t *testing.T) {
	ev, ok := parseServeLine([]byte(strings.TrimSpace(stopped(1500, "n2", 17, 3))))
	want := ServeEvent{Time: at(1500), Node: "n2", Partition: 17, Epoch: 3}
	if !ok || ev != want {
		t.Fatalf("got %+v %v, want %+v", ev, ok, want)
	}
	for _, line := range []string{
		`{"msg":"partition serving","node":"n1","epoch":1}`, // no partition
		`{"msg":"partition table changed","node":"n1","partition":1,"epoch":1}`,
		`partition serving node=n1 partition=1 epoch=1`, // text format
		`{"msg":"partition serving",`,
	} {
		if ev, ok := parseServeLine([]byte(line)); ok {
			t.Errorf("%s: parsed as %+v", line, ev)
		}
	}
}

func TestServeOverlapCheck(t *testing.T) {
	for _, tc := range []struct {
		name     string
		procs    []process
		breaches []string // substrings, one per breach expected
		problems []string
		handoffs []time.Duration
	}{{
		name: "handoff and a join",
		procs: []process{
			{node: "n1", lines: []string{serving(0, "n1", 0, 1), serving(0, "n1", 1, 1), stopped(100, "n1", 1, 1)}},
			{node: "n2", lines: []string{serving(130, "n2", 1, 2)}},
		},
		handoffs: []time.Duration{30 * time.Millisecond},
	}, {
		name: "intervals that only touch",
		procs: []process{
			{node: "n1", lines: []string{serving(0, "n1", 4, 1), stopped(100, "n1", 4, 1)}},
			{node: "n2", lines: []string{serving(100, "n2", 4, 2), stopped(200, "n2", 4, 2)}},
			{node: "n1", lines: []string{serving(200, "n1", 4, 3)}},
		},
		handoffs: []time.Duration{0, 0},
	}, {
		name: "new holder serves before the old one stopped",
		procs: []process{
			{node: "n1", lines: []string{serving(0, "n1", 2, 1), stopped(100, "n1", 2, 1)}},
			{node: "n2", lines: []string{serving(99, "n2", 2, 2)}},
		},
		breaches: []string{"p2 served by two nodes at once"},
	}, {
		name: "killed node's open interval ends at the kill",
		procs: []process{
			{node: "n1", lines: []string{serving(0, "n1", 3, 1), serving(0, "n1", 5, 1)}, killMs: 500},
			{node: "n2", lines: []string{serving(500, "n2", 3, 2), serving(400, "n2", 5, 2)}},
		},
		breaches: []string{"p5 served by two nodes at once"},
	}, {
		name: "restart of a node at its epoch",
		procs: []process{
			{node: "n1", lines: []string{serving(0, "n1", 3, 1)}, killMs: 500},
			{node: "n1", lines: []string{serving(900, "n1", 3, 1)}},
		},
	}, {
		name: "an open interval of a node never stopped",
		procs: []process{
			{node: "n1", lines: []string{serving(0, "n1", 6, 1)}},
			{node: "n2", lines: []string{serving(10_000, "n2", 6, 2)}},
		},
		breaches: []string{"p6 served by two nodes at once"},
	}, {
		name: "epoch goes down",
		procs: []process{
			{node: "n1", lines: []string{serving(0, "n1", 7, 4), stopped(100, "n1", 7, 4)}},
			{node: "n2", lines: []string{serving(200, "n2", 7, 3)}},
		},
		breaches: []string{"p7 epoch went down"},
	}, {
		name: "one epoch on two nodes",
		procs: []process{
			{node: "n1", lines: []string{serving(0, "n1", 8, 2), stopped(100, "n1", 8, 2)}},
			{node: "n2", lines: []string{serving(200, "n2", 8, 2)}},
		},
		breaches: []string{"p8 e2 served by n1 and by n2"},
	}, {
		name: "a new epoch without a stop ends the old one",
		procs: []process{
			{node: "n1", lines: []string{serving(0, "n1", 9, 1), serving(50, "n1", 9, 2), stopped(100, "n1", 9, 2)}},
			{node: "n2", lines: []string{serving(60, "n2", 9, 3)}},
		},
		breaches: []string{"p9 served by two nodes at once"},
	}, {
		name: "stops that fit nothing",
		procs: []process{
			{node: "n1", lines: []string{stopped(0, "n1", 10, 1), serving(10, "n1", 11, 1), stopped(20, "n1", 11, 2)}},
		},
		problems: []string{"without serving it", "while serving e1"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ivs, problems := ServeIntervals(tapLogs(tc.procs))
			breaches := CheckServeIntervals(ivs)
			match := func(what string, got, want []string) {
				t.Helper()
				ok := len(got) == len(want)
				for i := 0; ok && i < len(want); i++ {
					ok = strings.Contains(got[i], want[i])
				}
				if !ok {
					t.Errorf("%s: got %q, want %q\nintervals: %v", what, got, want, ivs)
				}
			}
			match("breaches", breaches, tc.breaches)
			match("problems", problems, tc.problems)
			if tc.handoffs != nil {
				var took []time.Duration
				for _, h := range Handoffs(ivs) {
					took = append(took, h.Took())
				}
				if !slices.Equal(took, tc.handoffs) {
					t.Errorf("handoffs took %v, want %v", took, tc.handoffs)
				}
			}
		})
	}
}

func TestSettledWhy(t *testing.T) {
	view := func(self string, members []string, holders ...string) ClusterView {
		v := ClusterView{Mode: "cluster", Self: self, Ready: true, Partitions: len(holders)}
		for _, m := range members {
			v.Members = append(v.Members, ClusterMember{Name: m, State: "alive", Self: m == self})
		}
		for p, h := range holders {
			v.Table = append(v.Table, ClusterPart{Partition: p, Holder: h, Epoch: 1, State: "serving"})
		}
		return v
	}
	up := []string{"n1", "n2"}
	good := map[string]ClusterView{"n1": view("n1", up, "n1", "n2"), "n2": view("n2", up, "n1", "n2")}
	if why := settledWhy(good, up, 2); why != "" {
		t.Errorf("settled views: %s", why)
	}
	pending := view("n2", up, "n1", "n2")
	pending.Table[1].State = "pending"
	dead := view("n2", up, "n1", "n2")
	dead.Members[0].State = "dead"
	moved := view("n2", up, "n1", "n2")
	moved.Table[0].Holder = "n2"
	single := ClusterView{Mode: "single-node"}
	for name, bad := range map[string]ClusterView{"pending": pending, "dead": dead, "disagree": moved, "single": single} {
		if why := settledWhy(map[string]ClusterView{"n1": good["n1"], "n2": bad}, up, 2); why == "" {
			t.Errorf("%s: taken for settled", name)
		}
	}
	if why := settledWhy(map[string]ClusterView{"n1": good["n1"]}, up, 2); why == "" {
		t.Error("a node without a view: taken for settled")
	}
}

func TestTargetPartition(t *testing.T) {
	for path, want := range map[string]int{
		"/v1/skus/S-1":          PartitionOf("sku", "S-1", 64),
		"/v1/skus/S-1/restock":  PartitionOf("sku", "S-1", 64),
		"/v1/orders/o_1/pay":    PartitionOf("order", "o_1", 64),
		"/v1/orders/o_1":        PartitionOf("order", "o_1", 64),
		"/v1/orders":            -1,
		"/v1/cluster":           -1,
		"/v1/skus/":             -1,
		"/v1/orders/o_2/cancel": PartitionOf("order", "o_2", 64),
	} {
		if got := targetPartition(path, 64); got != want {
			t.Errorf("%s: partition %d, want %d", path, got, want)
		}
	}
	if a, b := PartitionOf("sku", "S-1", 64), PartitionOf("order", "S-1", 64); a == b {
		t.Logf("sku/S-1 and order/S-1 share partition %d (possible, but the kinds are hashed apart)", a)
	}
	skus := DistinctSKUs("S", 8, 64)
	seen := map[int]bool{}
	for _, s := range skus {
		seen[PartitionOf("sku", s, 64)] = true
	}
	if len(skus) != 8 || len(seen) != 8 {
		t.Errorf("DistinctSKUs: %v on %d partitions", skus, len(seen))
	}
}

func TestCheckDown(t *testing.T) {
	w := downWindow{node: "n2", why: "killed", parts: []int{3}, from: at(1000), to: at(5000)}
	req := func(gw string, part, startMs, tookMs, status int, slug string) requestRecord {
		return requestRecord{gateway: gw, part: part, start: at(startMs), took: time.Duration(tookMs) * time.Millisecond, status: status, slug: slug}
	}
	d := checkDown(w, []requestRecord{
		req("n1", 3, 1100, 5, 503, "unavailable"),
		req("n3", 3, 1200, 40, 503, "unavailable"),
		req("n1", 3, 1300, 10, 200, ""),          // served: wrong
		req("n1", 3, 1400, 10, 404, "not-found"), // refused: wrong
		req("n1", 3, 1500, 10, 429, "overloaded"),
		req("n2", 3, 1600, 10, 0, ""),               // through the dead gateway: not counted
		req("n1", 4, 1700, 10, 200, ""),             // another partition
		req("n1", 3, 900, 200, 200, ""),             // began before the kill
		req("n1", 3, 4990, 20, 200, ""),             // ended after the restart began
		req("n1", -1, 2000, 10, 503, "unavailable"), // a checkout
	})
	want := DownReport{Node: "n2", Why: "killed", Down: 4 * time.Second, Requests: 5, Unavailable: 2, Other: 1, Wrong: 2, SlowestWait: 40 * time.Millisecond}
	if d != want {
		t.Errorf("got  %+v\nwant %+v", d, want)
	}
}
