package actors

import (
	"sync"
	"sync/atomic"
)

// workerDispatcher runs the registry's actors' mailboxes. protoactor's
// default starts a goroutine each time an idle mailbox gets mail; each
// starts with a small stack and grows it again through the actor's deep
// call chain (the SKU's turn runs both pure layers and the journal's
// submission), which cost a few percent of a busy node's CPU in stack
// copies alone. Here a mailbox with mail goes to a goroutine that waits
// for work after its last mailbox went idle and so keeps its grown stack;
// when none is waiting, a new one starts, as before, so a mailbox never
// waits for another to finish. At most keptMax goroutines stay; one that
// finds that many already kept exits after its run. They all exit once
// the registry's StopAll stops the dispatcher.
//
// Each registry has its own (NewRegistry), so its goroutines and channel
// belong to the actor system's test bubble when there is one
// (testing/synctest), where a goroutine waiting on a channel made outside
// would keep the bubble's clock from moving.
const (
	// mailboxWorkersMax bounds the goroutines kept waiting for mailboxes:
	// more than a node runs at once, few enough that their stacks are a
	// few MiB.
	mailboxWorkersMax = 256
	// mailboxThroughput is protoactor's default: messages a mailbox runs
	// before it yields its goroutine to the scheduler.
	mailboxThroughput = 300
)

type workerDispatcher struct {
	work       chan func()
	quit       chan struct{} // closed by stop
	stopOnce   sync.Once
	kept       atomic.Int32 // goroutines that stay for more work
	keptMax    int32
	throughput int
}

func newWorkerDispatcher(keptMax, throughput int) *workerDispatcher {
	return &workerDispatcher{work: make(chan func()), quit: make(chan struct{}), keptMax: int32(keptMax), throughput: throughput}
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
	defer d.kept.Add(-1)
	for {
		fn()
		select {
		case fn = <-d.work:
		case <-d.quit:
			return
		}
	}
}

// stop makes the waiting goroutines exit, and every later one exit after
// its run: mailboxes are then run as protoactor's default runs them. It
// may be called more than once.
func (d *workerDispatcher) stop() {
	d.stopOnce.Do(func() { close(d.quit) })
}
