package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"text/tabwriter"
)

// clusterView is GET /v1/cluster of a clustered node (docs/openapi.yaml,
// ClusteredView). A node that runs alone answers mode "single-node", whose
// members have an id instead of a name and "all" as their partitions.
type clusterView struct {
	Mode       string           `json:"mode"`
	ClusterID  string           `json:"cluster_id"`
	Self       string           `json:"self"`
	Ready      bool             `json:"ready"`
	Partitions int              `json:"partitions"`
	Members    []clusterMember  `json:"members"`
	Table      []partitionEntry `json:"table"`
	Tombstones map[string]int64 `json:"tombstones"`
}

type clusterMember struct {
	Name          string `json:"name"`
	Address       string `json:"address"`
	RemoteAddress string `json:"remote_address"`
	Generation    int64  `json:"generation"`
	State         string `json:"state"`
	Self          bool   `json:"self"`
	// Partitions is a list of partition numbers, or "all" on a single node.
	Partitions json.RawMessage `json:"partitions"`
}

type partitionEntry struct {
	Partition  int    `json:"partition"`
	Holder     string `json:"holder"`
	Generation int64  `json:"generation"`
	Epoch      uint64 `json:"epoch"`
	State      string `json:"state"`
}

// unheld names the row of partitions that no member holds.
const unheld = "(no holder)"

// printClusterView prints a node's answer to GET /v1/cluster for people.
func printClusterView(w io.Writer, body []byte) error {
	var v clusterView
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("the node's cluster view is not the JSON orderctl knows (%v); -json shows it as it is", err)
	}
	switch v.Mode {
	case "single-node":
		_, err := fmt.Fprintln(w, "single node, not clustered: it holds every partition itself")
		return err
	case "cluster":
	default:
		return fmt.Errorf("the node's cluster view has mode %q, which orderctl does not know; -json shows it as it is", v.Mode)
	}
	ready := "ready"
	if !v.Ready {
		ready = "not ready"
	}
	fmt.Fprintf(w, "cluster %s, as %s sees it (%s); %d partitions\n\n", v.ClusterID, v.Self, ready, v.Partitions)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tSTATE\tGENERATION\tADDRESS\tPARTITIONS")
	for _, m := range v.Members {
		name := m.Name
		if m.Self {
			name += " (self)"
		}
		var held []int
		_ = json.Unmarshal(m.Partitions, &held) // a member without a list holds none
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\n", name, m.State, m.Generation, cmp.Or(m.Address, "-"), len(held))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nPARTITIONS (partition@epoch; first-last@epoch for a run; [state] unless serving)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, row := range partitionRows(v) {
		fmt.Fprintf(tw, "%s\t%s\n", row.holder, row.runs)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(v.Tombstones) > 0 {
		fmt.Fprintln(w, "\nFORGOTTEN (these generations never serve again)")
		for _, name := range slices.Sorted(maps.Keys(v.Tombstones)) {
			fmt.Fprintf(w, "%s  generation %d\n", name, v.Tombstones[name])
		}
	}
	return nil
}

type partitionRow struct {
	holder, runs string
}

// partitionRows groups the partition table by holder: the members in the
// view's order, then holders that are not members any more, then the
// partitions nobody holds. Consecutive partitions of one epoch and state
// print as one run.
func partitionRows(v clusterView) []partitionRow {
	byHolder := map[string][]partitionEntry{}
	for _, p := range v.Table {
		h := p.Holder
		if h == "" || p.State == "none" {
			h = unheld
		}
		byHolder[h] = append(byHolder[h], p)
	}
	var order []string
	seen := map[string]bool{}
	for _, m := range v.Members {
		order, seen[m.Name] = append(order, m.Name), true
	}
	var others []string
	for h := range byHolder {
		if !seen[h] && h != unheld {
			others = append(others, h)
		}
	}
	slices.Sort(others)
	order = append(order, others...)
	if _, ok := byHolder[unheld]; ok {
		order = append(order, unheld)
	}
	rows := make([]partitionRow, 0, len(order))
	for _, h := range order {
		runs := "-"
		if ps := byHolder[h]; len(ps) > 0 {
			runs = compactRuns(ps)
		}
		rows = append(rows, partitionRow{holder: h, runs: runs})
	}
	return rows
}

// compactRuns prints partitions as runs: "0-3@1 4@2 9-10@2[handing-off]".
func compactRuns(ps []partitionEntry) string {
	slices.SortFunc(ps, func(a, b partitionEntry) int { return cmp.Compare(a.Partition, b.Partition) })
	var b bytes.Buffer
	for i := 0; i < len(ps); {
		j := i + 1
		for j < len(ps) && ps[j].Partition == ps[j-1].Partition+1 &&
			ps[j].Epoch == ps[i].Epoch && ps[j].State == ps[i].State {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(ps[i].Partition))
		if j-i > 1 {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(ps[j-1].Partition))
		}
		b.WriteByte('@')
		b.WriteString(strconv.FormatUint(ps[i].Epoch, 10))
		// Serving is the usual state, and none is what the unheld row
		// says already.
		if s := ps[i].State; s != "serving" && s != "none" && s != "" {
			b.WriteString("[" + s + "]")
		}
		i = j
	}
	return b.String()
}
