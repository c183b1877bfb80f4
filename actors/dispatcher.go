package actors

import (
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// mailboxDispatcher runs the registry's actors' mailboxes. protoactor's
// default starts a goroutine each time an idle mailbox gets mail; each
// starts with a small stack and grows it again through the actor's deep
// call chain (the SKU's turn runs both pure layers and the journal's
// submission), which cost a few percent of a busy node's CPU in stack
// copies alone. Here a mailbox with mail goes to a goroutine that waits
// for work after its last mailbox went idle and so keeps its grown stack;
// when none is waiting, a new one starts, as before, so a mailbox never
// waits for another to finish. At most mailboxWorkersMax goroutines wait;
// one that finds that many already kept exits after its run.
//
// It is shared by every registry of the process: waiting goroutines are
// bounded per process, not per actor system.
var mailboxDispatcher actor.Dispatcher = newWorkerDispatcher(mailboxWorkersMax, mailboxThroughput)

const (
	// mailboxWorkersMax bounds the goroutines kept waiting for mailboxes:
	// more than a node runs at once (two per core is plenty), few enough
	// that their stacks are a few MiB.
	mailboxWorkersMax = 256
	// mailboxThroughput is protoactor's default: messages a mailbox runs
	// before it yields its goroutine to the scheduler.
	mailboxThroughput = 300
)

type workerDispatcher struct {
	work       chan func()
	kept       atomic.Int32 // goroutines that stay for more work
	keptMax    int32
	throughput int
}

func newWorkerDispatcher(keptMax, throughput int) *workerDispatcher {
	return &workerDispatcher{work: make(chan func()), keptMax: int32(keptMax), throughput: throughput}
}

// Schedule hands fn to a waiting goroutine, or starts one.
func (d *workerDispatcher) Schedule(fn func()) {
	select {
	case d.work <- fn:
	default:
		go d.worker(fn)
	}
}

func (d *workerDispatcher) Throughput() int { return d.throughput }

func (d *workerDispatcher) worker(fn func()) {
	if d.kept.Add(1) > d.keptMax {
		d.kept.Add(-1)
		fn()
		return
	}
	for {
		fn()
		fn = <-d.work
	}
}
