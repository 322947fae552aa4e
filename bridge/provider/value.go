package provider

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// frameError is the error of a frame that cannot be parsed. Its text reads
// "parse <provider> <event>: <what>[: <cause>]" and it matches ErrMalformed
// with errors.Is.
type frameError struct {
	provider Name
	event    string
	what     string
	cause    error
}

func (e *frameError) Error() string {
	s := "parse " + string(e.provider) + " " + e.event + ": " + e.what
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

func (e *frameError) Is(target error) bool { return target == ErrMalformed }

func (e *frameError) Unwrap() error { return e.cause }

// maxQuoted bounds how much of a hostile value an error message repeats.
const maxQuoted = 40

// quote returns b cut to maxQuoted bytes and quoted for an error message:
// quotes and backslashes escaped, control characters and invalid UTF-8 as
// "?".
func quote(b []byte) string {
	s, more := string(b), ""
	if len(b) > maxQuoted {
		s, more = string(b[:maxQuoted]), "…"
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
	return `"` + quoteEscaper.Replace(s) + `"` + more
}

var quoteEscaper = strings.NewReplacer(`"`, `\"`, `\`, `\\`)

// show renders a JSON value for an error message, cut to maxQuoted bytes.
func show(v *fastjson.Value) string {
	if v == nil {
		return "(absent)"
	}
	return quote(v.MarshalTo(nil))
}

// field returns the first of keys present in the object v with a non-null
// value, or nil. v may be nil or not an object.
func field(v *fastjson.Value, keys ...string) *fastjson.Value {
	if v == nil || v.Type() != fastjson.TypeObject {
		return nil
	}
	for _, k := range keys {
		if f := v.Get(k); f != nil && f.Type() != fastjson.TypeNull {
			return f
		}
	}
	return nil
}

// stringBytes returns the bytes of a JSON string value, or nil when v is
// absent or not a string. It never allocates unless the string holds JSON
// escapes.
func stringBytes(v *fastjson.Value) []byte {
	if v == nil || v.Type() != fastjson.TypeString {
		return nil
	}
	b, _ := v.StringBytes()
	return b
}

// text returns the value as text: a string's contents, or a number's
// digits as sent (ids such as Vobiz's accountId arrive as either). Other
// types give "" and false.
func text(v *fastjson.Value) (string, bool) {
	if v == nil {
		return "", false
	}
	switch v.Type() {
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return string(b), true
	case fastjson.TypeNumber:
		return string(v.MarshalTo(nil)), true
	}
	return "", false
}

// flexInt reads an integer sent either as a JSON number or as a string of
// digits ("12" and 12 alike; providers disagree with themselves). An absent
// or null value, or an empty string, is reported as not present. Anything
// else that is not an integer is an error.
func flexInt(v *fastjson.Value) (n int64, present, ok bool) {
	if v == nil || v.Type() == fastjson.TypeNull {
		return 0, false, true
	}
	switch v.Type() {
	case fastjson.TypeNumber:
		if n, err := v.Int64(); err == nil {
			return n, true, true
		}
		f, err := v.Float64()
		if err != nil || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
			return 0, true, false
		}
		return int64(f), true, true
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		b = bytes.Trim(b, " \t\n\r")
		if len(b) == 0 {
			return 0, false, true
		}
		n, ok := atoi(b)
		return n, true, ok
	}
	return 0, true, false
}

// atoi parses an optionally signed decimal integer, allowing a fraction of
// zeros ("8000.0"), without allocating.
func atoi(b []byte) (int64, bool) {
	if i := bytes.IndexByte(b, '.'); i >= 0 {
		if len(bytes.TrimRight(b[i+1:], "0")) > 0 {
			return 0, false
		}
		b = b[:i]
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	return n, err == nil && n != math.MinInt64 // a magnitude over MaxInt64 either way
}

// equalFold reports whether b equals the lower-case ASCII string s,
// ignoring ASCII case, without allocating.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// Track names as the Event reports them.
const (
	TrackInbound  = "inbound"
	TrackOutbound = "outbound"
)

// normTrack maps a provider's track name to "inbound" or "outbound"
// ("inbound_track" and "outbound_track" included, any case). ok is false
// for any other name.
func normTrack(b []byte) (track string, ok bool) {
	switch {
	case equalFold(b, "inbound"), equalFold(b, "inbound_track"):
		return TrackInbound, true
	case equalFold(b, "outbound"), equalFold(b, "outbound_track"):
		return TrackOutbound, true
	}
	return "", false
}
