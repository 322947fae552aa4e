// Package stt is the streaming speech-to-text contract between the bridge and
// a recognition engine. One Stream transcribes one track of one call; every
// time it reports is on the call clock (milliseconds since the first sample
// of the call's earliest track), so results line up with the WAV files.
//
// Implementations: stt/mock (deterministic, offline, driven by the audio only)
// and stt/google (Google Cloud Speech-to-Text v1 streaming). stt/session
// supervises a track's transcription for any of them, and gives an engine
// that only opens, feeds and maps its streams the rest of a Stream.
package stt

import (
	"context"
	"errors"
	"strconv"
)

// Kind says what a Result carries.
type Kind uint8

const (
	// Partial is a provisional hypothesis for a segment; a later Partial or
	// the Final with the same SegmentID supersedes it.
	Partial Kind = iota + 1
	// Final is the settled text of a segment. Exactly one Final is emitted
	// per SegmentID.
	Final
	// Status is a notice about the stream itself (a restart, a retry, a
	// permanent failure); see Result.Status.
	Status
)

func (k Kind) String() string {
	if k >= Partial && k <= Status {
		return [...]string{"partial", "final", "status"}[k-1]
	}
	return "unknown"
}

// Word is one recognised word with its call-clock times.
type Word struct {
	Word       string  `json:"word"`
	StartMs    int64   `json:"start_ms"`
	EndMs      int64   `json:"end_ms"`
	Confidence float64 `json:"confidence,omitempty"`
}

// Result is one output of a Stream.
type Result struct {
	Kind      Kind
	Track     string // the StreamConfig.Track it belongs to
	SegmentID string // "<track>-<n>", n counting from 1 per track
	Text      string
	// Stability is the engine's estimate (0..1) that a Partial will not
	// change; 0 when unknown.
	Stability float64
	// Confidence (0..1) of a Final; 0 when unknown.
	Confidence float64
	// StartMs and EndMs are call-clock times of the segment. For a Status
	// result, StartMs is when it happened.
	StartMs, EndMs int64
	Words          []Word
	// Status is set only when Kind is Status.
	Status *StatusInfo
}

// StatusInfo describes something that happened to the stream itself.
type StatusInfo struct {
	// Event is one of the Event* constants.
	Event string
	// Code is the engine's error code ("Unavailable", "OutOfRange", …) or "".
	Code    string
	Message string
	// Permanent is set on an EventFailed that opening another stream would
	// only repeat (credentials, permissions, an invalid configuration): the
	// caller must not reopen the track's transcription. Unset, the engine
	// gave up on an outage it could not ride out, and a new stream opened
	// later may work.
	Permanent bool
}

// Status events, as they appear in transcript.json and to subscribers
// (prefixed "stt.").
const (
	EventRollover = "rollover" // a planned switch to a fresh engine stream
	EventRetry    = "retry"    // the engine stream failed and is being reopened
	EventResumed  = "resumed"  // a reopened stream is producing results again
	EventFailed   = "failed"   // transcription of this track stopped for good
	EventGap      = "gap"      // audio that was never transcribed (queue overflow, outage)
)

// StreamConfig describes the track a Stream will transcribe.
type StreamConfig struct {
	CallID string
	Track  string // "inbound" or "outbound"
	// SampleRate of the PCM16LE mono audio given to Write: 8000, 16000 or 24000.
	SampleRate int
	// Params are the stream's custom parameters as the provider sent them.
	// Engines read per-call overrides from them (language, hints, script).
	Params map[string]string
}

// Recognizer opens streams. One Recognizer serves every call of a process
// and is safe for concurrent use.
type Recognizer interface {
	Open(ctx context.Context, cfg StreamConfig) (Stream, error)
}

// Stream transcribes one track.
//
// The caller writes audio from one goroutine at a time and drains Results
// from another. Cancelling the context given to Open abandons the stream:
// Results is closed promptly without further results.
//
// A Stream whose Write can be made never to block implements InlineWriter
// too: the caller may then hand it audio on the producer's own goroutine
// (a media socket's read loop) instead of through a queue and a goroutine
// of its own.
type Stream interface {
	// Write hands over PCM16LE mono audio whose first sample sits at sample
	// position pos on the call clock (samples since call t=0 at the
	// stream's sample rate). Positions only increase; a jump forward is a
	// stretch of audio that will never arrive. Write may block for
	// backpressure and must not retain pcm after it returns. After the
	// stream has failed for good it returns an error wrapping ErrStopped.
	Write(pos int64, pcm []byte) error
	// Results delivers results in order. It is closed once the stream has
	// finished: after Close and the last final, after a permanent failure,
	// or when the context is cancelled.
	Results() <-chan Result
	// Close says no more audio will come. The engine settles what it has,
	// delivers the remaining results and then closes Results. Close does
	// not wait for that; it is idempotent and safe after a failure.
	Close() error
}

// InlineWriter is implemented by a Stream that can take audio without
// blocking, so that it may be written on a goroutine that must never wait
// (a media socket's read loop) with no queue and no goroutine in between.
type InlineWriter interface {
	// TryWrite is Write that never blocks, does no I/O and costs about as
	// much as copying pcm. When Write would have to wait (the engine is
	// behind), TryWrite takes none of pcm and returns false; the caller
	// keeps the audio and hands it to Write later, from a goroutine that
	// may wait. Otherwise it returns true and Write's error. TryWrite and
	// Write are never called at the same time.
	TryWrite(pos int64, pcm []byte) (ok bool, err error)
}

// ErrStopped is returned by Write once a stream has stopped for good.
var ErrStopped = errors.New("stt: stream stopped")

// SegmentID formats the id of the n-th segment of a track.
func SegmentID(track string, n int) string { return track + "-" + strconv.Itoa(n) }
