package persistence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Hard limits that Options are validated against. Badger panics on some
// invalid settings instead of returning an error, so nothing reaches it
// before Validate has passed.
const (
	idBytesMax        = 1024      // longest identity; keys stay small
	eventBytesMax     = 1 << 20   // largest single event
	snapshotBytesMax  = 256 << 20 // largest snapshot state; a million reservations fit
	memTableBytesMin  = 8 << 20   // below this Badger refuses its default value threshold
	memTableBytesMax  = 1 << 30   //
	valueLogBytesMin  = 2 << 20   // Badger's bound is 1 MiB; ours fits the largest event record
	valueLogBytesMax  = 1<<30 - 1
	batchEntriesMax   = 16384 // a batch beyond Badger's per-txn count is split
	queueEntriesMax   = 1 << 20
	flushWaitMax      = 10 * time.Millisecond
	valueThresholdMax = 1 << 20
	// txnShareMax: Badger refuses a txn above 15% of the memtable; a batch
	// takes at most half of that so key overheads never push it over.
	txnSharePercentMax = 7
	// badgerMemtables is Badger's NumMemtables: memtables in memory, each
	// with its write-ahead log file, before writes stall on a flush.
	badgerMemtables = 2
	// storageReserveBytesDefault is the fixed part of the free space the
	// journal keeps on its volume (Options.StorageReserveBytes).
	storageReserveBytesDefault = 64 << 20
)

// A value-log file must hold the largest event record: Badger refuses a
// value larger than one.
var _ = [valueLogBytesMin - (recordHeaderBytes + eventBytesMax + recordCRCBytes)]struct{}{}

// Options configure a Journal. The zero value of a field means its default;
// DefaultOptions returns the defaults spelled out.
type Options struct {
	// Logger receives the journal's and Badger's logs. Default: discard.
	Logger *slog.Logger

	// BatchEntries and BatchBytes bound one group commit (one synced
	// transaction). A single request larger than BatchBytes is committed on
	// its own. Defaults 1024 entries and 256 KiB.
	BatchEntries int
	BatchBytes   int

	// QueueEntries bounds the requests waiting for the writer; beyond it
	// submitters block (backpressure). Default 8192.
	QueueEntries int

	// FlushWait lets the writer, when it is busy (requests were waiting as
	// its previous commit ended), linger this long for more before
	// committing a batch that is not full. An idle writer never lingers.
	// Default 0: commit at once, and let batches grow while the previous
	// commit is in progress.
	FlushWait time.Duration

	// Partitions is how many partitions identities are spread over
	// (Partition). It is fixed when a data directory is created: Open
	// refuses a directory made with another count. Default 64, at most
	// 4096.
	Partitions int

	// Fenced makes the journal hold no partition until Hold names it, for
	// a node of a cluster, where each partition is written by one node at
	// an epoch (fence.go). Default false: one node that holds every
	// partition from Open on.
	Fenced bool

	// RetainEvents keeps events that a snapshot covers. Default false: the
	// compactor deletes them.
	RetainEvents bool

	// CompactInterval is the pause between compaction passes, and
	// CompactKeys the most events one pass deletes. Defaults 1 s and 10 000.
	CompactInterval time.Duration
	CompactKeys     int

	// ValueLogGCInterval is the pause between value-log GC runs. Default 5 min.
	ValueLogGCInterval time.Duration

	// OnFlush, when set, is called by the writer after every commit with the
	// number of requests, entries and bytes it carried, how long the synced
	// commit took, and its error. It must be quick (a Prometheus observe).
	OnFlush func(requests, entries, bytes int, d time.Duration, err error)

	// OnFatal, when set, is called once, from the writer goroutine, when a
	// synced commit fails and the journal stops (ErrJournalFailed): the
	// state on disk is unknown, so the process should exit and recover
	// from its data directory. It must return quickly and must not call
	// Close, which waits for the writer: hand the error to another
	// goroutine.
	OnFatal func(error)

	// BeforeCommit, when set, runs on the writer before each synced
	// commit; an error it returns fails that commit as a failed write or
	// fsync would, and so stops the journal. It exists for fault-injection
	// tests.
	BeforeCommit func() error

	// StorageReserveBytes is the fixed part of the free space the journal
	// keeps on its data volume; writes are refused with ErrStorageFull
	// below the whole reserve (see storage.go for the parts that grow with
	// the store). Default 64 MiB.
	StorageReserveBytes int64

	// FreeSpace reports the bytes free for the journal on the filesystem
	// that holds dir. Default: statfs(2)'s blocks available to
	// unprivileged users. Tests replace it to simulate a full volume.
	FreeSpace func(dir string) (uint64, error)

	// Badger memory and file sizes, trimmed for a small node (NOTES.md):
	// MemTableBytes 8 MiB, BlockCacheBytes 16 MiB, IndexCacheBytes 8 MiB,
	// ValueLogFileBytes 64 MiB, ValueThresholdBytes 32 KiB (larger values,
	// such as big snapshots, go to the value log).
	MemTableBytes       int64
	BlockCacheBytes     int64
	IndexCacheBytes     int64
	ValueLogFileBytes   int64
	ValueThresholdBytes int64
}

// DefaultOptions returns the defaults for a small node.
func DefaultOptions() Options {
	return Options{
		BatchEntries:        1024,
		BatchBytes:          256 << 10,
		QueueEntries:        8192,
		Partitions:          64,
		CompactInterval:     time.Second,
		CompactKeys:         10000,
		ValueLogGCInterval:  5 * time.Minute,
		MemTableBytes:       8 << 20,
		BlockCacheBytes:     16 << 20,
		IndexCacheBytes:     8 << 20,
		ValueLogFileBytes:   64 << 20,
		ValueThresholdBytes: 32 << 10,
		StorageReserveBytes: storageReserveBytesDefault,
	}
}

// withDefaults fills every zero field with its default.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.FreeSpace == nil {
		o.FreeSpace = freeSpace
	}
	setDefault(&o.BatchEntries, d.BatchEntries)
	setDefault(&o.BatchBytes, d.BatchBytes)
	setDefault(&o.QueueEntries, d.QueueEntries)
	setDefault(&o.Partitions, d.Partitions)
	setDefault(&o.CompactInterval, d.CompactInterval)
	setDefault(&o.CompactKeys, d.CompactKeys)
	setDefault(&o.ValueLogGCInterval, d.ValueLogGCInterval)
	setDefault(&o.MemTableBytes, d.MemTableBytes)
	setDefault(&o.BlockCacheBytes, d.BlockCacheBytes)
	setDefault(&o.IndexCacheBytes, d.IndexCacheBytes)
	setDefault(&o.ValueLogFileBytes, d.ValueLogFileBytes)
	setDefault(&o.ValueThresholdBytes, d.ValueThresholdBytes)
	setDefault(&o.StorageReserveBytes, d.StorageReserveBytes)
	return o
}

func setDefault[T int | int64 | time.Duration](v *T, d T) {
	if *v == 0 {
		*v = d
	}
}

// Validate reports every option that is out of range, after defaults are
// applied. Open calls it before Badger sees any setting.
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(o.BatchEntries > 0 && o.BatchEntries <= batchEntriesMax,
		"batch entries %d: want 1..%d", o.BatchEntries, batchEntriesMax)
	check(o.QueueEntries > 0 && o.QueueEntries <= queueEntriesMax,
		"queue entries %d: want 1..%d", o.QueueEntries, queueEntriesMax)
	check(o.Partitions > 0 && o.Partitions <= partitionsMax,
		"partitions %d: want 1..%d", o.Partitions, partitionsMax)
	check(o.FlushWait >= 0 && o.FlushWait <= flushWaitMax,
		"flush wait %v: want 0..%v", o.FlushWait, flushWaitMax)
	check(o.CompactInterval > 0, "compact interval %v: want > 0", o.CompactInterval)
	check(o.CompactKeys > 0, "compact keys %d: want > 0", o.CompactKeys)
	check(o.ValueLogGCInterval > 0, "value-log gc interval %v: want > 0", o.ValueLogGCInterval)
	check(o.MemTableBytes >= memTableBytesMin && o.MemTableBytes <= memTableBytesMax,
		"memtable bytes %d: want %d..%d", o.MemTableBytes, memTableBytesMin, memTableBytesMax)
	check(o.BlockCacheBytes > 0,
		"block cache bytes %d: want > 0 (badger compresses blocks)", o.BlockCacheBytes)
	check(o.IndexCacheBytes >= 0, "index cache bytes %d: want >= 0", o.IndexCacheBytes)
	check(o.ValueLogFileBytes >= valueLogBytesMin && o.ValueLogFileBytes <= valueLogBytesMax,
		"value log file bytes %d: want %d..%d", o.ValueLogFileBytes, valueLogBytesMin, valueLogBytesMax)
	txnBytesMax := o.MemTableBytes * txnSharePercentMax / 100
	check(o.BatchBytes > 0 && int64(o.BatchBytes) <= txnBytesMax,
		"batch bytes %d: want 1..%d (%d%% of memtable bytes)", o.BatchBytes, txnBytesMax, txnSharePercentMax)
	check(o.ValueThresholdBytes > 0 && o.ValueThresholdBytes <= valueThresholdMax &&
		o.ValueThresholdBytes <= txnBytesMax,
		"value threshold bytes %d: want 1..%d and at most %d%% of memtable bytes",
		o.ValueThresholdBytes, valueThresholdMax, txnSharePercentMax)
	check(o.StorageReserveBytes > 0, "storage reserve bytes %d: want > 0", o.StorageReserveBytes)
	if len(errs) > 0 {
		return fmt.Errorf("invalid journal options: %w", errors.Join(errs...))
	}
	return nil
}

// badgerOptions translates validated Options into Badger's. Every append
// must be durable when acknowledged, so SyncWrites is on: each commit of the
// writer is one fsync.
func (o Options) badgerOptions(dir string) badger.Options {
	opts := badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithLogger(badgerLogger{o.Logger}).
		WithMemTableSize(o.MemTableBytes).
		WithNumMemtables(badgerMemtables).
		WithNumLevelZeroTables(4).
		WithNumLevelZeroTablesStall(8).
		WithBlockCacheSize(o.BlockCacheBytes).
		WithIndexCacheSize(o.IndexCacheBytes).
		WithValueLogFileSize(o.ValueLogFileBytes).
		WithValueThreshold(o.ValueThresholdBytes).
		WithNumCompactors(2).
		WithCompression(options.Snappy).
		WithNumVersionsToKeep(1).
		WithDetectConflicts(false) // one writer; nothing to detect
	// Every level's tables the size of the base level's: Badger builds
	// each table in memory (up to a dozen at a time while compacting, and
	// it keeps a pool of the builders' buffers), so tables that doubled in
	// size with each level made the node's memory grow with its store.
	opts.TableSizeMultiplier = 1
	return opts
}

// badgerLogger routes Badger's printf-style logs into slog. Badger's info
// messages are routine (compactions, table flushes), so they go to debug.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error("badger", "msg", fmt.Sprintf(f, a...))
}

func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn("badger", "msg", fmt.Sprintf(f, a...))
}

func (b badgerLogger) Infof(f string, a ...any) { b.debug(f, a...) }

func (b badgerLogger) Debugf(f string, a ...any) { b.debug(f, a...) }

// debug formats only when debug logging is on: Badger logs a lot at info.
func (b badgerLogger) debug(f string, a ...any) {
	if b.l.Enabled(context.Background(), slog.LevelDebug) {
		b.l.Debug("badger", "msg", fmt.Sprintf(f, a...))
	}
}
