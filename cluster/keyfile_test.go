package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestLoadKeyFileMode: a key file that the group or others may read or
// write is refused; one open to its owner only is accepted.
func TestLoadKeyFileMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no mode bits on Windows")
	}
	const text = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"
	dir := t.TempDir()
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o600, true}, {0o400, true}, {0o640, false}, {0o604, false}, {0o644, false}, {0o620, false}, {0o666, false},
	} {
		p := filepath.Join(dir, "key-"+tc.mode.String())
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, tc.mode); err != nil { // WriteFile's mode passes through the umask
			t.Fatal(err)
		}
		key, err := LoadKeyFile(p)
		switch {
		case tc.ok && (err != nil || len(key) != 32):
			t.Errorf("mode %04o: %v, want the key", tc.mode, err)
		case !tc.ok && !errors.Is(err, ErrKeyFileMode):
			t.Errorf("mode %04o: %v, want ErrKeyFileMode", tc.mode, err)
		}
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, []byte(strings.Repeat(" ", keyFileBytesMax)+text), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyFile(big); err == nil {
		t.Error("a key file over keyFileBytesMax: no error")
	}
}
