package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Bounds of a cluster's life in a test.
const (
	settleWaitMax = 60 * time.Second       // from a change until every partition serves again
	settlePoll    = 100 * time.Millisecond // between two looks at every node's /v1/cluster
	viewTimeout   = 2 * time.Second        // one GET /v1/cluster
	viewBytesMax  = 4 << 20                // its body
)

// PartitionOf is the partition of an identity of kind ("sku", "order"),
// as the engine places it: FNV-1a (32 bits) of "kind/id" modulo the
// partition count. The engine documents the function as fixed forever
// (its journal keys depend on it) and reproducible elsewhere, which is
// what a client that wants to aim at one node's partitions does here.
func PartitionOf(kind, id string, partitions int) int {
	h := fnv.New32a()
	io.WriteString(h, kind+"/"+id)
	return int(h.Sum32() % uint32(partitions))
}

// ClusterView is the JSON of GET /v1/cluster.
type ClusterView struct {
	Mode       string          `json:"mode"`
	ClusterID  string          `json:"cluster_id"`
	Self       string          `json:"self"`
	Ready      bool            `json:"ready"`
	Partitions int             `json:"partitions"`
	Members    []ClusterMember `json:"members"`
	Table      []ClusterPart   `json:"table"`
	Conflicts  int             `json:"conflicts"`
}

// ClusterMember is one member in a ClusterView.
type ClusterMember struct {
	Name          string `json:"name"`
	Address       string `json:"address"`
	RemoteAddress string `json:"remote_address"`
	Generation    uint64 `json:"generation"`
	State         string `json:"state"`
	Self          bool   `json:"self"`
	Partitions    []int  `json:"partitions"`
}

// ClusterPart is one partition's row of the table.
type ClusterPart struct {
	Partition  int    `json:"partition"`
	Holder     string `json:"holder"`
	Generation uint64 `json:"generation"`
	Epoch      uint64 `json:"epoch"`
	State      string `json:"state"`
}

// Holders maps each partition to its holder in v's table.
func (v ClusterView) Holders() map[int]string {
	out := make(map[int]string, len(v.Table))
	for _, p := range v.Table {
		out[p.Partition] = p.Holder
	}
	return out
}

// HeldBy returns the partitions v's table gives to node.
func (v ClusterView) HeldBy(node string) []int {
	var out []int
	for _, p := range v.Table {
		if p.Holder == node {
			out = append(out, p.Partition)
		}
	}
	return out
}

// settledWhy says why views (node name to its view) do not show a settled
// cluster of exactly the members up, with partitions partitions, each
// serving at one holder among them and all views agreeing; "" when they do.
func settledWhy(views map[string]ClusterView, up []string, partitions int) string {
	var first *ClusterView
	for _, name := range up {
		v, ok := views[name]
		switch {
		case !ok:
			return name + " gave no view"
		case v.Mode != "cluster":
			return fmt.Sprintf("%s is in mode %q", name, v.Mode)
		case !v.Ready:
			return name + " is not ready"
		case v.Partitions != partitions || len(v.Table) != partitions:
			return fmt.Sprintf("%s has %d partitions and %d table rows, want %d", name, v.Partitions, len(v.Table), partitions)
		case v.Conflicts != 0:
			return fmt.Sprintf("%s reports %d table conflicts", name, v.Conflicts)
		}
		alive := map[string]bool{}
		for _, m := range v.Members {
			if m.State == "alive" {
				alive[m.Name] = true
			}
		}
		for _, other := range up {
			if !alive[other] {
				return fmt.Sprintf("%s does not see %s alive", name, other)
			}
		}
		for _, p := range v.Table {
			if p.State != "serving" || !slices.Contains(up, p.Holder) {
				return fmt.Sprintf("%s: partition %d is %s at %q e%d", name, p.Partition, p.State, p.Holder, p.Epoch)
			}
		}
		if partitions >= 2*len(up) {
			held := map[string]int{}
			for _, p := range v.Table {
				held[p.Holder]++
			}
			for _, other := range up {
				if held[other] == 0 {
					return fmt.Sprintf("%s: %s holds no partition yet (handoffs to come)", name, other)
				}
			}
		}
		if first == nil {
			first = &v
			continue
		}
		for i, p := range v.Table {
			if q := first.Table[i]; p.Holder != q.Holder || p.Epoch != q.Epoch {
				return fmt.Sprintf("%s and %s disagree on partition %d: %s e%d, %s e%d", first.Self, name, p.Partition, q.Holder, q.Epoch, p.Holder, p.Epoch)
			}
		}
	}
	return ""
}

// ClusterConfig shapes a Cluster.
type ClusterConfig struct {
	Bin, Dir, Token string
	Partitions      int
	// RequestTimeout bounds the harness's clients' requests.
	RequestTimeout time.Duration
	// Single runs each member as a node of its own, without cluster
	// flags, and Settle takes it as holding every partition: the harness
	// and the run's checks can be tried on one node before the cluster
	// works. Only one member makes sense then.
	Single bool
	// SettleWaitMax bounds Settle (0: settleWaitMax).
	SettleWaitMax time.Duration
	Flags         []string  // more flags for every node
	Log           io.Writer // progress lines, or nil
}

// Member is one node of a Cluster.
type Member struct {
	Name           string
	Gossip, Remote string
	*Node
	Client *Client
	tap    *serveTap
	paused bool // SIGSTOPped; guarded by the Cluster's mu
}

// FaultEvent is one thing the harness did to a member.
type FaultEvent struct {
	Node string
	What string // start, join, sigterm, sigkill, restart, sigstop, sigcont
	At   time.Time
}

// Cluster is a set of orderd processes on 127.0.0.1 forming one cluster.
type Cluster struct {
	cfg ClusterConfig

	mu      sync.Mutex
	members []*Member
	events  []FaultEvent
}

// NewCluster describes an empty cluster; Start runs its first nodes.
func NewCluster(cfg ClusterConfig) *Cluster {
	if cfg.Partitions == 0 {
		cfg.Partitions = 64
	}
	if cfg.SettleWaitMax == 0 {
		cfg.SettleWaitMax = settleWaitMax
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	return &Cluster{cfg: cfg}
}

func (c *Cluster) logf(format string, args ...any) {
	if c.cfg.Log != nil {
		fmt.Fprintf(c.cfg.Log, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
	}
}

func (c *Cluster) note(node, what string) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	at := time.Now()
	c.events = append(c.events, FaultEvent{Node: node, What: what, At: at})
	return at
}

// Events returns what the harness did, in order.
func (c *Cluster) Events() []FaultEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.events)
}

// Partitions is the cluster's partition count.
func (c *Cluster) Partitions() int { return c.cfg.Partitions }

// Members returns every member ever started, in order.
func (c *Cluster) Members() []*Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.members)
}

// Member returns the member called name, or nil.
func (c *Cluster) Member(name string) *Member {
	for _, m := range c.Members() {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// Up returns the members whose process runs and is not paused.
func (c *Cluster) Up() []*Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	var up []*Member
	for _, m := range c.members {
		if !m.paused && m.Running() {
			up = append(up, m)
		}
	}
	return up
}

// Start runs n new members one after another (the first founds the
// cluster when there is none yet) and waits until it is settled.
func (c *Cluster) Start(ctx context.Context, n int) error {
	for range n {
		if _, err := c.add(ctx); err != nil {
			return err
		}
	}
	_, err := c.Settle(ctx)
	return err
}

// Add starts one more member, which joins through the running ones, and
// waits until the cluster is settled with it.
func (c *Cluster) Add(ctx context.Context) (*Member, error) {
	m, err := c.add(ctx)
	if err != nil {
		return nil, err
	}
	_, err = c.Settle(ctx)
	return m, err
}

func (c *Cluster) add(ctx context.Context) (*Member, error) {
	var addrs [3]string
	for i := range addrs {
		a, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		addrs[i] = a
	}
	c.mu.Lock()
	name := fmt.Sprintf("n%d", len(c.members)+1)
	c.mu.Unlock()
	m := &Member{Name: name, Gossip: addrs[1], Remote: addrs[2], tap: &serveTap{node: name}}
	m.Node = NewNode(c.cfg.Bin, filepath.Join(c.cfg.Dir, name), addrs[0], c.cfg.Token)
	m.Node.Tap = m.tap
	m.Client = NewClient(m.Base(), c.cfg.Token, c.cfg.RequestTimeout)
	seeds := c.seeds(m)
	c.mu.Lock()
	c.members = append(c.members, m)
	c.mu.Unlock()
	what := "join"
	if seeds == "" {
		what = "found"
	}
	c.logf("%s: %s (http %s, gossip %s, seeds %q)", name, what, m.Addr, m.Gossip, seeds)
	if err := c.run(ctx, m, seeds); err != nil {
		return m, err
	}
	c.note(name, what)
	return m, nil
}

// seeds are the gossip addresses of every running member but m.
func (c *Cluster) seeds(m *Member) string {
	var s []string
	for _, o := range c.Members() {
		if o != m && o.Running() {
			s = append(s, o.Gossip)
		}
	}
	return strings.Join(s, ",")
}

// run starts m's process with its cluster flags and waits for /readyz.
func (c *Cluster) run(ctx context.Context, m *Member, seeds string) error {
	m.Flags = append([]string{"-node", m.Name, "-gossip", m.Gossip, "-remote", m.Remote,
		"-partitions", fmt.Sprint(c.cfg.Partitions), "-log-format", "json", "-log-level", "info"}, c.cfg.Flags...)
	if c.cfg.Single {
		m.Flags = append([]string{"-log-format", "json", "-log-level", "info"}, c.cfg.Flags...)
	} else if seeds != "" {
		m.Flags = append(m.Flags, "-seeds", seeds)
	}
	m.tap.begin()
	if err := m.Start(ctx); err != nil {
		return fmt.Errorf("%s: %w", m.Name, err)
	}
	return nil
}

// Term stops m with SIGTERM (it hands its partitions to the others) and
// waits for it to exit and the rest to settle.
func (c *Cluster) Term(ctx context.Context, m *Member) error {
	c.setPaused(m, false)
	c.note(m.Name, "sigterm")
	c.logf("%s: SIGTERM", m.Name)
	if err := m.Stop(); err != nil {
		return fmt.Errorf("%s: %w", m.Name, err)
	}
	c.logf("%s: exited", m.Name)
	m.Client.ForgetConnections()
	_, err := c.Settle(ctx)
	return err
}

// Kill SIGKILLs m and returns once it has exited, with the time it had.
func (c *Cluster) Kill(m *Member) (time.Time, error) {
	c.setPaused(m, false)
	c.logf("%s: SIGKILL", m.Name)
	if err := m.Node.Kill(); err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", m.Name, err)
	}
	at := c.note(m.Name, "sigkill")
	m.tap.killed(at)
	m.Client.ForgetConnections()
	return at, nil
}

// Restart starts m again on its name, data directory and addresses,
// joining through the running members, without waiting for the cluster
// to settle.
func (c *Cluster) Restart(ctx context.Context, m *Member) error {
	c.logf("%s: restart", m.Name)
	if err := c.run(ctx, m, c.seeds(m)); err != nil {
		return err
	}
	c.note(m.Name, "restart")
	return nil
}

// Pause SIGSTOPs m; Resume SIGCONTs it.
func (c *Cluster) Pause(m *Member) error {
	c.setPaused(m, true)
	c.note(m.Name, "sigstop")
	c.logf("%s: SIGSTOP", m.Name)
	return m.Signal(syscall.SIGSTOP)
}

// Resume continues a paused member.
func (c *Cluster) Resume(m *Member) error {
	err := m.Signal(syscall.SIGCONT)
	c.setPaused(m, false)
	c.note(m.Name, "sigcont")
	c.logf("%s: SIGCONT", m.Name)
	return err
}

func (c *Cluster) setPaused(m *Member, p bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m.paused = p
}

// Shutdown kills every member still running (a test's cleanup).
func (c *Cluster) Shutdown() error {
	var errs []error
	for _, m := range c.Members() {
		if m.Running() {
			_, err := c.Kill(m)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// View reads m's /v1/cluster.
func (c *Cluster) View(ctx context.Context, m *Member) (ClusterView, error) {
	ctx, cancel := context.WithTimeout(ctx, viewTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", m.Base()+"/v1/cluster", nil)
	if err != nil {
		return ClusterView{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ClusterView{}, err
	}
	defer resp.Body.Close()
	var v ClusterView
	if resp.StatusCode != 200 {
		return v, fmt.Errorf("GET /v1/cluster of %s: %s", m.Name, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, viewBytesMax))
	if err != nil {
		return v, err
	}
	// A node that is not a cluster member shows another shape; its mode
	// is what matters then.
	if err := json.Unmarshal(body, &struct{ Mode *string }{&v.Mode}); err != nil || v.Mode != "cluster" {
		return v, err
	}
	return v, json.Unmarshal(body, &v)
}

// Settle waits, for at most the configured SettleWaitMax, until every running member is
// up, sees exactly the running members alive, and every partition serves
// at one of them, all views agreeing; it returns one of the views. A
// paused member makes it wait for its resumption.
func (c *Cluster) Settle(ctx context.Context) (ClusterView, error) {
	if c.cfg.Single {
		return c.singleView(), nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.SettleWaitMax)
	defer cancel()
	began := time.Now()
	why := ""
	// A table must also stay the same for settleStable: handoffs start
	// a moment after a member joins, and one at a time per holder.
	var calm *ClusterView
	var calmSince time.Time
	for {
		views, errs := map[string]ClusterView{}, map[string]error{}
		var up []string
		var any ClusterView
		for _, m := range c.Members() {
			if !m.Running() {
				continue
			}
			up = append(up, m.Name)
			if v, err := c.View(ctx, m); err == nil {
				views[m.Name], any = v, v
			} else {
				errs[m.Name] = err
			}
		}
		if why = settledWhy(views, up, c.cfg.Partitions); why == "" {
			switch {
			case calm == nil || !sameTable(*calm, any):
				calm, calmSince = &any, time.Now()
				why = "waiting for the table to stay the same"
			case time.Since(calmSince) >= settleStable:
				c.logf("settled in %v: %s", time.Since(began).Round(time.Millisecond), describeHolders(any))
				return any, nil
			default:
				why = "waiting for the table to stay the same"
			}
		} else {
			calm = nil
		}
		for name, err := range errs {
			why += fmt.Sprintf("; %s: %v", name, err)
		}
		select {
		case <-ctx.Done():
			return ClusterView{}, fmt.Errorf("cluster not settled within %v: %s", c.cfg.SettleWaitMax, why)
		case <-time.After(settlePoll):
		}
	}
}

// settleStable is how long a settled table must stay the same.
const settleStable = time.Second

// sameTable reports whether a and b agree on every partition's holder
// and epoch.
func sameTable(a, b ClusterView) bool {
	if len(a.Table) != len(b.Table) {
		return false
	}
	for i := range a.Table {
		if a.Table[i].Holder != b.Table[i].Holder || a.Table[i].Epoch != b.Table[i].Epoch {
			return false
		}
	}
	return true
}

// singleView is a settled view of a Single cluster: its first member
// holds every partition.
func (c *Cluster) singleView() ClusterView {
	first := c.Members()[0].Name
	v := ClusterView{Mode: "single-node", Self: first, Ready: true, Partitions: c.cfg.Partitions,
		Members: []ClusterMember{{Name: first, State: "alive", Self: true}}}
	for p := range c.cfg.Partitions {
		v.Table = append(v.Table, ClusterPart{Partition: p, Holder: first, Epoch: 1, State: "serving"})
	}
	return v
}

// describeHolders counts each holder's partitions.
func describeHolders(v ClusterView) string {
	n := map[string]int{}
	for _, p := range v.Table {
		n[p.Holder]++
	}
	var b strings.Builder
	for _, m := range v.Members {
		fmt.Fprintf(&b, "%s:%d ", m.Name, n[m.Name])
	}
	return strings.TrimSpace(b.String())
}

// ServeLogs returns every member's process logs of serve events, and how
// many events were dropped past serveEventsMax.
func (c *Cluster) ServeLogs() ([]ProcessLog, int) {
	var all []ProcessLog
	dropped := 0
	for _, m := range c.Members() {
		logs, d := m.tap.logs()
		all, dropped = append(all, logs...), dropped+d
	}
	return all, dropped
}

// CheckServing runs the overlap check over every member's logs so far:
// it returns the intervals, the handoffs seen and every breach found.
func (c *Cluster) CheckServing() ([]ServeInterval, []Handoff, []string) {
	logs, dropped := c.ServeLogs()
	ivs, problems := ServeIntervals(logs)
	if dropped > 0 {
		problems = append(problems, fmt.Sprintf("%d serve events dropped past %d per process", dropped, serveEventsMax))
	}
	return ivs, Handoffs(ivs), append(problems, CheckServeIntervals(ivs)...)
}
