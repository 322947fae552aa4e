// Package session supervises the transcription of one track, the same for
// every engine. It has two layers:
//
//   - Session, owned by the bridge's track: the track's audio queue, the
//     feeder that opens a recognizer stream (stt.Recognizer.Open) and feeds
//     it, and the reopening of a stream that stopped for good.
//   - Stream, an stt.Stream an engine's Recognizer returns: it runs a
//     sequence of engine streams (Engine.Open, one at a time) and owns
//     rotation before the engine's session limit, replay of the audio
//     since the last final after a failure, retries with backoff, the hold
//     policy and the drain at hang-up. An Engine only opens streams, sends
//     audio, maps responses (Conn) and says what its errors mean
//     (Failure); it declares its Limits.
//
// # Session: goroutines
//
// Session.Write is called by the track's ingesting goroutine and never
// blocks: it copies the audio into the queue. Session.Run is the feeder: it
// opens streams (never on the ingesting goroutine, so an engine that is
// slow or down holds nothing up) and moves audio from the queue to
// stt.Stream.Write, which may block. For each stream a results goroutine,
// owned by Run, passes stt.Results to the Handler. Run returns only when
// both have exited. Session.Close ends the input and waits for the drain,
// bounded by its context.
//
// # Session: the queue and what it drops
//
// The queue holds at most Config.Queue of audio. When it is full the
// oldest audio is dropped (the newest is what a caption reader waits for)
// and reported to Handler.Gap as one stretch; the positions carried with
// the audio tell the engine where the hole is. While no stream is open
// (the engine is down, or between reopen attempts) the queue keeps the
// newest audio for the next stream. What is left in the queue when
// transcription ends early is reported as a gap too.
//
// # Session: reopening
//
// When a stream stops taking audio or closes its results before the track
// ended, or a stream cannot be opened, the next attempt waits a backoff:
// about ReopenMin at first, doubling up to ReopenMax while attempts keep
// failing, each wait jittered to between half and all of it so that the
// tracks of many calls do not reopen in step. Streams ride out short
// outages themselves (below); this covers the long ones they give up on.
// Only progress resets the delay: a stream that delivered transcript text
// (a partial or a final with words in it). Status results (retries, gaps,
// a failure) are not progress, so an engine that keeps failing is reopened
// ever more slowly. A failure the engine marks permanent (credentials,
// permissions, configuration) is never reopened.
//
// # Stream: call clock
//
// Every engine stream remembers the call-clock sample position of its
// first audio (its base). Engine times are offsets into the stream's own
// audio, so a result's call time is base + offset, exact to the sample:
// time is counted on audio, never on the wall clock. A jump in Write
// positions up to GapFill is sent as silence so that engine time stays
// equal to call time; after a longer jump the next engine stream starts
// where audio resumes.
//
// # Stream: rollover
//
// Once an engine stream has carried RotateAfter of audio, it is replaced
// at the next pause (RotatePause of quiet audio); at StreamLimit (at most
// the engine's MaxSession) it is replaced regardless. Replacing means:
// half-close the old stream, keep reading until it has delivered its
// finals and ended, then open the next one at the following sample. The
// audio arriving meanwhile waits in the queue and is sent as a short
// burst. Results stay in order and nothing is sent twice. An
// stt.EventRollover status marks the switch.
//
// # Stream: failures
//
// When an engine stream fails with an error its Engine marks Retry, the
// track emits stt.EventRetry, waits a jittered exponential backoff
// (BackoffInitial doubling to BackoffMax; after a Slow failure
// ExhaustedBackoff doubling to 4×BackoffMax), opens a new engine stream
// whose base is the end of the last final, and replays the audio from
// there (kept in a buffer bounded by ReplayLimit) before the live audio.
// The first response of the new stream emits stt.EventResumed. An engine
// stream that ends unasked before any response counts as Unavailable, so
// a server that does that to every stream is not reopened as fast as
// audio arrives; so does a send blocked beyond SendTimeout, and a drain
// beyond DrainTimeout counts as DeadlineExceeded. Only transcript text (a
// partial or a final with words) resets the count of failures and the
// backoff. An error not marked Retry emits stt.EventFailed marked
// Permanent (the caller must not reopen the track); MaxRetries failures
// in a row without transcript text emit stt.EventFailed unmarked (an
// outage: a stream opened later may work). Either way Results closes and
// Write returns stt.ErrStopped. Audio that can no longer be transcribed
// (queue or replay buffer full) is reported once per stretch as
// stt.EventGap.
//
// # Stream: hold and silence
//
// Engines fail a stream after a while without audio (Limits.AudioTimeout),
// and long holds cost money. When no audio arrives at all for IdleClose,
// the engine stream is half-closed (its finals still arrive) and the next
// one opens with the next audio. What happens to quiet audio depends on
// Hold:
//
//   - HoldReopen: after SilenceClose of quiet audio (RMS at or below
//     SilenceLevel) the engine stream is half-closed; quiet audio is then
//     kept only for the last PreRoll, and the first loud chunk opens a new
//     engine stream starting PreRoll before it, so the first words after a
//     hold are heard in full.
//   - HoldKeepAlive: quiet audio is streamed like speech.
//
// # Stream: goroutines and queues
//
// Stream.Write (the caller's goroutine) copies audio into a queue bounded
// by QueueDuration and never waits for the engine: when the queue is full
// the newest audio is dropped and reported as a gap (behind a Session's
// queue this only happens when the engine cannot take audio for longer
// than QueueDuration). Stream.Run owns all other state: it sends, rotates,
// retries and emits results. Each engine stream has one receive goroutine
// feeding Run. A send blocked beyond SendTimeout (a dead peer) cancels
// the engine stream. Partials are dropped when Results is full (a later
// one supersedes them); finals and status results wait for the reader.
// Cancelling Run's context ends everything.
package session
