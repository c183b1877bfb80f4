package persistence

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestMetaRoundTripLimitsAndReopen(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, found, err := j.GetMeta("table"); err != nil || found {
		t.Fatalf("missing meta: found %v, %v", found, err)
	}
	big := bytes.Repeat([]byte{7}, metaValueBytesMax)
	puts := map[string][]byte{
		"table":                        []byte("v1"),
		"format":                       []byte("not the journal's"),
		strings.Repeat("n", 64):        big,
		"empty value":                  {},
		"node/identity ~!@#$%^&*()_+-": []byte("x"),
	}
	for name, v := range puts {
		if err := j.PutMeta(name, v); err != nil {
			t.Fatalf("put %q: %v", name, err)
		}
	}
	if err := j.PutMeta("table", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	puts["table"] = []byte("v2")
	for _, bad := range []struct {
		name  string
		value []byte
	}{
		{"", nil},
		{strings.Repeat("n", 65), nil},
		{"tab\tle", nil},
		{"caf\xc3\xa9", nil},
		{"big", make([]byte, metaValueBytesMax+1)},
	} {
		if err := j.PutMeta(bad.name, bad.value); !errors.Is(err, ErrInvalidRequest) {
			t.Fatalf("put %q (%d bytes): %v, want ErrInvalidRequest", bad.name, len(bad.value), err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	// The journal's own "format" record is untouched: reopening checks it.
	j = openTest(t, dir, testOptions(t))
	for name, want := range puts {
		got, found, err := j.GetMeta(name)
		if err != nil || !found || !bytes.Equal(got, want) {
			t.Fatalf("get %q after reopen: %d bytes, found %v, %v", name, len(got), found, err)
		}
	}
}

func TestHasData(t *testing.T) {
	j := openTest(t, t.TempDir(), testOptions(t))
	if has, err := j.HasData(); err != nil || has {
		t.Fatalf("new journal: HasData %v, %v", has, err)
	}
	if err := j.PutMeta("node/name", []byte("n1")); err != nil {
		t.Fatal(err)
	}
	if has, err := j.HasData(); err != nil || has {
		t.Fatalf("journal with meta records only: HasData %v, %v", has, err)
	}
	if err := appendSync(t, j, "sku/a", 1, []byte("e")); err != nil {
		t.Fatal(err)
	}
	if has, err := j.HasData(); err != nil || !has {
		t.Fatalf("journal with an event: HasData %v, %v", has, err)
	}
}
