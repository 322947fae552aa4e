package provider

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Dialect is everything the bridge knows about one provider: how its frames
// parse (defaults and byte order), whether its media needs reordering,
// which fields of its status callbacks are kept, and how to write its
// frames (Wire). Each provider's file declares one; dialects registers it.
// Detection rules span providers and stay in detect.go, calling each
// file's id predicates.
type Dialect struct {
	Name Name
	// Order is the L16 byte order the provider is documented or observed
	// to use (protocols.md §7.3); OrderUnknown where the evidence is missing.
	Order ByteOrder
	// defaultEncoding applies when the start frame names no encoding:
	// the provider's only or documented default codec. Plivo and Vobiz
	// document contradictory defaults and get none.
	defaultEncoding Encoding
	defaultRate     int
	// binary: the provider sends audio as binary WebSocket frames.
	binary bool
	// connectedStart: the websocket:connected frame is the stream's start
	// (Vonage); otherwise it is ignored.
	connectedStart bool

	// Reorder: media frames may arrive out of chunk order and are put back
	// in order by chunk number. Providers that deliver in order over one
	// WebSocket don't set it: holding frames back would only add latency.
	Reorder bool
	// CallbackFields are the fields of the provider's stream status
	// callbacks a call record keeps; nil when the bridge takes no status
	// callbacks from it.
	CallbackFields []string
	// Markup are the stream instructions the provider's voice webhook can
	// be answered with.
	Markup []Markup
	// fillCallID gives a stream that carries no call id one (Vonage).
	fillCallID func(*Start)
	// Wire writes the provider's frames; nil when no tool plays it.
	Wire *Wire
}

// dialects registers every provider, in documentation order: adding one is
// its file, its fixtures and a line here.
var dialects = []*Dialect{twilio, signalWire, plivo, vobiz, telnyx, exotel, vonage}

// Names lists every supported provider, in documentation order.
var Names = func() []Name {
	out := make([]Name, len(dialects))
	for i, d := range dialects {
		out[i] = d.Name
	}
	return out
}()

// Lookup returns the dialect of n, or nil when n is not Valid.
func Lookup(n Name) *Dialect {
	for _, d := range dialects {
		if d.Name == n {
			return d
		}
	}
	return nil
}

// Valid reports whether n is a supported provider.
func (n Name) Valid() bool { return Lookup(n) != nil }

// FillCallID gives st a call id when p's streams carry none (Vonage: the
// call_id header the NCCO sets, Vonage's uuid headers, or a new id);
// otherwise st is left as it is.
func FillCallID(p Name, st *Start) {
	if d := Lookup(p); d != nil && d.fillCallID != nil && st != nil && st.CallID == "" {
		d.fillCallID(st)
	}
}

// IDs are the ids one written stream carries, shaped as its provider's.
type IDs struct {
	Call, Stream, Account string
}

// Wire is how one provider frames a stream (protocols.md and the
// fixtures): the formats it streams and its frames, for the simulator and
// the soak. Media frames are appended to the caller's buffer so that a load
// of many calls allocates nothing per frame.
type Wire struct {
	// Stereo: one socket carries both tracks (the start frame lists them
	// and each media frame names its track). Otherwise only inbound.
	Stereo bool
	// Encodings the provider can stream, the first being the default.
	Encodings []Encoding
	// L16Rates the provider can stream L16 at (G.711 is always 8 kHz).
	L16Rates []int
	// FrameMs is the provider's usual frame length.
	FrameMs int
	// EpochTimestamps: media timestamps are Unix milliseconds.
	EpochTimestamps bool
	// FirstSeq is the sequence number of the first frame after start.
	FirstSeq int64

	ids       func() IDs // random ids in the provider's shape
	connected string     // the frame sent before start, or ""
	start     startFunc
	// media and stop are frames as templates for appendFrame; stop is ""
	// for a provider that ends a stream by closing the socket.
	media, stop string
}

// NewIDs makes random ids in the provider's shape.
func (w *Wire) NewIDs() IDs { return w.ids() }

// Connected is the frame sent before start, or nil.
func (w *Wire) Connected() []byte {
	if w.connected == "" {
		return nil
	}
	return []byte(w.connected)
}

// Start is the start frame of a stream of tracks in enc at rate with
// custom parameters params.
func (w *Wire) Start(ids IDs, tracks []string, enc Encoding, rate int, params map[string]string) []byte {
	if params == nil {
		params = map[string]string{}
	}
	b, _ := json.Marshal(w.start(ids, tracks, enc, rate, params))
	return b
}

// AppendMedia appends one media frame: seq is the stream's message counter,
// chunk the track's frame counter (from 1), ts the timestamp as the
// provider sends it, payload the audio already base64-encoded.
func (w *Wire) AppendMedia(dst []byte, ids IDs, seq, chunk, ts int64, track string, payload []byte) []byte {
	return appendFrame(dst, w.media, ids, seq, chunk, ts, track, payload)
}

// Stop is the stop frame, or nil for a provider that ends a stream by
// closing the socket.
func (w *Wire) Stop(ids IDs, seq int64) []byte {
	if w.stop == "" {
		return nil
	}
	return appendFrame(nil, w.stop, ids, seq, 0, 0, "", nil)
}

// startFunc gives the JSON value of a start frame; params is never nil.
type startFunc func(ids IDs, tracks []string, enc Encoding, rate int, params map[string]string) any

// appendFrame appends the template frame with each of $seq, $chunk, $ts,
// $track, $payload, $call, $stream and $account replaced by its value.
func appendFrame(dst []byte, frame string, ids IDs, seq, chunk, ts int64, track string, payload []byte) []byte {
	for {
		i := strings.IndexByte(frame, '$')
		if i < 0 {
			return append(dst, frame...)
		}
		dst = append(dst, frame[:i]...)
		frame = frame[i+1:]
		n := 0
		for n < len(frame) && 'a' <= frame[n] && frame[n] <= 'z' {
			n++
		}
		switch frame[:n] {
		case "seq":
			dst = strconv.AppendInt(dst, seq, 10)
		case "chunk":
			dst = strconv.AppendInt(dst, chunk, 10)
		case "ts":
			dst = strconv.AppendInt(dst, ts, 10)
		case "track":
			dst = append(dst, track...)
		case "payload":
			dst = append(dst, payload...)
		case "call":
			dst = append(dst, ids.Call...)
		case "stream":
			dst = append(dst, ids.Stream...)
		case "account":
			dst = append(dst, ids.Account...)
		}
		frame = frame[n:]
	}
}

// SendsStop: the provider ends a stream with a stop frame; otherwise it
// just closes the socket.
func (w *Wire) SendsStop() bool { return w.stop != "" }

// CheckFormat says whether the provider can stream enc at rate.
func (d *Dialect) CheckFormat(enc Encoding, rate int) error {
	w := d.Wire
	switch {
	case !slices.Contains(w.Encodings, enc):
		return fmt.Errorf("%s does not stream %s (it streams %v)", d.Name, enc, w.Encodings)
	case enc != L16 && rate != 8000:
		return fmt.Errorf("%s streams %s at 8000 Hz only, not %d Hz", d.Name, enc, rate)
	case enc == L16 && !slices.Contains(w.L16Rates, rate):
		return fmt.Errorf("%s streams L16 at %v Hz, not %d Hz", d.Name, w.L16Rates, rate)
	}
	return nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randUUID() string {
	h := randHex(16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
