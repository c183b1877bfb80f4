// Package persistence is the node's durable journal: one ordered event log
// per actor identity plus that identity's latest snapshot and the time at
// which it must next be woken, stored in an embedded Badger v4 database.
//
// It knows bytes and keys, not SKUs or orders, and imports nothing from this
// repository. *Journal satisfies the actors.Journal interface structurally;
// because a test here cannot import actors, the method set it must keep is
// written down instead:
//
//	AppendEventsMax() int
//	Append(id string, first uint64, events [][]byte, wake int64, done func(error))
//	SaveSnapshot(id string, seq uint64, state []byte, done func(error))
//	LoadSnapshot(id string) (seq uint64, state []byte, err error)
//	Replay(id string, after uint64, fn func(seq uint64, event []byte) error) error
//	Due(before int64, limit int, fn func(id string, wake int64) bool) error
//	Delete(id string, done func(error))
//
// # Group commit
//
// One writer goroutine takes appends, snapshot writes and deletes from every
// caller in submission order and commits as many as fit (Options.BatchEntries,
// Options.BatchBytes) in one synced Badger transaction, then calls each
// waiter's done. An fsync costs about the same for one entry as for a
// thousand, so this is what turns ~5 k synced writes/s into hundreds of
// thousands. The writer never waits for company when it is idle: a lone
// append is committed at once, and batches grow on their own while the
// previous commit is in progress. Options.FlushWait can add a short linger
// under load, for workloads that prefer bigger batches to lower latency.
//
// Submission applies backpressure: when Options.QueueEntries requests are
// waiting, Append, SaveSnapshot and Delete block their caller until the writer takes
// some or the journal closes. They never block forever, because Close wakes
// every blocked caller and fails it with ErrClosed.
//
// The journal keeps the events and state slices it is given until done is
// called; callers must not modify them before that.
//
// done is called from the writer goroutine (or from the caller's own
// goroutine for requests refused at once). It must not block and must not
// submit to the journal itself, since a full queue would then wait on the
// writer that is running it: actors send themselves a message from it.
//
// # Sequences
//
// An identity's events carry sequences 1, 2, 3, ... The journal keeps, per
// identity, the last durable sequence and the last pending one. An append
// must start one past the last pending sequence, otherwise it fails with a
// *SequenceError and writes nothing. When a batch is refused before
// anything of it is staged (the volume below its storage reserve, or a
// request that cannot be written), every request in it fails, the
// identity's pending sequence falls back to its durable one, and requests
// of that identity already queued behind the refused one fail too
// (ErrEarlierAppendFailed): the actor reloads from the journal and
// continues from what is durable.
//
// # Failed commits
//
// A synced commit that fails is different: Badger may hold its entries in
// memory, readable, though they are not durable, so the state on disk is
// unknown. The journal then stops for good: every request in flight,
// queued or submitted later, and every read, fails with ErrJournalFailed
// wrapping the cause, nothing more is written, and Options.OnFatal is
// called once. The process is expected to exit and recover from its data
// directory, where every acknowledged write is.
//
// # Storage reserve
//
// Badger cannot be stopped safely once its volume is full (storage.go says
// why), so the writer checks the free space before every batch and
// refuses it with ErrStorageFull while that is below a reserve that grows
// with the store; writes resume by themselves once free space reaches the
// reserve plus a memtable. A refusal writes nothing and does not stop the
// journal; reads go on. The compactor and value-log GC wait for room too,
// Open refuses a volume without room for what it finds plus the reserve,
// and Close leaves Badger open on a full volume. Storage reports the free
// space and the reserve.
//
// A Delete resets the identity at once for later submissions: appends
// queued after it start again at sequence 1. If the Delete fails, they fail
// with it (ErrEarlierAppendFailed).
//
// # Wake times
//
// Each append carries the identity's wake time after it (0 for none), which
// the writer stores in the same transaction as the events, and only when it
// changes. Due lists the identities whose durable wake time has passed,
// earliest first, for a node that wakes passivated actors.
//
// # Layout and records
//
// Keys are partitioned (keys.go has the layout): every key starts with the
// identity's partition, Partition(id, Options.Partitions), so that a
// partition is one contiguous key range. Within it, an identity's events
// sort by sequence, its snapshot's sequence is part of the snapshot key and
// the wake index sorts by time, so the journal finds an identity's position
// by reading keys only. The partition count and the format version are
// recorded in the database; Open refuses a directory with another count or
// format (ErrPartitionCount, ErrFormat), including one written by format 1.
//
// Every value is a versioned record with a CRC32C over its header and
// payload; the sequence inside the record must match its key. A snapshot
// larger than 1 MiB is stored as several chunk records in one transaction
// (snapshot.go). A record that fails these checks, or a missing chunk, is
// reported as a *CorruptRecordError naming its key and is never skipped.
//
// # Partitions in a cluster
//
// With Options.Fenced the journal writes only the partitions it holds
// (Hold, Release, Held; fence.go): a write of another is refused with
// ErrNotHeld, which neither writes nor stops anything, and Release is a
// fence after which nothing of the partition commits. Due lists held
// partitions only. A partition is handed to another node as its key range:
// ExportPartition on the old holder, BeginImport/Add/Finish on the new
// one, DropPartition once it is over (partition.go); each refuses a held
// partition and keeps the journal's cached identities and compaction
// coherent with the range. PutMeta and GetMeta keep small synced records,
// such as the cluster's partition table, next to the journal's own.
//
// # Snapshots and compaction
//
// Recovery is LoadSnapshot plus Replay(id, snapSeq, ...). Only the latest
// snapshot of an identity is kept: the transaction that writes a snapshot
// deletes the previous one. A background compactor deletes events
// covered by a durable snapshot, a bounded number per pass, unless
// Options.RetainEvents is set. Another goroutine runs Badger's value-log GC
// periodically. Close stops both.
package persistence
