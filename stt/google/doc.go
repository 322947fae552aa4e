// Package google implements the stt contract with Google Cloud
// Speech-to-Text v1 streaming recognition (cloud.google.com/go/speech).
//
// One Recognizer per process holds one client with a pool of gRPC
// connections (Google allows about 100 streams per connection). Each track
// gets one session.Stream, which runs a sequence of engine streams
// (StreamingRecognize calls), one at a time, all sending LINEAR16 at the
// track's rate in requests of ChunkDuration. What that Stream does with
// them (call clock, rollover, retries with replay, hold and silence, its
// queue and goroutines) is described in package stt/session; this package
// only opens the calls, sends the config and the audio, maps responses
// and says what an error means. Config holds the defaults of that policy
// for Google.
//
// # Limits
//
// Google ends a stream after 305 s of audio, so StreamLimit is at most
// 5 min (default: rotate after 4m30s at a pause, at 4m50s regardless). It
// fails a stream after about 10 s without audio, so IdleClose is at most
// 8 s. A request carries at most 15,360 bytes of audio.
//
// # Failures
//
// OutOfRange, Aborted, Unavailable, DeadlineExceeded, Internal,
// ResourceExhausted (slower backoff), Unknown and an unexpected Canceled
// are worth another stream; InvalidArgument, PermissionDenied,
// Unauthenticated and other configuration errors are permanent. An error
// Google sends inside a response is the stream's status.
//
// # Goroutines
//
// Recognizer.Open starts the track's Stream.Run on a goroutine the
// Recognizer tracks. Cancelling the Open context ends it; Recognizer.Close
// cancels every stream, waits for their goroutines and closes the client.
//
// # Per-call parameters
//
// StreamConfig.Params "language" replaces Config.Language (an invalid tag
// is ignored with a warning) and "hints" adds comma-separated phrase hints.
package google
