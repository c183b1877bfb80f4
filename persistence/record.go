package persistence

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
)

// Record layout, for events and snapshots alike:
//
//	version u8 | kind u8 | seq u64 | payload length u32 | payload | crc32c u32
//
// The CRC covers everything before it, header included, so a flipped
// version, kind, sequence or length is caught like a flipped payload byte.
// The sequence is repeated from the key so that a value copied under the
// wrong key is caught too.
const (
	recordVersion     byte = 1
	recordHeaderBytes      = 1 + 1 + 8 + 4
	recordCRCBytes         = 4
	recordKindEvent   byte = 'E'
	recordKindSnap    byte = 'S'
	recordKindChunk   byte = 'C' // one chunk of a snapshot too big for one value
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// CorruptRecordError reports a stored record that failed its checks. Key is
// the raw Badger key; Reason says which check failed. A corrupt record is
// never skipped or applied.
type CorruptRecordError struct {
	Key    []byte
	Reason string
}

func (e *CorruptRecordError) Error() string {
	return fmt.Sprintf("corrupt journal record at %s: %s", describeKey(e.Key), e.Reason)
}

// encodeRecord appends the record for payload to dst.
func encodeRecord(dst []byte, kind byte, seq uint64, payload []byte) []byte {
	start := len(dst)
	dst = slices.Grow(dst, recordBytes(payload)) // one allocation, not one per append
	dst = append(dst, recordVersion, kind)
	dst = binary.BigEndian.AppendUint64(dst, seq)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	dst = append(dst, payload...)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], crcTable))
}

func recordBytes(payload []byte) int {
	return recordHeaderBytes + len(payload) + recordCRCBytes
}

// errRecord* are the reasons a record is refused; they become the Reason of
// a *CorruptRecordError once the key is known.
var (
	errRecordShort    = errors.New("shorter than a record header")
	errRecordLength   = errors.New("payload length disagrees with record size")
	errRecordChecksum = errors.New("checksum mismatch")
)

// decodeRecord checks b and returns its sequence and payload. The payload
// aliases b.
func decodeRecord(b []byte, kind byte) (seq uint64, payload []byte, err error) {
	if len(b) < recordHeaderBytes+recordCRCBytes {
		return 0, nil, errRecordShort
	}
	body, sum := b[:len(b)-recordCRCBytes], binary.BigEndian.Uint32(b[len(b)-recordCRCBytes:])
	if crc32.Checksum(body, crcTable) != sum {
		return 0, nil, errRecordChecksum
	}
	if body[0] != recordVersion {
		return 0, nil, fmt.Errorf("unknown record version %d", body[0])
	}
	if body[1] != kind {
		return 0, nil, fmt.Errorf("record kind %q where %q belongs", body[1], kind)
	}
	seq = binary.BigEndian.Uint64(body[2:])
	n := binary.BigEndian.Uint32(body[10:])
	if uint64(n) != uint64(len(body)-recordHeaderBytes) {
		return 0, nil, errRecordLength
	}
	return seq, body[recordHeaderBytes:], nil
}

// decodeEvent decodes the event stored under key, checking that the
// record's sequence is the key's. The returned event is a copy.
func decodeEvent(key, value []byte) (seq uint64, event []byte, err error) {
	_, _, keySeq, ok := parseEventKey(key)
	if !ok {
		return 0, nil, &CorruptRecordError{Key: clone(key), Reason: "malformed event key"}
	}
	seq, payload, err := decodeRecord(value, recordKindEvent)
	if err != nil {
		return 0, nil, &CorruptRecordError{Key: clone(key), Reason: err.Error()}
	}
	if seq != keySeq {
		return 0, nil, &CorruptRecordError{Key: clone(key),
			Reason: fmt.Sprintf("record sequence %d under key sequence %d", seq, keySeq)}
	}
	return seq, clone(payload), nil
}

// decodeSnapshot decodes the snapshot stored under key. The returned state
// is a copy.
func decodeSnapshot(key, value []byte) (seq uint64, state []byte, err error) {
	seq, payload, err := decodeRecord(value, recordKindSnap)
	if err != nil {
		return 0, nil, &CorruptRecordError{Key: clone(key), Reason: err.Error()}
	}
	if seq == 0 {
		return 0, nil, &CorruptRecordError{Key: clone(key), Reason: "snapshot at sequence 0"}
	}
	return seq, clone(payload), nil
}

// clone copies b; unlike bytes.Clone it keeps an empty payload non-nil, so
// an empty event reads back as the empty slice it was written as.
func clone(b []byte) []byte {
	return append(make([]byte, 0, len(b)), b...)
}
