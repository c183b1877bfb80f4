//go:build !unix

package persistence

import "math"

// freeSpace is the default Options.FreeSpace where statfs(2) is missing:
// it cannot measure, so it never refuses.
func freeSpace(string) (uint64, error) { return math.MaxUint64, nil }
