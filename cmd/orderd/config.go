package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/cluster"
	"github.com/orderengine/orderengine/gateway"
	"github.com/orderengine/orderengine/persistence"
)

// config is everything orderd reads from flags and environment.
type config struct {
	dataDir        string
	httpAddr       string
	adminToken     string
	logLevel       string
	logFormat      string
	requestTimeout time.Duration
	snapshotEvery  uint64
	passivateAfter time.Duration
	orderPassivate time.Duration
	orderRetention time.Duration
	residentMax    int
	maxConns       int
	memoryLimit    byteSize
	storageReserve byteSize
	memtable       byteSize
	debugAddr      string
	version        bool

	// Clustering: on when any of gossip, remote or seeds is set (see
	// clustered); a node without them runs alone, as one holding every
	// partition.
	nodeName      string
	gossipAddr    string
	remoteAddr    string
	seeds         []string
	partitions    int
	gossipKeyFile string
	clusterLabel  string

	// Per-client rate limits of the gateway; a zero rate is off.
	customerRate      ratePerSecond
	customerBurst     int
	clientRate        ratePerSecond
	clientBurst       int
	rateLimitEntries  int
	trustForwardedFor bool
}

// defaultMemoryLimit is the Go heap's soft limit unless -memory-limit or
// GOMEMLIMIT says otherwise. Without one the heap grows to twice what is
// live before a collection, which for a node keeping a few hundred MiB of
// actors and Badger buffers doubles its resident memory.
const defaultMemoryLimit = byteSize(0)

// defaultMemtable is the journal's memtable size unless -journal-memtable
// says otherwise. Measured side by side under wrk on 2 cores, 32 MiB took
// about 10% more checkouts per second than the library's 8 MiB, with a
// lower p99 (fewer memtable flushes and L0 compactions), for about 50 MiB
// more memory.
const (
	defaultMemtable = byteSize(32 << 20)
	memtableMin     = byteSize(8 << 20)
	memtableMax     = byteSize(1 << 30)
)

// defaultMaxConns caps open client connections: far above what a load
// balancer or a few hundred clients keep open, far below what exhausts the
// node's file descriptors or memory (each connection holds buffers).
const defaultMaxConns = 10_000

// orderRetentionMin is API.md's promise: an idempotent checkout replays
// its first answer for at least 24 hours.
const orderRetentionMin = 24 * time.Hour

// envPrefix: every flag can also come from ORDERD_<FLAG>, with dashes as
// underscores (ORDERD_ADMIN_TOKEN). A flag on the command line wins.
const envPrefix = "ORDERD_"

// adminTokenFile is where a generated admin token is kept, inside the data
// directory.
const adminTokenFile = "admin-token"

func parseConfig(args []string, stderr io.Writer, getenv func(string) string) (config, error) {
	var c config
	fs := flag.NewFlagSet("orderd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: orderd [flags]

orderd runs one node of the order engine: its journal in the data
directory, the SKU and order actors, and the checkout HTTP API.

Every flag can also be set in the environment as %s<FLAG>, upper case
with dashes as underscores (ORDERD_ADMIN_TOKEN, ORDERD_MAX_RESIDENT); a flag
on the command line wins.

Flags:
`, envPrefix)
		fs.PrintDefaults()
	}
	fs.BoolVar(&c.version, "version", false, "print the version and exit")
	fs.StringVar(&c.dataDir, "data", "./data", "data directory (journal, snapshots, generated admin token)")
	fs.StringVar(&c.httpAddr, "http", "127.0.0.1:8080", "HTTP listen address of the gateway")
	fs.StringVar(&c.adminToken, "admin-token", "", "admin bearer token (default: generated at first start and stored in the data directory)")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.DurationVar(&c.requestTimeout, "request-timeout", 5*time.Second, "deadline of every engine call made for an HTTP request")
	fs.Uint64Var(&c.snapshotEvery, "snapshot-every", 1000, "events between snapshots of an actor (0: only on passivation)")
	fs.DurationVar(&c.passivateAfter, "passivate-after", 10*time.Minute, "stop SKU actors idle this long (0: never)")
	fs.DurationVar(&c.orderPassivate, "order-passivate-after", 30*time.Second,
		"stop order actors idle this long (0: never); unpaid ones are woken again at their expiry")
	fs.DurationVar(&c.orderRetention, "order-retention", actors.DefaultOrderRetention,
		"keep terminal orders (rejected, cancelled, expired, completed) this long, then delete them (at least 24h)")
	c.memoryLimit = defaultMemoryLimit
	fs.Var(&c.memoryLimit, "memory-limit",
		"soft limit of the Go heap (e.g. 512MiB, 2GiB; 0: Go's default, or GOMEMLIMIT); the garbage collector works harder near it")
	c.storageReserve = byteSize(persistence.DefaultOptions().StorageReserveBytes)
	fs.Var(&c.storageReserve, "storage-reserve",
		"fixed part of the free space kept on the data volume; below the whole reserve (this, plus what grows with the store) writes answer 503")
	c.memtable = defaultMemtable
	fs.Var(&c.memtable, "journal-memtable",
		"size of each of the journal's in-memory tables (8MiB..1GiB); larger ones take fewer flushes and compactions under load, "+
			"and cost memory and free space (the storage reserve keeps about 7 of them free)")
	fs.IntVar(&c.residentMax, "max-resident", actors.DefaultResidentMax,
		"actors kept in memory before the least recently used are asked to passivate (0: no bound)")
	fs.IntVar(&c.maxConns, "max-conns", defaultMaxConns,
		"client connections open at once; one past it is answered 503 unavailable and closed (0: no cap)")
	fs.StringVar(&c.debugAddr, "debug-addr", "", "serve Go's pprof profiles on this address (off when empty; keep it on loopback)")
	fs.Var(&c.customerRate, "customer-rate",
		"checkouts per customer, a `rate` such as 5/s or 300/m, beyond which POST /v1/orders answers 429 rate-limited (0: no limit)")
	fs.IntVar(&c.customerBurst, "customer-burst", 0,
		"checkouts one customer may make at once (0: the per-second rate rounded up, at least 1)")
	fs.Var(&c.clientRate, "client-rate",
		"requests per client address on every route, a `rate` such as 50/s, beyond which 429 rate-limited is answered (0: no limit; IPv6 counts per /64)")
	fs.IntVar(&c.clientBurst, "client-burst", 0,
		"requests one client address may make at once (0: the per-second rate rounded up, at least 1)")
	fs.IntVar(&c.rateLimitEntries, "max-rate-limit-entries", gateway.DefaultRateLimitEntriesMax,
		"customers, and client addresses, each rate limit keeps a bucket for; beyond it one not used lately is forgotten and starts again with a full bucket")
	fs.StringVar(&c.nodeName, "node", "", "this node's name in its cluster, unique and stable across restarts (default: the host name)")
	fs.StringVar(&c.gossipAddr, "gossip", "",
		"membership gossip address host:port (default "+defaultGossipAddr+" once clustered; setting it, -remote or -seeds makes the node a cluster member)")
	fs.StringVar(&c.remoteAddr, "remote", "",
		"address host:port where other nodes send this node's actors their messages (default: the gossip host, any free port)")
	fs.Func("seeds", "comma-separated gossip addresses host:port of members to join; without seeds a clustered node founds a new cluster",
		func(v string) error {
			c.seeds = nil
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					c.seeds = append(c.seeds, s)
				}
			}
			return nil
		})
	fs.IntVar(&c.partitions, "partitions", persistence.DefaultOptions().Partitions,
		"partitions identities are spread over, fixed when the data directory and the cluster are created")
	fs.StringVar(&c.gossipKeyFile, "gossip-key-file", "",
		"file (mode 0600) holding the cluster key, base64 of 16, 24 or 32 bytes: it encrypts gossip and authenticates nodes to each other (mutual TLS); every member must use the same")
	fs.StringVar(&c.clusterLabel, "cluster-label", "",
		"label that keeps clusters sharing a network apart; every member must use the same")
	fs.BoolVar(&c.trustForwardedFor, "trust-forwarded-for", false,
		"take the client address from the last X-Forwarded-For entry; only behind a proxy that appends it, since clients can write any")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := envPrefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" && !set[f.Name] {
			if err := f.Value.Set(v); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s=%q: %w", name, v, err)
			}
		}
	})
	if envErr != nil {
		return c, envErr
	}
	return c, c.validate()
}

func (c config) validate() error {
	switch {
	case c.dataDir == "":
		return errors.New("-data must not be empty")
	case c.httpAddr == "":
		return errors.New("-http must not be empty")
	case c.requestTimeout <= 0:
		return errors.New("-request-timeout must be positive")
	case c.passivateAfter < 0 || c.orderPassivate < 0:
		return errors.New("-passivate-after and -order-passivate-after must not be negative")
	case c.orderRetention < orderRetentionMin:
		return fmt.Errorf("-order-retention %v: want at least %v (idempotent checkouts replay for 24 hours)", c.orderRetention, orderRetentionMin)
	case c.residentMax < 0:
		return errors.New("-max-resident must not be negative")
	case c.maxConns < 0:
		return errors.New("-max-conns must not be negative")
	case c.customerBurst < 0 || c.clientBurst < 0:
		return errors.New("-customer-burst and -client-burst must not be negative")
	case c.customerBurst > 0 && c.customerRate == 0:
		return errors.New("-customer-burst needs -customer-rate")
	case c.clientBurst > 0 && c.clientRate == 0:
		return errors.New("-client-burst needs -client-rate")
	case c.rateLimitEntries <= 0:
		return errors.New("-max-rate-limit-entries must be positive")
	case c.storageReserve <= 0:
		return errors.New("-storage-reserve must be positive")
	case c.memtable < memtableMin || c.memtable > memtableMax:
		return fmt.Errorf("-journal-memtable %v: want %v..%v", c.memtable, memtableMin, memtableMax)
	case c.partitions < 1 || c.partitions > cluster.PartitionsMax:
		return fmt.Errorf("-partitions %d: want 1..%d", c.partitions, cluster.PartitionsMax)
	case !c.clustered() && (c.nodeName != "" || c.gossipKeyFile != "" || c.clusterLabel != ""):
		return errors.New("-node, -gossip-key-file and -cluster-label need clustering: set -gossip, -remote or -seeds")
	}
	for _, a := range append([]string{c.gossipAddr, c.remoteAddr}, c.seeds...) {
		if a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("address %q: want host:port: %w", a, err)
		}
	}
	if _, err := parseLevel(c.logLevel); err != nil {
		return err
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return fmt.Errorf("-log-format %q: want text or json", c.logFormat)
	}
	return nil
}

// defaultGossipAddr is where a clustered node gossips unless -gossip says.
const defaultGossipAddr = "127.0.0.1:7946"

// clustered reports whether the node joins or founds a cluster.
func (c config) clustered() bool {
	return c.gossipAddr != "" || c.remoteAddr != "" || len(c.seeds) > 0
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("-log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

func newLogger(c config, w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.logLevel) // validated
	opts := &slog.HandlerOptions{Level: level}
	if c.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// adminToken returns the configured token, or the one stored in the data
// directory, generating and storing it (mode 0600) at first start. created
// tells whether it was generated now.
func loadAdminToken(c config) (token, path string, created bool, err error) {
	if c.adminToken != "" {
		return c.adminToken, "", false, nil
	}
	path = filepath.Join(c.dataDir, adminTokenFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if st, err := os.Stat(path); err != nil {
			return "", path, false, fmt.Errorf("read admin token: %w", err)
		} else if st.Mode().Perm()&0o077 != 0 {
			return "", path, false, fmt.Errorf("admin token file %s has mode %04o: others may read the token; chmod 600 it", path, st.Mode().Perm())
		}
		token = strings.TrimSpace(string(b))
		if token == "" {
			return "", path, false, fmt.Errorf("admin token file %s is empty", path)
		}
		return token, path, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", path, false, fmt.Errorf("read admin token: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", path, false, fmt.Errorf("generate admin token: %w", err)
	}
	token = hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", path, false, fmt.Errorf("store admin token: %w", err)
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		return "", path, false, fmt.Errorf("store admin token: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", path, false, fmt.Errorf("store admin token: %w", err)
	}
	return token, path, true, f.Close()
}

// ratePerSecond is a flag value: a rate written COUNT/UNIT, UNIT one of s, m
// or h (5/s, 300/m, 0.5/s), or 0 for none.
type ratePerSecond float64

func (r *ratePerSecond) String() string {
	if *r == 0 {
		return "0"
	}
	return strconv.FormatFloat(float64(*r), 'g', -1, 64) + "/s"
}

func (r *ratePerSecond) Set(s string) error {
	if s == "0" {
		*r = 0
		return nil
	}
	num, unit, _ := strings.Cut(s, "/")
	seconds := map[string]float64{"s": 1, "m": 60, "h": 3600}[unit]
	n, err := strconv.ParseFloat(num, 64)
	if seconds == 0 || err != nil || n < 0 || math.IsInf(n, 0) || math.IsNaN(n) {
		return fmt.Errorf("%q: want a rate such as 5/s or 300/m (0: no limit)", s)
	}
	*r = ratePerSecond(n / seconds)
	return nil
}

// rateLimit is the gateway's form of a rate and burst flag pair.
func rateLimit(r ratePerSecond, burst int) gateway.RateLimit {
	return gateway.RateLimit{PerSecond: float64(r), Burst: burst}
}

// byteSize is a flag value in bytes, written with an optional KiB, MiB or
// GiB suffix.
type byteSize int64

func (b *byteSize) String() string {
	switch v := int64(*b); {
	case v != 0 && v%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", v>>30)
	case v != 0 && v%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", v>>20)
	case v != 0 && v%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", v>>10)
	default:
		return fmt.Sprint(v)
	}
}

func (b *byteSize) Set(s string) error {
	units := []struct {
		suffix string
		shift  uint
	}{{"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"", 0}}
	for _, u := range units {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		var n int64
		if _, err := fmt.Sscan(num, &n); err != nil || n < 0 || n > 1<<(62-u.shift) || fmt.Sprint(n) != num {
			return fmt.Errorf("%q: want a size such as 512MiB", s)
		}
		*b = byteSize(n << u.shift)
		return nil
	}
	return fmt.Errorf("%q: want a size such as 512MiB", s)
}

// buildVersion is the module version and VCS revision the binary was built
// from, as far as the Go toolchain recorded them.
func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown version)"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision":
			v += " " + s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			v += " (modified)"
		}
	}
	return v + " " + info.GoVersion
}
