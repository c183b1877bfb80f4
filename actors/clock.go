package actors

import "time"

// Clock tells the actors the time. Production uses SystemClock; tests use
// the test kit's fake clock, so expiry is driven by the test.
type Clock interface {
	Now() time.Time
}

// SystemClock reads the machine's clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }
