package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var deployFiles = []string{"systemd/orderd.service", "systemd/orderd.env", "kubernetes/orderd.yaml"}

// buildOrderd builds cmd/orderd into a temporary directory.
func buildOrderd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "orderd")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/orderd")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/orderd: %v\n%s", err, out)
	}
	return bin
}

// TestSettingsAreFlags checks that every ORDERD_* name in the examples is
// the environment form of a flag that orderd -h lists.
func TestSettingsAreFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds orderd")
	}
	help, _ := exec.Command(buildOrderd(t), "-h").CombinedOutput()
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z][a-z0-9-]*)`).FindAllStringSubmatch(string(help), -1) {
		flags[m[1]] = true
	}
	if len(flags) < 10 {
		t.Fatalf("orderd -h lists %d flags:\n%s", len(flags), help)
	}
	for _, f := range deployFiles {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`ORDERD_([A-Z0-9_]+)`).FindAllStringSubmatch(string(raw), -1) {
			flag := strings.ToLower(strings.ReplaceAll(m[1], "_", "-"))
			if !flags[flag] {
				t.Errorf("%s: %s is not a flag of orderd (-%s)", f, m[0], flag)
			}
		}
	}
}

// TestSystemdUnitVerifies runs systemd-analyze verify on the unit, with
// ExecStart pointing at a real orderd; it skips where systemd-analyze is
// not installed. Any warning fails it.
func TestSystemdUnitVerifies(t *testing.T) {
	if testing.Short() {
		t.Skip("builds orderd")
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	unit, err := os.ReadFile("systemd/orderd.service")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "ExecStart=/usr/local/bin/orderd\n") {
		t.Fatal("the unit's ExecStart is not /usr/local/bin/orderd")
	}
	for _, want := range []string{"User=orderd", "LimitNOFILE=", "Restart=on-failure", "KillSignal=SIGTERM"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("the unit has no %s", want)
		}
	}
	path := filepath.Join(t.TempDir(), "orderd.service")
	local := strings.Replace(string(unit), "ExecStart=/usr/local/bin/orderd", "ExecStart="+buildOrderd(t), 1)
	if err := os.WriteFile(path, []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
