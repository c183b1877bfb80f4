//go:build race

package persistence

// The race detector multiplies the memory and time of the largest tests;
// they scale down under it.
func init() { raceEnabled = true }
