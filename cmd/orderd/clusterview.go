package main

import (
	"github.com/orderengine/orderengine/cluster"
)

// clusterView is the JSON of GET /v1/cluster on a cluster member
// (docs/openapi.yaml has its schema).
type clusterView struct {
	Mode       string            `json:"mode"`
	ClusterID  string            `json:"cluster_id"`
	Self       string            `json:"self"`
	Ready      bool              `json:"ready"`
	Partitions int               `json:"partitions"`
	Members    []clusterMember   `json:"members"`
	Table      []clusterPart     `json:"table"`
	Tombstones map[string]uint64 `json:"tombstones"`
	// Conflicts counts equal-epoch disagreements resolved; anything but 0
	// is a bug worth reporting.
	Conflicts int `json:"conflicts"`
}

type clusterMember struct {
	Name          string `json:"name"`
	Address       string `json:"address"`
	RemoteAddress string `json:"remote_address"`
	Generation    uint64 `json:"generation"`
	State         string `json:"state"`
	Self          bool   `json:"self"`
	// Partitions are those the table says the member holds, in any state.
	Partitions []int `json:"partitions"`
}

type clusterPart struct {
	Partition  int    `json:"partition"`
	Holder     string `json:"holder"`
	Generation uint64 `json:"generation"`
	Epoch      uint64 `json:"epoch"`
	State      string `json:"state"`
}

// newClusterView renders v for GET /v1/cluster.
func newClusterView(v cluster.View) clusterView {
	out := clusterView{
		Mode: "cluster", ClusterID: v.Table.ClusterID, Self: v.Self.Name, Ready: v.Ready,
		Partitions: len(v.Table.Partitions), Tombstones: v.Table.Tombstones, Conflicts: v.Conflicts,
		Members: make([]clusterMember, 0, len(v.Members)), Table: make([]clusterPart, len(v.Table.Partitions)),
	}
	if out.Tombstones == nil {
		out.Tombstones = map[string]uint64{}
	}
	held := map[string][]int{}
	for p := range v.Table.Partitions {
		a := v.Assignment(p)
		out.Table[p] = clusterPart{Partition: p, Holder: a.Holder.Name, Generation: a.Holder.Generation, Epoch: a.Epoch, State: a.State.String()}
		if a.Epoch > 0 {
			held[a.Holder.Name] = append(held[a.Holder.Name], p)
		}
	}
	for _, m := range v.Members {
		state := "dead"
		if m.Alive || m.Name == v.Self.Name {
			state = "alive"
		}
		parts := held[m.Name]
		if parts == nil {
			parts = []int{}
		}
		out.Members = append(out.Members, clusterMember{
			Name: m.Name, Address: m.Addr, RemoteAddress: m.Meta.RemoteAddress, Generation: m.Meta.Generation,
			State: state, Self: m.Name == v.Self.Name, Partitions: parts,
		})
	}
	return out
}
