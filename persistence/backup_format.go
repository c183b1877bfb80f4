package persistence

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"
)

// Backup file layout, format 1:
//
//	magic "OEBACKUP" | header length u32 | header (JSON, BackupHeader)
//	frame*           | end frame
//	sha256 of every byte before it (32 bytes)
//
//	frame     'P' | key length uvarint | key | value length uvarint | value
//	          'K' | key length uvarint | key
//	end frame 'Z' | puts u64 | keeps u64
//
// Frames come in strictly ascending key order and cover one key range:
// every key of the journal (the partitions and the journal's own records)
// or one partition's. A put frame is a key and its value as the journal
// held them at the backup's version. A keep frame, only in an incremental
// backup, names a key whose value has not changed since the parent backup;
// a key of the range that a backup names in neither way did not exist at
// its version, so a restore deletes it. That makes an incremental exact
// whatever Badger's compaction did to the tombstones of deleted keys, at
// the cost of listing every live key once.
//
// Numbers are big-endian, like the journal's keys. The header is JSON so
// that people and other tools can read it with head -c; its length and the
// frame sizes are bounded, so a damaged length cannot make a reader
// allocate without limit.
const (
	backupFormat          = 1
	backupMagic           = "OEBACKUP"
	backupHeaderBytesMax  = 64 << 10
	backupKeyBytesMax     = 1 << 16
	backupValueBytesMax   = 4 << 20 // above every record the journal writes
	backupWriteBufferSize = 1 << 20

	frameSet  byte = 'P'
	frameKeep byte = 'K'
	frameEnd  byte = 'Z'

	// AllPartitions asks a backup for every partition and the journal's own
	// records.
	AllPartitions = -1
)

// ErrBackupCorrupt is wrapped by every refusal of a backup file that is
// damaged, truncated or not a backup at all.
var ErrBackupCorrupt = errors.New("backup file is damaged")

// ErrBackupChain is wrapped by refusals of a set of backups that do not
// continue one another (an incremental without its parent, or out of
// order).
var ErrBackupChain = errors.New("backups do not form a chain")

// BackupHeader opens every backup file.
type BackupHeader struct {
	// Format is the backup file format (1); JournalFormat the journal key
	// layout of the data (2).
	Format        int `json:"format"`
	JournalFormat int `json:"journal_format"`
	// Node names the node the backup was taken from, as the caller said.
	Node string `json:"node,omitempty"`
	// Partitions is the journal's partition count; Partition the one
	// partition backed up, or AllPartitions.
	Partitions int `json:"partitions"`
	Partition  int `json:"partition"`
	// Version is the journal position the backup is consistent at: it
	// holds every write up to it and none after. The next incremental
	// backup takes it as Since.
	Version uint64 `json:"version"`
	// Since is 0 for a full backup; for an incremental one, the Version of
	// the backup it continues, whose SHA-256 is Parent when known.
	Since     uint64    `json:"since"`
	Parent    string    `json:"parent,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Incremental reports whether the backup continues another.
func (h BackupHeader) Incremental() bool { return h.Since != 0 }

// BackupInfo describes a backup that was written or checked.
type BackupInfo struct {
	Header BackupHeader
	// Puts are the keys stored with their values, Keeps the keys an
	// incremental backup names as unchanged.
	Puts, Keeps int64
	// Identities counts the actors (journal identities) the backup holds.
	Identities int64
	// Bytes is the file's size; Checksum its SHA-256 trailer, in hex.
	Bytes    int64
	Checksum string
}

func (h BackupHeader) check() error {
	switch {
	case h.Format != backupFormat:
		return fmt.Errorf("%w: backup format %d, this build reads format %d", ErrBackupCorrupt, h.Format, backupFormat)
	case h.JournalFormat != int(formatVersion):
		return fmt.Errorf("%w: the backup holds journal format %d, this build reads format %d",
			ErrFormat, h.JournalFormat, formatVersion)
	case h.Partitions < 1 || h.Partitions > partitionsMax:
		return fmt.Errorf("%w: %d partitions", ErrBackupCorrupt, h.Partitions)
	case h.Partition != AllPartitions && (h.Partition < 0 || h.Partition >= h.Partitions):
		return fmt.Errorf("%w: partition %d of %d", ErrBackupCorrupt, h.Partition, h.Partitions)
	case h.Since > h.Version:
		return fmt.Errorf("%w: since %d is after version %d", ErrBackupCorrupt, h.Since, h.Version)
	}
	return nil
}

// rangePrefix is the key prefix of the range the backup covers: nil for
// every key.
func (h BackupHeader) rangePrefix() []byte {
	if h.Partition == AllPartitions {
		return nil
	}
	return []byte{byte(h.Partition >> 8), byte(h.Partition)}
}

// backupWriter writes a backup file, hashing everything it writes.
type backupWriter struct {
	w          io.Writer // the destination, unbuffered
	bw         *bufio.Writer
	sum        hash.Hash
	n          int64 // bytes written, trailer excluded
	puts       int64
	keeps      int64
	identities int64
	last       []byte
	scratch    []byte
	progress   func(bytes int64)
}

func newBackupWriter(w io.Writer, h BackupHeader, progress func(int64)) (*backupWriter, error) {
	b := &backupWriter{w: w, sum: sha256.New(), progress: progress}
	b.bw = bufio.NewWriterSize(io.MultiWriter(w, b.sum), backupWriteBufferSize)
	head, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode backup header: %w", err)
	}
	b.scratch = append(b.scratch[:0], backupMagic...)
	b.scratch = binary.BigEndian.AppendUint32(b.scratch, uint32(len(head)))
	b.scratch = append(b.scratch, head...)
	return b, b.write(b.scratch)
}

func (b *backupWriter) write(p []byte) error {
	if _, err := b.bw.Write(p); err != nil {
		return fmt.Errorf("write backup: %w", err)
	}
	b.n += int64(len(p))
	if b.progress != nil {
		b.progress(int64(len(p)))
	}
	return nil
}

// frame writes one put (keep false) or keep frame. Keys must ascend.
func (b *backupWriter) frame(key, value []byte, keep bool) error {
	if b.last != nil && bytes.Compare(key, b.last) <= 0 {
		return fmt.Errorf("backup keys out of order: %x after %x", key, b.last)
	}
	b.last = append(b.last[:0], key...)
	if key[keyPartitionBytes] == kindWakeOf {
		b.identities++
	}
	kind := frameSet
	if keep {
		kind, b.keeps = frameKeep, b.keeps+1
	} else {
		b.puts++
	}
	s := append(b.scratch[:0], kind)
	s = binary.AppendUvarint(s, uint64(len(key)))
	s = append(s, key...)
	if !keep {
		s = binary.AppendUvarint(s, uint64(len(value)))
	}
	b.scratch = s
	if err := b.write(s); err != nil {
		return err
	}
	if keep {
		return nil
	}
	return b.write(value)
}

// finish writes the end frame and the checksum.
func (b *backupWriter) finish() (BackupInfo, error) {
	s := append(b.scratch[:0], frameEnd)
	s = binary.BigEndian.AppendUint64(s, uint64(b.puts))
	s = binary.BigEndian.AppendUint64(s, uint64(b.keeps))
	if err := b.write(s); err != nil {
		return BackupInfo{}, err
	}
	if err := b.bw.Flush(); err != nil {
		return BackupInfo{}, fmt.Errorf("write backup: %w", err)
	}
	sum := b.sum.Sum(nil)
	if _, err := b.w.Write(sum); err != nil {
		return BackupInfo{}, fmt.Errorf("write backup: %w", err)
	}
	return BackupInfo{Puts: b.puts, Keeps: b.keeps, Identities: b.identities,
		Bytes: b.n + sha256.Size, Checksum: hex.EncodeToString(sum)}, nil
}

// backupReader reads a backup file's frames, hashing what it reads. It
// checks the structure as it goes; the checksum only at the end, so a
// caller must not act on frames before readBackup has checked the whole
// file.
type backupReader struct {
	r      *bufio.Reader
	sum    hash.Hash
	n      int64
	header BackupHeader
	last   []byte
	key    []byte
	value  []byte
	puts   int64
	keeps  int64
	ids    int64
	done   bool
}

// progressReader reports the bytes read through it.
type progressReader struct {
	r      io.Reader
	onRead func(n int64)
}

func (c progressReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.onRead(int64(n))
	}
	return n, err
}

func newBackupReader(r io.Reader, onRead func(int64)) (*backupReader, error) {
	b := &backupReader{sum: sha256.New()}
	if onRead != nil {
		r = progressReader{r: r, onRead: onRead}
	}
	b.r = bufio.NewReaderSize(r, backupWriteBufferSize)
	head := make([]byte, len(backupMagic)+4)
	if err := b.full(head); err != nil {
		return nil, err
	}
	if string(head[:len(backupMagic)]) != backupMagic {
		return nil, fmt.Errorf("%w: not an orderengine backup (no %q at its start)", ErrBackupCorrupt, backupMagic)
	}
	n := binary.BigEndian.Uint32(head[len(backupMagic):])
	if n == 0 || n > backupHeaderBytesMax {
		return nil, fmt.Errorf("%w: header of %d bytes", ErrBackupCorrupt, n)
	}
	hb := make([]byte, n)
	if err := b.full(hb); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(hb, &b.header); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrBackupCorrupt, err)
	}
	if err := b.header.check(); err != nil {
		return nil, err
	}
	return b, nil
}

// full reads len(p) bytes into p and the hash; a short file is truncated.
func (b *backupReader) full(p []byte) error {
	if _, err := io.ReadFull(b.r, p); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: the file is truncated (it ends after %d bytes)", ErrBackupCorrupt, b.n)
		}
		return fmt.Errorf("read backup: %w", err)
	}
	b.n += int64(len(p))
	b.sum.Write(p)
	return nil
}

func (b *backupReader) uvarint(limit uint64, what string) (uint64, error) {
	var buf [binary.MaxVarintLen64]byte
	for i := range buf {
		if err := b.full(buf[i : i+1]); err != nil {
			return 0, err
		}
		if buf[i] < 0x80 {
			v, n := binary.Uvarint(buf[:i+1])
			if n <= 0 || v > limit {
				return 0, fmt.Errorf("%w: %s of %d bytes at offset %d", ErrBackupCorrupt, what, v, b.n)
			}
			return v, nil
		}
	}
	return 0, fmt.Errorf("%w: malformed %s at offset %d", ErrBackupCorrupt, what, b.n)
}

// next reads the next frame into b.key and b.value (nil for a keep
// frame). It returns false at the end frame, after checking the trailer.
// key and value are valid until the next call.
func (b *backupReader) next() (keep bool, ok bool, err error) {
	if b.done {
		return false, false, nil
	}
	var kind [1]byte
	if err := b.full(kind[:]); err != nil {
		return false, false, err
	}
	switch kind[0] {
	case frameEnd:
		return false, false, b.end()
	case frameSet, frameKeep:
	default:
		return false, false, fmt.Errorf("%w: unknown frame %q at offset %d", ErrBackupCorrupt, kind[0], b.n-1)
	}
	keep = kind[0] == frameKeep
	if keep && !b.header.Incremental() {
		return false, false, fmt.Errorf("%w: a full backup with a keep frame", ErrBackupCorrupt)
	}
	n, err := b.uvarint(backupKeyBytesMax, "key")
	if err != nil {
		return false, false, err
	}
	b.key = grow(b.key, int(n))
	if err := b.full(b.key); err != nil {
		return false, false, err
	}
	if len(b.key) <= keyPartitionBytes || (b.last != nil && bytes.Compare(b.key, b.last) <= 0) {
		return false, false, fmt.Errorf("%w: key %x out of order or malformed", ErrBackupCorrupt, b.key)
	}
	if p := b.header.rangePrefix(); p != nil && !bytes.HasPrefix(b.key, p) {
		return false, false, fmt.Errorf("%w: key %x outside partition %d", ErrBackupCorrupt, b.key, b.header.Partition)
	}
	b.last = append(b.last[:0], b.key...)
	if b.key[keyPartitionBytes] == kindWakeOf {
		b.ids++
	}
	if keep {
		b.keeps++
		b.value = nil
		return true, true, nil
	}
	b.puts++
	n, err = b.uvarint(backupValueBytesMax, "value")
	if err != nil {
		return false, false, err
	}
	b.value = grow(b.value, int(n))
	return false, true, b.full(b.value)
}

// end checks the end frame's counts and the checksum, and that nothing
// follows it.
func (b *backupReader) end() error {
	var counts [16]byte
	if err := b.full(counts[:]); err != nil {
		return err
	}
	if int64(binary.BigEndian.Uint64(counts[:])) != b.puts || int64(binary.BigEndian.Uint64(counts[8:])) != b.keeps {
		return fmt.Errorf("%w: end frame counts disagree with the frames", ErrBackupCorrupt)
	}
	want := b.sum.Sum(nil)
	var got [sha256.Size]byte
	if _, err := io.ReadFull(b.r, got[:]); err != nil {
		return fmt.Errorf("%w: the file is truncated (its checksum is missing)", ErrBackupCorrupt)
	}
	b.n += sha256.Size
	if !bytes.Equal(got[:], want) {
		return fmt.Errorf("%w: checksum mismatch (the file was changed or damaged after it was written)", ErrBackupCorrupt)
	}
	if _, err := b.r.ReadByte(); err != io.EOF {
		return fmt.Errorf("%w: bytes after the checksum", ErrBackupCorrupt)
	}
	b.done = true
	return nil
}

func (b *backupReader) info() BackupInfo {
	return BackupInfo{Header: b.header, Puts: b.puts, Keeps: b.keeps, Identities: b.ids, Bytes: b.n,
		Checksum: hex.EncodeToString(b.sum.Sum(nil))}
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// CheckBackup reads a whole backup file and checks its structure, every
// record's own checksum and the file's SHA-256, without writing anything.
// onRead, when set, is called with the bytes read as they are read.
func CheckBackup(r io.Reader, onRead func(bytes int64)) (BackupInfo, error) {
	b, err := newBackupReader(r, onRead)
	if err != nil {
		return BackupInfo{}, err
	}
	for {
		keep, ok, err := b.next()
		if err != nil {
			return BackupInfo{}, err
		}
		if !ok {
			return b.info(), nil
		}
		if !keep {
			if err := checkValue(b.key, b.value); err != nil {
				return BackupInfo{}, fmt.Errorf("%w: %v", ErrBackupCorrupt, err)
			}
		}
	}
}

// checkValue checks a value against its key's kind: records by their CRC,
// wake times by their size.
func checkValue(key, value []byte) error {
	switch {
	case binary.BigEndian.Uint16(key) == metaPartition:
		return nil
	case key[keyPartitionBytes] == kindEvent:
		_, _, err := decodeEvent(key, value)
		return err
	case key[keyPartitionBytes] == kindSnapshot:
		ref, ok := parseSnapshotKey(key)
		if !ok {
			return &CorruptRecordError{Key: clone(key), Reason: "malformed snapshot key"}
		}
		kind := recordKindSnap
		if ref.chunked {
			kind = recordKindChunk
		}
		if _, _, err := decodeRecord(value, kind); err != nil {
			return &CorruptRecordError{Key: clone(key), Reason: err.Error()}
		}
	case key[keyPartitionBytes] == kindWakeOf && len(value) != wakeValueBytes:
		return &CorruptRecordError{Key: clone(key), Reason: "wake time of the wrong size"}
	}
	return nil
}
