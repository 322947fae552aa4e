package bridge

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// The wire form of an event, the same for every publisher:
//
//	{"type":<Type>,"call_id":<CallID>,"seq":<Seq>, <the body's fields>}
//
// type, call_id and seq come first so a reader can route on them before
// reading the rest; the body is encoded with encoding/json and spliced in.

// Encode returns the wire form of an event a publisher makes itself (the
// caption hub's replay.truncated). body must encode to a JSON object, or be
// nil.
func Encode(typ, callID string, seq uint64, body any) ([]byte, error) {
	b, err := marshalBody(body)
	if err != nil {
		return nil, err
	}
	buf := appendPrefix(make([]byte, 0, len(typ)+len(callID)+len(b)+48), typ, callID)
	return appendBody(appendSeq(buf, seq), b), nil
}

// marshalBody encodes an event body; the result is a JSON object or nil.
func marshalBody(body any) ([]byte, error) {
	if body == nil {
		return nil, nil
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode body: %w", err)
	}
	if string(b) == "null" {
		return nil, nil
	}
	if len(b) < 2 || b[0] != '{' {
		return nil, fmt.Errorf("encode body: %T is not a JSON object", body)
	}
	return b, nil
}

// appendPrefix appends `{"type":<typ>,"call_id":<callID>,"seq":`.
func appendPrefix(dst []byte, typ, callID string) []byte {
	dst = append(dst, `{"type":`...)
	dst = appendString(dst, typ)
	dst = append(dst, `,"call_id":`...)
	dst = appendString(dst, callID)
	return append(dst, `,"seq":`...)
}

func appendSeq(dst []byte, seq uint64) []byte {
	return strconv.AppendUint(dst, seq, 10)
}

// appendBody splices the body object's fields after seq and closes the
// event object.
func appendBody(dst, body []byte) []byte {
	if len(body) <= 2 { // nil or {}
		return append(dst, '}')
	}
	dst = append(dst, ',')
	return append(dst, body[1:]...)
}

// appendString appends s as a JSON string, as encoding/json would (invalid
// UTF-8 becomes U+FFFD) except that <, > and & are not escaped.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		var esc [6]byte // what replaces s[i:i+size], n bytes of it; an array, so nothing is allocated
		n, size := 6, 1
		if b := s[i]; b < utf8.RuneSelf {
			switch b {
			case '"', '\\':
				esc, n = [6]byte{'\\', b}, 2
			case '\b', '\t', '\n', '\f', '\r':
				esc, n = [6]byte{'\\', "btn?fr"[b-'\b']}, 2
			default:
				if b >= 0x20 {
					i++
					continue
				}
				esc = [6]byte{'\\', 'u', '0', '0', hex[b>>4], hex[b&0xf]}
			}
		} else {
			var r rune
			switch r, size = utf8.DecodeRuneInString(s[i:]); {
			case r == utf8.RuneError && size == 1:
				esc = [6]byte{'\\', 'u', 'f', 'f', 'f', 'd'}
			case r == '\u2028' || r == '\u2029':
				esc = [6]byte{'\\', 'u', '2', '0', '2', hex[r&0xf]}
			default:
				i += size
				continue
			}
		}
		dst = append(append(dst, s[start:i]...), esc[:n]...)
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
