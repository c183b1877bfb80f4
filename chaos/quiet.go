package chaos

import (
	"context"
	"fmt"
	"time"
)

// Bounds of the wait for a quiet node: the SKU views must stay the same
// for quietFor, read every quietPoll, within quietWaitMax.
const (
	quietFor     = time.Second
	quietPoll    = 100 * time.Millisecond
	quietWaitMax = 15 * time.Second
)

// quietReads reads every SKU until no view has changed for quietFor (owed
// saga steps and expiries are done by then) and returns the last round of
// reads with the clock's time at each call.
func quietReads(ctx context.Context, c *Client, skus []string, clock func() int64) ([]Answer, []int64, error) {
	ctx, cancel := context.WithTimeout(ctx, quietWaitMax)
	defer cancel()
	tick := time.NewTicker(quietPoll)
	defer tick.Stop()
	var last []Answer
	since := time.Now()
	for {
		now, calls := make([]Answer, len(skus)), make([]int64, len(skus))
		for i, sku := range skus {
			calls[i] = clock()
			now[i] = c.Do(ctx, "GET", "/v1/skus/"+sku, nil, false)
			if now[i].Outcome != Done {
				return nil, nil, fmt.Errorf("reading %s: %d %v %v", sku, now[i].Status, now[i].Body, now[i].Err)
			}
		}
		same := last != nil
		for i := range now {
			same = same && viewOf(last[i]) == viewOf(now[i])
		}
		if !same {
			last, since = now, time.Now()
		} else if time.Since(since) >= quietFor {
			return now, calls, nil
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("the SKU views did not stay the same for %v within %v", quietFor, quietWaitMax)
		case <-tick.C:
		}
	}
}
