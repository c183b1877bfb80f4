package main

import (
	"errors"
	"flag"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orderengine/orderengine/gateway"
)

func noEnv(string) string { return "" }

func TestParseConfigDefaultsFlagsAndEnvironment(t *testing.T) {
	c, err := parseConfig(nil, io.Discard, noEnv)
	if err != nil || c.dataDir != "./data" || c.httpAddr != "127.0.0.1:8080" || c.requestTimeout != 5*time.Second || c.maxConns != defaultMaxConns {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	env := map[string]string{"ORDERD_HTTP": "127.0.0.1:9000", "ORDERD_ADMIN_TOKEN": "from-env", "ORDERD_LOG_FORMAT": "json"}
	c, err = parseConfig([]string{"-http", "127.0.0.1:9001"}, io.Discard, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.httpAddr != "127.0.0.1:9001" || c.adminToken != "from-env" || c.logFormat != "json" {
		t.Fatalf("a flag must win over the environment, which must win over defaults: %+v", c)
	}
}

func TestParseConfigRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"-log-level", "loud"}, want: "-log-level"},
		{args: []string{"-log-format", "xml"}, want: "-log-format"},
		{args: []string{"-request-timeout", "0s"}, want: "-request-timeout"},
		{args: []string{"-data", ""}, want: "-data"},
		{args: []string{"-max-conns", "-1"}, want: "-max-conns"},
		{args: []string{"extra"}, want: "unexpected arguments"},
		{env: map[string]string{"ORDERD_REQUEST_TIMEOUT": "soon"}, want: "ORDERD_REQUEST_TIMEOUT"},
	} {
		_, err := parseConfig(tc.args, io.Discard, func(k string) string { return tc.env[k] })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: error %v, want one naming %s", tc.args, tc.env, err, tc.want)
		}
	}
}

func TestAdminTokenIsGeneratedOnceWithMode0600(t *testing.T) {
	dir := t.TempDir()
	tok, path, created, err := loadAdminToken(config{dataDir: dir})
	if err != nil || !created || len(tok) != 64 {
		t.Fatalf("first start: %q %v %v", tok, created, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 || path != filepath.Join(dir, adminTokenFile) {
		t.Fatalf("token file %s: %v %v", path, st.Mode(), err)
	}
	again, _, created, err := loadAdminToken(config{dataDir: dir})
	if err != nil || created || again != tok {
		t.Fatalf("second start must reuse the token: %q %v %v", again, created, err)
	}
	given, path, _, _ := loadAdminToken(config{dataDir: dir, adminToken: "explicit"})
	if given != "explicit" || path != "" {
		t.Fatalf("a configured token wins: %q %q", given, path)
	}
	// A token file others may read is refused, not used.
	if err := os.Chmod(filepath.Join(dir, adminTokenFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := loadAdminToken(config{dataDir: dir}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("token file of mode 0644: %v", err)
	}
}

func TestByteSizeFlag(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "4096": 4096, "512MiB": 512 << 20, "2GiB": 2 << 30, "64KiB": 64 << 10} {
		var b byteSize
		if err := b.Set(in); err != nil || int64(b) != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, b, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "12MB", "1.5GiB", "GiB", "1 MiB", "99999999999GiB"} {
		var b byteSize
		if err := b.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted as %d", bad, b)
		}
	}
	b := byteSize(512 << 20)
	if b.String() != "512MiB" {
		t.Errorf("String() = %q", b.String())
	}
}

func TestDeadLettersLoggedAtDebug(t *testing.T) {
	var b strings.Builder
	log := slog.New(deadLettersAtDebug{slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelInfo})})
	log.Info("[DeadLetter]", "pid", "sku/A")
	log.Info("actor system started")
	if strings.Contains(b.String(), "DeadLetter") || !strings.Contains(b.String(), "actor system started") {
		t.Fatalf("at info level: %q", b.String())
	}
	b.Reset()
	log = slog.New(deadLettersAtDebug{slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})})
	log.Info("[DeadLetter]", "pid", "sku/A")
	if !strings.Contains(b.String(), "level=DEBUG") {
		t.Fatalf("at debug level: %q", b.String())
	}
}

// A node whose HTTP address is taken fails before it writes anything.
func TestTakenAddressWritesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := filepath.Join(t.TempDir(), "data")
	err = run(t.Context(), []string{"-data", dir, "-http", ln.Addr().String()}, io.Discard, io.Discard, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("run on a taken address: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the data directory was created: %v", err)
	}
}

func TestHelpNamesTheEnvironment(t *testing.T) {
	var b strings.Builder
	_, err := parseConfig([]string{"-h"}, &b, func(string) string { return "" })
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(b.String(), "ORDERD_<FLAG>") || !strings.Contains(b.String(), "-max-resident") ||
		!strings.Contains(b.String(), "-customer-rate rate") || !strings.Contains(b.String(), "-trust-forwarded-for") {
		t.Fatalf("-h: %v\n%s", err, b.String())
	}
	var out strings.Builder
	if err := run(t.Context(), []string{"-version"}, &out, io.Discard, func(string) string { return "" }); err != nil || !strings.HasPrefix(out.String(), "orderd ") {
		t.Fatalf("-version: %v %q", err, out.String())
	}
}

func TestRateLimitFlags(t *testing.T) {
	c, err := parseConfig(nil, io.Discard, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if rateLimit(c.customerRate, c.customerBurst) != (gateway.RateLimit{}) || rateLimit(c.clientRate, c.clientBurst) != (gateway.RateLimit{}) ||
		c.rateLimitEntries != gateway.DefaultRateLimitEntriesMax || c.trustForwardedFor {
		t.Fatalf("rate limits must be off by default: %+v", c)
	}
	env := map[string]string{"ORDERD_CUSTOMER_RATE": "300/m", "ORDERD_CLIENT_RATE": "1/s", "ORDERD_CLIENT_BURST": "7",
		"ORDERD_TRUST_FORWARDED_FOR": "true"}
	c, err = parseConfig([]string{"-client-rate", "50/s", "-customer-burst", "2", "-max-rate-limit-entries", "1024"},
		io.Discard, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if got := rateLimit(c.customerRate, c.customerBurst); got != (gateway.RateLimit{PerSecond: 5, Burst: 2}) {
		t.Errorf("customer limit %+v", got)
	}
	if got := rateLimit(c.clientRate, c.clientBurst); got != (gateway.RateLimit{PerSecond: 50, Burst: 7}) {
		t.Errorf("client limit %+v (a flag wins over the environment)", got)
	}
	if c.rateLimitEntries != 1024 || !c.trustForwardedFor {
		t.Errorf("entries %d, trust %v", c.rateLimitEntries, c.trustForwardedFor)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-customer-rate", "5"}, "-customer-rate"},
		{[]string{"-client-rate", "fast"}, "-client-rate"},
		{[]string{"-customer-burst", "-1", "-customer-rate", "1/s"}, "-customer-burst"},
		{[]string{"-client-burst", "3"}, "-client-burst needs -client-rate"},
		{[]string{"-customer-burst", "3"}, "-customer-burst needs -customer-rate"},
		{[]string{"-max-rate-limit-entries", "0"}, "-max-rate-limit-entries"},
	} {
		if _, err := parseConfig(tc.args, io.Discard, noEnv); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %s", tc.args, err, tc.want)
		}
	}
}

func TestRateFlag(t *testing.T) {
	for in, want := range map[string]float64{"0": 0, "5/s": 5, "300/m": 5, "0.5/s": 0.5, "36/h": 0.01, "0/s": 0} {
		var r ratePerSecond
		if err := r.Set(in); err != nil || float64(r) != want {
			t.Errorf("Set(%q) = %v, %v; want %v", in, float64(r), err, want)
		}
	}
	for _, bad := range []string{"", "5", "5/d", "/s", "-1/s", "inf/s", "NaN/s", "5/s/s", "five/s", "5 /s"} {
		var r ratePerSecond
		if err := r.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted as %v", bad, float64(r))
		}
	}
	r := ratePerSecond(5)
	var back ratePerSecond
	if err := back.Set(r.String()); err != nil || back != r {
		t.Errorf("String() %q does not read back: %v %v", r.String(), back, err)
	}
}
