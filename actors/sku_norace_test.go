//go:build !race

package actors

// raceEnabled: see sku_race_test.go.
const raceEnabled = false
