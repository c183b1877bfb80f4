package persistence

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// The journal keeps a reserve of free space on its volume, because Badger
// cannot be stopped safely once the volume is full: it writes every file it
// creates (write-ahead logs, tables, value logs) through a sparse memory
// map, and a page that the filesystem cannot back kills the process with
// SIGBUS on one of Badger's goroutines, where no Go code can recover it.
// Badger also writes on its own after ours stop: compaction may rewrite the
// whole LSM tree, a full memtable is flushed to a table, and Open and Close
// flush and create files.
//
// So the writer refuses a batch (ErrStorageFull) while the free space is
// below
//
//	reserve = LSM size                                  (a compaction's rewrite)
//	        + 2 · (memtables + 1) · 1.15 · MemTableBytes (logs and their flushed tables)
//	        + max(BatchBytes, the batch's bytes)       (the commit itself)
//	        + StorageReserveBytes                      (the fixed part)
//
// and accepts writes again only once free space reaches reserve +
// MemTableBytes, so that a node near the line does not flap. The
// compactor and value-log GC write only when there is room for what they
// write on top of the reserve, Open refuses a volume without room for the
// tables and logs it finds plus the reserve, and Close leaves Badger open
// when the volume is full (every commit is already in its write-ahead log).
//
// This holds while the journal is what fills the volume. Another process
// filling it to the last byte can still crash Badger, which is why the data
// directory belongs on a filesystem of its own.

// memtableHeadroomPercent: a memtable's log and the table flushed from it
// take up to 15% more than MemTableBytes.
const memtableHeadroomPercent = 115

// StorageStatus is the journal's view of the free space on its volume.
type StorageStatus struct {
	Free    uint64 // bytes free on the volume, as last measured
	Reserve uint64 // writes are refused while Free is below it
	// Full: writes are refused; they resume once Free reaches Reserve +
	// Options.MemTableBytes.
	Full bool
}

// storageState is the full-or-not state with its latest measurement.
type storageState struct {
	mu     sync.Mutex
	status StorageStatus
}

// memtablesReserveBytes is the reserve's part for memtables: each of
// Badger's memtables plus the one being filled has a log file, and each is
// flushed to a table of about its size.
func memtablesReserveBytes(o Options) uint64 {
	return uint64(2*(badgerMemtables+1)) * uint64(o.MemTableBytes) * memtableHeadroomPercent / 100
}

// fixedReserveBytes is the part of the reserve that does not grow with the
// store: the memtables', the largest regular commit and the fixed part.
func fixedReserveBytes(o Options) uint64 {
	return memtablesReserveBytes(o) + uint64(o.BatchBytes) + uint64(o.StorageReserveBytes)
}

// measureStorage reads the free space and computes the reserve, then
// moves the full state: in when free is below the reserve, out only at the
// reserve plus a memtable. Entering and leaving are logged, once each.
func (j *Journal) measureStorage() (StorageStatus, error) {
	free, err := j.opts.FreeSpace(j.dir)
	if err != nil {
		return StorageStatus{}, fmt.Errorf("measure free space of %s: %w", j.dir, err)
	}
	var lsm int64
	for _, l := range j.db.Levels() {
		lsm += l.Size
	}
	reserve := uint64(max(lsm, 0)) + fixedReserveBytes(j.opts)
	resume := reserve + uint64(j.opts.MemTableBytes)
	j.storage.mu.Lock()
	was := j.storage.status.Full
	full := free < reserve || (was && free < resume)
	j.storage.status = StorageStatus{Free: free, Reserve: reserve, Full: full}
	st := j.storage.status
	j.storage.mu.Unlock()
	switch {
	case full && !was:
		j.log.Error("journal refuses writes: its volume is nearly full",
			"free_bytes", free, "reserve_bytes", reserve, "resume_bytes", resume, "dir", j.dir)
	case was && !full:
		j.log.Info("journal accepts writes again: space was freed",
			"free_bytes", free, "reserve_bytes", reserve, "dir", j.dir)
	}
	return st, nil
}

// admitBatch is the writer's gate, before anything of a batch of bytes
// is staged: nil when it may be committed, else the refusal.
func (j *Journal) admitBatch(bytes int) error {
	st, err := j.measureStorage()
	if err != nil {
		j.log.Error("journal refuses writes: cannot measure free space", "err", err)
		return err
	}
	// The reserve counts one regular batch; a larger request needs its
	// own size on top of the rest.
	extra := uint64(max(bytes-j.opts.BatchBytes, 0))
	if st.Full || st.Free < st.Reserve+extra {
		return storageRefusal(st, extra, uint64(j.opts.MemTableBytes))
	}
	return nil
}

// roomFor reports whether a background writer (the compactor, value-log
// GC) may write about extra bytes now: writes are accepted and the volume
// has room for extra on top of the reserve.
func (j *Journal) roomFor(extra uint64) bool {
	st, err := j.measureStorage()
	if err != nil {
		j.log.Warn("journal skips background work: cannot measure free space", "err", err)
		return false
	}
	return !st.Full && st.Free >= st.Reserve+extra
}

// storageRefusal is the error of a batch refused at st, which needs extra
// bytes beyond a regular batch's.
func storageRefusal(st StorageStatus, extra, memtable uint64) error {
	resume := st.Reserve + extra
	if st.Full {
		resume = st.Reserve + max(extra, memtable)
	}
	return fmt.Errorf("%w: %s free on the data volume, below the reserve of %s; writes resume at %s free",
		ErrStorageFull, mib(st.Free), mib(st.Reserve+extra), mib(resume))
}

// Storage measures the free space on the journal's volume now and returns
// it with the reserve and whether writes are refused. Measuring also moves
// the state, so a node that is not writing notices freed space when it is
// asked (readiness checks, metrics). Once the journal is closed or failed
// it returns the last measurement.
func (j *Journal) Storage() StorageStatus {
	if err := j.beginRead(); err == nil {
		defer j.reads.Done()
		if st, err := j.measureStorage(); err == nil {
			return st
		}
	}
	j.storage.mu.Lock()
	defer j.storage.mu.Unlock()
	return j.storage.status
}

// checkOpenSpace refuses to open Badger in dir unless the volume has room
// for what Open may write: Badger replays its write-ahead logs (.mem) into
// tables and may compact the tables (.sst) it finds, on top of the
// reserve.
func checkOpenSpace(dir string, o Options) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list journal directory: %w", err)
	}
	var files uint64
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); ext != ".sst" && ext != ".mem" {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return fmt.Errorf("size of journal file: %w", err)
		}
		files += uint64(max(info.Size(), 0))
	}
	free, err := o.FreeSpace(dir)
	if err != nil {
		return fmt.Errorf("measure free space of %s: %w", dir, err)
	}
	if need := files + fixedReserveBytes(o); free < need {
		return fmt.Errorf("%w: %s free on the data volume; opening needs %s (%s of tables and logs, and the reserve)",
			ErrStorageFull, mib(free), mib(need), mib(files))
	}
	return nil
}

// mib formats a byte count for messages.
func mib(b uint64) string {
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
