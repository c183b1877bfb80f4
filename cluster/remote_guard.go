package cluster

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// remoteGuard keeps what a peer sends to remote's gRPC service from
// crashing the process, with or without a cluster key. In the version we
// pin:
//
//   - the unary RPCs ListProcesses and GetProcessDiagnostics are not
//     implemented and panic, on gRPC's goroutine, which no one recovers:
//     one call from anyone who reaches the port kills the node. The guard
//     answers them Unimplemented without calling remote.
//   - the Receive stream's reader indexes the batch's tables with indices
//     the peer sent and panics on an unknown type name, on the handler's
//     goroutine. The guard recovers such a panic, logs it and ends that
//     stream with Internal; the peer's endpoint reconnects, the node lives.
//
// StartRemote installs it after every other option, so that it is the
// innermost interceptor (RemoteAuth refuses first) and so that
// remote.WithServerOptions cannot drop it.
func remoteGuard(log *slog.Logger) remote.ConfigOption {
	return func(c *remote.Config) {
		c.ServerOptions = append(c.ServerOptions,
			grpc.ChainUnaryInterceptor(refuseUnary),
			grpc.ChainStreamInterceptor(recoverStream(log)))
	}
}

func refuseUnary(_ context.Context, _ any, info *grpc.UnaryServerInfo, _ grpc.UnaryHandler) (any, error) {
	return nil, status.Errorf(codes.Unimplemented, "%s is not served", info.FullMethod)
}

func recoverStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if p := recover(); p != nil {
				log.Error("remote stream panicked on what a peer sent; stream closed",
					"method", info.FullMethod, "panic", fmt.Sprint(p))
				err = status.Error(codes.Internal, "malformed message")
			}
		}()
		return handler(srv, ss)
	}
}
