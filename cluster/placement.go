package cluster

import "slices"

// Desired returns, for each of partitions partitions, the node that should
// hold it: the rendezvous (highest random weight) choice among names. Every
// node computes the same answer from the same set of names, whatever their
// order or duplicates, and a name that joins the set takes about
// 1/len(names) of the partitions from the others while every other
// partition stays where it was. With no names every entry is empty.
func Desired(names []string, partitions int) []string {
	out := make([]string, partitions)
	if len(names) == 0 {
		return out
	}
	// Sorting makes the tie-break (equal weights) independent of the
	// caller's order: the first name in byte order wins a tie.
	names = slices.Clone(names)
	slices.Sort(names)
	names = slices.Compact(names)
	seeds := make([]uint64, len(names))
	for i, n := range names {
		seeds[i] = fnv64(n)
	}
	for p := range out {
		best, bestW := 0, uint64(0)
		for i, s := range seeds {
			if w := weight(s, p); i == 0 || w > bestW {
				best, bestW = i, w
			}
		}
		out[p] = names[best]
	}
	return out
}

// weight is the rendezvous weight of a node (its name's hash) for partition
// p. The splitmix64 finaliser spreads the combination of the two well, so
// that partitions spread evenly even over names that differ in one byte.
func weight(nameHash uint64, p int) uint64 {
	return mix64(nameHash ^ mix64(uint64(p)+0x9e3779b97f4a7c15))
}

// FNV-1a, 64 bits, over a name's bytes.
func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix64 is the splitmix64 finaliser.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
