package chaos

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// neverReturned is the return time of an operation whose outcome is
// unknown: it may take effect at any point after its call, for as long as
// the history lasts, or never.
const neverReturned = math.MaxInt64

// checkTimeMax bounds Porcupine's search over one history; past it the
// result is Unknown, which the tests report as a failure to conclude.
const checkTimeMax = 2 * time.Minute

// Recorder collects a concurrent history of operations. Each client of a
// recording takes a ClientID and gives it up after an operation of unknown
// outcome, since that operation stays open while the client goes on.
type Recorder struct {
	start   time.Time
	mu      sync.Mutex
	ops     []porcupine.Operation
	clients int
	dropped int // operations left out: never sent, or reads with no answer
}

// NewRecorder starts a history at time zero now.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

// ClientID returns a fresh client identity.
func (r *Recorder) ClientID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clients++
	return r.clients - 1
}

// Now is the history's clock: nanoseconds since the start, monotonic.
func (r *Recorder) Now() int64 { return int64(time.Since(r.start)) }

// Add records an operation called at call that ended now with out. It
// returns whether the client must take a new ClientID (the operation stays
// open forever).
func (r *Recorder) Add(client int, in Input, call int64, out Output) (open bool) {
	ret := r.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case out.Outcome == NotSent, out.Outcome == Unknown && in.Kind == OpRead:
		r.dropped++ // changed nothing, or observed nothing
		return false
	case out.Outcome == Unknown:
		ret, open = neverReturned, true
	}
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	return open
}

// AddAt records a definite operation called at call that took took.
func (r *Recorder) AddAt(client int, in Input, call int64, took time.Duration, out Output) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: call + int64(took)})
}

// HistoryStats counts a history's operations.
type HistoryStats struct {
	Ops, Unknown, Dropped, Clients, SKUs int
}

func (s HistoryStats) String() string {
	return fmt.Sprintf("%d operations (%d of unknown outcome, %d left out) on %d SKUs",
		s.Ops, s.Unknown, s.Dropped, s.SKUs)
}

// Stats counts what has been recorded.
func (r *Recorder) Stats() HistoryStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := HistoryStats{Ops: len(r.ops), Dropped: r.dropped, Clients: r.clients}
	skus := map[string]bool{}
	for _, op := range r.ops {
		skus[op.Input.(Input).SKU] = true
		if op.Return == neverReturned {
			s.Unknown++
		}
	}
	s.SKUs = len(skus)
	return s
}

// Check runs Porcupine over the history. When it is not linearizable, or
// the check could not conclude in time, it writes Porcupine's HTML view of
// the history into a new directory under dir (os.TempDir when empty) that
// outlives the test, and returns an error naming the file.
func (r *Recorder) Check(dir string) (porcupine.CheckResult, error) {
	r.mu.Lock()
	ops := append([]porcupine.Operation(nil), r.ops...)
	r.mu.Unlock()
	model := StockModel.ToModel()
	res, info := porcupine.CheckOperationsVerbose(model, ops, checkTimeMax)
	if res == porcupine.Ok {
		return res, nil
	}
	out, err := os.MkdirTemp(dir, "orderengine-history-")
	if err != nil {
		return res, fmt.Errorf("history %s; saving it: %w", res, err)
	}
	path := filepath.Join(out, "history.html")
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		return res, fmt.Errorf("history %s; visualising it: %w", res, err)
	}
	text := filepath.Join(out, "history.txt")
	if err := os.WriteFile(text, describeHistory(ops, info), 0o644); err != nil {
		return res, fmt.Errorf("history %s; saving it: %w", res, err)
	}
	return res, fmt.Errorf("history %s (%d operations): Porcupine's view of it is in %s, the operations by SKU and call time in %s",
		res, len(ops), path, text)
}

// describedStatesMax bounds the model states history.txt shows after one
// step. Operations of unknown outcome multiply the states a step can
// lead to: a failing cluster history once wrote 1.7 GB listing them all.
const describedStatesMax = 8

// distinctStates drops the states equal to an earlier one, as Porcupine
// does with a nondeterministic model's states.
func distinctStates(states []any) []any {
	byHash := map[uint64][]any{}
	var out []any
	for _, st := range states {
		h := hashState(st)
		if slices.ContainsFunc(byHash[h], func(o any) bool { return equalStates(o, st) }) {
			continue
		}
		byHash[h] = append(byHash[h], st)
		out = append(out, st)
	}
	return out
}

// describeHistory lists the operations of each SKU in call order, with
// call and return times in milliseconds, then the longest order of
// operations the checker found for each SKU and the states it leads to:
// what follows it is where no order fits.
func describeHistory(ops []porcupine.Operation, info porcupine.LinearizationInfo) []byte {
	var b bytes.Buffer
	for _, lin := range info.PartialLinearizationsOperations() {
		var longest []porcupine.Operation
		for _, seq := range lin {
			if len(seq) > len(longest) {
				longest = seq
			}
		}
		if len(longest) == 0 {
			continue
		}
		states := StockModel.Init()
		fmt.Fprintf(&b, "longest linearization of %s (%d operations):\n", longest[0].Input.(Input).SKU, len(longest))
		for _, op := range longest {
			var next []any
			for _, st := range states {
				next = append(next, step(st, op.Input, op.Output)...)
			}
			states = distinctStates(next)
			fmt.Fprintf(&b, "  %-60s =>", StockModel.DescribeOperation(op.Input, op.Output))
			for _, st := range states[:min(len(states), describedStatesMax)] {
				fmt.Fprintf(&b, " [%s]", StockModel.DescribeState(st))
			}
			if len(states) > describedStatesMax {
				fmt.Fprintf(&b, " and %d more", len(states)-describedStatesMax)
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	for _, part := range StockModel.Partition(ops) {
		slices.SortStableFunc(part, func(x, y porcupine.Operation) int { return cmp.Compare(x.Call, y.Call) })
		for _, op := range part {
			ret := "never"
			if op.Return != neverReturned {
				ret = fmt.Sprintf("%.3f", float64(op.Return)/1e6)
			}
			fmt.Fprintf(&b, "%10.3f %10s  client %3d  %s\n", float64(op.Call)/1e6, ret, op.ClientId,
				StockModel.DescribeOperation(op.Input, op.Output))
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}
