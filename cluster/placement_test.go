package cluster

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func nodeNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("node-%d", i+1)
	}
	return names
}

func TestDesiredIndependentOfOrderAndDuplicates(t *testing.T) {
	names := nodeNames(7)
	want := Desired(names, 1024)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		shuffled := slices.Clone(names)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		shuffled = append(shuffled, shuffled[:3]...)
		if got := Desired(shuffled, 1024); !slices.Equal(got, want) {
			t.Fatalf("Desired(%v) differs from Desired(%v)", shuffled, names)
		}
	}
}

func TestDesiredEmptyAndSingle(t *testing.T) {
	for p, n := range Desired(nil, 8) {
		if n != "" {
			t.Fatalf("partition %d: %q with no names", p, n)
		}
	}
	for p, n := range Desired([]string{"a"}, 8) {
		if n != "a" {
			t.Fatalf("partition %d: %q, want a", p, n)
		}
	}
}

// A node that joins takes only partitions for itself, about 1/N of them,
// and one that leaves gives away only its own.
func TestDesiredStability(t *testing.T) {
	const partitions = 4096
	for _, n := range []int{1, 2, 3, 5, 8} {
		before := nodeNames(n)
		after := nodeNames(n + 1)
		joiner := after[n]
		a, b := Desired(before, partitions), Desired(after, partitions)
		moved := 0
		for p := range a {
			if a[p] == b[p] {
				continue
			}
			moved++
			if b[p] != joiner {
				t.Fatalf("n=%d: partition %d moved from %s to %s, not to the joiner", n, p, a[p], b[p])
			}
		}
		want := partitions / (n + 1)
		if moved < want*8/10 || moved > want*12/10 {
			t.Errorf("n=%d: %d partitions moved to the joiner, want about %d", n, moved, want)
		}
		// Read backwards, the same comparison shows that a node that
		// leaves gives away only its own partitions.
	}
}

func TestDesiredBalance(t *testing.T) {
	const partitions = 4096
	names := []string{"orderd-a", "orderd-b", "orderd-c", "orderd-d"}
	count := map[string]int{}
	for _, n := range Desired(names, partitions) {
		count[n]++
	}
	for _, n := range names {
		if c := count[n]; c < partitions/4*85/100 || c > partitions/4*115/100 {
			t.Errorf("%s holds %d of %d partitions, want about %d", n, c, partitions, partitions/4)
		}
	}
}
