package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/orderengine/orderengine/cluster/pb"
)

// Routing tests run two or three actor systems, each with remote on
// 127.0.0.1 and a router, in one process. Their views are fakes the test
// controls (fakeViews): every node starts with the same table and all
// members alive, and a test changes one node's view to make it stale or to
// hide a member.

const (
	routeTestPartitions = 4
	// routeTestTimeout bounds every request in these tests.
	routeTestTimeout = 5 * time.Second
)

// routeTestPartition maps IDs of the form "p<digit>-..." to that
// partition, so that tests choose where an identity lives.
func routeTestPartition(_, id string) int {
	if len(id) < 2 || id[0] != 'p' || id[1] < '0' || id[1] > '9' {
		return 0
	}
	return int(id[1]-'0') % routeTestPartitions
}

// fakeViews is a ViewSource whose view a test sets.
type fakeViews struct {
	mu sync.Mutex
	v  View
}

func (f *fakeViews) View() View {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.v
	v.Table = f.v.Table.Clone()
	v.Members = append([]Member(nil), f.v.Members...)
	return v
}

func (f *fakeViews) update(change func(v *View)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(&f.v)
}

// setAssignment sets partition p's entry in the view's table.
func (f *fakeViews) setAssignment(p int, a Assignment) {
	f.update(func(v *View) {
		v.Table = v.Table.Clone()
		v.Table.Partitions[p] = a
	})
}

// routeNode is one node: an actor system with remote, a fake view and a
// router, and an echo actor per activated identity.
type routeNode struct {
	name   string
	holder Holder
	system *actor.ActorSystem
	remote *remote.Remote
	addr   string
	views  *fakeViews
	router *Router

	localAsks atomic.Int64
	// deadOnce makes the next activation return the PID of an actor that
	// does not exist, as if it had passivated since.
	deadOnce atomic.Bool
	// senders receives the sender of each command an echo actor answers.
	senders chan *actor.PID
	// handoffs receives each chunk handed to the node; refuseHandoff, when
	// set, is the error returned for it.
	handoffs      chan *pb.HandoffChunk
	refuseHandoff atomic.Pointer[string]
}

type routeCluster struct {
	log   *slog.Logger
	nodes []*routeNode
}

type routerOpt func(*RouterConfig)

// newRouteCluster starts one node per name. Partitions are spread over the
// nodes in order (0 on the first, 1 on the second, ...), at epoch 1.
func newRouteCluster(t testing.TB, names []string, opts ...routerOpt) *routeCluster {
	t.Helper()
	if raceDetector {
		t.Skip("several remotes in one process race on grpc's global logger under -race (race_on_test.go); run without -race")
	}
	out := &guardedWriter{w: t.Output()}
	t.Cleanup(func() { out.closed.Store(true) })
	c := &routeCluster{log: slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	for _, name := range names {
		c.nodes = append(c.nodes, c.startNode(t, name, "127.0.0.1:0", opts...))
	}
	table := NewTable(routeTestPartitions)
	table.ClusterID = "test"
	for p := range table.Partitions {
		table.Partitions[p] = Assignment{Holder: c.nodes[p%len(c.nodes)].holder, Epoch: 1, State: StateServing}
	}
	members := c.members()
	for _, n := range c.nodes {
		n.views.update(func(v *View) { v.Table, v.Members = table.Clone(), members })
	}
	return c
}

func (c *routeCluster) members() []Member {
	var members []Member
	for _, n := range c.nodes {
		members = append(members, Member{Name: n.name, Addr: n.addr, Alive: true,
			Meta: Meta{Generation: 1, RemoteAddress: n.addr, Partitions: routeTestPartitions}})
	}
	return members
}

// startNode starts a node's actor system, remote (on bind) and router.
func (c *routeCluster) startNode(t testing.TB, name, bind string, opts ...routerOpt) *routeNode {
	t.Helper()
	logger := c.log.With("node", name)
	n := &routeNode{
		name:     name,
		holder:   Holder{Name: name, Generation: 1},
		system:   actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger })),
		views:    &fakeViews{},
		senders:  make(chan *actor.PID, 64),
		handoffs: make(chan *pb.HandoffChunk, 64),
	}
	var err error
	n.remote, n.addr, err = StartRemote(n.system, bind, "")
	if err != nil {
		t.Fatal(err)
	}
	n.views.v = View{Self: n.holder, Ready: true, Table: NewTable(routeTestPartitions)}
	cfg := RouterConfig{
		System:         n.system,
		Views:          n.views,
		Partitions:     routeTestPartitions,
		Partition:      routeTestPartition,
		Activate:       n.activate,
		LocalAsk:       n.localAsk,
		ReceiveHandoff: n.receiveHandoff,
		HasImport: func(p int, epoch uint64) (bool, error) {
			if p == 1 {
				return false, errors.New("cannot tell")
			}
			return p == 0 && epoch == 2, nil
		},
		Logger: logger,
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	if n.router, err = NewRouter(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.crash)
	return n
}

// crash stops the node's remote server at once, dropping its connections
// as a killed process's would, and its actor system. It may be called more
// than once.
func (n *routeNode) crash() {
	if n.system.IsStopped() {
		return
	}
	n.remote.Shutdown(false)
	n.system.Shutdown()
}

// echoActor answers a StringValue with "<node>:<value>", except "hang",
// which it never answers.
type echoActor struct{ n *routeNode }

func (e *echoActor) Receive(ctx actor.Context) {
	m, ok := ctx.Message().(*wrapperspb.StringValue)
	if !ok || m.GetValue() == "hang" {
		return
	}
	select {
	case e.n.senders <- ctx.Sender():
	default:
	}
	ctx.Respond(wrapperspb.String(e.n.name + ":" + m.GetValue()))
}

func (n *routeNode) activate(kind, id string) (*actor.PID, error) {
	if kind != "sku" {
		return nil, fmt.Errorf("no kind %q", kind)
	}
	if n.deadOnce.CompareAndSwap(true, false) {
		return n.system.NewLocalPID("passivated"), nil
	}
	pid, err := n.system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &echoActor{n: n} }), kind+"/"+id)
	if errors.Is(err, actor.ErrNameExists) {
		err = nil
	}
	return pid, err
}

func (n *routeNode) localAsk(ctx context.Context, kind, id string, msg proto.Message) (proto.Message, error) {
	n.localAsks.Add(1)
	pid, err := n.activate(kind, id)
	if err != nil {
		return nil, err
	}
	timeout := routeTestTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	reply, err := n.system.Root.RequestFuture(pid, msg, timeout).Result()
	if err != nil {
		return nil, err
	}
	m, ok := reply.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("reply of type %T", reply)
	}
	return m, nil
}

func (n *routeNode) receiveHandoff(from Holder, chunk *pb.HandoffChunk) error {
	n.handoffs <- chunk
	if why := n.refuseHandoff.Load(); why != nil {
		return errors.New(*why)
	}
	return nil
}

// ask asks through n's router with routeTestTimeout.
func (n *routeNode) ask(id, value string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), routeTestTimeout)
	defer cancel()
	reply, err := n.router.Ask(ctx, "sku", id, wrapperspb.String(value))
	if err != nil {
		return "", err
	}
	s, ok := reply.(*wrapperspb.StringValue)
	if !ok {
		return "", fmt.Errorf("reply of type %T", reply)
	}
	return s.GetValue(), nil
}

// idIn returns an ID in partition p.
func idIn(p int, suffix string) string { return "p" + strconv.Itoa(p) + "-" + suffix }

// waitFor polls cond until it holds or within has passed.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
