package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// memStore is a PartitionStore in memory that outlives its node: a test
// "crashes" a node and starts it again on the same store, which keeps what
// a journal keeps on disk (data, imports, the saved table) and loses what
// it keeps in memory (the fences).
type memStore struct {
	mu         sync.Mutex
	chunkBytes int
	data       map[int][]byte
	imports    map[int]memImport
	fences     map[int]uint64
	table      *Table
	// failSave, when set, can refuse a table: the save fails and nothing
	// is stored.
	failSave func(Table) error
}

type memImport struct {
	epoch    uint64
	next     uint64
	complete bool
}

var errNotHeld = errors.New("memstore: write to a partition not held")

func newMemStore(chunkBytes int) *memStore {
	return &memStore{chunkBytes: chunkBytes, data: map[int][]byte{}, imports: map[int]memImport{}, fences: map[int]uint64{}}
}

// reopen is the store as a restarted node finds it.
func (s *memStore) reopen() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fences = map[int]uint64{}
	s.failSave = nil
}

func (s *memStore) savedTable() *Table {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.table == nil {
		return nil
	}
	t := s.table.Clone()
	return &t
}

func (s *memStore) setFailSave(f func(Table) error) {
	s.mu.Lock()
	s.failSave = f
	s.mu.Unlock()
}

// write is a journal append: it commits only while p is held.
func (s *memStore) write(p int, b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.fences[p]; !ok {
		return errNotHeld
	}
	s.data[p] = append(s.data[p], b...)
	return nil
}

func (s *memStore) get(p int) ([]byte, memImport, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.data[p]
	return slices.Clone(d), s.imports[p], ok
}

func (s *memStore) fence(p int) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.fences[p]
	return e, ok
}

func (s *memStore) Hold(p int, epoch uint64) {
	s.mu.Lock()
	s.fences[p] = epoch
	s.mu.Unlock()
}

func (s *memStore) Release(p int) {
	s.mu.Lock()
	delete(s.fences, p)
	s.mu.Unlock()
}

func (s *memStore) Export(p int, emit func([]byte) error) error {
	s.mu.Lock()
	if _, held := s.fences[p]; held {
		s.mu.Unlock()
		return fmt.Errorf("memstore: export of partition %d while held", p)
	}
	d := slices.Clone(s.data[p])
	s.mu.Unlock()
	for len(d) > 0 {
		n := min(len(d), s.chunkBytes)
		if err := emit(d[:n:n]); err != nil {
			return err
		}
		d = d[n:]
	}
	return nil
}

func (s *memStore) Import(c Chunk) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := c.Partition
	im, ok := s.imports[p]
	switch {
	case ok && c.Epoch < im.epoch:
		return fmt.Errorf("memstore: chunk at epoch %d below import at %d", c.Epoch, im.epoch)
	case ok && c.Epoch == im.epoch && im.complete:
		return nil
	case c.Seq == 0:
		s.data[p] = bytes.Clone(c.Data)
		s.imports[p] = memImport{epoch: c.Epoch, next: 1, complete: c.Last}
		return nil
	case !ok || c.Epoch > im.epoch || c.Seq > im.next:
		return fmt.Errorf("memstore: gap: chunk %d at epoch %d, import at %d expects %d", c.Seq, c.Epoch, im.epoch, im.next)
	case c.Seq < im.next:
		return nil
	}
	s.data[p] = append(s.data[p], c.Data...)
	s.imports[p] = memImport{epoch: c.Epoch, next: im.next + 1, complete: c.Last}
	return nil
}

func (s *memStore) Imported(p int) (uint64, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	im := s.imports[p]
	return im.epoch, im.complete, nil
}

func (s *memStore) Drop(p int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, held := s.fences[p]; held {
		return fmt.Errorf("memstore: drop of partition %d while held", p)
	}
	delete(s.data, p)
	delete(s.imports, p)
	return nil
}

func (s *memStore) SaveTable(t Table) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failSave != nil {
		if err := s.failSave(t); err != nil {
			return err
		}
	}
	c := t.Clone()
	s.table = &c
	return nil
}

// handoffNet is an in-memory HandoffTransport between the nodes of a test
// cluster. A call reaches the node registered under the peer's name at
// the peer's generation; faults are functions of the sender, the receiver
// and the chunk.
type handoffNet struct {
	mu    sync.Mutex
	nodes map[string]*Node
	// before, when set, runs before a chunk is delivered: an error loses
	// the chunk. after runs once it is stored: an error loses the ack.
	before, after func(from, to string, c Chunk) error
	// delay holds every call this long.
	delay time.Duration
	// refuseAsk, when set, fails HasImport calls to that node.
	refuseAsk map[string]bool
}

var errHandoffUnreachable = errors.New("handoffnet: unreachable")

func newHandoffNet() *handoffNet {
	return &handoffNet{nodes: map[string]*Node{}, refuseAsk: map[string]bool{}}
}

func (h *handoffNet) register(n *Node) {
	h.mu.Lock()
	h.nodes[n.Self().Name] = n
	h.mu.Unlock()
}

func (h *handoffNet) unregister(name string) {
	h.mu.Lock()
	delete(h.nodes, name)
	h.mu.Unlock()
}

func (h *handoffNet) setFaults(before, after func(from, to string, c Chunk) error, delay time.Duration) {
	h.mu.Lock()
	h.before, h.after, h.delay = before, after, delay
	h.mu.Unlock()
}

func (h *handoffNet) transport(from string) HandoffTransport { return memHandoff{h, from} }

type memHandoff struct {
	net  *handoffNet
	from string
}

func (t memHandoff) reach(ctx context.Context, to Member) (*Node, func(string, string, Chunk) error, func(string, string, Chunk) error, error) {
	t.net.mu.Lock()
	n, before, after, delay, refuse := t.net.nodes[to.Name], t.net.before, t.net.after, t.net.delay, t.net.refuseAsk[to.Name]
	t.net.mu.Unlock()
	if delay > 0 {
		timer := time.NewTimer(delay)
		defer timer.Stop()
		select {
		case <-ctx.Done():
			return nil, nil, nil, ctx.Err()
		case <-timer.C:
		}
	}
	if n == nil || n.Self().Generation != to.Meta.Generation || refuse {
		return nil, nil, nil, fmt.Errorf("%w: %s", errHandoffUnreachable, to.Name)
	}
	return n, before, after, nil
}

func (t memHandoff) SendChunk(ctx context.Context, to Member, c Chunk) error {
	n, before, after, err := t.reach(ctx, to)
	if err != nil {
		return err
	}
	if before != nil {
		if err := before(t.from, to.Name, c); err != nil {
			return err
		}
	}
	c.Data = bytes.Clone(c.Data) // the receiver keeps nothing of the sender's
	if err := n.ReceiveChunk(c); err != nil {
		return err
	}
	if after != nil {
		return after(t.from, to.Name, c)
	}
	return nil
}

func (t memHandoff) HasImport(ctx context.Context, to Member, p int, epoch uint64) (bool, error) {
	n, _, _, err := t.reach(ctx, to)
	if err != nil {
		return false, err
	}
	return n.HasImport(p, epoch)
}

// serveLog records every StartServing and StopServing of a test cluster,
// in one order, and checks as it goes that no partition is served by two
// nodes at once, that each start is at an epoch at least the last one's
// (equal only on the same node, after a restart), and that the serving
// node holds the fence at that epoch.
type serveLog struct {
	mu     sync.Mutex
	start  time.Time
	events []serveEvent
	active map[int]map[string]uint64 // partition → node → epoch
	last   map[int]serveEvent        // partition → last start
	errs   []string
}

type serveEvent struct {
	at    time.Duration
	node  string
	p     int
	epoch uint64
	start bool
}

func newServeLog() *serveLog {
	return &serveLog{start: time.Now(), active: map[int]map[string]uint64{}, last: map[int]serveEvent{}}
}

func (l *serveLog) hooks(node string, store *memStore) (func(int, uint64), func(int)) {
	start := func(p int, epoch uint64) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if e, ok := store.fence(p); !ok || e != epoch {
			l.errs = append(l.errs, fmt.Sprintf("%s serves partition %d at epoch %d without its fence (%d, %v)", node, p, epoch, e, ok))
		}
		for other, e := range l.active[p] {
			l.errs = append(l.errs, fmt.Sprintf("%s serves partition %d at epoch %d while %s serves it at %d", node, p, epoch, other, e))
		}
		if prev, ok := l.last[p]; ok && (epoch < prev.epoch || epoch == prev.epoch && prev.node != node) {
			l.errs = append(l.errs, fmt.Sprintf("%s serves partition %d at epoch %d after %s served it at %d", node, p, epoch, prev.node, prev.epoch))
		}
		ev := serveEvent{time.Since(l.start), node, p, epoch, true}
		if l.active[p] == nil {
			l.active[p] = map[string]uint64{}
		}
		l.active[p][node] = epoch
		l.last[p] = ev
		l.events = append(l.events, ev)
	}
	stop := func(p int) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.stopLocked(node, p)
	}
	return start, stop
}

func (l *serveLog) stopLocked(node string, p int) {
	e, ok := l.active[p][node]
	if !ok {
		l.errs = append(l.errs, fmt.Sprintf("%s stops partition %d, which it does not serve", node, p))
		return
	}
	delete(l.active[p], node)
	l.events = append(l.events, serveEvent{time.Since(l.start), node, p, e, false})
}

// stopped records that a node's process ended: its actors are gone.
func (l *serveLog) stopped(node string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for p, nodes := range l.active {
		if _, ok := nodes[node]; ok {
			l.stopLocked(node, p)
		}
	}
}

// server returns the node serving p now and at which epoch.
func (l *serveLog) server(p int) (string, uint64, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for node, e := range l.active[p] {
		return node, e, len(l.active[p])
	}
	return "", 0, 0
}

func (l *serveLog) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.errs)
}

// gap returns how long p was served by nobody between from's stop and
// to's start, the last time that happened.
func (l *serveLog) gap(p int, from, to string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var stopped time.Duration
	found := false
	for _, ev := range l.events {
		switch {
		case ev.p == p && ev.node == from && !ev.start:
			stopped, found = ev.at, true
		case ev.p == p && ev.node == to && ev.start && found:
			return ev.at - stopped, true
		}
	}
	return 0, false
}
