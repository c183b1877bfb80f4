package testkit

import (
	"fmt"
	"time"
)

// eventuallyPollInterval spaces the checks of Eventually and
// EventuallyValue.
const eventuallyPollInterval = 2 * time.Millisecond

// Eventually waits until cond holds, checking it every few milliseconds,
// and fails the test if it does not within Timeout; the failure says what
// the kit saw (a paused journal, a crash, held Link commands). Call it
// from the test's goroutine. To see the value that kept cond false, use
// EventuallyValue.
func (k *Kit) Eventually(what string, cond func() bool) {
	k.T.Helper()
	k.poll(what, cond, nil)
}

// EventuallyValue calls get until ok accepts what it returns, and returns
// that value. If Timeout passes first it fails the test with the last
// value seen and what the kit saw. Call it from the test's goroutine.
//
//	st := testkit.EventuallyValue(c.Kit, "order paid",
//		func() pb.OrderStatus { return c.OrderState(id).Status },
//		func(s pb.OrderStatus) bool { return s == pb.OrderStatus_ORDER_STATUS_PAID })
func EventuallyValue[T any](k *Kit, what string, get func() T, ok func(T) bool) T {
	k.T.Helper()
	var last T
	k.poll(what, func() bool { last = get(); return ok(last) }, func() string { return lastSeen(last) })
	return last
}

// poll checks cond until it holds or Timeout passes; seen, when not nil,
// describes the last value cond looked at.
func (k *Kit) poll(what string, cond func() bool, seen func() string) {
	k.T.Helper()
	deadline := time.Now().Add(k.Timeout)
	for checks := 1; !cond(); checks++ {
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("not within %v (%d checks): %s", k.Timeout, checks, what)
			if seen != nil {
				msg += "; last seen: " + seen()
			}
			k.T.Fatalf("%s; %s", msg, k.why(""))
			return
		}
		time.Sleep(eventuallyPollInterval)
	}
}

func lastSeen(v any) string {
	if s, ok := v.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%+v", v)
}
