package cluster

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"
)

// Defaults and limits of a Node.
const (
	// DefaultRejoinInterval is how often a node re-joins its seeds and the
	// members it saw die.
	DefaultRejoinInterval = 10 * time.Second
	// DefaultPushPullInterval is how often memberlist exchanges full state,
	// table included, with a random member. memberlist's LAN default (30 s)
	// is tuned for large clusters; the table is small.
	DefaultPushPullInterval = 5 * time.Second
	// joinRetryIntervalMax is how long a node that is not ready yet waits
	// between attempts to join its seeds.
	joinRetryIntervalMax = time.Second
	// eventsMax bounds memberlist events waiting for the node's event
	// goroutine; when it is full the goroutine re-reads the member list.
	eventsMax = 256
	// rejoinTargetsMax bounds the addresses one re-join round tries; each
	// unreachable one can take memberlist's TCPTimeout.
	rejoinTargetsMax = 16
	// deadRetention is how long a dead member that holds no partition is
	// remembered (and re-joined); one that holds partitions is remembered
	// until it returns or is forgotten.
	deadRetention = time.Hour
	// membersMax bounds the members a node remembers, dead ones included.
	membersMax = 4096
	// metaBroadcastWait bounds how long publishing new metadata waits for
	// memberlist to send it to a first member. The update itself is made
	// before the wait, and the broadcast stays queued after it, so waiting
	// longer would only stall the event goroutine.
	metaBroadcastWait = 100 * time.Millisecond
)

// Config configures a Node. Name, Generation and RemoteAddress are
// required; everything else has a default.
type Config struct {
	// Name is the node's name, unique in the cluster and stable across
	// restarts: placement hashes names.
	Name string
	// Generation of the node's data directory, at least 1. A node whose
	// data directory is created again must come back with a higher one
	// (its creation time in nanoseconds does), since Forget tombstones a
	// name's generations up to the one forgotten.
	Generation uint64
	// RemoteAddress is where the node's actor system listens for other
	// nodes (host:port); members learn it from the node's metadata.
	RemoteAddress string
	// Partitions is P; DefaultPartitions when 0. A node refuses members and
	// tables with another P.
	Partitions int
	// Seeds are host:port addresses of members to join. A node without
	// seeds (and without Table) creates a new cluster and holds every
	// partition; exactly one node should do that.
	Seeds []string
	// Table is the table the node had before it stopped, when it keeps
	// one. With it, a node without seeds is ready at once with that table;
	// with seeds it still waits for an exchange with a peer.
	Table *Table

	// BindAddr and BindPort are where memberlist listens (default
	// 127.0.0.1, port 0 = any free port; LocalAddr tells which).
	BindAddr string
	BindPort int
	// AdvertiseAddr and AdvertisePort are what other members dial; the
	// bind address and port when empty.
	AdvertiseAddr string
	AdvertisePort int
	// SecretKey (16, 24 or 32 bytes; see LoadKeyFile) encrypts gossip;
	// Label separates clusters that share a network. Members must agree on
	// both.
	SecretKey []byte
	Label     string
	// Transport replaces memberlist's UDP and TCP transport (tests).
	Transport memberlist.Transport

	// RejoinInterval: DefaultRejoinInterval when 0.
	RejoinInterval time.Duration
	// PushPullInterval: DefaultPushPullInterval when 0.
	PushPullInterval time.Duration
	// Memberlist, when set, adjusts memberlist's configuration after the
	// node has filled it in (tests shorten probe intervals with it).
	Memberlist func(*memberlist.Config)
	// OnTable, when set, is called with every new table the node adopts,
	// in order, while the node's lock is held: it must return quickly and
	// must not call the node.
	OnTable func(Table)

	// Store is this node's side of the partitions' data and its saved
	// table. With Store and Handoff the node moves partitions to their
	// desired holders (handoff.go); without them partitions never move.
	Store PartitionStore
	// Handoff carries handoffs to and from other nodes; required with
	// Store.
	Handoff HandoffTransport
	// StartServing, when set, starts partition p's actors once the node
	// holds p's fence at epoch; StopServing stops them before the fence
	// is released. Both are called from the node's handoff goroutine,
	// never with the node's lock held, and must return quickly.
	StartServing func(p int, epoch uint64)
	StopServing  func(p int)
	// HandoffsMax is how many partitions the node hands off at once:
	// DefaultHandoffsMax when 0.
	HandoffsMax int
	// HandoffTimeout is how long one handoff is tried before the node
	// gives up and serves the partition again: DefaultHandoffTimeout
	// when 0.
	HandoffTimeout time.Duration

	// Logger: slog.Default() when nil. memberlist's own log lines go to it
	// too, at the level they name.
	Logger *slog.Logger
	// Now: time.Now when nil.
	Now func() time.Time
}

// ErrConfig is returned by Start for an invalid Config.
var ErrConfig = errors.New("cluster: invalid config")

func (c Config) withDefaults() (Config, error) {
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.BindAddr == "" {
		c.BindAddr = "127.0.0.1"
	}
	if c.RejoinInterval <= 0 {
		c.RejoinInterval = DefaultRejoinInterval
	}
	if c.PushPullInterval <= 0 {
		c.PushPullInterval = DefaultPushPullInterval
	}
	if c.HandoffsMax <= 0 {
		c.HandoffsMax = DefaultHandoffsMax
	}
	if c.HandoffTimeout <= 0 {
		c.HandoffTimeout = DefaultHandoffTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	switch {
	case c.Name == "" || len(c.Name) > NodeNameBytesMax || !utf8.ValidString(c.Name):
		return c, fmt.Errorf("%w: node name of %d bytes, want 1..%d of UTF-8", ErrConfig, len(c.Name), NodeNameBytesMax)
	case c.Generation == 0:
		return c, fmt.Errorf("%w: generation 0", ErrConfig)
	case len(c.RemoteAddress) > RemoteAddressBytesMax || !utf8.ValidString(c.RemoteAddress):
		return c, fmt.Errorf("%w: remote address of %d bytes, want at most %d", ErrConfig, len(c.RemoteAddress), RemoteAddressBytesMax)
	case c.Partitions < 1 || c.Partitions > PartitionsMax:
		return c, fmt.Errorf("%w: %d partitions, want 1..%d", ErrConfig, c.Partitions, PartitionsMax)
	case (c.Store == nil) != (c.Handoff == nil):
		return c, fmt.Errorf("%w: Store and Handoff go together", ErrConfig)
	case c.SecretKey != nil && !validKeyLen(len(c.SecretKey)):
		return c, fmt.Errorf("%w: secret key of %d bytes, want 16, 24 or 32", ErrConfig, len(c.SecretKey))
	}
	if c.Table != nil {
		if err := c.Table.Validate(); err != nil {
			return c, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		if len(c.Table.Partitions) != c.Partitions || c.Table.ClusterID == "" {
			return c, fmt.Errorf("%w: table of %d partitions in cluster %q, want %d in a named cluster",
				ErrConfig, len(c.Table.Partitions), c.Table.ClusterID, c.Partitions)
		}
	}
	return c, nil
}

// keyFileBytesMax bounds what LoadKeyFile reads: a 32-byte key in base64
// with white space around it is far smaller.
const keyFileBytesMax = 4096

func validKeyLen(n int) bool { return n == 16 || n == 24 || n == 32 }

// ErrKeyFileMode is returned by LoadKeyFile for a key file that users
// other than its owner may read or write.
var ErrKeyFileMode = errors.New("cluster: gossip key file is open to group or others")

// LoadKeyFile reads a gossip key: the standard base64 encoding of 16, 24
// or 32 random bytes (openssl rand -base64 32), surrounding white space
// ignored. The file must be open to its owner only (mode 0600 or 0400):
// whoever reads the key can join the cluster and send any actor anything.
// (Windows has no such mode bits; there the check is skipped.)
func LoadKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cluster: gossip key: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cluster: gossip key: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("%w: %s has mode %04o, want 0600 (chmod 600 %s)", ErrKeyFileMode, path, perm, path)
	}
	text, err := io.ReadAll(io.LimitReader(f, keyFileBytesMax+1))
	if err != nil {
		return nil, fmt.Errorf("cluster: gossip key: %w", err)
	}
	if len(text) > keyFileBytesMax {
		return nil, fmt.Errorf("cluster: gossip key file %s is over %d bytes", path, keyFileBytesMax)
	}
	key, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(text)))
	if err != nil {
		return nil, fmt.Errorf("cluster: gossip key in %s is not base64: %w", path, err)
	}
	if !validKeyLen(len(key)) {
		return nil, fmt.Errorf("cluster: gossip key in %s has %d bytes, want 16, 24 or 32", path, len(key))
	}
	return key, nil
}
