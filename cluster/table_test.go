package cluster

import (
	"errors"
	"math/rand/v2"
	"testing"
)

var (
	hA1 = Holder{"a", 1}
	hA2 = Holder{"a", 2}
	hB1 = Holder{"b", 1}
	hC1 = Holder{"c", 1}
)

func TestMergeRules(t *testing.T) {
	tests := []struct {
		name          string
		ours, theirs  Assignment
		want          Assignment
		wantConflicts int
	}{
		{"higher epoch wins", Assignment{hA1, 1, StateServing}, Assignment{hB1, 2, StatePending}, Assignment{hB1, 2, StatePending}, 0},
		{"lower epoch loses", Assignment{hB1, 3, StatePending}, Assignment{hA1, 2, StateHandingOff}, Assignment{hB1, 3, StatePending}, 0},
		{"empty loses", Assignment{}, Assignment{hA1, 1, StateServing}, Assignment{hA1, 1, StateServing}, 0},
		{"later state in one epoch", Assignment{hA1, 4, StateServing}, Assignment{hA1, 4, StateHandingOff}, Assignment{hA1, 4, StateHandingOff}, 0},
		{"pending then serving", Assignment{hA1, 4, StateServing}, Assignment{hA1, 4, StatePending}, Assignment{hA1, 4, StateServing}, 0},
		{"two holders at one epoch", Assignment{hA1, 2, StateServing}, Assignment{hB1, 2, StateServing}, Assignment{hB1, 2, StateServing}, 1},
		{"two generations at one epoch", Assignment{hA2, 2, StatePending}, Assignment{hA1, 2, StateServing}, Assignment{hA2, 2, StatePending}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, swap := range []bool{false, true} {
				a, b := NewTable(1), NewTable(1)
				a.Partitions[0], b.Partitions[0] = tt.ours, tt.theirs
				if swap {
					a, b = b, a
				}
				got, conflicts, err := a.Merge(b)
				if err != nil {
					t.Fatal(err)
				}
				if got.Partitions[0] != tt.want {
					t.Errorf("swap=%v: got %+v, want %+v", swap, got.Partitions[0], tt.want)
				}
				if len(conflicts) != tt.wantConflicts {
					t.Errorf("swap=%v: %d conflicts, want %d", swap, len(conflicts), tt.wantConflicts)
				}
				if len(conflicts) == 1 && conflicts[0].Kept != tt.want.Holder {
					t.Errorf("swap=%v: conflict %+v does not name the kept holder %v", swap, conflicts[0], tt.want.Holder)
				}
			}
		})
	}
}

func TestMergeRefusesOtherClusters(t *testing.T) {
	a := Bootstrap("one", hA1, 8)
	if _, _, err := a.Merge(Bootstrap("one", hA1, 16)); !errors.Is(err, ErrPartitionCount) {
		t.Errorf("other P: %v, want ErrPartitionCount", err)
	}
	if _, _, err := a.Merge(Bootstrap("two", hB1, 8)); !errors.Is(err, ErrForeignCluster) {
		t.Errorf("other cluster: %v, want ErrForeignCluster", err)
	}
	got, _, err := NewTable(8).Merge(a)
	if err != nil || !got.Equal(a) {
		t.Errorf("an empty table adopts a learnt one: %+v, %v", got, err)
	}
	got, _, err = a.Merge(NewTable(8))
	if err != nil || !got.Equal(a) {
		t.Errorf("an empty table changes nothing: %+v, %v", got, err)
	}
}

func TestMergeDoesNotChangeItsInputs(t *testing.T) {
	a := Bootstrap("c", hA1, 4)
	b := a.Clone()
	b.Partitions[2] = Assignment{hB1, 2, StateServing}
	b.Tombstones["z"] = 3
	before := a.Clone()
	if _, _, err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	if !a.Equal(before) {
		t.Fatalf("Merge changed its receiver: %+v", a)
	}
}

// randomTable draws a table of a small universe so that random pairs
// share epochs, holders and tombstones often.
func randomTable(rng *rand.Rand, partitions int) Table {
	holders := []Holder{hA1, hA2, hB1, hC1}
	t := NewTable(partitions)
	t.ClusterID = "c"
	for p := range t.Partitions {
		if e := rng.Uint64N(4); e > 0 {
			t.Partitions[p] = Assignment{holders[rng.IntN(len(holders))], e, State(1 + rng.IntN(3))}
		}
	}
	for _, name := range []string{"a", "b", "x"} {
		if rng.IntN(3) == 0 {
			t.Tombstones[name] = 1 + rng.Uint64N(3)
		}
	}
	return t
}

func mustMerge(t *testing.T, a, b Table) Table {
	t.Helper()
	m, _, err := a.Merge(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The merge is a join: commutative, associative, idempotent, and it never
// lowers an epoch, so tables exchanged in any order by gossip converge.
func TestMergeProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 64))
	for i := range 2000 {
		a, b, c := randomTable(rng, 8), randomTable(rng, 8), randomTable(rng, 8)
		for _, x := range []Table{a, b, c} {
			if err := x.Validate(); err != nil {
				t.Fatalf("case %d: generated an invalid table: %v", i, err)
			}
		}
		ab, ba := mustMerge(t, a, b), mustMerge(t, b, a)
		if !ab.Equal(ba) {
			t.Fatalf("case %d: not commutative:\n a=%+v\n b=%+v\nab=%+v\nba=%+v", i, a, b, ab, ba)
		}
		if aa := mustMerge(t, a, a); !aa.Equal(a) {
			t.Fatalf("case %d: not idempotent: %+v", i, aa)
		}
		if !mustMerge(t, ab, c).Equal(mustMerge(t, a, mustMerge(t, b, c))) {
			t.Fatalf("case %d: not associative", i)
		}
		if !mustMerge(t, ab, a).Equal(ab) {
			t.Fatalf("case %d: merging an input again changed the result", i)
		}
		if err := ab.Validate(); err != nil {
			t.Fatalf("case %d: merge made an invalid table: %v", i, err)
		}
		for p := range ab.Partitions {
			if e := ab.Partitions[p].Epoch; e < a.Partitions[p].Epoch || e < b.Partitions[p].Epoch {
				t.Fatalf("case %d: partition %d at epoch %d after merging epochs %d and %d",
					i, p, e, a.Partitions[p].Epoch, b.Partitions[p].Epoch)
			}
		}
		for name, g := range a.Tombstones {
			if ab.Tombstones[name] < g {
				t.Fatalf("case %d: tombstone of %s went down", i, name)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Bootstrap("c", hA1, 4)
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(*Table){
		"no partitions":          func(t *Table) { t.Partitions = nil },
		"too many partitions":    func(t *Table) { t.Partitions = make([]Assignment, PartitionsMax+1) },
		"holder at epoch 0":      func(t *Table) { t.Partitions[0].Epoch = 0 },
		"no holder at epoch 1":   func(t *Table) { t.Partitions[0].Holder = Holder{} },
		"generation 0":           func(t *Table) { t.Partitions[0].Holder.Generation = 0 },
		"unavailable recorded":   func(t *Table) { t.Partitions[0].State = StateUnavailable },
		"none at epoch 1":        func(t *Table) { t.Partitions[0].State = StateNone },
		"long name":              func(t *Table) { t.Partitions[1].Holder.Name = string(make([]byte, NodeNameBytesMax+1)) },
		"tombstone generation 0": func(t *Table) { t.Tombstones["x"] = 0 },
	}
	for name, breakIt := range bad {
		tab := ok.Clone()
		breakIt(&tab)
		if err := tab.Validate(); !errors.Is(err, ErrInvalidTable) {
			t.Errorf("%s: Validate = %v, want ErrInvalidTable", name, err)
		}
	}
}
