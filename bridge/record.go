package bridge

import (
	"time"

	"github.com/callcaptions/bridge/stt"
)

// Call status values in call.json and the API.
const (
	StatusActive      = "active"
	StatusEnded       = "ended"
	StatusInterrupted = "interrupted" // the process died while the call was active
)

// CallRecord is call.json: everything known about a call except its
// transcript.
type CallRecord struct {
	CallID           string            `json:"call_id"`
	Provider         string            `json:"provider"`
	AccountID        string            `json:"account_id,omitempty"`
	Status           string            `json:"status"`
	Reason           string            `json:"reason,omitempty"` // end reason when ended
	Error            string            `json:"error,omitempty"`  // what went wrong, when something did
	StartedAt        time.Time         `json:"started_at"`
	EndedAt          *time.Time        `json:"ended_at,omitempty"`
	DurationMs       int64             `json:"duration_ms"`
	From             string            `json:"from,omitempty"`
	To               string            `json:"to,omitempty"`
	CustomParameters map[string]string `json:"custom_parameters,omitempty"`
	Tracks           []TrackRecord     `json:"tracks"`
	Streams          []StreamRecord    `json:"streams"`
	Callbacks        []map[string]any  `json:"callbacks,omitempty"`
	// WebhooksFailed lists the webhook deliveries given up on (at most
	// MaxWebhookFailures; later ones are only counted in the metrics).
	WebhooksFailed []WebhookFailure `json:"webhooks_failed,omitempty"`
	// EventsDropped counts transcript events not kept because the call
	// already held --max-events-per-call of them (neither kept nor
	// published).
	EventsDropped int64 `json:"events_dropped,omitempty"`
	// RefusedStreamsDropped counts refused streams beyond those Streams
	// lists (a record lists a few).
	RefusedStreamsDropped int64 `json:"refused_streams_dropped,omitempty"`
}

// TrackRecord describes one recorded track.
type TrackRecord struct {
	Name       string `json:"name"`
	SampleRate int    `json:"sample_rate"`
	Encoding   string `json:"encoding"` // wire codec (PCMU, PCMA, L16)
	ByteOrder  string `json:"byte_order,omitempty"`
	File       string `json:"file"`       // <track>.wav
	Samples    int64  `json:"samples"`    // samples in the WAV, including filled gaps
	Frames     int64  `json:"frames"`     // media frames received
	Duplicates int64  `json:"duplicates"` // frames dropped as duplicates or too late
	GapMs      int64  `json:"gap_ms"`     // silence filled where frames were missing
	Warning    string `json:"warning,omitempty"`
	Error      string `json:"error,omitempty"` // recording error (disk full, …)
}

// StreamRecord describes one provider stream (one WebSocket) of the call.
type StreamRecord struct {
	StreamID   string     `json:"stream_id"`
	Tracks     []string   `json:"tracks"`
	Encoding   string     `json:"encoding"`
	Format     string     `json:"format,omitempty"` // as the provider named it
	SampleRate int        `json:"sample_rate"`
	StartedAt  time.Time  `json:"started_at"`
	EndedAt    *time.Time `json:"ended_at,omitempty"`
	Reason     string     `json:"reason,omitempty"`
	Error      string     `json:"error,omitempty"`
	Refused    bool       `json:"refused,omitempty"` // refused at its start frame: nothing recorded
}

// Transcript is transcript.json.
type Transcript struct {
	CallID   string            `json:"call_id"`
	Tracks   []string          `json:"tracks"`
	Segments []Segment         `json:"segments"`
	Events   []TranscriptEvent `json:"events"`
	// EventsDropped counts events beyond --max-events-per-call: neither
	// kept here nor published to subscribers.
	EventsDropped int64 `json:"events_dropped,omitempty"`
}

// Segment is one final result.
type Segment struct {
	Track      string     `json:"track"`
	SegmentID  string     `json:"segment_id"`
	StartMs    int64      `json:"start_ms"`
	EndMs      int64      `json:"end_ms"`
	Text       string     `json:"text"`
	Confidence float64    `json:"confidence"`
	Words      []stt.Word `json:"words,omitempty"`
}

// TranscriptEvent is a non-speech event on the call clock: gaps, STT
// notices, DTMF.
type TranscriptEvent struct {
	Type       string `json:"type"` // same names as the subscriber events
	Track      string `json:"track,omitempty"`
	AtMs       int64  `json:"at_ms"`
	DurationMs int64  `json:"duration_ms,omitempty"`
	Digit      string `json:"digit,omitempty"`
	Code       string `json:"code,omitempty"`
	Message    string `json:"message,omitempty"`
	Kind       string `json:"kind,omitempty"`
}

// WebhookFailure is a webhook delivery that was given up, listed in the
// call record (webhooks_failed).
type WebhookFailure struct {
	URL      string    `json:"url"` // the endpoint without query or user info
	EventID  string    `json:"event_id"`
	Type     string    `json:"type"`
	Seq      uint64    `json:"seq"`
	Attempts int       `json:"attempts"` // 0: never tried (the outbox was full)
	Error    string    `json:"error"`
	At       time.Time `json:"at"`
}
