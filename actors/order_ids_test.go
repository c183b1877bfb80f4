package actors

import (
	"bytes"
	"crypto/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/orderengine/orderengine/actors/pb"
)

func TestNewOrderIDIsValidAndTimeOrdered(t *testing.T) {
	entropy := ulid.Monotonic(rand.Reader, 0)
	var ids []string
	for i := range 1000 {
		id, err := NewOrderID(orderTestT0.Add(time.Duration(i/10)*time.Millisecond), entropy)
		if err != nil {
			t.Fatal(err)
		}
		if err := ParseOrderID(id); err != nil || IsKeyedOrderID(id) {
			t.Fatalf("%s: parse %v keyed %v", id, err, IsKeyedOrderID(id))
		}
		ids = append(ids, id)
	}
	if !slices.IsSorted(ids) {
		t.Fatal("ids are not in creation order")
	}
	if len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Fatal("duplicate ids")
	}
}

func TestOrderIDSourceIsStrictlyIncreasing(t *testing.T) {
	src := NewOrderIDSource(orderFixedClock(orderTestT0), rand.Reader)
	prev := ""
	for range 1000 {
		id, err := src.Next()
		if err != nil || id <= prev {
			t.Fatalf("%s after %s (%v)", id, prev, err)
		}
		prev = id
	}
}

type orderFixedClock time.Time

func (c orderFixedClock) Now() time.Time { return time.Time(c) }

func TestKeyedOrderID(t *testing.T) {
	a := KeyedOrderID("c-1", "k-1")
	if a != KeyedOrderID("c-1", "k-1") {
		t.Fatal("not deterministic")
	}
	for _, other := range []string{KeyedOrderID("c-2", "k-1"), KeyedOrderID("c-1", "k-2"), KeyedOrderID("c-1k", "-1"), KeyedOrderID("c-", "1k-1")} {
		if other == a {
			t.Fatalf("%s collides", other)
		}
	}
	if err := ParseOrderID(a); err != nil || !IsKeyedOrderID(a) {
		t.Fatalf("%s: parse %v keyed %v", a, err, IsKeyedOrderID(a))
	}
	fresh, _ := NewOrderID(time.Now(), rand.Reader)
	if a <= fresh {
		t.Fatal("a keyed id sorts before a fresh one")
	}
}

func TestParseOrderID(t *testing.T) {
	good := KeyedOrderID("c", "k")
	tests := []struct {
		give string
		want bool
	}{
		{good, true},
		{"o_01JD0000000000000000000000", true},
		{"o_01jd0000000000000000000000", false}, // not canonical
		{"x_01JD0000000000000000000000", false},
		{"o_01JD000000000000000000000", false},   // 25 characters
		{"o_01JD00000000000000000000000", false}, // 27
		{"o_81JD0000000000000000000000", false},  // overflows 128 bits
		{"o_01JD000000000000000000000U", false},  // not Crockford
		{"", false},
		{strings.Repeat("o", 28), false},
	}
	for _, tt := range tests {
		if got := ParseOrderID(tt.give) == nil; got != tt.want {
			t.Errorf("ParseOrderID(%q) ok = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestOrderFingerprint(t *testing.T) {
	lines := func(kv ...any) []*pb.OrderLine {
		var out []*pb.OrderLine
		for i := 0; i < len(kv); i += 2 {
			out = append(out, &pb.OrderLine{Sku: kv[i].(string), Quantity: int64(kv[i+1].(int))})
		}
		return out
	}
	base := OrderFingerprint("c", lines("A", 1, "B", 2), 900)
	same := OrderFingerprint("c", lines("A", 1, "B", 2), 900)
	if !bytes.Equal(base, same) {
		t.Fatal("not deterministic")
	}
	for name, other := range map[string][]byte{
		"line order": OrderFingerprint("c", lines("B", 2, "A", 1), 900),
		"quantity":   OrderFingerprint("c", lines("A", 1, "B", 3), 900),
		"ttl":        OrderFingerprint("c", lines("A", 1, "B", 2), 901),
		"customer":   OrderFingerprint("d", lines("A", 1, "B", 2), 900),
		"fewer":      OrderFingerprint("c", lines("A", 1), 900),
		"split sku":  OrderFingerprint("c", lines("AB", 1, "", 2), 900),
	} {
		if bytes.Equal(base, other) {
			t.Errorf("%s: same fingerprint", name)
		}
	}
}
