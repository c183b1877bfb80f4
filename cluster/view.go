package cluster

import "slices"

// Member is what a node knows of another member (or of itself).
type Member struct {
	Name string
	// Addr is the member's memberlist address (host:port).
	Addr string
	// Meta is what the member last gossiped about itself; zero when its
	// metadata did not decode.
	Meta Meta
	// Alive is false once memberlist has declared the member dead or gone
	// (it cannot tell which); suspected members count as alive.
	Alive bool
}

// View is a node's picture of the cluster at one moment.
type View struct {
	Self  Holder
	Ready bool
	// Table is the node's partition table as recorded.
	Table Table
	// Members, sorted by name, the node itself included.
	Members []Member
	// Conflicts counts equal-epoch disagreements the node has resolved
	// since it started; anything but 0 is a bug.
	Conflicts int
}

// Live reports whether h is a live member of the view: the node itself, or
// an alive member of that name at that generation.
func (v View) Live(h Holder) bool {
	if h == v.Self {
		return true
	}
	i, ok := slices.BinarySearchFunc(v.Members, h.Name, func(m Member, name string) int {
		switch {
		case m.Name < name:
			return -1
		case m.Name > name:
			return 1
		}
		return 0
	})
	return ok && v.Members[i].Alive && v.Members[i].Meta.Generation == h.Generation
}

// Assignment returns partition p's entry with its state as this view sees
// it: StateUnavailable when its holder is not live.
func (v View) Assignment(p int) Assignment {
	a := v.Table.Partitions[p]
	if a.Epoch > 0 && !v.Live(a.Holder) {
		a.State = StateUnavailable
	}
	return a
}

// Serving reports whether this node may serve partition p now: it is
// ready and holds p in state serving.
func (v View) Serving(p int) bool {
	a := v.Table.Partitions[p]
	return v.Ready && a.Holder == v.Self && a.State == StateServing
}
