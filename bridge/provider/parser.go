package provider

import (
	"bytes"
	"encoding/base64"
	"fmt"

	"github.com/valyala/fastjson"
)

// Limits on what one frame may make the parser keep.
const (
	// MaxFrameSize is the largest text or binary frame Parse accepts. The
	// largest legitimate inbound frame is an Exotel 100 ms chunk at 24 kHz
	// (about 6.4 KB of base64); a megabyte leaves room for big start frames.
	// The WebSocket read limit should be set to the same value.
	MaxFrameSize = 1 << 20
	// retainLimit: after a frame bigger than this the parser drops its
	// buffers instead of keeping them for the life of the socket.
	retainLimit = 64 << 10
)

// Warnings set in Event.Warning.
const (
	WarnOddPayload        = "odd-length L16 payload: last byte ignored"
	WarnDroppedParameters = "custom parameters over the limits were dropped"
)

// Parser parses one stream's frames for one provider. It is not safe for
// concurrent use; use one per socket. The zero Parser is not usable; call
// NewParser.
//
// Media frames allocate nothing once the parser has seen a frame of the
// same size: the JSON parser, the payload buffer and the id strings are
// reused. Start frames allocate (the Start is the caller's to keep).
type Parser struct {
	d    *Dialect
	name Name // as asked for, for errors when d is nil

	json fastjson.Parser
	aux  fastjson.Parser // extra_headers JSON-object strings, start frames only
	buf  []byte          // decoded payload; Event.Payload aliases it
	big  bool            // the last frame was over retainLimit

	// Last ids seen, handed out again while the wire bytes are unchanged.
	streamID, callID string
	// Last unknown event name, reused the same way.
	otherName string

	// Format of the last start frame, to flag odd-length L16 payloads.
	format    Format
	hasFormat bool
}

// NewParser returns a parser for the named provider. For a name that is not
// Valid every Parse returns an error wrapping ErrUnknownProvider.
func NewParser(name Name) *Parser {
	return &Parser{d: Lookup(name), name: name}
}

// Parse parses one text frame into ev (ev is reset first). ev.Payload is
// the base64-decoded payload and aliases the parser's buffer until the next
// Parse or ParseBinary. Errors wrap ErrMalformed and say what is wrong
// ("parse twilio media: invalid base64 payload: ..."). Unknown event names
// are KindOther with ev.Name set, not errors. After an error ev is the
// zero Event.
func (p *Parser) Parse(frame []byte, ev *Event) error { return p.parseFrame(frame, false, ev) }

// ParseBinary handles a binary WebSocket frame: for Vonage it is raw L16
// little-endian audio (KindMedia, Track "inbound", no chunk or timestamp),
// copied into the parser's buffer like a decoded payload; for every other
// provider it is an error wrapping ErrMalformed.
func (p *Parser) ParseBinary(frame []byte, ev *Event) error { return p.parseFrame(frame, true, ev) }

func (p *Parser) parseFrame(frame []byte, binary bool, ev *Event) error {
	*ev = Event{}
	if p.d == nil {
		return fmt.Errorf("%w: no parser for %s", ErrUnknownProvider, quote([]byte(p.name)))
	}
	p.release(len(frame))
	what := "frame"
	if binary {
		what = "binary frame"
		if !p.d.binary {
			return p.errorf(what, "%s sends only text frames", p.d.Name)
		}
	}
	if len(frame) > MaxFrameSize {
		return p.errorf(what, "frame of %d bytes is over the %d-byte limit", len(frame), MaxFrameSize)
	}
	var err error
	if binary {
		ev.Kind, ev.Name, ev.Track = KindMedia, "binary", TrackInbound
		ev.Payload = p.grow(len(frame))
		copy(ev.Payload, frame)
		if len(frame)%2 != 0 {
			ev.Warning = WarnOddPayload
		}
	} else if err = p.parse(frame, ev); err != nil {
		*ev = Event{}
	}
	return err
}

func (p *Parser) parse(frame []byte, ev *Event) error {
	v, err := p.json.ParseBytes(frame)
	if err != nil {
		return &frameError{provider: p.d.Name, event: "frame", what: "not JSON", cause: err}
	}
	if v.Type() != fastjson.TypeObject {
		return p.errorf("frame", "not a JSON object but %s", v.Type())
	}
	name, err := p.stringField("frame", v, "event")
	if err != nil {
		return err
	}
	ev.Name = p.eventName(name)

	if err := p.common(v, ev); err != nil {
		return err
	}
	switch ev.Name {
	case "media":
		ev.Kind = KindMedia
		return p.media(v, ev)
	case "start":
		ev.Kind = KindStart
		return p.start(v, ev)
	case "connected":
		ev.Kind = KindConnected
	case "dtmf", "websocket:dtmf":
		ev.Kind = KindDTMF
		return p.dtmf(v, ev)
	case "stop":
		ev.Kind = KindStop
		p.stop(v, ev)
	case "error":
		p.errorEvent(v, ev)
	case "websocket:connected":
		if p.d.connectedStart {
			ev.Kind = KindStart
			return p.vonageStart(v, ev)
		}
	}
	return nil
}

// release drops buffers grown by an earlier oversized frame, so one big
// frame does not pin memory for the rest of the call, and notes whether
// this frame is one.
func (p *Parser) release(n int) {
	if p.big {
		p.json = fastjson.Parser{}
		p.buf = nil
	}
	p.big = n > retainLimit
}

// grow returns the parser's buffer resized to n bytes.
func (p *Parser) grow(n int) []byte {
	if cap(p.buf) < n {
		p.buf = make([]byte, n)
	}
	return p.buf[:n]
}

// eventNames are the event names the providers send, handed out without
// allocating; an unknown name is copied once and reused while it repeats.
var eventNames = [...]string{"media", "start", "connected", "stop", "dtmf", "mark", "playedStream", "clearedAudio",
	"error", "websocket:connected", "websocket:dtmf"}

func (p *Parser) eventName(b []byte) string {
	for _, n := range eventNames {
		if string(b) == n {
			return n
		}
	}
	return reuse(&p.otherName, b)
}

// reuse returns b as a string, handing out *last again while b is unchanged.
func reuse(last *string, b []byte) string {
	if string(b) != *last {
		*last = string(b)
	}
	return *last
}

// common reads the fields every frame may carry: sequence number and the
// top-level stream and call ids.
func (p *Parser) common(v *fastjson.Value, ev *Event) error {
	var err error
	if ev.Seq, ev.HasSeq, err = p.intField(ev.Name, "sequenceNumber", nil, v, "sequenceNumber", "sequence_number"); err != nil {
		return err
	}
	if b := stringBytes(field(v, streamKeys...)); len(b) > 0 {
		ev.StreamID = reuse(&p.streamID, b)
	}
	if b := stringBytes(field(v, frameCallKeys...)); len(b) > 0 {
		ev.CallID = reuse(&p.callID, b)
	}
	return nil
}

// media parses a media frame: the hot path.
func (p *Parser) media(v *fastjson.Value, ev *Event) error {
	m := v.Get("media")
	if m == nil || m.Type() != fastjson.TypeObject {
		return p.errorf("media", "missing media object")
	}
	if t := m.Get("track"); t != nil && t.Type() != fastjson.TypeNull {
		b := stringBytes(t)
		if b == nil {
			return p.errorf("media", "track is %s, not a string", t.Type())
		}
		track, ok := normTrack(b)
		if !ok {
			return p.errorf("media", "unknown track %s", quote(b))
		}
		ev.Track = track
	}
	var err error
	if ev.Chunk, ev.HasChunk, err = p.intField("media", "chunk", nil, m, "chunk"); err != nil {
		return err
	}
	if ev.TimestampMs, ev.HasTimestamp, err = p.intField("media", "timestamp", nil, m, "timestamp"); err != nil {
		return err
	}
	src, err := p.stringField("media", m, "payload")
	if err != nil {
		return err
	}
	payload, err := p.decode(src)
	if err != nil {
		return &frameError{provider: p.d.Name, event: "media", what: "invalid base64 payload", cause: err}
	}
	ev.Payload = payload
	if len(payload)%2 != 0 && p.hasFormat && p.format.Encoding == L16 {
		ev.Warning = WarnOddPayload
	}
	return nil
}

// decode base64-decodes src into the parser's buffer. Padded standard
// base64 is what every provider documents; unpadded input is accepted too.
func (p *Parser) decode(src []byte) ([]byte, error) {
	// Room for both padded and unpadded decoding.
	dst := p.grow(len(src)/4*3 + 3)
	dst = dst[:cap(dst)]
	m, err := base64.StdEncoding.Decode(dst, src)
	if err == nil {
		return dst[:m], nil
	}
	if len(src)%4 != 0 && bytes.IndexByte(src, '=') < 0 {
		if m, err2 := base64.RawStdEncoding.Decode(dst, src); err2 == nil {
			return dst[:m], nil
		}
	}
	return nil, err
}

// dtmf parses a key press: {"dtmf":{"digit":"5","duration":2000,"track":…}}
// or Vonage's top-level {"digit":"5","duration":260}.
func (p *Parser) dtmf(v *fastjson.Value, ev *Event) error {
	d := v.Get("dtmf")
	if d == nil || d.Type() != fastjson.TypeObject {
		d = v
	}
	if digit, ok := text(field(d, "digit", "digits")); ok {
		ev.Digit = digit
	}
	var err error
	if ev.DurationMs, _, err = p.intField(ev.Name, "duration", nil, d, "duration", "durationMs", "duration_ms"); err != nil {
		return err
	}
	// A track on a key press is informative only: an unknown one is left
	// out rather than failing the frame.
	ev.Track, _ = normTrack(stringBytes(d.Get("track")))
	return nil
}

// stop reads the call id and reason of a stop frame; every field is
// optional (SignalWire sends a bare stop).
func (p *Parser) stop(v *fastjson.Value, ev *Event) {
	s := v.Get("stop")
	if b := stringBytes(field(s, frameCallKeys...)); len(b) > 0 && ev.CallID == "" {
		ev.CallID = string(b)
	}
	if b := stringBytes(field(s, "reason")); b != nil {
		ev.Reason = string(b)
	} else if b := stringBytes(field(v, "reason")); b != nil {
		ev.Reason = string(b)
	}
}

// stringField returns the bytes of the string v[key]; a key that is absent
// or not a string is an error.
func (p *Parser) stringField(event string, v *fastjson.Value, key string) ([]byte, error) {
	f := v.Get(key)
	if f == nil {
		return nil, p.errorf(event, "missing %s", key)
	}
	b := stringBytes(f)
	if b == nil {
		return nil, p.errorf(event, "%s is %s, not a string", key, f.Type())
	}
	return b, nil
}

// intField reads the first of keys in v as an integer (flexInt). A value
// that is no integer, or that valid refuses, is an error naming what.
func (p *Parser) intField(event, what string, valid func(int64) bool, v *fastjson.Value, keys ...string) (int64, bool, error) {
	f := field(v, keys...)
	n, has, ok := flexInt(f)
	if !ok || has && valid != nil && !valid(n) {
		return 0, false, p.errorf(event, "invalid %s %s", what, show(f))
	}
	return n, has, nil
}

func (p *Parser) errorf(event, format string, args ...any) error {
	if len(event) > maxQuoted { // the frame's own event name: bounded like any quoted value
		event = quote([]byte(event))
	}
	return &frameError{provider: p.d.Name, event: event, what: fmt.Sprintf(format, args...)}
}
