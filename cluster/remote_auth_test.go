package cluster

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/orderengine/orderengine/cluster/pb"
)

// These tests run nodes with remote in one process, like the routing
// tests, so they skip under -race (see race_on_test.go); make test runs
// them without it (-run 'Router|Remote').

var (
	remoteTestKey      = []byte("0123456789abcdef0123456789abcdef")
	remoteTestOtherKey = []byte("fedcba9876543210fedcba9876543210")
)

// lockedBuffer is a log sink that tests read while nodes write to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// newAuth returns a RemoteAuth for key and label that logs to log, or nil
// for a nil key.
func newAuth(t testing.TB, key []byte, label string, log *lockedBuffer) *RemoteAuth {
	t.Helper()
	a, err := NewRemoteAuth(key, label, slog.New(slog.NewTextHandler(log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// newAuthCluster is newRouteCluster with one node per auth (named a, b,
// ...), each node's remote started with that auth's option.
func newAuthCluster(t *testing.T, auths ...*RemoteAuth) *routeCluster {
	t.Helper()
	if raceDetector {
		t.Skip("several remotes in one process race on grpc's global logger under -race (race_on_test.go); run without -race")
	}
	out := &guardedWriter{w: t.Output()}
	t.Cleanup(func() { out.closed.Store(true) })
	c := &routeCluster{log: slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	for i, a := range auths {
		c.nodes = append(c.nodes, c.startAuthNode(t, string(rune('a'+i)), a))
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

// startAuthNode is startNode with auth's remote option.
func (c *routeCluster) startAuthNode(t testing.TB, name string, auth *RemoteAuth) *routeNode {
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
	n.remote, n.addr, err = StartRemote(n.system, "127.0.0.1:0", "", auth.Option())
	if err != nil {
		t.Fatal(err)
	}
	n.views.v = View{Self: n.holder, Ready: true, Table: NewTable(routeTestPartitions)}
	n.router, err = NewRouter(RouterConfig{
		System: n.system, Views: n.views, Partitions: routeTestPartitions, Partition: routeTestPartition,
		Activate: n.activate, LocalAsk: n.localAsk, ReceiveHandoff: n.receiveHandoff,
		HasImport: func(int, uint64) (bool, error) { return false, nil },
		Logger:    logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.crash)
	return n
}

func TestRemoteAuthPeersWithTheKeyRoute(t *testing.T) {
	var log lockedBuffer
	a, b := newAuth(t, remoteTestKey, "shop", &log), newAuth(t, remoteTestKey, "shop", &log)
	c := newAuthCluster(t, a, b)
	na, nb := c.nodes[0], c.nodes[1]
	// a's ask goes to b over a's connection and the reply comes back over
	// b's: both directions authenticate.
	if got, err := na.ask(idIn(1, "x"), "hello"); err != nil || got != "b:hello" {
		t.Fatalf("a → b: %q, %v", got, err)
	}
	if got, err := nb.ask(idIn(0, "y"), "hi"); err != nil || got != "a:hi" {
		t.Fatalf("b → a: %q, %v", got, err)
	}
	if a.Refused() != 0 || b.Refused() != 0 || log.count("refused") != 0 {
		t.Fatalf("refused %d and %d: %s", a.Refused(), b.Refused(), log.b.String())
	}
}

// TestRemoteAuthRefusesPeersWithoutTheKey: b holds the key; a peer without
// it, with another key, or with the key under another label cannot reach
// b's actors: its asks fail with ErrUnavailable within a few seconds
// (remote's one connection attempt and its 2 s pause), nothing reaches b's
// router or actors, and b logs the peer once.
func TestRemoteAuthRefusesPeersWithoutTheKey(t *testing.T) {
	for _, tc := range []struct {
		name  string
		key   []byte
		label string
	}{
		{"no key", nil, ""},
		{"another key", remoteTestOtherKey, "shop"},
		{"another label", remoteTestKey, "other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log lockedBuffer
			holder := newAuth(t, remoteTestKey, "shop", &log)
			c := newAuthCluster(t, newAuth(t, tc.key, tc.label, &lockedBuffer{}), holder)
			a, b := c.nodes[0], c.nodes[1]
			for i := range 3 {
				start := time.Now()
				_, err := a.ask(idIn(1, "x"), "hello")
				took := time.Since(start)
				t.Logf("ask %d failed after %v: %v", i, took, err)
				if !errors.Is(err, ErrUnavailable) || took > routeTestTimeout {
					t.Fatalf("ask %d: %v after %v, want ErrUnavailable", i, err, took)
				}
			}
			if s := b.router.Stats(); s.EnvelopesIn != 0 || len(b.senders) != 0 {
				t.Fatalf("b's router got %d envelopes and its actors %d commands, want none", s.EnvelopesIn, len(b.senders))
			}
			if holder.Refused() == 0 {
				t.Fatal("b refused nothing")
			}
			if n := log.count("remote peer refused"); n != 1 {
				t.Fatalf("b logged %d refusals of one peer, want 1:\n%s", n, log.b.String())
			}
		})
	}
}

// TestRemoteAuthOffAcceptsAnyPeer: without a key nothing changes: nodes
// without one route to each other.
func TestRemoteAuthOffAcceptsAnyPeer(t *testing.T) {
	if a := newAuth(t, nil, "shop", &lockedBuffer{}); a != nil {
		t.Fatalf("NewRemoteAuth(nil) = %v, want nil", a)
	}
	c := newAuthCluster(t, nil, nil)
	if got, err := c.nodes[0].ask(idIn(1, "x"), "hello"); err != nil || got != "b:hello" {
		t.Fatalf("a → b: %q, %v", got, err)
	}
}

// dialRaw opens a plain gRPC client to a node's remote.
func dialRaw(t *testing.T, addr string, opts ...grpc.DialOption) remote.RemotingClient {
	t.Helper()
	conn, err := grpc.Dial(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return remote.NewRemotingClient(conn)
}

// callAll makes each of remote's RPCs once and returns their status codes.
func callAll(t *testing.T, c remote.RemotingClient) map[string]codes.Code {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), routeTestTimeout)
	defer cancel()
	got := map[string]codes.Code{}
	_, err := c.ListProcesses(ctx, &remote.ListProcessesRequest{})
	got["ListProcesses"] = status.Code(err)
	_, err = c.GetProcessDiagnostics(ctx, &remote.GetProcessDiagnosticsRequest{})
	got["GetProcessDiagnostics"] = status.Code(err)
	stream, err := c.Receive(ctx)
	if err == nil {
		_ = stream.Send(&remote.RemoteMessage{MessageType: &remote.RemoteMessage_ConnectRequest{
			ConnectRequest: &remote.ConnectRequest{ConnectionType: &remote.ConnectRequest_ServerConnection{
				ServerConnection: &remote.ServerConnection{SystemId: "intruder", Address: "127.0.0.1:1"}}}}})
		_, err = stream.Recv()
	}
	got["Receive"] = status.Code(err)
	return got
}

// TestRemoteAuthRawClients calls every RPC of a keyed node's remote
// without going through protoactor: a plaintext client fails the TLS
// handshake (Unavailable); a client with the key's TLS but no token, or a
// wrong one, is Unauthenticated; with both, the unary RPCs get
// Unimplemented (remoteGuard) and the node lives.
func TestRemoteAuthRawClients(t *testing.T) {
	var log lockedBuffer
	auth := newAuth(t, remoteTestKey, "shop", &log)
	c := newAuthCluster(t, auth, nil)
	addr := c.nodes[0].addr
	tlsCreds := grpc.WithTransportCredentials(auth.tls.clientCredentials())

	for name, tc := range map[string]struct {
		opts []grpc.DialOption
		want codes.Code
	}{
		"plaintext":            {[]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, codes.Unavailable},
		"plaintext with token": {[]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(tokenCredentials{auth.token})}, codes.Unavailable},
		"TLS without token":    {[]grpc.DialOption{tlsCreds}, codes.Unauthenticated},
		"TLS with wrong token": {[]grpc.DialOption{tlsCreds, grpc.WithPerRPCCredentials(tokenCredentials{"AAAA" + auth.token[4:]})}, codes.Unauthenticated},
	} {
		for rpc, code := range callAll(t, dialRaw(t, addr, tc.opts...)) {
			if code != tc.want {
				t.Errorf("%s: %s = %v, want %v", name, rpc, code, tc.want)
			}
		}
	}
	got := callAll(t, dialRaw(t, addr, tlsCreds, grpc.WithPerRPCCredentials(tokenCredentials{auth.token})))
	if got["ListProcesses"] != codes.Unimplemented || got["GetProcessDiagnostics"] != codes.Unimplemented {
		t.Errorf("with the key: %v, want the unary RPCs Unimplemented", got)
	}
	if auth.Refused() < 8 { // a failed handshake per plaintext client, and 3 RPCs each of 2 TLS clients
		t.Errorf("refused %d calls and connections, want at least 8", auth.Refused())
	}
	if n := log.count("remote peer refused"); n != 1 {
		t.Errorf("logged %d refusals of one peer host, want 1:\n%s", n, log.b.String())
	}
}

// TestRemoteGuardSurvivesMalformedInput: without a key anyone may call
// remote, but nothing they send may crash the node: the unary RPCs,
// which panic in remote, answer Unimplemented, and a batch whose indices
// point nowhere ends the stream with Internal instead of a panic.
func TestRemoteGuardSurvivesMalformedInput(t *testing.T) {
	c := newAuthCluster(t, nil, nil)
	a, b := c.nodes[0], c.nodes[1]
	client := dialRaw(t, b.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	got := callAll(t, client)
	if got["ListProcesses"] != codes.Unimplemented || got["GetProcessDiagnostics"] != codes.Unimplemented {
		t.Fatalf("unary RPCs: %v, want Unimplemented", got)
	}
	for name, batch := range map[string]*remote.MessageBatch{
		"target out of range": {Envelopes: []*remote.MessageEnvelope{{Target: 7}}},
		"type out of range": {Targets: []*actor.PID{b.router.PID()},
			Envelopes: []*remote.MessageEnvelope{{Target: 0, TypeId: 9}}},
		"unknown type": {Targets: []*actor.PID{b.router.PID()}, TypeNames: []string{"no.such.Type"},
			Envelopes: []*remote.MessageEnvelope{{Target: 0, TypeId: 0}}},
		"serializer out of range": {Targets: []*actor.PID{b.router.PID()}, TypeNames: []string{"google.protobuf.StringValue"},
			Envelopes: []*remote.MessageEnvelope{{Target: 0, TypeId: 0, SerializerId: 99}}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), routeTestTimeout)
		stream, err := client.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&remote.RemoteMessage{MessageType: &remote.RemoteMessage_MessageBatch{MessageBatch: batch}}); err != nil {
			t.Fatal(err)
		}
		_, err = stream.Recv()
		cancel()
		if code := status.Code(err); code != codes.Internal && code != codes.Unknown {
			t.Errorf("%s: stream ended with %v, want an error", name, err)
		}
	}
	if got, err := a.ask(idIn(1, "x"), "hello"); err != nil || got != "b:hello" {
		t.Fatalf("b after malformed input: %q, %v", got, err)
	}
}

// TestRemoteAuthCheck exercises the interceptors' check on its own.
func TestRemoteAuthCheck(t *testing.T) {
	var log lockedBuffer
	a := newAuth(t, remoteTestKey, "shop", &log)
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 9), Port: 4242}})
	for name, md := range map[string]metadata.MD{
		"none":       nil,
		"wrong":      metadata.Pairs(remoteAuthMetadataKey, "x"+a.token[1:]),
		"short":      metadata.Pairs(remoteAuthMetadataKey, a.token[:8]),
		"two values": metadata.Pairs(remoteAuthMetadataKey, a.token, remoteAuthMetadataKey, a.token),
		"other key":  metadata.Pairs("authorization", a.token),
	} {
		if err := a.check(metadata.NewIncomingContext(ctx, md), "/m"); status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s: %v, want Unauthenticated", name, err)
		}
	}
	if err := a.check(metadata.NewIncomingContext(ctx, metadata.Pairs(remoteAuthMetadataKey, a.token)), "/m"); err != nil {
		t.Errorf("the token: %v", err)
	}
	if a.Refused() != 5 || log.count("remote peer refused") != 1 || log.count("peer=10.0.0.9:4242") != 1 {
		t.Errorf("refused %d, log:\n%s", a.Refused(), log.b.String())
	}
	// The token depends on the key and the label, and is not the key.
	other := newAuth(t, remoteTestKey, "other", &log)
	if other.token == a.token || strings.Contains(a.token, string(remoteTestKey)) {
		t.Error("the token does not depend on the label, or shows the key")
	}
	if _, err := NewRemoteAuth([]byte("short"), "", nil); !errors.Is(err, ErrConfig) {
		t.Errorf("short key: %v", err)
	}
}

// TestRemoteAuthRefusalLogIsRateLimited: one line per peer host and
// interval, whatever its port; a bounded number of hosts remembered.
func TestRemoteAuthRefusalLogIsRateLimited(t *testing.T) {
	var buf lockedBuffer
	now := time.Unix(1_000_000, 0)
	l := refusalLog{log: slog.New(slog.NewTextHandler(&buf, nil)), now: func() time.Time { return now }, last: map[string]time.Time{}}
	l.log1("10.0.0.1:1000", "no token")
	l.log1("10.0.0.1:1001", "no token")
	l.log1("10.0.0.2:1000", "no token")
	if n := buf.count("remote peer refused"); n != 2 {
		t.Fatalf("%d lines, want 2", n)
	}
	now = now.Add(remoteRefusalLogInterval)
	l.log1("10.0.0.1:1002", "no token")
	if n := buf.count("remote peer refused"); n != 3 {
		t.Fatalf("%d lines after the interval, want 3", n)
	}
	for i := range remoteRefusalHostsMax + 10 {
		l.log1(net.JoinHostPort(net.IPv4(10, 1, byte(i>>8), byte(i)).String(), "1"), "no token")
	}
	if len(l.last) > remoteRefusalHostsMax {
		t.Fatalf("%d hosts remembered, want at most %d", len(l.last), remoteRefusalHostsMax)
	}
}

// TestRemoteDefaultsToLoopback: remote and gossip listen on loopback
// unless told otherwise.
func TestRemoteDefaultsToLoopback(t *testing.T) {
	if raceDetector {
		t.Skip("remote sets grpc's global logger (race_on_test.go); run without -race")
	}
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(&lockedBuffer{}, nil))
	}))
	r, addr, err := StartRemote(system, ":0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(false)
	if host, _, _ := net.SplitHostPort(addr); host != DefaultRemoteHost || DefaultRemoteHost != "127.0.0.1" {
		t.Fatalf("remote started with no host listens on %s", addr)
	}

	cfg, err := Config{Name: "a", Generation: 1, RemoteAddress: addr}.withDefaults()
	if err != nil || cfg.BindAddr != "127.0.0.1" {
		t.Fatalf("gossip binds %q by default (%v)", cfg.BindAddr, err)
	}
	n, err := Start(Config{Name: "a", Generation: 1, RemoteAddress: addr, Logger: slog.New(slog.NewTextHandler(&lockedBuffer{}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown()
	if host, _, _ := net.SplitHostPort(n.LocalAddr()); host != "127.0.0.1" {
		t.Fatalf("gossip listens on %s by default", n.LocalAddr())
	}
}
