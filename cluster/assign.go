package cluster

import (
	"errors"
	"fmt"
)

// How a partition's holder changes. A new epoch is made by one node only:
//
//   - the node that creates the cluster holds every partition at epoch 1
//     (Bootstrap);
//   - the holder, when it hands a partition to its next holder (handoff.go),
//     and when it gives up a handoff (it resumes at epoch+1 itself, since
//     a state never goes back within an epoch);
//   - the node where an operator calls Forget for a dead node.
//
// Nodes that join get partitions only by handoff, and a node that leaves
// gracefully hands its own off first. A holder that crashes
// keeps its partitions, which views report unavailable until it returns:
// nothing moves because a node is unreachable, since an unreachable node
// may still be serving.

// Errors of Forget.
var (
	ErrNoLiveHolder      = errors.New("cluster: no live node to take the partitions")
	ErrTooManyTombstones = errors.New("cluster: too many forgotten nodes")
)

// Forget returns t with gone's generation, and every lower one of its name,
// tombstoned, and each partition gone held (in any state) reassigned at
// epoch+1, serving and empty, to its desired holder among live. live must
// not contain gone's name.
func (t Table) Forget(gone Holder, live []Holder) (Table, error) {
	if err := validHolder(gone); err != nil {
		return t, err
	}
	if _, ok := t.Tombstones[gone.Name]; !ok && len(t.Tombstones) >= TombstonesMax {
		return t, fmt.Errorf("%w: %d", ErrTooManyTombstones, len(t.Tombstones))
	}
	byName := map[string]Holder{}
	names := make([]string, 0, len(live))
	for _, h := range live {
		if h.Name == gone.Name || t.Tombstoned(h) {
			continue
		}
		if _, dup := byName[h.Name]; !dup {
			names = append(names, h.Name)
		}
		byName[h.Name] = h
	}
	if len(names) == 0 {
		return t, ErrNoLiveHolder
	}
	out := t.Clone()
	if gone.Generation > out.Tombstones[gone.Name] {
		out.Tombstones[gone.Name] = gone.Generation
	}
	desired := Desired(names, len(t.Partitions))
	for p, a := range out.Partitions {
		if a.Epoch == 0 || !out.Tombstoned(a.Holder) {
			continue
		}
		out.Partitions[p] = Assignment{Holder: byName[desired[p]], Epoch: a.Epoch + 1, State: StateServing}
	}
	return out, nil
}
