package testkit_test

import (
	"fmt"
	"time"

	"github.com/orderengine/orderengine/actors/pb"
	"github.com/orderengine/orderengine/actors/testkit"
)

// Restock a SKU, reserve against it, read the reply and the journal, then
// crash the actor and see it come back from the journal. In a test, pass
// t instead of a standalone TB.
func Example() {
	tb := testkit.Standalone()
	defer tb.Close()
	k := testkit.New(tb)

	k.AskSKU("A-1", &pb.Restock{OpId: "restock-1", Quantity: 10})
	res := k.AskSKU("A-1", &pb.ReserveStock{OrderId: "o-1", Quantity: 3,
		DeadlineUnixNano: k.Clock.Now().Add(15 * time.Minute).UnixNano()})
	fmt.Println(res.Outcome, "available", res.View.Available, "reserved", res.View.Reserved)
	fmt.Println(len(k.SKUEvents("A-1")), "events journaled")

	k.CrashSKU("A-1")
	again := k.AskSKU("A-1", &pb.ReserveStock{OrderId: "o-1", Quantity: 3,
		DeadlineUnixNano: k.Clock.Now().Add(15 * time.Minute).UnixNano()})
	fmt.Println("retry after crash:", again.Outcome, "reserved", again.View.Reserved)
	// Output:
	// OUTCOME_APPLIED available 7 reserved 3
	// 2 events journaled
	// retry after crash: OUTCOME_ALREADY_DONE reserved 3
}
