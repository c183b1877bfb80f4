package cluster

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Remote authentication. protoactor-go's remote is a gRPC service
// (Receive, a stream that carries every actor message, plus the unary
// ListProcesses and GetProcessDiagnostics) that accepts any caller. With a
// cluster key, RemoteAuth makes every connection between nodes prove that
// it holds the key, twice over:
//
//   - Transport: mutual TLS with a certificate whose private key is derived
//     from the cluster key and label (remote_tls.go). Each side accepts only
//     a peer whose certificate carries that same public key, so a peer
//     without the key fails the handshake and sends nothing; the link is
//     encrypted.
//   - Call: every RPC carries a bearer token, HMAC-SHA256 of the key over a
//     context string and the label, that server-side interceptors compare
//     in constant time before the handler (and so remote's decoding) runs.
//     Over TLS it cannot be sniffed; it guards against a transport that is
//     ever configured without TLS.
//
// Both are derived from the gossip key with their own context strings, so
// neither reveals memberlist's key or the other's secret.

const (
	// remoteTokenContext and remoteTLSContext separate the secrets derived
	// from the cluster key. The label follows the context.
	remoteTokenContext = "orderengine remote v1|token|"
	remoteTLSContext   = "orderengine remote v1|tls|"
	// remoteAuthMetadataKey is the gRPC metadata header carrying the token
	// (lower case, as gRPC metadata keys are).
	remoteAuthMetadataKey = "orderengine-remote-auth"
	// remoteRefusalLogInterval is how often refusals of one peer host are
	// logged: a peer that retries without the key fills no log.
	remoteRefusalLogInterval = time.Minute
	// remoteRefusalHostsMax bounds the peer hosts whose last log time is
	// remembered; beyond it refusals of new hosts are counted, not logged.
	remoteRefusalHostsMax = 1024
)

// RemoteAuth authenticates a node's remote peers with the cluster key. Make
// one with NewRemoteAuth and pass its Option to StartRemote. Every node of
// a cluster must use the same key and label.
type RemoteAuth struct {
	token   string // base64 of the HMAC, as sent in metadata
	tls     *remoteTLS
	refused atomic.Uint64
	logs    refusalLog
}

// NewRemoteAuth returns the authentication of remote peers for the
// cluster key (16, 24 or 32 bytes, as for Config.SecretKey) and label. It
// returns nil for a nil key: remote then accepts any peer, as without it.
// Refused peers are logged to logger (slog.Default() when nil), at most
// once per peer host and remoteRefusalLogInterval.
func NewRemoteAuth(key []byte, label string, logger *slog.Logger) (*RemoteAuth, error) {
	if key == nil {
		return nil, nil
	}
	if !validKeyLen(len(key)) {
		return nil, fmt.Errorf("%w: remote key of %d bytes, want 16, 24 or 32", ErrConfig, len(key))
	}
	if logger == nil {
		logger = slog.Default()
	}
	t, err := newRemoteTLS(deriveSecret(key, remoteTLSContext, label))
	if err != nil {
		return nil, fmt.Errorf("cluster: remote TLS: %w", err)
	}
	a := &RemoteAuth{
		token: base64.RawStdEncoding.EncodeToString(deriveSecret(key, remoteTokenContext, label)),
		tls:   t,
		logs:  refusalLog{log: logger, now: time.Now, last: map[string]time.Time{}},
	}
	t.refuse = a.refuse
	return a, nil
}

// deriveSecret is HMAC-SHA256(key, context+label).
func deriveSecret(key []byte, context, label string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(context))
	mac.Write([]byte(label))
	return mac.Sum(nil)
}

// Option configures remote to authenticate with a: TLS credentials and the
// token on every outgoing connection, the TLS handshake and interceptors
// on the server. It appends to remote's dial and server options (the TLS
// credentials replace remote's default insecure ones), so other options
// passed with it keep their effect unless they replace those lists
// (remote.WithDialOptions, remote.WithServerOptions): pass those before
// it. A nil a's Option changes nothing.
func (a *RemoteAuth) Option() remote.ConfigOption {
	return func(c *remote.Config) {
		if a == nil {
			return
		}
		c.DialOptions = append(c.DialOptions,
			grpc.WithTransportCredentials(a.tls.clientCredentials()),
			grpc.WithPerRPCCredentials(tokenCredentials{token: a.token}))
		c.ServerOptions = append(c.ServerOptions,
			grpc.Creds(a.tls.serverCredentials()),
			grpc.ConnectionTimeout(remoteHandshakeTimeout),
			grpc.ChainStreamInterceptor(a.streamInterceptor),
			grpc.ChainUnaryInterceptor(a.unaryInterceptor))
	}
}

// Refused is how many connections and calls a has refused.
func (a *RemoteAuth) Refused() uint64 {
	if a == nil {
		return 0
	}
	return a.refused.Load()
}

// tokenCredentials put the token in every call's metadata. They do not
// require transport security themselves: RemoteAuth provides it.
type tokenCredentials struct{ token string }

func (c tokenCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{remoteAuthMetadataKey: c.token}, nil
}

func (tokenCredentials) RequireTransportSecurity() bool { return false }

var _ credentials.PerRPCCredentials = tokenCredentials{}

func (a *RemoteAuth) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := a.check(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}

func (a *RemoteAuth) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := a.check(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// errRemoteUnauthenticated is what a peer without the token is told; it
// says nothing about what was wrong.
var errRemoteUnauthenticated = status.Error(codes.Unauthenticated, "cluster key required")

// check refuses a call that does not carry exactly one token equal to a's.
// It runs before the handler, so nothing the caller sent is decoded. (A
// unary request has been unmarshalled into its own request type by then,
// but not handed to remote.)
func (a *RemoteAuth) check(ctx context.Context, method string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	got := md.Get(remoteAuthMetadataKey)
	if len(got) == 1 && subtle.ConstantTimeCompare([]byte(got[0]), []byte(a.token)) == 1 {
		return nil
	}
	addr := "unknown"
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		addr = p.Addr.String()
	}
	why := "no token"
	if len(got) > 0 {
		why = "wrong token"
	}
	a.refuse(addr, why, "method", method)
	return errRemoteUnauthenticated
}

// refuse counts a refusal of the peer at addr and logs it unless its host
// was logged within remoteRefusalLogInterval.
func (a *RemoteAuth) refuse(addr, why string, attrs ...any) {
	a.refused.Add(1)
	a.logs.log1(addr, why, attrs...)
}

// refusalLog rate-limits the log lines of refused peers by host: a peer
// that reconnects from new ports is still one peer.
type refusalLog struct {
	log  *slog.Logger
	now  func() time.Time
	mu   sync.Mutex
	last map[string]time.Time
}

func (l *refusalLog) log1(addr, why string, attrs ...any) {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	now := l.now()
	l.mu.Lock()
	t, seen := l.last[host]
	if seen && now.Sub(t) < remoteRefusalLogInterval {
		l.mu.Unlock()
		return
	}
	if !seen && len(l.last) >= remoteRefusalHostsMax {
		for h, t := range l.last {
			if now.Sub(t) >= remoteRefusalLogInterval {
				delete(l.last, h)
			}
		}
		if len(l.last) >= remoteRefusalHostsMax {
			l.mu.Unlock()
			return
		}
	}
	l.last[host] = now
	l.mu.Unlock()
	l.log.Warn("remote peer refused: it does not hold the cluster key",
		append([]any{"peer", addr, "why", why, "quiet_for", remoteRefusalLogInterval}, attrs...)...)
}
