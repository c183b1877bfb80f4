package actors

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/orderengine/orderengine/actors/pb"
)

// Order IDs are "o_" followed by a ULID: 26 Crockford base32 characters,
// 128 bits. Two kinds exist, and both are valid ULIDs, so the gateway checks
// one format:
//
//   - NewOrderID: a 48-bit millisecond timestamp and 80 random bits. Unique
//     without coordination between nodes and ordered by creation time (to
//     the millisecond). Their first character is '0' until the year 10889.
//   - KeyedOrderID: every bit from a hash of the customer and the
//     idempotency key, so a retried checkout reaches the same order from
//     any node, also after the first node crashed. Such an ID cannot carry
//     the time of the first attempt (a retry does not know it), so keyed
//     IDs are NOT time-ordered. Their top bit is set, which makes their
//     first character '4' to '7': they never collide with a NewOrderID, sort
//     after all of them, and IsKeyedOrderID tells them apart.
const (
	orderIDPrefix = "o_"
	// orderIDChars is the length of an order ID: the prefix and a ULID.
	orderIDChars = len(orderIDPrefix) + ulid.EncodedSize
)

// keyedOrderIDDomain separates this hash from every other use of SHA-256
// on the same inputs; bump its version to change the scheme.
const keyedOrderIDDomain = "orderengine/keyed-order-id/v1"

// NewOrderID returns a fresh, time-ordered order ID for an order placed at
// now. entropy supplies the 80 random bits; pass crypto/rand.Reader, or a
// ulid.Monotonic source to keep IDs ordered within one millisecond.
func NewOrderID(now time.Time, entropy io.Reader) (string, error) {
	id, err := ulid.New(ulid.Timestamp(now), entropy)
	if err != nil {
		return "", err
	}
	return orderIDPrefix + id.String(), nil
}

// OrderIDSource issues time-ordered order IDs from one node: strictly
// increasing within a millisecond (monotonic ULID entropy), random across
// nodes. Safe for concurrent use.
type OrderIDSource struct {
	clock   Clock
	mu      sync.Mutex
	entropy *ulid.MonotonicEntropy
}

// NewOrderIDSource returns a source that stamps IDs with clock and draws
// randomness from entropy (crypto/rand.Reader in production).
func NewOrderIDSource(clock Clock, entropy io.Reader) *OrderIDSource {
	return &OrderIDSource{clock: clock, entropy: ulid.Monotonic(entropy, 0)}
}

// Next returns a new order ID.
func (s *OrderIDSource) Next() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return NewOrderID(s.clock.Now(), s.entropy)
}

// KeyedOrderID returns the order ID of a checkout with an Idempotency-Key:
// the same customer and key always give the same ID, another customer with
// the same key another ID.
func KeyedOrderID(customer, key string) string {
	h := sha256.New()
	h.Write([]byte(keyedOrderIDDomain))
	orderHashField(h, customer)
	orderHashField(h, key)
	var id ulid.ULID
	copy(id[:], h.Sum(nil))
	id[0] |= 0x80 // the top bit marks a keyed ID
	return orderIDPrefix + id.String()
}

// ErrInvalidOrderID says that a string is not an ID the engine could have
// issued; the gateway answers 404.
var ErrInvalidOrderID = errors.New("not an order id")

// ParseOrderID checks that id is "o_" and a canonical ULID (upper-case
// Crockford base32, first character 0 to 7).
func ParseOrderID(id string) error {
	if len(id) != orderIDChars || id[:len(orderIDPrefix)] != orderIDPrefix {
		return ErrInvalidOrderID
	}
	u, err := ulid.ParseStrict(id[len(orderIDPrefix):])
	if err != nil || u.String() != id[len(orderIDPrefix):] {
		return ErrInvalidOrderID
	}
	return nil
}

// IsKeyedOrderID reports whether a valid order ID came from KeyedOrderID.
func IsKeyedOrderID(id string) bool {
	return ParseOrderID(id) == nil && id[len(orderIDPrefix)] >= '4'
}

// OrderFingerprint identifies a checkout request for the idempotency check:
// the customer, the lines in request order and the TTL after the default.
// Two requests are "the same request" exactly when their fingerprints are
// equal. The encoding is length-prefixed, so no two requests share one.
func OrderFingerprint(customer string, items []*pb.OrderLine, ttlSeconds int64) []byte {
	h := sha256.New()
	h.Write([]byte("orderengine/order-fingerprint/v1"))
	orderHashField(h, customer)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(items)))
	h.Write(n[:])
	for _, it := range items {
		orderHashField(h, it.GetSku())
		binary.BigEndian.PutUint64(n[:], uint64(it.GetQuantity()))
		h.Write(n[:])
	}
	binary.BigEndian.PutUint64(n[:], uint64(ttlSeconds))
	h.Write(n[:])
	return h.Sum(nil)[:16]
}

func orderHashField(w io.Writer, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	w.Write(n[:])
	io.WriteString(w, s)
}
