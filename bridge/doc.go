// Package bridge turns provider media streams into calls: it owns the call
// registry, each call's lifecycle, its tracks, the media clock that places
// every frame on the call clock, and the fan-out of audio to the recording
// and to speech-to-text, and of results to subscribers.
//
// # Goroutines and who owns them
//
//   - A media socket's read loop (owned by the web layer) calls
//     Registry.StartStream once and then Stream.Media, Stream.DTMF and
//     finally Stream.End. Media decodes the frame into the track's own
//     buffer, places it with the track's media clock, writes it to the WAV
//     (buffered; the header is patched every second of audio) and pushes it
//     onto the track's STT queue, or, while the track's stream is open and
//     takes audio inline (stt.InlineWriter: the mock's and Google's do),
//     writes it to the stream on the read loop's goroutine. Nothing on this
//     path waits for the recognizer or for a subscriber. Stream.End drains
//     the stream's reordering window and flushes its tracks' WAVs (written
//     and patched, not synced) before it returns, so the web layer answers a
//     provider's stop only once the stream's audio is in the files; the
//     rest of the end is the call's goroutine's.
//   - Each call has one goroutine, run, started by the Registry and awaited
//     by Registry.Shutdown. It writes call.json and transcript.json when they
//     change (coalescing bursts; without waiting for the disk: the store's
//     sync round makes them durable, as it does the recordings), enforces
//     the maximum call duration and the reconnect grace, and finalizes the call once its last stream is
//     gone: transcription settles (bounded by the drain timeout), the WAVs
//     are closed (header patched, synced), the documents are written a last
//     time and synced, and call.ended is published. A new call's
//     documents are written, unsynced, before StartStream returns, so
//     the start-up repair finds any call that has recorded audio.
//   - Each transcribed track has a transcription session (stt/session)
//     with two goroutines awaited by its call: the feeder, which opens the
//     recognizer (never under the call's lock) and moves audio from the
//     queue to stt.Stream.Write (which may block) whenever audio is queued
//     (before the first open, during a reopen, after the stream refused an
//     inline write), and the results reader
//     of the current stream, whose results the track turns into transcript
//     segments and events. When the engine gives up on a stream (an
//     outage it could not ride out) or a stream cannot be opened, the
//     feeder opens a new one after a backoff (1 s, doubling to 30 s, each
//     wait jittered to between half and all of it) while the queue keeps
//     the newest audio; segment ids continue after those already used.
//     Only progress, a result with transcript text, resets the backoff;
//     status results do not. A failure the engine marks permanent
//     (credentials, permissions, configuration: one stt.failed) ends
//     transcription of the track for the rest of the call, and is never
//     reopened; the recording goes on. Both exit before finalize returns.
//
// # The registry lock
//
// The registry's lock guards its maps only: no file is read or written
// under it. A registry operation that must read or write an id's documents
// while the id is not live (a call starting, a refused stream recorded, a
// callback written into a stored call.json) marks the id busy, does its
// I/O unlocked, and others wanting that id wait for it; a slow disk stalls
// only that call.
//
// # Panics
//
// A panic on any of these goroutines, or while a stream joins its call, is
// recovered where it happened and ends that call only (Call.Fail): its
// streams are asked to close, no stream may join it, and it is finalized
// with reason error. Finalization guards each of its steps, so the WAVs
// are closed and playable and call.ended is published even when one step
// panics. Each panic is logged once with its stack and counted
// (Metrics.Panic, by PanicCall or PanicTrack). The web layer calls Fail
// when a socket's read loop panics.
//
// # Queues and what is dropped
//
//   - Status callbacks: a call keeps at most MaxCallbacksPerCall
//     (MaxCallbackBytesPerCall); further ones are refused. Those held for
//     calls that have not started are bounded in calls, callbacks and
//     bytes; the oldest call's are dropped to make room, and all after ten
//     minutes. Every drop is counted (bridge_callbacks_dropped_total).
//   - Refused streams: a record lists a few and counts the rest.
//   - The STT queue of a track (in its stt/session) holds at most
//     --stt-queue of audio. When it is full the oldest audio is dropped,
//     counted, and recorded as an audio.gap event of kind "stt"; the
//     recording is unaffected.
//   - A call keeps at most MaxEventsPerCall transcript events (gaps, DTMF,
//     STT notices); later ones are counted in events_dropped and the
//     metrics, and neither kept nor published.
//   - Silence filled into a track is bounded by MaxGap per gap and by the
//     call's wall time plus MaxGap in all; missing audio beyond that is not
//     filled (the frame follows the audio before it), only recorded as an
//     audio.gap event and counted.
//   - Events leave through the Sequencer, which numbers each call's events
//     (seq) and encodes each once, under the call's event lock, then hands
//     it to the Publisher (a Fanout of several side by side: the web hub
//     today). No publisher blocks Publish; each applies its own bounds (the
//     hub's per-subscriber outboxes). An ended call's seq is remembered in
//     memory for the resume window (at least ten minutes), so a continued
//     call's seq goes on increasing; after a restart it starts at 1.
//   - A document write that fails is logged (once until writes succeed
//     again) and retried at the next change. A WAV write that fails (a full
//     disk) pauses that track's recording (the error is in call.json and
//     the metrics, once) while transcription and captions go on; once a
//     second of audio the ingesting stream tries to resume it: the WAV is
//     settled at what reached the disk, silence fills it up to the frame
//     in hand so it stays on the call clock, and the stretch is an
//     audio.gap event of kind "record". A recording or call folder that
//     cannot be opened stays unrecorded.
package bridge
