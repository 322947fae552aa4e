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
//     onto the track's STT queue. Nothing on this path waits for the
//     recognizer or for a subscriber.
//   - Each call has one goroutine, run, started by the Registry and awaited
//     by Registry.Shutdown. It writes call.json and transcript.json when they
//     change (coalescing bursts), enforces the maximum call duration and
//     the reconnect grace, and finalizes the call once its last stream is
//     gone: transcription settles (bounded by the drain timeout), the WAVs
//     are closed (header patched, synced), the documents are written a last
//     time and call.ended is published.
//   - Each transcribed track has two goroutines owned by its call: the
//     feeder, which opens the recognizer (never under the call's lock) and
//     moves audio from the queue to stt.Stream.Write (which may block), and
//     the results reader of the current stream, which turns stt.Results
//     into transcript segments and events. When a stream fails for good or
//     cannot be opened, the feeder opens a new one after a backoff (1 s,
//     doubling to 30 s) while the queue keeps the newest audio; segment ids
//     continue after those already used. Both exit before finalize returns.
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
//   - The STT queue of a track holds at most --stt-queue of audio. When it
//     is full the oldest audio is dropped, counted, and recorded as an
//     audio.gap event of kind "stt"; the recording is unaffected.
//   - The publisher (the web hub) never blocks Publish; its own per-
//     subscriber bounds apply there.
//   - A document write that fails is logged (once until writes succeed
//     again) and retried at the next change; a WAV write that fails, or a
//     recording or call folder that cannot be opened, stops that track's
//     recording (the error is in call.json and the metrics, once) while
//     transcription and captions go on.
package bridge
