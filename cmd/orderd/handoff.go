package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderengine/orderengine/cluster"
	clusterpb "github.com/orderengine/orderengine/cluster/pb"
	"github.com/orderengine/orderengine/persistence"
)

// handoffChunkBytes is the size of the journal chunks a handoff streams:
// well under the router's limit, so that one record too large to share a
// chunk still fits.
const handoffChunkBytes = 512 << 10

// stopServingTimeout bounds how long stopping a partition waits for its
// actors (each snapshots as it stops).
const stopServingTimeout = 20 * time.Second

// journalStore is the cluster's PartitionStore on the node's journal and
// actors: Hold and Release start and stop serving a partition (journal
// fence, activation gate, resident actors), Export, Import and Drop move a
// partition's key range, and the state of each import is kept durably in
// the journal's meta records ("import/P": the epoch, and whether it is
// complete), so that a node that restarts knows what it received.
type journalStore struct {
	j      *persistence.Journal
	served *servedPartitions
	log    *slog.Logger

	mu      sync.Mutex
	imports map[int]importState   // durable state, read through
	active  map[int]*activeImport // imports under way, in memory
}

type importState struct {
	epoch    uint64
	complete bool
}

type activeImport struct {
	epoch uint64
	next  uint64 // the Seq expected next
	imp   *persistence.PartitionImport
}

var _ cluster.PartitionStore = (*journalStore)(nil)

func newJournalStore(j *persistence.Journal, served *servedPartitions, log *slog.Logger) *journalStore {
	return &journalStore{j: j, served: served, log: log, imports: map[int]importState{}, active: map[int]*activeImport{}}
}

func (s *journalStore) Hold(p int, epoch uint64) {
	if err := s.served.start(p, epoch); err != nil {
		s.log.Error("start serving partition", "partition", p, "epoch", epoch, "err", err)
	}
}

func (s *journalStore) Release(p int) {
	ctx, cancel := context.WithTimeout(context.Background(), stopServingTimeout)
	defer cancel()
	if err := s.served.stop(ctx, p); err != nil {
		s.log.Error("stop serving partition", "partition", p, "err", err)
	}
}

// Export streams p's key range. The journal's chunk is valid only during
// emit; the handoff keeps one back to mark the last, so each is copied.
func (s *journalStore) Export(p int, emit func([]byte) error) error {
	_, err := s.j.ExportPartition(p, handoffChunkBytes, func(chunk []byte) error {
		return emit(bytes.Clone(chunk))
	})
	return err
}

func importKey(p int) string { return "import/" + strconv.Itoa(p) }

// state returns p's import state, reading it from the journal the first
// time; s.mu is held.
func (s *journalStore) state(p int) (importState, error) {
	if st, ok := s.imports[p]; ok {
		return st, nil
	}
	b, ok, err := s.j.GetMeta(importKey(p))
	if err != nil {
		return importState{}, err
	}
	var st importState
	if ok && len(b) > 0 {
		epoch, complete, _ := strings.Cut(string(b), " ")
		if st.epoch, err = strconv.ParseUint(epoch, 10, 64); err != nil {
			return importState{}, fmt.Errorf("import state of partition %d: %q", p, b)
		}
		st.complete = complete == "complete"
	}
	s.imports[p] = st
	return st, nil
}

// record stores p's import state durably; s.mu is held.
func (s *journalStore) record(p int, st importState) error {
	v := ""
	if st.epoch > 0 {
		v = strconv.FormatUint(st.epoch, 10) + " " + map[bool]string{true: "complete", false: "partial"}[st.complete]
	}
	if err := s.j.PutMeta(importKey(p), []byte(v)); err != nil {
		delete(s.imports, p) // read it again next time
		return err
	}
	s.imports[p] = st
	return nil
}

func (s *journalStore) Import(c cluster.Chunk) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := c.Partition
	st, err := s.state(p)
	if err != nil {
		return err
	}
	switch {
	case c.Epoch < st.epoch:
		return fmt.Errorf("chunk at epoch %d, below the import at %d", c.Epoch, st.epoch)
	case c.Epoch == st.epoch && st.complete:
		return nil // the whole partition is here already
	}
	a := s.active[p]
	if c.Seq == 0 {
		// A new stream replaces whatever this node had of p.
		if a != nil {
			a.imp.Abort()
			delete(s.active, p)
		}
		if err := s.record(p, importState{epoch: c.Epoch}); err != nil {
			return err
		}
		if err := s.j.DropPartition(p); err != nil {
			return err
		}
		imp, err := s.j.BeginImport(p)
		if err != nil {
			return err
		}
		a = &activeImport{epoch: c.Epoch, imp: imp}
		s.active[p] = a
	}
	switch {
	case a == nil || a.epoch != c.Epoch:
		return fmt.Errorf("chunk %d of partition %d at epoch %d: no stream under way (it starts again at 0)", c.Seq, p, c.Epoch)
	case c.Seq < a.next:
		return nil // stored already
	case c.Seq > a.next:
		return fmt.Errorf("chunk %d of partition %d: expected %d", c.Seq, p, a.next)
	}
	if len(c.Data) > 0 {
		if err := a.imp.Add(c.Data); err != nil {
			a.imp.Abort()
			delete(s.active, p)
			return err
		}
	}
	a.next++
	if !c.Last {
		return nil
	}
	delete(s.active, p)
	info, err := a.imp.Finish()
	if err != nil {
		return err
	}
	if err := s.record(p, importState{epoch: c.Epoch, complete: true}); err != nil {
		return err
	}
	s.log.Info("partition received", "partition", p, "epoch", c.Epoch, "from", c.From.String(),
		"keys", info.Keys, "bytes", info.Bytes)
	return nil
}

func (s *journalStore) Imported(p int) (uint64, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(p)
	return st.epoch, st.complete, err
}

func (s *journalStore) Drop(p int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(p)
	if err != nil {
		return err
	}
	if a := s.active[p]; a != nil {
		a.imp.Abort()
		delete(s.active, p)
	}
	if err := s.j.DropPartition(p); err != nil {
		return err
	}
	if st.epoch != 0 {
		return s.record(p, importState{})
	}
	return nil
}

func (s *journalStore) SaveTable(t cluster.Table) error {
	b, err := cluster.EncodeTable(t)
	if err != nil {
		return err
	}
	return s.j.PutMeta(metaTable, b)
}

// routerTransport carries handoffs over the cluster's router.
type routerTransport struct {
	router atomic.Pointer[cluster.Router] // set once the router exists
}

func (t *routerTransport) get() (*cluster.Router, error) {
	if r := t.router.Load(); r != nil {
		return r, nil
	}
	return nil, fmt.Errorf("%w: the router is starting", cluster.ErrUnavailable)
}

var _ cluster.HandoffTransport = (*routerTransport)(nil)

func (t *routerTransport) SendChunk(ctx context.Context, to cluster.Member, c cluster.Chunk) error {
	r, err := t.get()
	if err != nil {
		return err
	}
	err = r.SendHandoff(ctx, cluster.Holder{Name: to.Name, Generation: to.Meta.Generation}, &clusterpb.HandoffChunk{
		Partition: uint32(c.Partition), Epoch: c.Epoch, Seq: c.Seq, Data: c.Data, Last: c.Last,
		From: &clusterpb.Holder{Name: c.From.Name, Generation: c.From.Generation},
	})
	// The peer's reason travels as text; a peer that is leaving is told
	// apart so that the sender gives up at once.
	if err != nil && errors.Is(err, cluster.ErrHandoffRefused) && strings.Contains(err.Error(), cluster.ErrLeaving.Error()) {
		return fmt.Errorf("%w: %w", cluster.ErrLeaving, err)
	}
	return err
}

func (t *routerTransport) HasImport(ctx context.Context, to cluster.Member, p int, epoch uint64) (bool, error) {
	r, err := t.get()
	if err != nil {
		return false, err
	}
	return r.QueryHandoff(ctx, cluster.Holder{Name: to.Name, Generation: to.Meta.Generation}, p, epoch)
}

// receiveHandoff is the router's ReceiveHandoff: a chunk for this node.
func receiveHandoff(node func() *cluster.Node) func(cluster.Holder, *clusterpb.HandoffChunk) error {
	return func(from cluster.Holder, c *clusterpb.HandoffChunk) error {
		n := node()
		if n == nil {
			return errors.New("node starting")
		}
		return n.ReceiveChunk(cluster.Chunk{Partition: int(c.GetPartition()), Epoch: c.GetEpoch(), From: from,
			Seq: c.GetSeq(), Last: c.GetLast(), Data: c.GetData()})
	}
}
