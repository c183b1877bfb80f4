package gateway

import (
	"bytes"
	"encoding/json"
)

// A minimal reader for request bodies that json.Valid has already accepted:
// it walks objects and arrays and hands out the raw bytes of values, so the
// decoders can name the exact field that is wrong and stay allocation-free on
// the happy path. It never sees invalid JSON; the bounds checks are only a
// second line of defence.

// invalidJSONError is a body that is not JSON or not a JSON object (400).
type invalidJSONError struct{ detail string }

func (e *invalidJSONError) Error() string { return "invalid json: " + e.detail }

var (
	errNotJSON   = &invalidJSONError{"the request body is not valid JSON"}
	errNotObject = &invalidJSONError{"the request body must be a JSON object"}
)

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

// skipString returns the index after the string whose quote is at data[i].
func skipString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(data)
}

// skipValue returns the index after the value that starts at data[i].
func skipValue(data []byte, i int) int {
	if i >= len(data) {
		return len(data)
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				i = skipString(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(data)
	}
	for i < len(data) {
		switch c := data[i]; {
		case c == ',' || c == '}' || c == ']' || isSpace(c):
			return i
		}
		i++
	}
	return i
}

// member is one name/value pair of an object: the raw key (without quotes)
// and the raw value.
type member struct {
	key   []byte
	value []byte
}

// nextMember reads the member at data[i] (after '{' or ','). ok is false at
// the closing brace. The key is unescaped only when it contains escapes.
func nextMember(data []byte, i int) (m member, next int, ok bool) {
	i = skipSpace(data, i)
	if i < len(data) && data[i] == ',' {
		i = skipSpace(data, i+1)
	}
	if i >= len(data) || data[i] != '"' {
		return member{}, len(data), false
	}
	end := skipString(data, i)
	m.key = unquote(data[i:end])
	i = skipSpace(data, end)
	if i < len(data) && data[i] == ':' {
		i = skipSpace(data, i+1)
	}
	vend := skipValue(data, i)
	m.value = data[i:vend]
	return m, vend, true
}

// unquote returns the content of a JSON string token. Strings with escapes
// are decoded by encoding/json (rare: identifiers are plain ASCII).
func unquote(tok []byte) []byte {
	if len(tok) < 2 {
		return nil
	}
	inner := tok[1 : len(tok)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner
	}
	var s string
	if json.Unmarshal(tok, &s) != nil {
		return nil
	}
	return []byte(s)
}

// objectStart checks that body is one JSON object and returns the index just
// after its opening brace.
func objectStart(body []byte) (int, error) {
	if !json.Valid(body) {
		return 0, errNotJSON
	}
	i := skipSpace(body, 0)
	if body[i] != '{' {
		return 0, errNotObject
	}
	return i + 1, nil
}

// kindOf names the JSON type of a raw value for error details.
func kindOf(v []byte) string {
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func isNull(v []byte) bool { return len(v) == 0 || v[0] == 'n' }

// field is one named member of a JSON object: its raw value (nil when
// absent) and whether its key appeared more than once.
type field struct {
	value []byte
	dup   bool
}

// The members each request body is read for, in the order its decoder
// reports them.
var (
	quantityMembers   = [...]string{"quantity"}
	limitMembers      = [...]string{"per_customer"}
	payMembers        = [...]string{"payment_ref"}
	placeOrderMembers = [...]string{"customer", "items", "ttl_seconds"}
	itemMembers       = [...]string{"sku", "quantity"}
)

// collectMembers reads the members of the object whose first member is at
// data[i] and fills out[k] with the member named names[k]; other members
// are ignored. A repeated key keeps its last value and is marked dup, so
// the decoder can refuse it.
func collectMembers(data []byte, i int, names []string, out []field) {
	for {
		m, next, ok := nextMember(data, i)
		if !ok {
			return
		}
		i = next
		for k, name := range names {
			if string(m.key) == name {
				out[k].dup = out[k].dup || out[k].value != nil
				out[k].value = m.value
				break
			}
		}
	}
}
