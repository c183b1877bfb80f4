package testkit_test

import (
	"fmt"
	"io"
	"testing"
	"testing/synctest"
	"time"
)

// inBubble runs f in a testing/synctest bubble, where the kit's timeouts
// and ExpectNoReply pass on fake time, at once. protoactor arms a timer of
// up to a second when it logs a dead letter, also while the system stops;
// the first cleanup, which runs last, lets it fire inside the bubble.
func inBubble(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		t.Cleanup(func() { time.Sleep(time.Second) })
		f(t)
	})
}

// catchTB is a TB whose Fatalf panics with a fatal, so that a test can
// check that the kit fails a test, and with what message.
type catchTB struct{ t *testing.T }

type fatal string

func (c catchTB) Helper()                        {}
func (c catchTB) Cleanup(f func())               { c.t.Cleanup(f) }
func (c catchTB) Output() io.Writer              { return c.t.Output() }
func (c catchTB) Fatalf(format string, a ...any) { panic(fatal(fmt.Sprintf(format, a...))) }

// fatalOf runs f and returns the message it failed the test with, or ""
// when it did not.
func fatalOf(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			m, ok := r.(fatal)
			if !ok {
				panic(r)
			}
			msg = string(m)
		}
	}()
	f()
	return ""
}
