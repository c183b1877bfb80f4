package cluster

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// The largest metadata a node can have fits memberlist's limit, which
// panics beyond it.
func TestMetaSizeBound(t *testing.T) {
	all := make([]int, PartitionsMax)
	for p := range all {
		all[p] = p
	}
	worst := Meta{
		ClusterID:     strings.Repeat("c", ClusterIDBytesMax),
		Generation:    ^uint64(0),
		RemoteAddress: strings.Repeat("r", RemoteAddressBytesMax),
		Partitions:    PartitionsMax,
		Held:          all,
	}
	b, err := EncodeMeta(worst)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MetaBytesMax {
		t.Fatalf("largest metadata is %d bytes, over %d", len(b), MetaBytesMax)
	}
	t.Logf("largest metadata: %d bytes of %d", len(b), MetaBytesMax)
	got, err := DecodeMeta(b)
	if err != nil || !reflect.DeepEqual(got, worst) {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	for name, m := range map[string]Meta{
		"long address":    {Generation: 1, Partitions: 8, RemoteAddress: strings.Repeat("r", RemoteAddressBytesMax+1)},
		"long cluster ID": {Generation: 1, Partitions: 8, ClusterID: strings.Repeat("c", ClusterIDBytesMax+1)},
		"too many P":      {Generation: 1, Partitions: PartitionsMax + 1},
		"generation 0":    {Partitions: 8},
		"held beyond P":   {Generation: 1, Partitions: 8, Held: []int{8}},
		"held unordered":  {Generation: 1, Partitions: 8, Held: []int{3, 1}},
	} {
		if _, err := EncodeMeta(m); !errors.Is(err, ErrInvalidMeta) {
			t.Errorf("%s: EncodeMeta = %v, want ErrInvalidMeta", name, err)
		}
	}
}

func TestMetaRoundTrip(t *testing.T) {
	for _, m := range []Meta{
		{Generation: 7, Partitions: 64, RemoteAddress: "127.0.0.1:8090"},
		{ClusterID: "abc", Generation: 1, Partitions: 64, RemoteAddress: "n:1", Held: []int{0, 9, 63}},
		{ClusterID: "abc", Generation: 2, Partitions: 1, Held: []int{0}},
	} {
		b, err := EncodeMeta(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeMeta(b)
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Errorf("round trip of %+v: %+v, %v", m, got, err)
		}
	}
}

func TestTableRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	tables := []Table{NewTable(1), Bootstrap("id", hA1, PartitionsMax)}
	for range 50 {
		tables = append(tables, randomTable(rng, 1+rng.IntN(100)))
	}
	for _, tab := range tables {
		b, err := EncodeTable(tab)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeTable(b)
		if err != nil || !got.Equal(tab) {
			t.Fatalf("round trip of %+v: %+v, %v", tab, got, err)
		}
	}
}

func TestDecodeTableRefuses(t *testing.T) {
	for name, b := range map[string][]byte{
		"garbage":    {0xff, 0xff, 0xff},
		"no version": {},
	} {
		if _, err := DecodeTable(b); !errors.Is(err, ErrInvalidTable) {
			t.Errorf("%s: %v, want ErrInvalidTable", name, err)
		}
	}
}

func FuzzDecodeMeta(f *testing.F) {
	for _, m := range []Meta{
		{Generation: 7, Partitions: 64, RemoteAddress: "127.0.0.1:8090"},
		{ClusterID: "abc", Generation: 1, Partitions: 64, RemoteAddress: "n:1", Held: []int{0, 9, 63}},
	} {
		b, err := EncodeMeta(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMeta(b)
		if err != nil {
			return
		}
		again, err := EncodeMeta(m)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", m, err)
		}
		if m2, err := DecodeMeta(again); err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("re-encoding changed %+v to %+v (%v)", m, m2, err)
		}
	})
}

func FuzzDecodeTable(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 4 {
		b, err := EncodeTable(randomTable(rng, 1+rng.IntN(8)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tab, err := DecodeTable(b)
		if err != nil {
			return
		}
		again, err := EncodeTable(tab)
		if err != nil {
			t.Fatalf("decoded table does not encode: %v", err)
		}
		if t2, err := DecodeTable(again); err != nil || !t2.Equal(tab) {
			t.Fatalf("re-encoding changed the table (%v)", err)
		}
	})
}
