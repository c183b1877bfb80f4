package gateway

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// The response encoders append to a reused buffer instead of going through
// encoding/json: the shapes are fixed and the checkout path stays free of
// reflection.

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD;
// <, > and & are escaped so a body is safe to embed in HTML.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendSKUView(dst []byte, v SKUView) []byte {
	dst = append(dst, `{"sku":`...)
	dst = appendJSONString(dst, v.SKU)
	dst = append(dst, `,"available":`...)
	dst = strconv.AppendInt(dst, v.Available, 10)
	dst = append(dst, `,"reserved":`...)
	dst = strconv.AppendInt(dst, v.Reserved, 10)
	dst = append(dst, `,"sold":`...)
	dst = strconv.AppendInt(dst, v.Sold, 10)
	if v.PerCustomerLimit > 0 {
		dst = append(dst, `,"per_customer_limit":`...)
		dst = strconv.AppendInt(dst, v.PerCustomerLimit, 10)
	}
	return append(dst, '}')
}

func appendTime(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

func appendOrder(dst []byte, o Order) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendJSONString(dst, o.ID)
	dst = append(dst, `,"status":`...)
	dst = appendJSONString(dst, o.Status)
	dst = append(dst, `,"customer":`...)
	dst = appendJSONString(dst, o.Customer)
	dst = append(dst, `,"items":[`...)
	for i, it := range o.Items {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"sku":`...)
		dst = appendJSONString(dst, it.SKU)
		dst = append(dst, `,"quantity":`...)
		dst = strconv.AppendInt(dst, it.Quantity, 10)
		dst = append(dst, '}')
	}
	dst = append(dst, `],"created_at":`...)
	dst = appendTime(dst, o.CreatedAt)
	dst = append(dst, `,"expires_at":`...)
	dst = appendTime(dst, o.ExpiresAt)
	dst = append(dst, `,"payment_ref":`...)
	if o.PaymentRef == "" {
		dst = append(dst, "null"...)
	} else {
		dst = appendJSONString(dst, o.PaymentRef)
	}
	return append(dst, '}')
}
