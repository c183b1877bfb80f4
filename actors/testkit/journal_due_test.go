package testkit

import (
	"fmt"
	"slices"
	"testing"
)

// Due lists the limit earliest wake times at or before the bound, earliest
// first (ties by identity), like the Badger journal, and forgets a wake
// time once an append clears it.
func TestJournalDueOrderAndLimit(t *testing.T) {
	j := NewJournal()
	defer j.Close()
	wakes := map[string]int64{"a": 30, "b": 10, "c": 20, "d": 10, "e": 99, "f": 0}
	for id, w := range wakes {
		done := make(chan error, 1)
		j.Append(id, 1, [][]byte{[]byte("x")}, w, func(err error) { done <- err })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	due := func(before int64, limit int) []string {
		var got []string
		if err := j.Due(before, limit, func(id string, w int64) bool {
			got = append(got, fmt.Sprint(id, "@", w))
			return true
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := due(30, 10); !slices.Equal(got, []string{"b@10", "d@10", "c@20", "a@30"}) {
		t.Fatalf("due by 30: %v", got)
	}
	if got := due(100, 2); !slices.Equal(got, []string{"b@10", "d@10"}) {
		t.Fatalf("two earliest: %v", got)
	}
	done := make(chan error, 1)
	j.Append("b", 2, [][]byte{[]byte("y")}, 0, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := due(100, 2); !slices.Equal(got, []string{"d@10", "c@20"}) {
		t.Fatalf("after b cleared its wake time: %v", got)
	}
}
