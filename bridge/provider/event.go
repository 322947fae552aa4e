// Package provider parses the media-stream frames of each telephony
// provider into one provider-neutral Event. Parsers are pure: bytes in,
// values out; no I/O, no logging, no goroutines, and no allocation for media
// frames in steady state.
//
// Each provider is one Dialect in its own file, holding all the bridge
// knows about it; dialect.go registers them.
package provider

import "errors"

// Name identifies a provider dialect; each dialect's file declares its own.
type Name string

// Kind is the provider-neutral type of a frame.
type Kind uint8

const (
	KindOther     Kind = iota // a known or unknown event the bridge does not act on (mark, playedStream, …)
	KindConnected             // handshake frame before start
	KindStart                 // stream metadata: ids, tracks, media format, custom parameters
	KindMedia                 // one chunk of audio of one track
	KindDTMF                  // a key press
	KindStop                  // the provider ends the stream
)

func (k Kind) String() string {
	if k > KindStop {
		return "other"
	}
	return [...]string{"other", "connected", "start", "media", "dtmf", "stop"}[k]
}

// Encoding is the wire codec of a stream, normalised.
type Encoding string

const (
	PCMU Encoding = "PCMU" // G.711 μ-law
	PCMA Encoding = "PCMA" // G.711 A-law
	L16  Encoding = "L16"  // 16-bit linear PCM; byte order is per provider (see ByteOrder)
)

// ByteOrder of L16 audio as a provider sends it.
type ByteOrder uint8

const (
	OrderUnknown ByteOrder = iota
	LittleEndian
	BigEndian
)

func (o ByteOrder) String() string {
	if o > BigEndian {
		return "unknown"
	}
	return [...]string{"unknown", "little-endian", "big-endian"}[o]
}

// Format is a stream's media format as announced in its start frame.
type Format struct {
	// Encoding is PCMU, PCMA or L16 when supported; otherwise "" (OPUS,
	// G722, AMR-WB, …) and the bridge ends the stream, naming Raw.
	Encoding Encoding
	// Raw is the encoding as the provider sent it ("audio/x-l16;rate=16000",
	// "PCMU", …), kept for logs and for the reason of a refused stream.
	Raw        string
	SampleRate int
	Channels   int
	// Order is the byte order this provider is documented or observed to
	// use for L16 (OrderUnknown where the evidence is missing).
	Order ByteOrder
}

// Start is the metadata of a stream.
type Start struct {
	CallID    string
	StreamID  string
	AccountID string
	// Tracks are normalised to "inbound" and "outbound". Empty when the
	// provider did not say (treat as inbound only).
	Tracks []string
	Format Format
	// CustomParameters are the user's key/value pairs: Twilio and
	// SignalWire customParameters, Plivo/Vobiz extra_headers, Exotel
	// custom_parameters, Telnyx client_state, Vonage connect headers. At most
	// MaxCustomParameters entries; see DroppedParameters.
	CustomParameters map[string]string
	// DroppedParameters counts custom parameters left out because they
	// broke a limit (MaxCustomParameters, MaxParameterKeyLen,
	// MaxParameterValueLen) or had an empty key.
	DroppedParameters int
	From, To          string
}

// Event is one parsed frame. A Parser reuses one Event's storage; Payload
// aliases the parser's buffer and is valid only until the next Parse.
type Event struct {
	Kind Kind
	// Name is the event name as sent ("media", "playedStream", …).
	Name string
	// Seq is the provider's sequence number when present (HasSeq).
	Seq    int64
	HasSeq bool
	// StreamID and CallID when present on this frame. The parser keeps the
	// last id it saw and hands out that same string while the bytes on the
	// wire do not change, so media frames allocate nothing for their ids.
	StreamID string
	CallID   string

	// Start is set for KindStart.
	Start *Start

	// Media (KindMedia). Track is "inbound" or "outbound", or "" when the
	// frame does not say. Chunk and TimestampMs are the provider's
	// placement fields when present; TimestampMs is as sent (relative ms for
	// Twilio-like providers, Unix epoch ms for Plivo and Vobiz).
	Track        string
	Chunk        int64
	HasChunk     bool
	TimestampMs  int64
	HasTimestamp bool
	Payload      []byte // decoded audio bytes in the wire codec

	// DTMF (KindDTMF).
	Digit      string
	DurationMs int64

	// Stop (KindStop): the provider's reason when it gives one. For a
	// Telnyx "error" event (KindOther) the error's detail.
	Reason string

	// Warning names a problem that does not stop the frame from being
	// used: an odd-length L16 payload (the codec drops the last byte) or
	// custom parameters dropped for breaking a limit. It is one of a few
	// constant strings, so it can be logged (sampled) without allocation.
	Warning string
}

// Errors a caller branches on.
var (
	// ErrMalformed wraps every error about a frame that cannot be parsed.
	ErrMalformed = errors.New("malformed frame")
	// ErrUnknownProvider is returned by detection when no dialect matches.
	ErrUnknownProvider = errors.New("unknown provider")
)
