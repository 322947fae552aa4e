// Package google implements the stt contract with Google Cloud
// Speech-to-Text v1 streaming recognition (cloud.google.com/go/speech).
//
// One Recognizer per process holds one client with a pool of gRPC
// connections (Google allows about 100 streams per connection). Each track
// gets one session.Stream (see package stt/session for what it does); this
// package only opens the StreamingRecognize calls, sends the config and
// LINEAR16 audio, maps responses and says what an error means.
//
// Limits: Google ends a stream after 305 s of audio, so StreamLimit is at
// most 5 min; it fails a stream after about 10 s without audio, so
// IdleClose is at most 8 s; a request carries at most 15,360 bytes.
//
// Failures: OutOfRange, Aborted, Unavailable, DeadlineExceeded, Internal,
// ResourceExhausted (slower backoff), Unknown and Canceled are worth
// another stream; any other code is permanent. An error Google sends inside
// a response is the stream's status.
//
// Per-call parameters: StreamConfig.Params "language" replaces
// Config.Language (an invalid tag is ignored with a warning) and "hints"
// adds comma-separated phrase hints.
package google
