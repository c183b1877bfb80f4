//go:build race

package cluster

// raceDetector is true in a binary built with -race. Several actor systems
// with remote in one process are a data race there that is not ours:
// remote's Start sets grpc's process-global logger (grpclog.SetLoggerV2)
// while the gRPC servers already started log through it. Those tests skip
// under -race (see newRouteCluster).
const raceDetector = true
