package cluster

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
)

// RemoteMaxRetryCount is the number of connection attempts remote's
// endpoint writer makes to a peer before it gives up on it and publishes
// EndpointTerminatedEvent. Each failed attempt is followed by a fixed
// 2 s sleep inside remote (the last one too), during which messages to the
// peer wait; remote's default of 5 stalls them for about 10 s. 1 is the
// least that works: with 0 the writer never connects, never reports the
// peer terminated, and dead-letters everything sent to it for good.
const RemoteMaxRetryCount = 1

// ErrRemoteStart is returned by StartRemote when remote does not start.
var ErrRemoteStart = errors.New("cluster: remote did not start")

// DefaultRemoteHost is where StartRemote listens when bindAddr names no
// host (":0"): loopback, so that a node is reachable from other machines
// only when it is told an address to listen on (see RemoteAuth for who may
// then send to it).
const DefaultRemoteHost = "127.0.0.1"

// StartRemote starts protoactor-go's remote on system, listening on
// bindAddr (host:port, port 0 for any free port, DefaultRemoteHost when the
// host is empty; "0.0.0.0:port" for every interface) and known to other nodes
// as advertised (host:port with the real port; empty for the address the
// listener got, which suits a bind on a specific interface). It returns
// remote and the system's address, which is what a node puts in its
// Config.RemoteAddress.
//
// Call it before spawning any actor: a PID made before remote starts
// carries the address "nonhost", and replies to it never come back.
// remote's own Start panics when it cannot listen; StartRemote returns
// that as an error.
//
// Without options remote accepts any peer that reaches it. With a cluster
// key pass NewRemoteAuth(key, label, logger).Option(): then only peers
// that hold the key can connect and call.
func StartRemote(system *actor.ActorSystem, bindAddr, advertised string, opts ...remote.ConfigOption) (r *remote.Remote, addr string, err error) {
	host, portText, err := net.SplitHostPort(bindAddr)
	if err != nil {
		return nil, "", fmt.Errorf("%w: bind address %q: %w", ErrRemoteStart, bindAddr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return nil, "", fmt.Errorf("%w: bind port %q", ErrRemoteStart, portText)
	}
	if host == "" {
		host = DefaultRemoteHost
	}
	if advertised != "" {
		_, advPort, err := net.SplitHostPort(advertised)
		if err != nil || advPort == "" || advPort == "0" {
			return nil, "", fmt.Errorf("%w: advertised address %q needs host:port with a port other than 0", ErrRemoteStart, advertised)
		}
	}
	options := []remote.ConfigOption{func(c *remote.Config) { c.MaxRetryCount = RemoteMaxRetryCount }}
	if advertised != "" {
		options = append(options, remote.WithAdvertisedHost(advertised))
	}
	options = append(options, opts...)
	options = append(options, remoteGuard(system.Logger()))
	r = remote.NewRemote(system, remote.Configure(host, port, options...))
	defer func() {
		if p := recover(); p != nil {
			r, addr, err = nil, "", fmt.Errorf("%w: %v", ErrRemoteStart, p)
		}
	}()
	r.Start()
	return r, system.Address(), nil
}
