// Package google implements the stt contract with Google Cloud
// Speech-to-Text v1 streaming recognition (cloud.google.com/go/speech).
//
// One Recognizer per process holds one client with a pool of gRPC
// connections (Google allows about 100 streams per connection). Each track
// gets one stt.Stream, which runs a sequence of engine streams
// (StreamingRecognize calls), one at a time, all sending LINEAR16 at the
// track's rate in requests of ChunkDuration.
//
// # Call clock
//
// Every engine stream remembers the call-clock sample position of its
// first audio (its base). Google's times are offsets into the stream's own
// audio, so a result's call time is base + offset, exact to the sample:
// time is counted on audio, never on the wall clock. A jump in Write
// positions up to GapFill is sent as silence so that engine time stays
// equal to call time; after a longer jump the next engine stream starts
// where audio resumes.
//
// # Rollover
//
// Google ends a stream after 305 s. Once a stream has carried RotateAfter
// of audio, it is replaced at the next pause (RotatePause of quiet audio);
// at StreamLimit it is replaced regardless. Replacing means: half-close the
// old stream, keep reading until it has delivered its finals and ended,
// then open the next one at the following sample. The audio arriving
// meanwhile waits in the queue and is sent as a short burst. Results stay
// in order and nothing is sent twice. An stt.EventRollover status marks
// the switch.
//
// # Failures
//
// When an engine stream fails with OutOfRange, Aborted, Unavailable,
// DeadlineExceeded, Internal, ResourceExhausted (slower backoff), Unknown or
// an unexpected Canceled, the track emits stt.EventRetry, waits a jittered
// exponential backoff, opens a new engine stream whose base is the end of
// the last final, and replays the audio from there (kept in a buffer
// bounded by ReplayLimit) before the live audio. The first response of the
// new stream emits stt.EventResumed. An engine stream the server ends
// unasked before any response counts as Unavailable, so a server that does
// that to every stream is not reopened as fast as audio arrives. Only
// transcript text (a partial or a final with words) resets the count of
// failures and the backoff. InvalidArgument, PermissionDenied,
// Unauthenticated and other configuration errors emit stt.EventFailed
// marked Permanent (the caller must not reopen the track); MaxRetries
// failures in a row without transcript text emit stt.EventFailed unmarked
// (an outage: a stream opened later may work). Either way Results closes
// and Write returns stt.ErrStopped. Audio that can no longer be transcribed
// (queue or replay buffer full) is reported once per stretch as
// stt.EventGap.
//
// # Hold and silence
//
// Google fails a stream after about 10 s without audio, and long holds
// cost money. When no audio arrives at all for IdleClose, the stream is
// half-closed (its finals still arrive) and the next one opens with the
// next audio. What happens to quiet audio depends on Hold:
//
//   - HoldReopen (default): after SilenceClose of quiet audio (RMS at or
//     below SilenceLevel) the stream is half-closed; quiet audio is then
//     kept only for the last PreRoll, and the first loud chunk opens a new
//     stream starting PreRoll before it, so the first words after a hold
//     are heard in full.
//   - HoldKeepAlive: quiet audio is streamed like speech.
//
// # Goroutines
//
// Write (caller's goroutine) copies audio into a queue bounded by
// QueueDuration and never waits for the engine: when the queue is full the
// audio is dropped and reported as a gap. Each stream has one run
// goroutine that owns all other state: it sends, rotates, retries and
// emits results. Each engine stream has one receive goroutine feeding the
// run goroutine. A send blocked beyond SendTimeout (a dead peer) cancels
// the engine stream. Partials are dropped when Results is full (a later
// one supersedes them); finals and status results wait for the reader.
// Cancelling the Open context ends everything; Recognizer.Close cancels
// every stream, waits for their goroutines and closes the client.
//
// # Per-call parameters
//
// StreamConfig.Params "language" replaces Config.Language (an invalid tag
// is ignored with a warning) and "hints" adds comma-separated phrase hints.
package google
