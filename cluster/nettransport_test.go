package cluster

import (
	"fmt"
	"log/slog"
	"testing"
	"time"
)

// Two nodes on memberlist's own UDP and TCP transport on 127.0.0.1, with
// ports chosen by the system: the second finds the first through the
// address the first reports, and both see the first leave.
func TestNetTransport(t *testing.T) {
	out := &guardedWriter{w: t.Output()}
	t.Cleanup(func() { out.closed.Store(true) })
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	start := func(name string, seeds []string) *Node {
		n, err := Start(Config{
			Name: name, Generation: 1, RemoteAddress: name + ":1", Seeds: seeds,
			BindAddr: "127.0.0.1", RejoinInterval: testRejoin, PushPullInterval: testPushPull,
			Memberlist: fastMemberlist, Logger: log,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Shutdown() })
		return n
	}
	a := start("a", nil)
	b := start("b", []string{a.LocalAddr()})
	select {
	case <-b.Ready():
	case <-time.After(convergeTimeout):
		t.Fatal("b did not join over UDP and TCP")
	}
	eventually(t, "members", func() error {
		for _, n := range []*Node{a, b} {
			if v := n.View(); len(v.Members) != 2 || !v.Live(Holder{"a", 1}) || !v.Live(Holder{"b", 1}) {
				return fmt.Errorf("%s sees %+v", n.Self().Name, v.Members)
			}
		}
		return nil
	})
	if err := a.Leave(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	a.Shutdown()
	eventually(t, "leave", func() error {
		if b.View().Live(Holder{"a", 1}) {
			return fmt.Errorf("b still sees a")
		}
		return nil
	})
}
