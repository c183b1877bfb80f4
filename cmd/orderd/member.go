package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/cluster"
	"github.com/orderengine/orderengine/gateway"
	"github.com/orderengine/orderengine/persistence"
)

// Meta records of a cluster member in its journal.
const (
	metaNodeName   = "node/name"
	metaGeneration = "node/generation"
	metaTable      = "cluster/table"
)

// leaveTimeout bounds how long a leaving node hands its partitions off,
// and then how long it waits for its departure to reach the others.
const leaveTimeout = 10 * time.Second

// member is this node's part in a cluster: its membership, its router,
// and the partitions it serves.
type member struct {
	node   *cluster.Node
	router *cluster.Router
	remote *remote.Remote
	auth   *cluster.RemoteAuth
	served *servedPartitions
	log    *slog.Logger
}

// identity returns the node's name and its data directory's generation,
// recording both at the first start: a data directory belongs to one
// node, and a directory created anew gets a new, higher generation.
func nodeIdentity(cfg config, j *persistence.Journal) (string, uint64, error) {
	name := cfg.nodeName
	stored, ok, err := j.GetMeta(metaNodeName)
	if err != nil {
		return "", 0, err
	}
	switch {
	case ok && name == "":
		name = string(stored)
	case ok && string(stored) != name:
		return "", 0, fmt.Errorf("the data directory belongs to node %q, not %q (-node)", stored, name)
	case name == "":
		if name, err = os.Hostname(); err != nil || name == "" {
			return "", 0, fmt.Errorf("no -node given and no host name: %v", err)
		}
	}
	if len(name) > cluster.NodeNameBytesMax || strings.ContainsAny(name, " \t\n") {
		return "", 0, fmt.Errorf("-node %q: want 1..%d bytes without spaces", name, cluster.NodeNameBytesMax)
	}
	if !ok {
		// A directory that served a node running alone holds data in
		// every partition. Joining a cluster would give those partitions
		// to their holders there, and this node's copy would be dropped:
		// refuse, rather than lose it.
		if has, err := j.HasData(); err != nil {
			return "", 0, err
		} else if has && len(cfg.seeds) > 0 {
			return "", 0, errors.New("the data directory holds the data of a node that ran alone: start it without -seeds to found a cluster with it, or join with an empty data directory")
		}
		if err := j.PutMeta(metaNodeName, []byte(name)); err != nil {
			return "", 0, err
		}
	}
	gen, ok, err := j.GetMeta(metaGeneration)
	if err != nil {
		return "", 0, err
	}
	if ok {
		g, err := strconv.ParseUint(string(gen), 10, 64)
		if err != nil || g == 0 {
			return "", 0, fmt.Errorf("stored generation %q is not a positive number", gen)
		}
		return name, g, nil
	}
	g := uint64(time.Now().UnixNano())
	return name, g, j.PutMeta(metaGeneration, []byte(strconv.FormatUint(g, 10)))
}

// savedTable returns the table the node recorded before it stopped, or
// nil.
func savedTable(j *persistence.Journal) (*cluster.Table, error) {
	b, ok, err := j.GetMeta(metaTable)
	if err != nil || !ok {
		return nil, err
	}
	t, err := cluster.DecodeTable(b)
	if err != nil {
		return nil, fmt.Errorf("stored cluster table: %w", err)
	}
	return &t, nil
}

// startRemote starts protoactor's remote on the node's actor system,
// before any actor is spawned: a PID made earlier carries no address that
// another node can answer to. With -gossip-key-file only peers that hold
// the same key and -cluster-label may connect to it (cluster.RemoteAuth).
func startRemote(cfg config, system *actor.ActorSystem) (*remote.Remote, *cluster.RemoteAuth, error) {
	addr := cfg.remoteAddr
	if addr == "" {
		host, _, _ := net.SplitHostPort(cfg.gossip())
		addr = net.JoinHostPort(host, "0")
	}
	var key []byte
	if cfg.gossipKeyFile != "" {
		var err error
		if key, err = cluster.LoadKeyFile(cfg.gossipKeyFile); err != nil {
			return nil, nil, err
		}
	}
	auth, err := cluster.NewRemoteAuth(key, cfg.clusterLabel, system.Logger())
	if err != nil {
		return nil, nil, err
	}
	r, _, err := cluster.StartRemote(system, addr, "", auth.Option())
	if err != nil {
		return nil, nil, fmt.Errorf("start remote on -remote %s: %w", addr, err)
	}
	return r, auth, nil
}

// gossip is the gossip address, with its default.
func (c config) gossip() string {
	if c.gossipAddr != "" {
		return c.gossipAddr
	}
	return defaultGossipAddr
}

// memberDeps are what startMember wires together.
type memberDeps struct {
	journal *persistence.Journal
	system  *actor.ActorSystem
	remote  *remote.Remote
	auth    *cluster.RemoteAuth // nil without a key
	skus    *actors.Registry
	orders  *actors.Orders
	routing *routing
	metrics prometheus.Registerer
}

// startMember joins or founds the cluster and starts serving what the
// table gives this node.
func startMember(cfg config, d memberDeps, log *slog.Logger) (*member, error) {
	name, gen, err := nodeIdentity(cfg, d.journal)
	if err != nil {
		return nil, err
	}
	table, err := savedTable(d.journal)
	if err != nil {
		return nil, err
	}
	var key []byte
	if cfg.gossipKeyFile != "" {
		if key, err = cluster.LoadKeyFile(cfg.gossipKeyFile); err != nil {
			return nil, err
		}
	}
	host, portText, _ := net.SplitHostPort(cfg.gossip())
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("-gossip %s: bad port", cfg.gossip())
	}
	m := &member{remote: d.remote, auth: d.auth, log: log}
	m.served = newServedPartitions(name, d.journal.Partitions(), d.journal, d.skus, log)
	d.skus.SetGate(m.served.admit)
	transport := &routerTransport{}
	// The node's handoff loop starts and stops serving partitions (the
	// store's Hold and Release), saving each table before it acts on it.
	m.node, err = cluster.Start(cluster.Config{
		Name: name, Generation: gen, RemoteAddress: d.system.Address(),
		Partitions: d.journal.Partitions(), Seeds: cfg.seeds, Table: table,
		BindAddr: host, BindPort: port, SecretKey: key, Label: cfg.clusterLabel,
		Store: newJournalStore(d.journal, m.served, log), Handoff: transport,
		Logger: log,
	})
	if err != nil {
		return nil, err
	}
	partitionOf := func(kind, id string) int { return persistence.Partition(kind+"/"+id, d.journal.Partitions()) }
	m.router, err = cluster.NewRouter(cluster.RouterConfig{
		System: d.system, Views: m.node, Partitions: d.journal.Partitions(), Partition: partitionOf,
		Activate: func(kind, id string) (*actor.PID, error) {
			if !m.served.admit(kind + "/" + id) {
				return nil, fmt.Errorf("%w: %s/%s is not served here", cluster.ErrUnavailable, kind, id)
			}
			switch kind {
			case kindSKU:
				return d.skus.SKUPID(id), nil
			case kindOrder:
				return d.orders.PID(id), nil
			}
			return nil, fmt.Errorf("unknown kind %q", kind)
		},
		LocalAsk: func(ctx context.Context, kind, id string, msg proto.Message) (proto.Message, error) {
			switch kind {
			case kindSKU:
				return d.skus.AskSKU(ctx, id, msg)
			case kindOrder:
				return d.orders.Ask(ctx, id, msg)
			}
			return nil, fmt.Errorf("unknown kind %q", kind)
		},
		ReceiveHandoff: receiveHandoff(func() *cluster.Node { return m.node }),
		HasImport:      m.node.HasImport,
		Logger:         log,
	})
	if err != nil {
		m.node.Shutdown()
		return nil, err
	}
	transport.router.Store(m.router)
	d.routing.router, d.routing.errUnavail = m.router, cluster.ErrUnavailable
	registerMemberMetrics(d.metrics, m)
	log.Info("cluster member started", "node", name, "generation", gen, "gossip", m.node.LocalAddr(),
		"remote", d.system.Address(), "seeds", strings.Join(cfg.seeds, ","), "partitions", d.journal.Partitions())
	return m, nil
}

// ready is the member's part of /readyz.
func (m *member) ready() error {
	select {
	case <-m.node.Ready():
		return nil
	default:
		return errors.New("not joined to the cluster yet: no state exchanged with a seed")
	}
}

// view is GET /v1/cluster.
func (m *member) view() any { return newClusterView(m.node.View()) }

// forget is POST /v1/admin/cluster/members/{node}/forget.
func (m *member) forget(_ context.Context, name string) (any, error) {
	err := m.node.Forget(name)
	switch {
	case err == nil:
		return m.view(), nil
	case errors.Is(err, cluster.ErrUnknownNode):
		return nil, fmt.Errorf("%w: the cluster has no member named %s", gateway.ErrNotFound, name)
	case errors.Is(err, cluster.ErrMemberAlive):
		return nil, &gateway.ConflictError{Detail: "the node is alive; make sure it is down before forgetting it"}
	case errors.Is(err, cluster.ErrNotReady):
		return nil, fmt.Errorf("%w: this node has not joined the cluster yet", gateway.ErrUnavailable)
	}
	return nil, err
}

// crash stops the member as a crash would (its journal failed): nothing
// is handed off; the partitions stay this node's until it returns.
func (m *member) crash() error {
	if m == nil {
		return nil
	}
	err := errors.Join(m.node.Shutdown(), m.router.Close())
	m.remote.Shutdown(false)
	return err
}

// leave stops the member: it tells the others it is leaving, stops
// routing and gossiping, and stops serving.
func (m *member) leave(ctx context.Context) error {
	var errs []error
	// Leave hands every partition to its next holder first; the last
	// member keeps what it has, and has nobody to tell.
	if err := m.node.Leave(leaveTimeout); err != nil && !errors.Is(err, cluster.ErrStopped) {
		m.log.Warn("left the cluster without handing everything off", "err", err)
	}
	if err := m.node.Shutdown(); err != nil {
		errs = append(errs, err)
	}
	if err := m.router.Close(); err != nil {
		errs = append(errs, err)
	}
	for p := range m.served.epochs {
		if err := m.served.stop(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	m.remote.Shutdown(true)
	return errors.Join(errs...)
}
