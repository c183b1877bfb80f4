package gateway

import (
	"encoding/json"
	"strconv"
	"time"
)

// Decoders of request bodies. Each checks, in order: JSON syntax and a
// top-level object (400, *invalidJSONError), then its fields in a fixed order
// (422, *InvalidFieldError), and copies every string it keeps out of the
// request buffer, which fasthttp reuses.

// identifierChars marks the bytes allowed in identifiers: [A-Za-z0-9._:-].
var identifierChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	t['.'], t['_'], t[':'], t['-'] = true, true, true, true
	return t
}()

// validIdentifier reports whether b is 1 to max identifier characters.
func validIdentifier(b []byte, max int) bool {
	if len(b) == 0 || len(b) > max {
		return false
	}
	for _, c := range b {
		if !identifierChars[c] {
			return false
		}
	}
	return true
}

// crockford marks the upper-case Crockford base32 digits that ULIDs use.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

var crockfordChars = func() (t [256]bool) {
	for i := 0; i < len(crockford); i++ {
		t[crockford[i]] = true
	}
	return t
}()

// validOrderID reports whether b is an order ID the engine could have issued:
// "o_" and a ULID (26 Crockford base32 digits, the first at most 7 because a
// ULID is 128 bits).
func validOrderID(b []byte) bool {
	if len(b) != orderIDBytes || b[0] != 'o' || b[1] != '_' || b[2] > '7' {
		return false
	}
	for _, c := range b[2:] {
		if !crockfordChars[c] {
			return false
		}
	}
	return true
}

func identifierDetail(max int) string {
	return "must be 1 to " + strconv.Itoa(max) + " characters of A-Z a-z 0-9 . _ : -"
}

func fieldError(field, detail string) error {
	return &InvalidFieldError{Field: field, Detail: detail}
}

// checkIdentifier reads a JSON string value holding an identifier. detail is
// "" when it is valid, else what is wrong (built only then: the happy path
// allocates nothing but the copy).
func checkIdentifier(v []byte, max int) (s, detail string) {
	if isNull(v) {
		return "", "is required"
	}
	if v[0] != '"' {
		return "", "must be a string, got " + kindOf(v)
	}
	b := unquote(v)
	if !validIdentifier(b, max) {
		return "", identifierDetail(max)
	}
	return string(b), ""
}

// checkInt reads a JSON integer literal in [lo, hi]. Fractions and exponents
// are refused even when the value is whole: clients send integers.
func checkInt(v []byte, lo, hi int64) (n int64, detail string) {
	if isNull(v) {
		return 0, "is required"
	}
	if v[0] != '-' && (v[0] < '0' || v[0] > '9') {
		return 0, "must be an integer, got " + kindOf(v)
	}
	digits := v
	if v[0] == '-' {
		digits = v[1:]
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, "must be an integer"
		}
		if n <= hi { // keep scanning for a fraction, but stop growing
			n = n*10 + int64(c-'0')
		}
	}
	if (v[0] == '-' && n != 0) || n < lo || n > hi {
		return 0, "must be between " + strconv.FormatInt(lo, 10) + " and " + strconv.FormatInt(hi, 10)
	}
	return n, ""
}

func decodeIdentifier(field string, v []byte, max int) (string, error) {
	s, detail := checkIdentifier(v, max)
	if detail != "" {
		return "", fieldError(field, detail)
	}
	return s, nil
}

func decodeInt(field string, v []byte, lo, hi int64) (int64, error) {
	n, detail := checkInt(v, lo, hi)
	if detail != "" {
		return 0, fieldError(field, detail)
	}
	return n, nil
}

func duplicateError(field string) error {
	return fieldError(field, "appears more than once")
}

// decodeQuantity decodes a restock or remove body: {"quantity": 1..1e9}.
func decodeQuantity(body []byte) (int64, error) {
	i, err := objectStart(body)
	if err != nil {
		return 0, err
	}
	var f [1]field
	collectMembers(body, i, quantityMembers[:], f[:])
	if f[0].dup {
		return 0, duplicateError("quantity")
	}
	return decodeInt("quantity", f[0].value, 1, stockQuantityMax)
}

// decodeLimit decodes a purchase limit body: {"per_customer": 0..1e9},
// 0 removing the limit.
func decodeLimit(body []byte) (int64, error) {
	i, err := objectStart(body)
	if err != nil {
		return 0, err
	}
	var f [1]field
	collectMembers(body, i, limitMembers[:], f[:])
	if f[0].dup {
		return 0, duplicateError("per_customer")
	}
	return decodeInt("per_customer", f[0].value, 0, stockQuantityMax)
}

// decodePay decodes a pay body: {"payment_ref": identifier}.
func decodePay(body []byte) (string, error) {
	i, err := objectStart(body)
	if err != nil {
		return "", err
	}
	var f [1]field
	collectMembers(body, i, payMembers[:], f[:])
	if f[0].dup {
		return "", duplicateError("payment_ref")
	}
	return decodeIdentifier("payment_ref", f[0].value, identifierBytesMax)
}

// checkOptionalBody accepts an empty body or any JSON document (cancel, ship
// and complete take no body, but one that is present must be JSON).
func checkOptionalBody(body []byte) error {
	if len(body) == 0 || json.Valid(body) {
		return nil
	}
	return errNotJSON
}

// decodePlaceOrder decodes a checkout body. It checks customer, items and
// ttl_seconds in that order, whatever order the body has them in.
func decodePlaceOrder(body []byte) (PlaceOrderRequest, error) {
	var req PlaceOrderRequest
	i, err := objectStart(body)
	if err != nil {
		return req, err
	}
	var f [3]field
	collectMembers(body, i, placeOrderMembers[:], f[:])
	customer, items, ttl := f[0].value, f[1].value, f[2].value
	dupCustomer, dupItems, dupTTL := f[0].dup, f[1].dup, f[2].dup
	if dupCustomer {
		return req, duplicateError("customer")
	}
	if req.Customer, err = decodeIdentifier("customer", customer, customerBytesMax); err != nil {
		return req, err
	}
	if dupItems {
		return req, duplicateError("items")
	}
	if req.Items, err = decodeItems(items); err != nil {
		return req, err
	}
	if dupTTL {
		return req, duplicateError("ttl_seconds")
	}
	ttlSeconds := int64(ttlSecondsDefault)
	if !isNull(ttl) {
		if ttlSeconds, err = decodeInt("ttl_seconds", ttl, ttlSecondsMin, ttlSecondsMax); err != nil {
			return req, err
		}
	}
	req.TTL = time.Duration(ttlSeconds) * time.Second
	return req, nil
}

// decodeItems decodes the items array: 1 to orderLinesMax lines, each SKU at
// most once (the repeat is the line named).
func decodeItems(v []byte) ([]Item, error) {
	if isNull(v) {
		return nil, fieldError("items", "is required")
	}
	if v[0] != '[' {
		return nil, fieldError("items", "must be an array, got "+kindOf(v))
	}
	n := 0
	for j := skipSpace(v, 1); j < len(v) && v[j] != ']'; n++ {
		j = skipSpace(v, skipValue(v, j))
		if j < len(v) && v[j] == ',' {
			j = skipSpace(v, j+1)
		}
	}
	if n == 0 || n > orderLinesMax {
		return nil, fieldError("items", "must have 1 to "+strconv.Itoa(orderLinesMax)+" lines")
	}
	out := make([]Item, 0, n)
	j := skipSpace(v, 1)
	for idx := 0; idx < n; idx++ {
		end := skipValue(v, j)
		it, err := decodeItem(idx, v[j:end])
		if err != nil {
			return nil, err
		}
		for k := range out {
			if out[k].SKU == it.SKU {
				return nil, fieldError(itemField(idx, "sku"), "repeats items["+strconv.Itoa(k)+"].sku")
			}
		}
		out = append(out, it)
		j = skipSpace(v, end)
		if j < len(v) && v[j] == ',' {
			j = skipSpace(v, j+1)
		}
	}
	return out, nil
}

func itemField(idx int, name string) string {
	s := "items[" + strconv.Itoa(idx) + "]"
	if name != "" {
		s += "." + name
	}
	return s
}

func decodeItem(idx int, v []byte) (Item, error) {
	if len(v) == 0 || v[0] != '{' {
		return Item{}, fieldError(itemField(idx, ""), "must be an object, got "+kindOf(v))
	}
	var f [2]field
	collectMembers(v, 1, itemMembers[:], f[:])
	sku, qty := f[0].value, f[1].value
	dupSKU, dupQty := f[0].dup, f[1].dup
	var (
		it     Item
		detail string
	)
	if dupSKU {
		return it, duplicateError(itemField(idx, "sku"))
	}
	if it.SKU, detail = checkIdentifier(sku, identifierBytesMax); detail != "" {
		return it, fieldError(itemField(idx, "sku"), detail)
	}
	if dupQty {
		return it, duplicateError(itemField(idx, "quantity"))
	}
	if it.Quantity, detail = checkInt(qty, 1, lineQuantityMax); detail != "" {
		return it, fieldError(itemField(idx, "quantity"), detail)
	}
	return it, nil
}
