package bridge

import (
	"encoding/json"
	"time"
)

// Event types sent to subscribers (the contract in DESIGN.md, extended with
// call.updated, dtmf, audio.gap and stt.* notices).
const (
	TypeCallStarted       = "call.started"
	TypeCallUpdated       = "call.updated" // a stream joined and brought new tracks
	TypeTranscriptPartial = "transcript.partial"
	TypeTranscriptFinal   = "transcript.final"
	TypeDTMF              = "dtmf"
	TypeGap               = "audio.gap"
	TypeCallEnded         = "call.ended"
	TypeCallResumed       = "call.resumed" // transcript.json only: the call id came back after the call had ended
	// STT notices are "stt." + stt.Event* ("stt.retry", "stt.failed", …).
	TypeSTTPrefix = "stt."
)

// End reasons of a call or stream.
const (
	ReasonStop       = "stop"
	ReasonDisconnect = "disconnect"
	ReasonShutdown   = "shutdown"
	ReasonTimeout    = "timeout"
	ReasonError      = "error"
	// ReasonNodeLost: cluster mode, the replica holding the call stopped
	// heart-beating; another replica ends the call for its subscribers.
	ReasonNodeLost = "node_lost"
)

// Event is one message for publishers. Whoever makes one sets Type, CallID
// and Body; the Sequencer fills in the rest before any publisher sees it,
// so publishers route on Kind, Segment and Start and send Data without
// looking into Body.
type Event struct {
	Type   string
	CallID string
	// Body is one of the *Body types below; its JSON fields follow type,
	// call_id and seq in Data. It stays set for in-process readers (tests).
	Body any

	// Seq numbers the call's events: per call, strictly increasing.
	Seq uint64
	// Kind tells which events a later one supersedes.
	Kind Kind
	// Segment is the transcript segment of a partial or final.
	Segment string
	// Data is the event encoded once, shared by every publisher:
	// {"type":…,"call_id":…,"seq":…, <Body's fields>}.
	Data []byte
	// Start is set on call.updated: the call's call.started re-encoded,
	// with call.started's seq, listing everything every call.updated so far
	// brought. A publisher that keeps call.started for late joiners keeps
	// this in its place.
	Start []byte
	// More is set on a call.ended that transcript.ready and
	// recording.ready follow (recording.ready last): a publisher that
	// ends a call's subscribers at call.ended may wait for those.
	More bool
}

// Kind sorts events by what publishers may drop.
type Kind uint8

// Kinds of events.
const (
	// KindDurable events are kept for late joiners: everything but
	// partials (finals included).
	KindDurable Kind = iota
	// KindPartial: a newer partial of the same Segment, or its final,
	// makes it obsolete; late joiners do not need it.
	KindPartial
	// KindFinal: the settled text of its Segment; obsoletes its partials.
	KindFinal
)

// CallStartedBody is the body of call.started and call.updated.
type CallStartedBody struct {
	Provider         string            `json:"provider"`
	Tracks           []string          `json:"tracks"`
	StartedAt        time.Time         `json:"started_at"`
	CustomParameters map[string]string `json:"custom_parameters,omitempty"`
	From             string            `json:"from,omitempty"`
	To               string            `json:"to,omitempty"`
	SampleRate       int               `json:"sample_rate,omitempty"`
}

// PartialBody is the body of transcript.partial.
type PartialBody struct {
	Track     string  `json:"track"`
	SegmentID string  `json:"segment_id"`
	Text      string  `json:"text"`
	Stability float64 `json:"stability"`
	StartMs   int64   `json:"start_ms"`
	EndMs     int64   `json:"end_ms"`
}

// FinalBody is the body of transcript.final. It is also a transcript.json
// segment.
type FinalBody = Segment

// DTMFBody is the body of dtmf.
type DTMFBody struct {
	Track      string `json:"track"`
	Digit      string `json:"digit"`
	AtMs       int64  `json:"at_ms"`
	DurationMs int64  `json:"duration_ms,omitempty"`
}

// GapBody is the body of audio.gap: audio of a track that never arrived
// (filled with silence in the WAV) or was never transcribed.
type GapBody struct {
	Track      string `json:"track"`
	StartMs    int64  `json:"start_ms"`
	DurationMs int64  `json:"duration_ms"`
	// Kind is "media" (frames missing from the provider), "stt" (audio
	// not transcribed) or "record" (audio the recording missed while its
	// writes failed; the WAV holds silence there).
	Kind string `json:"kind"`
}

// STTBody is the body of stt.* notices.
type STTBody struct {
	Track   string `json:"track"`
	AtMs    int64  `json:"at_ms"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// CallEndedBody is the body of call.ended.
type CallEndedBody struct {
	Reason     string    `json:"reason"`
	EndedAt    time.Time `json:"ended_at"`
	DurationMs int64     `json:"duration_ms"`
}

// Event types published after call.ended, once the call's files are
// complete; they are a call's last events.
const (
	TypeTranscriptReady = "transcript.ready"
	TypeRecordingReady  = "recording.ready"
)

// AfterCall reports whether events of type typ come after call.ended.
func AfterCall(typ string) bool {
	return typ == TypeTranscriptReady || typ == TypeRecordingReady
}

// TranscriptReadyBody is the body of transcript.ready: the transcript JSON
// inline when it is at most Config.InlineTranscript bytes (default
// MaxInlineTranscript), else only its URL.
type TranscriptReadyBody struct {
	URL        string          `json:"url"`
	Bytes      int             `json:"bytes"`
	Transcript json.RawMessage `json:"transcript,omitempty"`
}

// MaxInlineTranscript is the largest transcript carried inline by
// transcript.ready by default, and the most --inline-transcript-max
// allows (about an hour of talk); a larger one is only linked.
const MaxInlineTranscript = 256 << 10

// RecordingReadyBody is the body of recording.ready.
type RecordingReadyBody struct {
	Recordings []RecordingFile `json:"recordings"`
}

// RecordingFile is one track's WAV.
type RecordingFile struct {
	Track      string `json:"track"`
	URL        string `json:"url"`
	DurationMs int64  `json:"duration_ms"`
	Bytes      int64  `json:"bytes"`
	SampleRate int    `json:"sample_rate"`
	// ObjectURL is where the WAV is in object storage (s3://bucket/key),
	// with --s3-bucket; it is uploaded shortly after the call ends, and
	// URL serves it from there as well.
	ObjectURL string `json:"object_url,omitempty"`
}
