package persistence

import (
	"encoding/binary"
	"fmt"
)

// Key layout. The id is length-prefixed so that no id, whatever bytes it
// holds, can read as a prefix of another id's keys; sequences are
// big-endian so Badger's byte order is sequence order.
const (
	kindEvent    byte = 'e'
	kindSnapshot byte = 's'
	kindMeta     byte = 'm'

	keyIDLenBytes = 2
	keySeqBytes   = 8
)

// formatKey marks a database written with this layout; Open refuses one
// written with another.
var formatKey = []byte{kindMeta, 'f', 'o', 'r', 'm', 'a', 't'}

const formatVersion byte = 1

// idPrefix returns kind | len(id) | id.
func idPrefix(kind byte, id string) []byte {
	k := make([]byte, 0, 1+keyIDLenBytes+len(id)+keySeqBytes)
	k = append(k, kind)
	k = binary.BigEndian.AppendUint16(k, uint16(len(id)))
	return append(k, id...)
}

// eventKey returns the key of event seq of id.
func eventKey(id string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(idPrefix(kindEvent, id), seq)
}

// snapshotKey returns the key of id's snapshot.
func snapshotKey(id string) []byte {
	return idPrefix(kindSnapshot, id)
}

// parseEventKey returns the id and sequence of an event key.
func parseEventKey(k []byte) (id string, seq uint64, ok bool) {
	id, rest, ok := parseIDPrefix(kindEvent, k)
	if !ok || len(rest) != keySeqBytes {
		return "", 0, false
	}
	return id, binary.BigEndian.Uint64(rest), true
}

// parseSnapshotKey returns the id of a snapshot key.
func parseSnapshotKey(k []byte) (id string, ok bool) {
	id, rest, ok := parseIDPrefix(kindSnapshot, k)
	return id, ok && len(rest) == 0
}

func parseIDPrefix(kind byte, k []byte) (id string, rest []byte, ok bool) {
	if len(k) < 1+keyIDLenBytes || k[0] != kind {
		return "", nil, false
	}
	n := int(binary.BigEndian.Uint16(k[1:]))
	if len(k) < 1+keyIDLenBytes+n {
		return "", nil, false
	}
	return string(k[1+keyIDLenBytes : 1+keyIDLenBytes+n]), k[1+keyIDLenBytes+n:], true
}

// describeKey renders a key for humans: event "id"#seq, snapshot "id".
func describeKey(k []byte) string {
	if id, seq, ok := parseEventKey(k); ok {
		return fmt.Sprintf("event %q #%d", id, seq)
	}
	if id, ok := parseSnapshotKey(k); ok {
		return fmt.Sprintf("snapshot %q", id)
	}
	return fmt.Sprintf("key %x", k)
}
