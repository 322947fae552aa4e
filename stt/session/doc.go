// Package session supervises the transcription of one track, the same for
// every engine; docs/ARCHITECTURE.md walks the data path and lists every
// bound. Two layers:
//
//   - Session, owned by the bridge's track: Write copies audio into a queue
//     and never blocks; Run (the feeder) opens an stt.Recognizer stream,
//     feeds it (Write may block there) and hands its results to the Handler
//     from a second goroutine; Close ends the input and waits for the drain.
//     A stream that implements stt.InlineWriter gets its audio from Write
//     itself, on the caller's goroutine, while it is open and the queue is
//     empty: the feeder sleeps until the stream refuses audio or fails, or
//     the input ends.
//   - Stream, the stt.Stream of an engine's Recognizer: it runs engine
//     streams (Engine.Open, one at a time) and does everything but open,
//     send, map responses and classify errors, which is the Engine's. Run
//     owns its state; each engine stream has one receive goroutine.
//
// Bounds and policy (Config for a Session, Policy for a Stream):
//
//   - Session queue: Config.Queue of audio; when full the oldest is dropped
//     and reported to Handler.Gap once per stretch, as is what is still
//     queued when transcription ends early. Audio written inline is never
//     queued; audio an inline stream refused or failed on is, and the
//     feeder writes (or reports) it as any queued audio.
//   - Session reopen: a stream that stops, or cannot be opened, is reopened
//     after a jittered backoff from ReopenMin doubling to ReopenMax; only
//     transcript text resets it, and a permanent failure is never reopened.
//   - Call clock: every engine stream has a base (the call-clock sample of
//     its first audio); result times are base + engine offset. A jump in
//     positions up to GapFill is sent as silence, after a longer one the
//     next engine stream starts where audio resumes.
//   - Rollover: after RotateAfter of audio at the next RotatePause of quiet,
//     at StreamLimit (at most Limits.MaxSession) regardless: half-close, take
//     the old stream's finals, open the next at the following sample
//     (stt.EventRollover).
//   - Failures: an error the Engine marks Retry emits stt.EventRetry, waits
//     BackoffInitial doubling to BackoffMax (ExhaustedBackoff to
//     4×BackoffMax when Slow), and replays the audio since the last final
//     (at most ReplayLimit) on a new engine stream; its first response emits
//     stt.EventResumed. A stream ending unasked before any response, or a
//     send blocked beyond SendTimeout, is Unavailable; a drain beyond
//     DrainTimeout is DeadlineExceeded. A failure not marked Retry, or
//     MaxRetries in a row without transcript text, emits stt.EventFailed
//     (Permanent in the first case); Results then closes and Write returns
//     stt.ErrStopped.
//   - Hold: no audio for IdleClose (at most Limits.AudioTimeout) half-closes
//     the engine stream. HoldReopen also does so after SilenceClose of audio
//     at or below SilenceLevel and reopens at the first loud chunk, PreRoll
//     before it; HoldKeepAlive streams quiet audio like speech.
//   - Stream queue: Write never waits for the engine; beyond QueueDuration
//     the newest audio is dropped (stt.EventGap). Audio leaves it in
//     chunks of ChunkDuration: Write wakes the run goroutine once per full
//     chunk, and a chunk still being filled is sent once no audio has come
//     for ChunkDuration, or at Close. Results holds 64: partials
//     are dropped when it is full, finals and statuses wait.
package session
