package persistence

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned for requests submitted after Close began.
	ErrClosed = errors.New("journal is closed")

	// ErrDirectoryLocked is returned by Open when another process, or another
	// Journal in this process, holds the data directory.
	ErrDirectoryLocked = errors.New("another orderd is using this data directory")

	// ErrFormat is returned by Open for a data directory written with another
	// journal format (key layout), which this build cannot read.
	ErrFormat = errors.New("unsupported journal format")

	// ErrPartitionCount is returned by Open when Options.Partitions differs
	// from the partition count the data directory was created with.
	ErrPartitionCount = errors.New("journal partition count mismatch")

	// ErrEarlierAppendFailed fails an append that was queued behind a failed
	// append of the same identity: its sequence assumed events that were not
	// written. The actor reloads and continues from the durable sequence.
	ErrEarlierAppendFailed = errors.New("an earlier append of this identity failed")

	// ErrJournalFailed is wrapped, with its cause, by every request that
	// fails after a synced commit failed. Badger may hold such a commit's
	// entries in memory (readable) although they are not durable, so
	// nothing is known of the state on disk: the journal stops writing and
	// reading for good and reports the failure once (Options.OnFatal). The
	// process must exit and recover from its data directory.
	ErrJournalFailed = errors.New("journal failed")

	// ErrStorageFull is wrapped by every refusal of a write because the
	// journal's volume has less free space than its reserve; the message
	// says how much is free and what is needed. A refused request writes
	// nothing and does not stop the journal: writes resume by themselves
	// once space is freed. Open refuses a too-full volume with it too.
	//
	// Its dynamic type has a method StorageFull() bool that returns true,
	// so that packages which cannot import this one (the actors) recognise
	// the refusal with errors.As.
	ErrStorageFull error = storageFullError{}

	// ErrNotHeld is wrapped by every refusal of a write (Append,
	// SaveSnapshot, Delete) of an identity whose partition the journal
	// does not hold (Hold, Release). Like ErrStorageFull it writes nothing
	// and does not stop the journal; the sender routes the request to the
	// partition's holder instead.
	ErrNotHeld = errors.New("partition not held by this journal")

	// ErrHeld is wrapped by refusals of ExportPartition, BeginImport and
	// DropPartition for a partition the journal holds: they need a
	// partition that nothing writes (Release it first).
	ErrHeld = errors.New("partition is held by this journal")

	// ErrPartitionBusy is wrapped by refusals of Hold, ExportPartition,
	// BeginImport and DropPartition for a partition that an export, an
	// import or a drop is working on.
	ErrPartitionBusy = errors.New("partition is being exported, imported or dropped")

	// ErrPartitionNotEmpty is wrapped by BeginImport's refusal of a
	// partition that holds keys: an import fills an empty range, so a
	// stream cut short is dropped (DropPartition) and sent again.
	ErrPartitionNotEmpty = errors.New("partition is not empty")

	// ErrImportMismatch is wrapped by every refusal of an import chunk or
	// of an import's end whose content does not check: a damaged or
	// foreign chunk, one out of order, a stream whose totals or digest do
	// not match what was received and stored.
	ErrImportMismatch = errors.New("partition import does not check")

	// ErrInvalidRequest is wrapped by every refusal of a malformed request
	// (empty id, too many events, sizes beyond their limits, a negative wake
	// time, a snapshot racing a Delete of its identity).
	ErrInvalidRequest = errors.New("invalid journal request")
)

// SequenceError refuses an append that does not continue its identity's
// sequence, or a snapshot of events that are not durable. It means two
// activations of one identity, or an actor that did not recover after a
// failed append.
type SequenceError struct {
	ID   string
	Want uint64 // the first sequence the journal would accept
	Got  uint64
}

func (e *SequenceError) Error() string {
	return fmt.Sprintf("sequence conflict for %q: got %d, want %d", e.ID, e.Got, e.Want)
}

type storageFullError struct{}

func (storageFullError) Error() string     { return "storage full" }
func (storageFullError) StorageFull() bool { return true }
