package cluster

import (
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"
	"google.golang.org/protobuf/proto"

	"github.com/orderengine/orderengine/cluster/pb"
)

// Encodings. Both messages are protobuf (cluster/pb/cluster.proto) with a
// version field; they need no checksum of their own because memberlist
// carries metadata and push/pull state over TCP streams or in its own
// checksummed, and with a key authenticated (AES-GCM), packets. Decoders
// validate everything and refuse a message whole.
//
// Metadata is limited to memberlist.MetaMaxSize (512) bytes, and larger
// metadata makes memberlist panic, so its largest possible encoding is
// bounded here. Each field costs a tag byte and, for bytes and strings, a
// length of up to two bytes:
//
//	version         1 + 1
//	cluster_id      1 + 1 + ClusterIDBytesMax (64)
//	generation      1 + 10
//	remote_address  1 + 2 + RemoteAddressBytesMax (128)
//	partitions      1 + 2
//	held            1 + 2 + PartitionsMax/8 (256)
//	leaving         1 + 1
//	total           474 bytes, under 512
//
// The held set is a plain bitmap. A set of arbitrary partitions needs P
// bits whatever the encoding, so at P = 4096 (the journal's limit) the
// bitmap alone would take all 512 bytes: that is why PartitionsMax is 2048.
const (
	metaVersion  = 1
	tableVersion = 1
	// RemoteAddressBytesMax bounds the actor-system address in metadata.
	RemoteAddressBytesMax = 128
	// MetaBytesMax is memberlist's limit on node metadata.
	MetaBytesMax = memberlist.MetaMaxSize
	// tableBytesMax bounds an encoded table: P entries of at most 20
	// bytes, as many holders and tombstonesDecodedMax tombstones of at
	// most NodeNameBytesMax+16 bytes fit in it with room to spare.
	tableBytesMax = 1 << 20
)

// ErrInvalidMeta is returned for metadata that does not decode or breaks a
// limit.
var ErrInvalidMeta = errors.New("cluster: invalid node metadata")

// Meta is what a member gossips about itself.
type Meta struct {
	// ClusterID is empty while the node has not learnt its cluster yet.
	ClusterID string
	// Generation of the node's data directory; at least 1.
	Generation uint64
	// RemoteAddress is where the node's actor system listens (host:port).
	RemoteAddress string
	// Partitions is P.
	Partitions int
	// Held lists the partitions the node holds by its own table, in order.
	Held []int
	// Leaving: the node is handing its partitions off before it leaves,
	// and takes none.
	Leaving bool
}

func (m Meta) validate() error {
	switch {
	case len(m.ClusterID) > ClusterIDBytesMax:
		return fmt.Errorf("%w: cluster ID of %d bytes", ErrInvalidMeta, len(m.ClusterID))
	case m.Generation == 0:
		return fmt.Errorf("%w: generation 0", ErrInvalidMeta)
	case len(m.RemoteAddress) > RemoteAddressBytesMax || !utf8.ValidString(m.RemoteAddress):
		return fmt.Errorf("%w: remote address of %d bytes or not UTF-8", ErrInvalidMeta, len(m.RemoteAddress))
	case m.Partitions < 1 || m.Partitions > PartitionsMax:
		return fmt.Errorf("%w: %d partitions", ErrInvalidMeta, m.Partitions)
	}
	for i, p := range m.Held {
		if p < 0 || p >= m.Partitions || (i > 0 && p <= m.Held[i-1]) {
			return fmt.Errorf("%w: held partitions not ascending in 0..%d", ErrInvalidMeta, m.Partitions-1)
		}
	}
	return nil
}

// EncodeMeta encodes m; the result is at most MetaBytesMax bytes.
func EncodeMeta(m Meta) ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	var held []byte
	if n := len(m.Held); n > 0 {
		held = make([]byte, m.Held[n-1]/8+1)
		for _, p := range m.Held {
			held[p/8] |= 1 << (p % 8)
		}
	}
	b, err := proto.Marshal(&pb.NodeMeta{
		Version:       metaVersion,
		ClusterId:     []byte(m.ClusterID),
		Generation:    m.Generation,
		RemoteAddress: m.RemoteAddress,
		Partitions:    uint32(m.Partitions),
		Held:          held,
		Leaving:       m.Leaving,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: encode metadata: %w", err)
	}
	if len(b) > MetaBytesMax {
		// The limits above make this impossible; memberlist would panic.
		panic(fmt.Sprintf("cluster: metadata of %d bytes", len(b)))
	}
	return b, nil
}

// DecodeMeta decodes and validates metadata that EncodeMeta made.
func DecodeMeta(b []byte) (Meta, error) {
	if len(b) > MetaBytesMax {
		return Meta{}, fmt.Errorf("%w: %d bytes", ErrInvalidMeta, len(b))
	}
	var msg pb.NodeMeta
	if err := proto.Unmarshal(b, &msg); err != nil {
		return Meta{}, fmt.Errorf("%w: %v", ErrInvalidMeta, err)
	}
	if msg.Version != metaVersion {
		return Meta{}, fmt.Errorf("%w: version %d", ErrInvalidMeta, msg.Version)
	}
	m := Meta{
		ClusterID:     string(msg.ClusterId),
		Generation:    msg.Generation,
		RemoteAddress: msg.RemoteAddress,
		Partitions:    int(min(msg.Partitions, PartitionsMax+1)),
		Leaving:       msg.Leaving,
	}
	if len(msg.Held) > (m.Partitions+7)/8 {
		return Meta{}, fmt.Errorf("%w: held bitmap of %d bytes for %d partitions", ErrInvalidMeta, len(msg.Held), m.Partitions)
	}
	for i, byt := range msg.Held {
		for bit := range 8 {
			if byt&(1<<bit) != 0 {
				m.Held = append(m.Held, i*8+bit)
			}
		}
	}
	if err := m.validate(); err != nil {
		return Meta{}, err
	}
	return m, nil
}

// EncodeTable encodes a valid table for push/pull state.
func EncodeTable(t Table) ([]byte, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	msg := &pb.Table{
		Version:    tableVersion,
		ClusterId:  []byte(t.ClusterID),
		Partitions: uint32(len(t.Partitions)),
		Entries:    make([]*pb.Entry, len(t.Partitions)),
	}
	index := map[Holder]uint32{}
	for p, a := range t.Partitions {
		e := &pb.Entry{Epoch: a.Epoch, State: pb.State(a.State)}
		if a.Epoch > 0 {
			i, ok := index[a.Holder]
			if !ok {
				msg.Holders = append(msg.Holders, &pb.Holder{Name: a.Holder.Name, Generation: a.Holder.Generation})
				i = uint32(len(msg.Holders))
				index[a.Holder] = i
			}
			e.Holder = i
		}
		msg.Entries[p] = e
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range t.Tombstones {
			if !yield(n) {
				return
			}
		}
	})
	for _, n := range names {
		msg.Tombstones = append(msg.Tombstones, &pb.Holder{Name: n, Generation: t.Tombstones[n]})
	}
	b, err := proto.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("cluster: encode table: %w", err)
	}
	return b, nil
}

// DecodeTable decodes and validates a table that EncodeTable made.
func DecodeTable(b []byte) (Table, error) {
	if len(b) > tableBytesMax {
		return Table{}, fmt.Errorf("%w: %d bytes", ErrInvalidTable, len(b))
	}
	var msg pb.Table
	if err := proto.Unmarshal(b, &msg); err != nil {
		return Table{}, fmt.Errorf("%w: %v", ErrInvalidTable, err)
	}
	switch {
	case msg.Version != tableVersion:
		return Table{}, fmt.Errorf("%w: version %d", ErrInvalidTable, msg.Version)
	case msg.Partitions < 1 || msg.Partitions > PartitionsMax || int(msg.Partitions) != len(msg.Entries):
		return Table{}, fmt.Errorf("%w: %d partitions, %d entries", ErrInvalidTable, msg.Partitions, len(msg.Entries))
	case len(msg.Holders) > len(msg.Entries) || len(msg.Tombstones) > tombstonesDecodedMax:
		return Table{}, fmt.Errorf("%w: %d holders, %d tombstones", ErrInvalidTable, len(msg.Holders), len(msg.Tombstones))
	}
	t := NewTable(int(msg.Partitions))
	t.ClusterID = string(msg.ClusterId)
	for p, e := range msg.Entries {
		if e.Holder > uint32(len(msg.Holders)) || e.State < 0 || e.State > pb.State_STATE_HANDING_OFF {
			return Table{}, fmt.Errorf("%w: partition %d: holder %d, state %d", ErrInvalidTable, p, e.Holder, e.State)
		}
		a := Assignment{Epoch: e.Epoch, State: State(e.State)}
		if e.Holder > 0 {
			h := msg.Holders[e.Holder-1]
			a.Holder = Holder{Name: h.Name, Generation: h.Generation}
		}
		t.Partitions[p] = a
	}
	for _, h := range msg.Tombstones {
		if _, dup := t.Tombstones[h.Name]; dup {
			return Table{}, fmt.Errorf("%w: tombstone of %q twice", ErrInvalidTable, h.Name)
		}
		t.Tombstones[h.Name] = h.Generation
	}
	if err := t.Validate(); err != nil {
		return Table{}, err
	}
	return t, nil
}
