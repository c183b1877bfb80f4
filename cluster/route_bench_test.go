package cluster

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"
)

// BenchmarkRemoteAsk measures Ask through the router from node a, with
// parallel callers, to a's own partition (the local path, LocalAsk) and to
// b's (an Envelope to b's router over remote, the reply straight back).
// Both nodes run in this process, so the figures share its CPUs.
func BenchmarkRemoteAsk(b *testing.B) {
	c := newRouteCluster(b, []string{"a", "b"})
	a := c.nodes[0]
	for _, bc := range []struct {
		name      string
		partition int
	}{
		{"local", 0},
		{"remote", 1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const ids = 64
			var next atomic.Int64
			b.SetParallelism(16)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				id := idIn(bc.partition, strconv.Itoa(int(next.Add(1))%ids))
				msg := wrapperspb.String("x")
				for pb.Next() {
					ctx, cancel := context.WithTimeout(context.Background(), routeTestTimeout)
					_, err := a.router.Ask(ctx, "sku", id, msg)
					cancel()
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "asks/s")
		})
	}
	// One caller: the latency of a remote round trip.
	b.Run("remote-1caller", func(b *testing.B) {
		b.ReportAllocs()
		msg := wrapperspb.String("x")
		for b.Loop() {
			ctx, cancel := context.WithTimeout(context.Background(), routeTestTimeout)
			_, err := a.router.Ask(ctx, "sku", idIn(1, "serial"), msg)
			cancel()
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "asks/s")
	})
}
