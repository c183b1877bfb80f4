package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadKeyFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key, err := LoadKeyFile(write("good", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"))
	if err != nil || string(key) != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("LoadKeyFile = %q, %v", key, err)
	}
	for name, text := range map[string]string{
		"not base64": "not a key!",
		"short":      "MDEyMzQ1Njc=",
	} {
		if _, err := LoadKeyFile(write(name, text)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := LoadKeyFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	good := Config{Name: "a", Generation: 1, RemoteAddress: "h:1"}
	if _, err := good.withDefaults(); err != nil {
		t.Fatal(err)
	}
	other := Bootstrap("c", hA1, 32)
	for name, breakIt := range map[string]func(*Config){
		"no name":          func(c *Config) { c.Name = "" },
		"generation 0":     func(c *Config) { c.Generation = 0 },
		"P too large":      func(c *Config) { c.Partitions = PartitionsMax + 1 },
		"bad key":          func(c *Config) { c.SecretKey = []byte("short") },
		"table of other P": func(c *Config) { c.Table = &other },
		"store alone":      func(c *Config) { c.Store = newMemStore(1) },
		"transport alone":  func(c *Config) { c.Handoff = newHandoffNet().transport("a") },
	} {
		c := good
		breakIt(&c)
		if _, err := c.withDefaults(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
}
