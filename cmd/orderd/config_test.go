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
)

func noEnv(string) string { return "" }

func TestParseConfigDefaultsFlagsAndEnvironment(t *testing.T) {
	c, err := parseConfig(nil, io.Discard, noEnv)
	if err != nil || c.dataDir != "./data" || c.httpAddr != "127.0.0.1:8080" || c.requestTimeout != 5*time.Second {
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
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(b.String(), "ORDERD_<FLAG>") || !strings.Contains(b.String(), "-max-resident") {
		t.Fatalf("-h: %v\n%s", err, b.String())
	}
	var out strings.Builder
	if err := run(t.Context(), []string{"-version"}, &out, io.Discard, func(string) string { return "" }); err != nil || !strings.HasPrefix(out.String(), "orderd ") {
		t.Fatalf("-version: %v %q", err, out.String())
	}
}
