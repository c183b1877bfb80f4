package persistence

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
)

// Partition chunk layout, version 1: one piece of a partition's key range
// as ExportPartition emits it and PartitionImport.Add takes it. Each chunk
// stands alone: it names its partition, the partition count and its place
// in the stream, and carries its own CRC, so a receiver can check it before
// writing anything.
//
//	magic "OEPC" | version u8 | flags u8 | partitions u16 | partition u16
//	seq u32 | entries u32 | body length u32
//	body     entry*, entry = key length uvarint | key | value length uvarint | value
//	trailer  (last chunk only) keys u64 | bytes u64 | digest [32]
//	crc32c u32 of every byte before it
//
// Flag 1 marks the last chunk, whose trailer holds the stream's totals:
// its keys, their keys' and values' bytes, and the SHA-256 digest of
// every entry in order (streamDigest), which does not depend on how the
// stream was cut into chunks, so an importer can check what it stored
// against it. Keys ascend strictly, within a chunk and across the stream.
// Numbers are big-endian, like the journal's keys; entry lengths are
// uvarints, as in backup files, and bounded as there.
const (
	chunkMagic            = "OEPC"
	chunkVersion     byte = 1
	chunkFlagLast    byte = 1
	chunkHeaderSize       = 4 + 1 + 1 + 2 + 2 + 4 + 4 + 4
	chunkTrailerSize      = 8 + 8 + sha256.Size
	chunkCRCBytes         = 4

	// chunkBytesDefault is the chunk size ExportPartition uses when asked
	// for none; chunkBytesMin and chunkBytesMax bound what it may be asked.
	chunkBytesDefault = 1 << 20
	chunkBytesMin     = 1 << 10
	chunkBytesMax     = 64 << 20
	// chunkDecodeBytesMax bounds a chunk a decoder accepts: the largest
	// chunk plus one entry at the largest key and value, which gets a chunk
	// of its own whatever the chunk size.
	chunkDecodeBytesMax = chunkBytesMax + backupKeyBytesMax + backupValueBytesMax + 64
)

var errChunk = errors.New("malformed partition chunk")

// partitionChunk is a decoded chunk. Its body still holds the entries,
// encoded; each walks them.
type partitionChunk struct {
	partitions, partition uint16
	seq                   uint32
	entries               uint32
	last                  bool
	body                  []byte
	crc                   uint32
	// The stream's totals, on the last chunk only.
	keys, bytes uint64
	digest      [sha256.Size]byte
}

// decodeChunk checks b's structure and CRC, and every entry's bounds and
// order, and returns it. Keys and values stay slices of b. It never panics,
// whatever b holds (FuzzDecodeChunk).
func decodeChunk(b []byte) (partitionChunk, error) {
	var c partitionChunk
	if len(b) < chunkHeaderSize+chunkCRCBytes {
		return c, fmt.Errorf("%w: %d bytes, shorter than a header", errChunk, len(b))
	}
	if len(b) > chunkDecodeBytesMax {
		return c, fmt.Errorf("%w: %d bytes, limit %d", errChunk, len(b), chunkDecodeBytesMax)
	}
	if string(b[:4]) != chunkMagic {
		return c, fmt.Errorf("%w: no chunk magic", errChunk)
	}
	end := len(b) - chunkCRCBytes
	c.crc = binary.BigEndian.Uint32(b[end:])
	if sum := crc32.Checksum(b[:end], crcTable); sum != c.crc {
		return c, fmt.Errorf("%w: crc %08x, computed %08x", errChunk, c.crc, sum)
	}
	if b[4] != chunkVersion {
		return c, fmt.Errorf("%w: version %d, this build reads %d", errChunk, b[4], chunkVersion)
	}
	flags := b[5]
	if flags&^chunkFlagLast != 0 {
		return c, fmt.Errorf("%w: unknown flags %#x", errChunk, flags)
	}
	c.last = flags&chunkFlagLast != 0
	c.partitions = binary.BigEndian.Uint16(b[6:])
	c.partition = binary.BigEndian.Uint16(b[8:])
	c.seq = binary.BigEndian.Uint32(b[10:])
	c.entries = binary.BigEndian.Uint32(b[14:])
	bodyLen := uint64(binary.BigEndian.Uint32(b[18:]))
	if c.partitions == 0 || c.partitions > partitionsMax || c.partition >= c.partitions {
		return c, fmt.Errorf("%w: partition %d of %d", errChunk, c.partition, c.partitions)
	}
	rest := uint64(end - chunkHeaderSize)
	trailer := uint64(0)
	if c.last {
		trailer = chunkTrailerSize
	}
	if bodyLen+trailer != rest {
		return c, fmt.Errorf("%w: body of %d bytes and trailer of %d in %d bytes", errChunk, bodyLen, trailer, rest)
	}
	c.body = b[chunkHeaderSize : chunkHeaderSize+bodyLen]
	if c.last {
		t := b[chunkHeaderSize+bodyLen : end]
		c.keys = binary.BigEndian.Uint64(t)
		c.bytes = binary.BigEndian.Uint64(t[8:])
		copy(c.digest[:], t[16:])
	}
	n := uint32(0)
	var prev []byte
	err := c.each(func(key, value []byte) error {
		if prev != nil && bytes.Compare(key, prev) <= 0 {
			return fmt.Errorf("%w: keys out of order: %x after %x", errChunk, key, prev)
		}
		prev = key
		n++
		return nil
	})
	if err != nil {
		return c, err
	}
	if n != c.entries {
		return c, fmt.Errorf("%w: %d entries, header says %d", errChunk, n, c.entries)
	}
	return c, nil
}

// each calls fn with every entry of the body, in order, checking each
// one's bounds; it stops at fn's first error.
func (c *partitionChunk) each(fn func(key, value []byte) error) error {
	b := c.body
	for len(b) > 0 {
		key, rest, err := chunkField(b, backupKeyBytesMax, "key")
		if err != nil {
			return err
		}
		value, rest, err := chunkField(rest, backupValueBytesMax, "value")
		if err != nil {
			return err
		}
		if len(key) == 0 {
			return fmt.Errorf("%w: empty key", errChunk)
		}
		if err := fn(key, value); err != nil {
			return err
		}
		b = rest
	}
	return nil
}

// chunkField reads one length-prefixed field of at most limit bytes.
func chunkField(b []byte, limit uint64, what string) (field, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, nil, fmt.Errorf("%w: bad %s length", errChunk, what)
	}
	b = b[k:]
	if n > limit || n > uint64(len(b)) {
		return nil, nil, fmt.Errorf("%w: %s of %d bytes, limit %d, %d left", errChunk, what, n, limit, len(b))
	}
	return b[:n], b[n:], nil
}

// streamDigest hashes a stream's entries in order, each as key length u32
// | key | value length u32 | value, and counts them: the totals the last
// chunk carries, the same however the stream is cut.
type streamDigest struct {
	h           hash.Hash
	keys, bytes uint64
	scratch     [4]byte
}

func newStreamDigest() *streamDigest { return &streamDigest{h: sha256.New()} }

func (d *streamDigest) add(key, value []byte) {
	binary.BigEndian.PutUint32(d.scratch[:], uint32(len(key)))
	d.h.Write(d.scratch[:])
	d.h.Write(key)
	binary.BigEndian.PutUint32(d.scratch[:], uint32(len(value)))
	d.h.Write(d.scratch[:])
	d.h.Write(value)
	d.keys++
	d.bytes += uint64(len(key) + len(value))
}

func (d *streamDigest) sum() (s [sha256.Size]byte) {
	d.h.Sum(s[:0])
	return s
}

// chunkEncoder cuts a stream of entries into chunks of at most size bytes,
// except that an entry too large for one gets a chunk of its own.
type chunkEncoder struct {
	partitions, partition uint16
	size                  int
	seq                   uint32
	entries               uint32
	body                  []byte
	out                   []byte
	digest                *streamDigest
	emit                  func([]byte) error
}

func newChunkEncoder(partitions, partition uint16, size int, emit func([]byte) error) *chunkEncoder {
	return &chunkEncoder{partitions: partitions, partition: partition, size: size,
		digest: newStreamDigest(), emit: emit}
}

// add appends one entry, first emitting the chunk so far when the entry
// would take it past the size.
func (e *chunkEncoder) add(key, value []byte) error {
	n := 2*binary.MaxVarintLen64 + len(key) + len(value)
	if e.entries > 0 && chunkHeaderSize+len(e.body)+n+chunkTrailerSize+chunkCRCBytes > e.size {
		if err := e.flush(false); err != nil {
			return err
		}
	}
	e.body = binary.AppendUvarint(e.body, uint64(len(key)))
	e.body = append(e.body, key...)
	e.body = binary.AppendUvarint(e.body, uint64(len(value)))
	e.body = append(e.body, value...)
	e.entries++
	e.digest.add(key, value)
	return nil
}

// flush encodes and emits the chunk so far; the last one carries the
// stream's totals.
func (e *chunkEncoder) flush(last bool) error {
	o := append(e.out[:0], chunkMagic...)
	flags := byte(0)
	if last {
		flags = chunkFlagLast
	}
	o = append(o, chunkVersion, flags)
	o = binary.BigEndian.AppendUint16(o, e.partitions)
	o = binary.BigEndian.AppendUint16(o, e.partition)
	o = binary.BigEndian.AppendUint32(o, e.seq)
	o = binary.BigEndian.AppendUint32(o, e.entries)
	o = binary.BigEndian.AppendUint32(o, uint32(len(e.body)))
	o = append(o, e.body...)
	if last {
		o = binary.BigEndian.AppendUint64(o, e.digest.keys)
		o = binary.BigEndian.AppendUint64(o, e.digest.bytes)
		sum := e.digest.sum()
		o = append(o, sum[:]...)
	}
	o = binary.BigEndian.AppendUint32(o, crc32.Checksum(o, crcTable))
	e.out = o
	if err := e.emit(o); err != nil {
		return err
	}
	e.seq++
	e.entries = 0
	e.body = e.body[:0]
	return nil
}
