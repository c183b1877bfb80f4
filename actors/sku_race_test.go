//go:build race

package actors

// raceEnabled lets the longest SKU tests skip under the race detector,
// which slows them tenfold and changes what allocations cost.
const raceEnabled = true
