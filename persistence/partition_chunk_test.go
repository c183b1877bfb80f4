package persistence

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// FuzzDecodeChunk: decoding never panics, and a chunk that decodes walks
// its entries within its bounds and encodes back to the same bytes.
func FuzzDecodeChunk(f *testing.F) {
	emit := func(keys ...string) [][]byte {
		var out [][]byte
		e := newChunkEncoder(64, 3, chunkBytesMin, func(c []byte) error {
			out = append(out, bytes.Clone(c))
			return nil
		})
		for _, k := range keys {
			if err := e.add([]byte(k), bytes.Repeat([]byte("v"), 300)); err != nil {
				f.Fatal(err)
			}
		}
		if err := e.flush(true); err != nil {
			f.Fatal(err)
		}
		return out
	}
	for _, c := range emit() {
		f.Add(c)
	}
	for _, c := range emit("\x00\x03a", "\x00\x03b", "\x00\x03c", "\x00\x03d", "\x00\x03e") {
		f.Add(c)
	}
	f.Add([]byte(chunkMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecodedChunk(t, b)
		// Random bytes rarely pass the CRC: decode them again with a CRC
		// that matches, so the fuzzer reaches the structure behind it.
		if len(b) >= chunkCRCBytes {
			fixed := bytes.Clone(b)
			end := len(fixed) - chunkCRCBytes
			binary.BigEndian.PutUint32(fixed[end:], crc32.Checksum(fixed[:end], crcTable))
			checkDecodedChunk(t, fixed)
		}
	})
}

func checkDecodedChunk(t *testing.T, b []byte) {
	{
		c, err := decodeChunk(b)
		if err != nil {
			return
		}
		var again []byte
		e := newChunkEncoder(c.partitions, c.partition, chunkBytesMax, func(out []byte) error {
			again = bytes.Clone(out)
			return nil
		})
		e.seq = c.seq
		if err := c.each(e.add); err != nil {
			t.Fatalf("a decoded chunk fails its walk: %v", err)
		}
		if !c.last {
			return // only the last chunk carries totals to encode
		}
		if err := e.flush(true); err != nil {
			t.Fatal(err)
		}
		if e.digest.keys == c.keys && e.digest.bytes == c.bytes && e.digest.sum() == c.digest && !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", again, b)
		}
	}
}

func TestChunkSizes(t *testing.T) {
	var sizes []int
	e := newChunkEncoder(64, 1, 4096, func(c []byte) error {
		if _, err := decodeChunk(c); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(c))
		return nil
	})
	for i := range 40 {
		n := 100
		if i == 20 {
			n = 10000 // larger than a chunk: a chunk of its own
		}
		if err := e.add([]byte{0, 1, 'e', byte(i)}, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.flush(true); err != nil {
		t.Fatal(err)
	}
	big := 0
	for _, s := range sizes {
		if s > 4096 {
			big++
		}
	}
	if big != 1 || len(sizes) < 3 {
		t.Fatalf("chunk sizes %v: want one oversized chunk among several", sizes)
	}
}
