package chaos

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"
)

// The overlap check: every node logs "partition serving" when it starts
// serving a partition and "partition stopped" when it stops, with node,
// partition and epoch (cmd/orderd/served.go). Read into intervals, no two
// nodes may serve one partition at the same time, a partition's epoch may
// never go down, and one epoch of a partition belongs to one node. All
// nodes run on one machine and log with one clock, so the check allows no
// tolerance: intervals that only touch (one stops at the instant the other
// starts) do not overlap; any more does.

// Log messages the check reads.
const (
	msgServing = "partition serving"
	msgStopped = "partition stopped"
)

// serveEventsMax bounds the events kept of one process; more is a run
// gone wrong (partitions flapping), reported rather than kept.
const serveEventsMax = 1 << 18

// ServeEvent is one "partition serving" or "partition stopped" line.
type ServeEvent struct {
	Time      time.Time
	Node      string
	Partition int
	Epoch     uint64
	Serving   bool // false: stopped
}

// ProcessLog is the serve events of one orderd process, in the order it
// logged them, and when it was killed (zero: it ended by itself, cleanly,
// or is still running).
type ProcessLog struct {
	Node   string
	Events []ServeEvent
	Killed time.Time
}

// ServeInterval is one node serving one partition at one epoch from Start
// to End (zero End: still serving).
type ServeInterval struct {
	Node      string
	Partition int
	Epoch     uint64
	Start     time.Time
	End       time.Time
	Killed    bool // End is when the process was killed
}

func (iv ServeInterval) String() string {
	end := "open"
	if !iv.End.IsZero() {
		end = iv.End.Format("15:04:05.000000")
	}
	return fmt.Sprintf("%s p%d e%d [%s, %s]", iv.Node, iv.Partition, iv.Epoch, iv.Start.Format("15:04:05.000000"), end)
}

// overlaps reports whether a and b share an instant; an open end is the
// end of time, and touching ends do not count.
func (iv ServeInterval) overlaps(o ServeInterval) bool {
	before := func(x, y ServeInterval) bool { return !x.End.IsZero() && !x.End.After(y.Start) }
	return !before(iv, o) && !before(o, iv)
}

// parseServeLine reads one JSON log line; ok is false for any other line.
func parseServeLine(line []byte) (ev ServeEvent, ok bool) {
	if !bytes.Contains(line, []byte(`"partition `)) {
		return ev, false
	}
	var rec struct {
		Time      time.Time `json:"time"`
		Msg       string    `json:"msg"`
		Node      string    `json:"node"`
		Partition *int      `json:"partition"`
		Epoch     uint64    `json:"epoch"`
	}
	if json.Unmarshal(line, &rec) != nil || rec.Partition == nil || (rec.Msg != msgServing && rec.Msg != msgStopped) {
		return ev, false
	}
	return ServeEvent{Time: rec.Time, Node: rec.Node, Partition: *rec.Partition, Epoch: rec.Epoch, Serving: rec.Msg == msgServing}, true
}

// ServeIntervals turns processes' events into intervals. An interval still
// open when its process was killed ends at the kill; one still open in a
// process that was not killed stays open. Events that do not fit (a stop
// of a partition not served, or at another epoch than it was served at)
// are returned as problems.
func ServeIntervals(procs []ProcessLog) (ivs []ServeInterval, problems []string) {
	for _, p := range procs {
		open := map[int]ServeInterval{}
		for _, ev := range p.Events {
			if ev.Node != p.Node {
				problems = append(problems, fmt.Sprintf("process of %s logged an event as %s: %+v", p.Node, ev.Node, ev))
			}
			cur, serving := open[ev.Partition]
			switch {
			case ev.Serving && serving && cur.Epoch == ev.Epoch:
				// Said again; the interval goes on.
			case ev.Serving:
				if serving { // a new epoch without a stop: the old one ends here
					cur.End = ev.Time
					ivs = append(ivs, cur)
				}
				open[ev.Partition] = ServeInterval{Node: p.Node, Partition: ev.Partition, Epoch: ev.Epoch, Start: ev.Time}
			case !serving:
				problems = append(problems, fmt.Sprintf("%s stopped p%d e%d at %s without serving it", p.Node, ev.Partition, ev.Epoch, ev.Time.Format(time.RFC3339Nano)))
			default:
				if cur.Epoch != ev.Epoch {
					problems = append(problems, fmt.Sprintf("%s stopped p%d at e%d while serving e%d", p.Node, ev.Partition, ev.Epoch, cur.Epoch))
				}
				cur.End = ev.Time
				ivs = append(ivs, cur)
				delete(open, ev.Partition)
			}
		}
		for _, iv := range open {
			iv.End, iv.Killed = p.Killed, !p.Killed.IsZero() // zero when not killed: still open
			ivs = append(ivs, iv)
		}
	}
	slices.SortFunc(ivs, func(a, b ServeInterval) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), a.Start.Compare(b.Start), cmp.Compare(a.Node, b.Node))
	})
	return ivs, problems
}

// CheckServeIntervals returns every breach: two nodes serving a partition
// at once, an epoch lower than one served before it, one epoch served by
// two nodes. ivs are sorted by partition, then start (as ServeIntervals
// returns them).
func CheckServeIntervals(ivs []ServeInterval) []string {
	var breaches []string
	for start := 0; start < len(ivs); {
		end := start
		for end < len(ivs) && ivs[end].Partition == ivs[start].Partition {
			end++
		}
		part := ivs[start:end]
		owner := map[uint64]string{}
		var top ServeInterval
		for i, iv := range part {
			for _, o := range part[:i] {
				if o.Node != iv.Node && o.overlaps(iv) {
					breaches = append(breaches, fmt.Sprintf("p%d served by two nodes at once: %s and %s", iv.Partition, o, iv))
				}
			}
			if i > 0 && iv.Epoch < top.Epoch {
				breaches = append(breaches, fmt.Sprintf("p%d epoch went down: %s after %s", iv.Partition, iv, top))
			}
			if iv.Epoch >= top.Epoch {
				top = iv
			}
			if n, ok := owner[iv.Epoch]; ok && n != iv.Node {
				breaches = append(breaches, fmt.Sprintf("p%d e%d served by %s and by %s", iv.Partition, iv.Epoch, n, iv.Node))
			}
			owner[iv.Epoch] = iv.Node
		}
		start = end
	}
	return breaches
}

// Handoff is one partition passing from one node to another: the old
// holder stopped serving it at From, the new one served it at To.
type Handoff struct {
	Partition        int
	From, To         string
	Stopped, Serving time.Time
}

// Took is how long the partition was served by nobody.
func (h Handoff) Took() time.Duration { return h.Serving.Sub(h.Stopped) }

// Handoffs finds, in sorted intervals, each partition's moves from one
// node to another after a stop (not after a kill: no handoff follows one).
func Handoffs(ivs []ServeInterval) []Handoff {
	var hs []Handoff
	for i := 1; i < len(ivs); i++ {
		prev, next := ivs[i-1], ivs[i]
		if prev.Partition != next.Partition || prev.Node == next.Node || prev.End.IsZero() || prev.Killed {
			continue
		}
		hs = append(hs, Handoff{Partition: next.Partition, From: prev.Node, To: next.Node, Stopped: prev.End, Serving: next.Start})
	}
	return hs
}

// serveTap is a node's output on its way to the node's log buffer: it
// picks the serve events out of it, one ProcessLog per process started.
type serveTap struct {
	node    string
	mu      sync.Mutex
	partial []byte
	procs   []ProcessLog
	dropped int // events beyond serveEventsMax
}

// begin starts the log of a new process.
func (t *serveTap) begin() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = t.partial[:0]
	t.procs = append(t.procs, ProcessLog{Node: t.node})
}

// killed marks the current process killed at.
func (t *serveTap) killed(at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.procs) > 0 {
		t.procs[len(t.procs)-1].Killed = at
	}
}

func (t *serveTap) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.procs) == 0 {
		t.procs = append(t.procs, ProcessLog{Node: t.node})
	}
	t.partial = append(t.partial, p...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		if ev, ok := parseServeLine(t.partial[:i]); ok {
			cur := &t.procs[len(t.procs)-1]
			if len(cur.Events) < serveEventsMax {
				cur.Events = append(cur.Events, ev)
			} else {
				t.dropped++
			}
		}
		t.partial = t.partial[i+1:]
	}
	// A line never ends: keep a bounded tail of it only.
	if len(t.partial) > logBytesMax {
		t.partial = t.partial[len(t.partial)-logBytesMax:]
	}
	return len(p), nil
}

// logs returns a copy of the process logs so far.
func (t *serveTap) logs() ([]ProcessLog, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]ProcessLog, len(t.procs))
	for i, p := range t.procs {
		out[i] = p
		out[i].Events = slices.Clone(p.Events)
	}
	return out, t.dropped
}
