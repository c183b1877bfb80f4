package cluster

import (
	"errors"
	"fmt"
	"testing"
)

func TestForgetReassignsOnlyTheForgotten(t *testing.T) {
	const partitions = 256
	tab := Bootstrap("c", hA1, partitions)
	// Spread the partitions over a, b and c at various epochs.
	spread := Desired([]string{"a", "b", "c"}, partitions)
	holders := map[string]Holder{"a": hA1, "b": hB1, "c": hC1}
	for p := range tab.Partitions {
		tab.Partitions[p] = Assignment{holders[spread[p]], uint64(1 + p%3), StateServing}
	}
	tab.Partitions[0] = Assignment{hB1, 5, StateHandingOff}

	got, err := tab.Forget(hB1, []Holder{hA1, hC1, hB1})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Tombstoned(hB1) || got.Tombstoned(Holder{"b", 2}) {
		t.Fatalf("tombstones %v", got.Tombstones)
	}
	want := Desired([]string{"a", "c"}, partitions)
	for p, before := range tab.Partitions {
		after := got.Partitions[p]
		if before.Holder != hB1 {
			if after != before {
				t.Fatalf("partition %d of %v changed: %+v", p, before.Holder, after)
			}
			continue
		}
		wantAfter := Assignment{holders[want[p]], before.Epoch + 1, StateServing}
		if after != wantAfter {
			t.Fatalf("partition %d: %+v, want %+v", p, after, wantAfter)
		}
	}
	if tab.Partitions[0].Holder != hB1 {
		t.Fatal("Forget changed its receiver")
	}
}

func TestForgetOlderGenerations(t *testing.T) {
	tab := Bootstrap("c", hA1, 4)
	tab.Partitions[3] = Assignment{hA2, 2, StateServing}
	got, err := tab.Forget(hA2, []Holder{hB1})
	if err != nil {
		t.Fatal(err)
	}
	for p, a := range got.Partitions {
		if a.Holder != hB1 {
			t.Fatalf("partition %d still held by %v after forgetting a up to generation 2", p, a.Holder)
		}
	}
	// A tombstoned live holder is no candidate.
	if _, err := got.Forget(hC1, []Holder{hA1}); !errors.Is(err, ErrNoLiveHolder) {
		t.Fatalf("forget with only a tombstoned node live: %v", err)
	}
}

func TestForgetLimits(t *testing.T) {
	tab := Bootstrap("c", hA1, 4)
	if _, err := tab.Forget(hA1, nil); !errors.Is(err, ErrNoLiveHolder) {
		t.Fatalf("no live node: %v", err)
	}
	for i := range TombstonesMax {
		tab.Tombstones[fmt.Sprintf("gone-%d", i)] = 1
	}
	if _, err := tab.Forget(hA1, []Holder{hB1}); !errors.Is(err, ErrTooManyTombstones) {
		t.Fatalf("tombstones full: %v", err)
	}
	if _, err := tab.Forget(Holder{"gone-1", 2}, []Holder{hB1}); err != nil {
		t.Fatalf("raising an existing tombstone: %v", err)
	}
}
