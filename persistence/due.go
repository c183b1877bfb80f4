package persistence

import (
	"cmp"
	"container/heap"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"
)

// dueListMax bounds the limit of one Due call, and so the entries it holds
// in memory.
const dueListMax = 100_000

// Due calls fn, earliest first (ties by id), for up to limit identities
// whose durable wake time is at or before before (Unix nanoseconds), until
// fn returns false. It reads keys only: each partition's wake index is
// sorted by wake time, so a partition with nothing due costs one seek, and
// the earliest limit entries across partitions are kept in a bounded heap.
// fn runs after the read has ended, so it may call the journal. Only
// partitions the journal holds are listed: another node wakes the rest.
func (j *Journal) Due(before int64, limit int, fn func(id string, wake int64) bool) error {
	if limit > dueListMax {
		return fmt.Errorf("%w: due limit %d, want at most %d", ErrInvalidRequest, limit, dueListMax)
	}
	if limit <= 0 || before <= 0 { // wake times are positive; 0 means none
		return nil
	}
	if err := j.beginRead(); err != nil {
		return err
	}
	var h dueHeap
	err := j.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for p := range j.partitions {
			if !j.held.holds(uint16(p)) {
				continue // its holder wakes it
			}
			if err := h.collect(it, uint16(p), before, limit); err != nil {
				return err
			}
		}
		return nil
	})
	j.reads.Done()
	if err != nil {
		return fmt.Errorf("list due identities: %w", err)
	}
	slices.SortFunc(h, compareDue)
	for _, d := range h {
		if !fn(d.id, d.wake) {
			break
		}
	}
	return nil
}

type dueEntry struct {
	wake int64
	id   string
}

func compareDue(a, b dueEntry) int {
	return cmp.Or(cmp.Compare(a.wake, b.wake), cmp.Compare(a.id, b.id))
}

// dueHeap holds the earliest entries seen so far, the latest of them on
// top, so that a later entry can replace it.
type dueHeap []dueEntry

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, k int) bool { return compareDue(h[i], h[k]) > 0 }
func (h dueHeap) Swap(i, k int)      { h[i], h[k] = h[k], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueEntry)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// collect adds partition p's entries due at before to h, keeping the
// earliest limit. The partition's entries come in wake order, so it stops at
// the first one that is not due or whose wake time is past the latest kept.
// Entries with equal wake times sort by id length first in the keys, not by
// id, so those are all compared.
func (h *dueHeap) collect(it *badger.Iterator, p uint16, before int64, limit int) error {
	prefix := kindPrefix(p, kindWake)
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		key := it.Item().Key()
		_, wake, id, ok := parseWakeKey(key)
		if !ok {
			return &CorruptRecordError{Key: clone(key), Reason: "malformed wake key"}
		}
		if wake > before {
			return nil
		}
		e := dueEntry{wake: wake, id: id}
		switch {
		case h.Len() < limit:
			heap.Push(h, e)
		case wake > (*h)[0].wake:
			return nil // nothing later in this partition makes the cut
		case compareDue(e, (*h)[0]) < 0:
			(*h)[0] = e
			heap.Fix(h, 0)
		}
	}
	return nil
}
