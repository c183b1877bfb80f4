package main

import (
	"context"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/persistence"
)

// servesSome is a router whose node serves the partitions in served (of
// 64); it is only asked where an identity lives.
type servesSome struct{ served map[int]bool }

func (s servesSome) Ask(context.Context, string, string, proto.Message) (proto.Message, error) {
	panic("not asked")
}

func (s servesSome) Send(actor.SenderContext, string, string, proto.Message) error {
	panic("not sent")
}

func (s servesSome) Serves(kind, id string) bool {
	return s.served[persistence.Partition(kind+"/"+id, 64)]
}

// An unkeyed checkout's order ID falls in a partition its node serves,
// so the checkout stays on that node; a node serving nothing still gets
// an ID (the order is then routed), and a node without a cluster is not
// asked.
func TestNewOrderIDIsPlacedOnAServedPartition(t *testing.T) {
	e := &engine{clock: actors.SystemClock{}}
	third := servesSome{served: map[int]bool{}}
	for p := 0; p < 64; p += 3 {
		third.served[p] = true
	}
	for range 200 {
		id, err := e.newOrderID(&nodeActors{routed: &routing{router: third}})
		if err != nil || actors.ParseOrderID(id) != nil || !third.Serves(kindOrder, id) {
			t.Fatalf("id %q, %v: want a valid ID in a served partition", id, err)
		}
	}
	for _, n := range []*nodeActors{{routed: &routing{router: servesSome{}}}, {}} {
		if id, err := e.newOrderID(n); err != nil || actors.ParseOrderID(id) != nil {
			t.Fatalf("id %q, %v: want a valid ID", id, err)
		}
	}
}
