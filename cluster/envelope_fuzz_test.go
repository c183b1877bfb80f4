package cluster

import (
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/orderengine/orderengine/cluster/pb"
)

// FuzzEnvelope feeds a peer's bytes, decoded as the Envelope remote would
// hand the router actor, through what the router actor does with them
// before an actor sees anything: validEnvelope, then decodeCommand. Neither
// may panic, and what they accept must hold what the router relies on.
func FuzzEnvelope(f *testing.F) {
	command := func(m proto.Message) *anypb.Any {
		a, err := anypb.New(m)
		if err != nil {
			f.Fatal(err)
		}
		return a
	}
	for _, env := range []*pb.Envelope{
		{Partition: 1, Epoch: 1, Kind: "sku", Id: idIn(1, "tea"), Command: command(wrapperspb.String("hello"))},
		{Partition: 0, Epoch: 7, Kind: "order", Id: "o_01", Command: command(&pb.HandoffQuery{Partition: 2, Epoch: 3})},
		{Partition: 3, Epoch: 1, Kind: "sku", Id: idIn(3, "x"), Command: command(command(wrapperspb.Int64(5)))},
		{Partition: 2, Epoch: 1, Kind: "sku", Id: idIn(2, "y"), Command: &anypb.Any{TypeUrl: "type.googleapis.com/no.such.Type", Value: []byte{1, 2}}},
		{Partition: 9, Kind: "", Id: ""},
	} {
		b, err := proto.Marshal(env)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	r := &Router{cfg: RouterConfig{Partitions: routeTestPartitions, Partition: routeTestPartition}}
	f.Fuzz(func(t *testing.T, data []byte) {
		env := &pb.Envelope{}
		if proto.Unmarshal(data, env) != nil {
			return // remote's serializer refuses it before the router sees it
		}
		if err := r.validEnvelope(env); err == nil {
			switch p := int(env.GetPartition()); {
			case p >= routeTestPartitions || p != routeTestPartition(env.GetKind(), env.GetId()):
				t.Fatalf("accepted partition %d of %q", p, env.GetId())
			case env.GetEpoch() == 0:
				t.Fatal("accepted epoch 0")
			case env.GetKind() == "" || len(env.GetKind()) > KindBytesMax || !utf8.ValidString(env.GetKind()):
				t.Fatalf("accepted kind %q", env.GetKind())
			case env.GetId() == "" || len(env.GetId()) > IDBytesMax || !utf8.ValidString(env.GetId()):
				t.Fatalf("accepted id %q", env.GetId())
			}
		}
		if m, err := decodeCommand(env.GetCommand()); (err == nil) == (m == nil) {
			t.Fatalf("decodeCommand = %v, %v: want a message or an error", m, err)
		}
	})
}
