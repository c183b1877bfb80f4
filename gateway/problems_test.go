package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestProblemsGolden makes every change to the problem table, and to how
// errors map onto it, visible in testdata/problems.golden. Rewrite it with
// go test -run ProblemsGolden -update and review the diff.
func TestProblemsGolden(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("# slug status title\n")
	for _, p := range problemTable {
		fmt.Fprintf(&b, "%s %d %q\n", p.slug, p.status, p.title)
	}
	b.WriteString("\n# error -> known problem document\n")
	samples := []error{
		ErrNotFound,
		fmt.Errorf("order o_1: %w", ErrNotFound),
		ErrIdempotencyKeyReused,
		ErrUnavailable,
		ErrOverloaded,
		context.DeadlineExceeded,
		context.Canceled,
		&OutOfStockError{OrderID: "o_01J00000000000000000000001", SKU: "A-1", Available: 0},
		&OutOfStockError{SKU: "A-2", Available: 3},
		fmt.Errorf("reserve: %w", &InsufficientStockError{SKU: "A-1", Available: 2}),
		&InvalidTransitionError{Status: "shipped"},
		&InvalidFieldError{Field: "items[2].quantity", Detail: "must be between 1 and 10000"},
		errNotJSON,
		errNotObject,
		errors.New("disk on fire"),
	}
	for _, err := range samples {
		p, known := problemFor(err)
		fmt.Fprintf(&b, "%q %v %s\n", err.Error(), known, appendProblem(nil, p, "/v1/x", "rid-1"))
	}
	golden := filepath.Join("testdata", "problems.golden")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("problem table changed; run go test -run ProblemsGolden -update and review.\ngot:\n%s", b.Bytes())
	}
}

func TestProblemTableComplete(t *testing.T) {
	seen := map[string]bool{}
	for k, p := range problemTable {
		if p.slug == "" || p.status == 0 || p.title == "" {
			t.Errorf("problem kind %d has an empty row", k)
		}
		if seen[p.slug] {
			t.Errorf("slug %q twice", p.slug)
		}
		seen[p.slug] = true
	}
}
