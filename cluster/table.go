package cluster

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"
)

// Limits of the partition table. PartitionsMax is lower than the journal's
// 4096 because a member's metadata carries one bit per partition and
// memberlist limits metadata to 512 bytes (codec.go has the arithmetic).
const (
	// DefaultPartitions is P for a cluster created without a choice.
	DefaultPartitions = 64
	// PartitionsMax bounds P.
	PartitionsMax = 2048
	// NodeNameBytesMax bounds a node's name.
	NodeNameBytesMax = 128
	// ClusterIDBytesMax bounds a cluster ID.
	ClusterIDBytesMax = 64
	// TombstonesMax is how many node names Forget will tombstone. Forgets
	// on two nodes at once can leave a merged table with a few more, so
	// decoders accept up to tombstonesDecodedMax.
	TombstonesMax        = 1024
	tombstonesDecodedMax = 4 * TombstonesMax
)

// State is where a partition stands at its epoch. The table records
// Pending, Serving and HandingOff, which only move forward within one
// epoch (in that order), so two views of one epoch merge to the later
// state. Unavailable never travels: a View reports it for a partition
// whose holder is not a live member.
type State uint8

const (
	// StateNone is a partition nobody holds: epoch 0, in a table that has
	// not been learnt from a peer yet.
	StateNone State = iota
	// StatePending: the holder is receiving the partition's data.
	StatePending
	// StateServing: the holder serves the partition.
	StateServing
	// StateHandingOff: the holder has stopped serving the partition and is
	// handing it to its next holder, which will hold it at epoch+1.
	StateHandingOff
	// StateUnavailable: the holder is not a live member (views only).
	StateUnavailable
)

func (s State) String() string {
	switch s {
	case StateNone:
		return "none"
	case StatePending:
		return "pending"
	case StateServing:
		return "serving"
	case StateHandingOff:
		return "handing-off"
	case StateUnavailable:
		return "unavailable"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Holder is one incarnation of a node: its name and the generation of its
// data directory. A node whose data directory is wiped comes back with a
// higher generation, so a holder at an old generation is not it.
type Holder struct {
	Name       string
	Generation uint64
}

func (h Holder) String() string { return fmt.Sprintf("%s/%d", h.Name, h.Generation) }

// Assignment is one partition's entry in the table.
type Assignment struct {
	Holder Holder
	Epoch  uint64
	State  State
}

// supersedes reports whether a wins over b when two tables are merged: the
// higher epoch, and within one epoch the later state. Two different
// holders at one epoch are a bug (see Conflict); the larger holder wins
// then, by name and generation, only so that every node resolves it alike.
func (a Assignment) supersedes(b Assignment) bool {
	if a.Epoch != b.Epoch {
		return a.Epoch > b.Epoch
	}
	if a.Holder != b.Holder {
		if a.Holder.Name != b.Holder.Name {
			return a.Holder.Name > b.Holder.Name
		}
		return a.Holder.Generation > b.Holder.Generation
	}
	return a.State > b.State
}

// Table is the cluster's partition table: who holds each partition at
// which epoch, and which node generations were forgotten. A Table is a
// value: methods return new tables and never change their receiver's
// slices or maps.
type Table struct {
	// ClusterID is minted by the node that created the cluster; empty in a
	// table that has not been learnt yet.
	ClusterID string
	// Partitions has one entry per partition; its length is P.
	Partitions []Assignment
	// Tombstones maps a forgotten node's name to the highest generation of
	// it that was forgotten.
	Tombstones map[string]uint64
}

// Errors of Merge and Validate.
var (
	ErrPartitionCount = errors.New("cluster: partition count differs")
	ErrForeignCluster = errors.New("cluster: table of another cluster")
	ErrInvalidTable   = errors.New("cluster: invalid table")
)

// NewTable returns the table of a node that has not learnt its cluster's
// yet: P partitions, nobody holding any.
func NewTable(partitions int) Table {
	return Table{Partitions: make([]Assignment, partitions), Tombstones: map[string]uint64{}}
}

// Bootstrap returns the table of a new cluster created by self: self holds
// every partition at epoch 1.
func Bootstrap(clusterID string, self Holder, partitions int) Table {
	t := NewTable(partitions)
	t.ClusterID = clusterID
	for p := range t.Partitions {
		t.Partitions[p] = Assignment{Holder: self, Epoch: 1, State: StateServing}
	}
	return t
}

// Clone returns a copy that shares nothing with t.
func (t Table) Clone() Table {
	c := Table{ClusterID: t.ClusterID, Partitions: slices.Clone(t.Partitions), Tombstones: maps.Clone(t.Tombstones)}
	if c.Tombstones == nil {
		c.Tombstones = map[string]uint64{}
	}
	return c
}

// Equal reports whether two tables say the same.
func (t Table) Equal(o Table) bool {
	return t.ClusterID == o.ClusterID && slices.Equal(t.Partitions, o.Partitions) &&
		maps.Equal(t.Tombstones, o.Tombstones)
}

// Tombstoned reports whether h was forgotten.
func (t Table) Tombstoned(h Holder) bool {
	g, ok := t.Tombstones[h.Name]
	return ok && h.Generation <= g
}

// Held returns the partitions that h holds, in any state, in order.
func (t Table) Held(h Holder) []int {
	var held []int
	for p, a := range t.Partitions {
		if a.Holder == h && a.Epoch > 0 {
			held = append(held, p)
		}
	}
	return held
}

// Conflict is two tables that disagree on a partition's holder at one
// epoch. Only a bug makes one: a new epoch is created by one node only
// (the holder handing off, or Forget on the node an operator chose).
type Conflict struct {
	Partition int
	Epoch     uint64
	Kept      Holder
	Dropped   Holder
}

// Merge returns the table that combines what t and o know: for each
// partition the assignment with the higher epoch (within one epoch the
// later state), the higher tombstone of each name, and o's cluster ID when
// t has none yet. Merge is commutative, associative and idempotent, and no
// partition's epoch in the result is below either input's. Conflicts are
// resolved the same way on every node and returned so that the caller can
// report them. Tables with different partition counts or cluster IDs do not
// merge.
func (t Table) Merge(o Table) (Table, []Conflict, error) {
	if len(t.Partitions) != len(o.Partitions) {
		return t, nil, fmt.Errorf("%w: %d here, %d there", ErrPartitionCount, len(t.Partitions), len(o.Partitions))
	}
	out := t.Clone()
	switch {
	case o.ClusterID == "":
	case out.ClusterID == "":
		out.ClusterID = o.ClusterID
	case out.ClusterID != o.ClusterID:
		return t, nil, fmt.Errorf("%w: %q here, %q there", ErrForeignCluster, t.ClusterID, o.ClusterID)
	}
	var conflicts []Conflict
	for p, theirs := range o.Partitions {
		ours := out.Partitions[p]
		if theirs.Epoch == ours.Epoch && theirs.Epoch > 0 && theirs.Holder != ours.Holder {
			c := Conflict{Partition: p, Epoch: ours.Epoch, Kept: ours.Holder, Dropped: theirs.Holder}
			if theirs.supersedes(ours) {
				c.Kept, c.Dropped = theirs.Holder, ours.Holder
			}
			conflicts = append(conflicts, c)
		}
		if theirs.supersedes(ours) {
			out.Partitions[p] = theirs
		}
	}
	for name, g := range o.Tombstones {
		if g > out.Tombstones[name] {
			out.Tombstones[name] = g
		}
	}
	return out, conflicts, nil
}

// Validate checks what every table must satisfy: P in 1..PartitionsMax, a
// holder with a name, a generation and a recorded state at every epoch
// above 0 and none at epoch 0, and names and counts within their limits.
func (t Table) Validate() error {
	if n := len(t.Partitions); n < 1 || n > PartitionsMax {
		return fmt.Errorf("%w: %d partitions, want 1..%d", ErrInvalidTable, n, PartitionsMax)
	}
	if len(t.ClusterID) > ClusterIDBytesMax {
		return fmt.Errorf("%w: cluster ID of %d bytes", ErrInvalidTable, len(t.ClusterID))
	}
	for p, a := range t.Partitions {
		if err := a.validate(); err != nil {
			return fmt.Errorf("%w: partition %d: %v", ErrInvalidTable, p, err)
		}
	}
	if len(t.Tombstones) > tombstonesDecodedMax {
		return fmt.Errorf("%w: %d tombstones", ErrInvalidTable, len(t.Tombstones))
	}
	for name, g := range t.Tombstones {
		if err := validHolder(Holder{name, g}); err != nil {
			return fmt.Errorf("%w: tombstone: %v", ErrInvalidTable, err)
		}
	}
	return nil
}

func (a Assignment) validate() error {
	if a.Epoch == 0 {
		if a != (Assignment{}) {
			return fmt.Errorf("holder %v in state %v at epoch 0", a.Holder, a.State)
		}
		return nil
	}
	if a.State < StatePending || a.State > StateHandingOff {
		return fmt.Errorf("state %v at epoch %d", a.State, a.Epoch)
	}
	return validHolder(a.Holder)
}

func validHolder(h Holder) error {
	if h.Name == "" || len(h.Name) > NodeNameBytesMax || !utf8.ValidString(h.Name) {
		return fmt.Errorf("node name of %d bytes, want 1..%d of UTF-8", len(h.Name), NodeNameBytesMax)
	}
	if h.Generation == 0 {
		return fmt.Errorf("node %q at generation 0", h.Name)
	}
	return nil
}
