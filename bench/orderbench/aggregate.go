package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// summary is the median of one server's rounds on one workload.
type summary struct {
	Label, Workload string
	Rounds          int
	RPS             float64
	CheckoutRPS     float64
	Latency         Latency // medians of each percentile across rounds
	Errors          uint64  // summed over rounds
	Oversell        int64   // worst round
	Inconsistent    int     // rounds whose stock check failed
	Verified        int     // rounds with a stock check
}

// median of xs; the mean of the middle two for an even count.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// ratio is a/b, or 0 when b is 0 (shown as "–").
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// summarize groups results by workload and server and takes medians.
func summarize(results []Result) []summary {
	type key struct{ w, l string }
	groups := map[key][]Result{}
	var order []key
	for _, r := range results {
		k := key{r.Workload, r.Label}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	out := make([]summary, 0, len(order))
	for _, k := range order {
		rs := groups[k]
		pick := func(f func(Result) float64) float64 {
			xs := make([]float64, len(rs))
			for i, r := range rs {
				xs[i] = f(r)
			}
			return median(xs)
		}
		s := summary{Label: k.l, Workload: k.w, Rounds: len(rs),
			RPS:         pick(func(r Result) float64 { return r.RPS }),
			CheckoutRPS: pick(func(r Result) float64 { return r.CheckoutRPS }),
			Latency: Latency{
				P50:  pick(func(r Result) float64 { return r.Latency.P50 }),
				P90:  pick(func(r Result) float64 { return r.Latency.P90 }),
				P99:  pick(func(r Result) float64 { return r.Latency.P99 }),
				P999: pick(func(r Result) float64 { return r.Latency.P999 }),
				Max:  pick(func(r Result) float64 { return r.Latency.Max }),
				Mean: pick(func(r Result) float64 { return r.Latency.Mean }),
			}}
		for _, r := range rs {
			s.Errors += r.Errors
			if v := r.Verify; v != nil {
				s.Verified++
				s.Oversell = max(s.Oversell, v.Oversell)
				if !v.Consistent {
					s.Inconsistent++
				}
			}
		}
		out = append(out, s)
	}
	return out
}

// find returns the summary of label on workload.
func find(ss []summary, workload, label string) (summary, bool) {
	for _, s := range ss {
		if s.Workload == workload && s.Label == label {
			return s, true
		}
	}
	return summary{}, false
}

// readResults loads every *.json file in dir (each one Result).
func readResults(dir string) ([]Result, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("list results: %w", err)
	}
	sort.Strings(files)
	out := make([]Result, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read result: %w", err)
		}
		var r Result
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("decode %s: %w", f, err)
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no results (*.json) in %s", dir)
	}
	return out, nil
}
