package provider

import (
	"fmt"
	"slices"

	"github.com/valyala/fastjson"
)

// MaxDetectFrames is how many frames a Detector looks at before it gives up.
const MaxDetectFrames = 3

// Detector picks the provider from the first frames of a socket opened on
// the auto-detecting endpoint. The zero Detector is ready to use; use one
// per socket. Feed does not consume frames: the caller keeps every frame it
// fed and replays them, in order, into NewParser(name) once done.
//
// Rules, in the order they apply (evidence in protocols.md and fixtures/):
//
//   - A text frame {"event":"websocket:connected",…} first: Vonage (its
//     first frame; no other provider uses the name).
//   - A binary frame before the decision: refused (only Vonage sends
//     binary, and only after its text handshake).
//   - A "connected" frame narrows the choice and the start frame decides:
//     with "protocol" (Twilio and SignalWire: both send "Call") → Twilio or
//     SignalWire; with only "version" → Telnyx; with only "event" → Exotel.
//     The version is not looked at: Twilio documents 1.0.0 while a real
//     Twilio capture shows 0.2.0, SignalWire's 0.2.0. A start that
//     contradicts the connected frame is refused.
//   - The start frame: start.call_control_id (or a top-level stream_id and
//     no camelCase id) → Telnyx; snake_case stream_sid / call_sid → Exotel;
//     camelCase streamSid / callSid / accountSid → Twilio when they are
//     Twilio SIDs (MZ, CA, AC + 32 hex), SignalWire when they are UUIDs,
//     refused when mixed or neither; callId / callUUID / streamId (in start
//     or at the top level) → Plivo or Vobiz, below.
//   - Plivo or Vobiz (same start-first protocol; plivoOrVobiz in vobiz.go,
//     as twilioOrSignalWire is in signalwire.go): accountId decides when it
//     is recognisable – Plivo auth ids are "MA" (account) or "SA"
//     (sub-account) followed by letters and digits (Plivo docs, fixture
//     "MAXXXXXXXXXXXXXXXXXX"); Vobiz account ids are all digits ("500025" in
//     Vobiz's stream-events doc), as a string or a number. Otherwise
//     sequenceNumber on start decides: Vobiz's doc example starts at 0,
//     Plivo's at 1. accountId wins over sequenceNumber because an account
//     id format is a property of the platform, while a counter's first value
//     is one doc example each. Neither recognisable: refused as ambiguous
//     (use /media/plivo or /media/vobiz).
//   - A first frame with any other event, no event, or not JSON: refused.
//     After a connected frame, frames other than start are skipped until
//     MaxDetectFrames frames have been seen.
type Detector struct {
	json   fastjson.Parser
	frames int
	// connected: a connected frame was seen; allowed are the providers it
	// may be from, nil for one of no known shape (the start decides).
	connected bool
	allowed   []Name
	name      Name
	done      bool
	err       error
}

// Feed gives the next frame (text=true for text frames). It returns the
// provider once it is certain (done=true), done=false when it needs another
// frame, or an error wrapping ErrUnknownProvider with a reason when the
// frames match no provider or stay ambiguous after MaxDetectFrames frames.
// Once done or failed, Feed returns the same answer again.
func (d *Detector) Feed(frame []byte, text bool) (name Name, done bool, err error) {
	if d.done || d.err != nil {
		return d.name, d.done, d.err
	}
	d.frames++
	name, reason := d.feed(frame, text)
	switch {
	case reason != "":
		d.err = fmt.Errorf("%w: %s", ErrUnknownProvider, reason)
	case name != "":
		d.name, d.done = name, true
	case d.frames >= MaxDetectFrames:
		d.err = fmt.Errorf("%w: no start frame in the first %d frames", ErrUnknownProvider, MaxDetectFrames)
	}
	return d.name, d.done, d.err
}

// feed looks at one frame; it returns the provider, or a reason to refuse,
// or neither when it needs another frame.
func (d *Detector) feed(frame []byte, isText bool) (Name, string) {
	if !isText {
		return "", fmt.Sprintf("frame %d is binary; no provider sends audio before its start frame", d.frames)
	}
	if len(frame) > MaxFrameSize {
		return "", fmt.Sprintf("frame %d is over %d bytes", d.frames, MaxFrameSize)
	}
	v, err := d.json.ParseBytes(frame)
	if err != nil {
		return "", fmt.Sprintf("frame %d is not JSON", d.frames)
	}
	if v.Type() != fastjson.TypeObject {
		return "", fmt.Sprintf("frame %d is not a JSON object", d.frames)
	}
	ev := stringBytes(v.Get("event"))
	if ev == nil {
		return "", fmt.Sprintf("frame %d has no event name", d.frames)
	}
	switch string(ev) {
	case "websocket:connected":
		if d.frames > 1 {
			return "", "websocket:connected after other frames"
		}
		return Vonage, ""
	case "connected":
		if d.connected {
			return "", "a second connected frame"
		}
		d.connected = true
		o, _ := v.Object()
		switch {
		case v.Get("protocol") != nil:
			d.allowed = []Name{Twilio, SignalWire}
		case v.Get("version") != nil:
			d.allowed = []Name{Telnyx}
		case o.Len() == 1:
			d.allowed = []Name{Exotel}
		}
		return "", ""
	case "start":
		name, reason := classifyStart(v)
		if reason != "" {
			return "", reason
		}
		// Without a connected frame (Plivo and Vobiz start this way) a
		// start is decided by its ids: the connected frame is missing
		// evidence, not contrary evidence.
		if d.allowed != nil && !slices.Contains(d.allowed, name) {
			return "", fmt.Sprintf("the start frame looks like %s but the connected frame does not", name)
		}
		return name, ""
	}
	if d.frames == 1 {
		return "", fmt.Sprintf("first frame is %s; every provider starts with connected, start or websocket:connected", quote(ev))
	}
	return "", ""
}

// classifyStart names the provider of a start frame, or gives the reason it
// cannot.
func classifyStart(v *fastjson.Value) (Name, string) {
	st := v.Get("start")
	has := func(o *fastjson.Value, k string) bool { return o != nil && o.Get(k) != nil }
	camel := func(o *fastjson.Value) bool {
		return has(o, "streamSid") || has(o, "callSid") || has(o, "accountSid")
	}
	switch {
	case has(st, "call_control_id") || has(v, "call_control_id"):
		return Telnyx, ""
	case has(st, "stream_sid") || has(st, "call_sid") || has(v, "stream_sid"):
		return Exotel, ""
	case has(v, "stream_id") && !camel(st) && !camel(v):
		return Telnyx, ""
	case camel(st) || camel(v):
		return twilioOrSignalWire(st, v)
	case has(st, "callId") || has(st, "callUUID") || has(st, "streamId") || has(v, "callId") || has(v, "streamId"):
		return plivoOrVobiz(st, v)
	}
	return "", "start frame carries no id of any known provider"
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// every reports whether s is not empty and each of its bytes is ok.
func every[S ~string | ~[]byte](s S, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return len(s) > 0
}
