package bridge

import (
	"context"
	"errors"
	"sync/atomic"
)

// Sink consumes one track's audio as the track receives it. A track hands
// every frame to each of its sinks in order: the recording first, then the
// transcription session. A new consumer (a voice detector, a live monitor)
// is a type with these two methods and one line in newTrackLocked.
type Sink interface {
	// Write takes one frame of PCM16LE whose first sample is at pos on
	// the track's timeline. A pos beyond the end of the previous frame
	// means the audio between is missing (the sink may fill it). Write
	// runs on the media read loop: it must not block, and pcm is reused
	// once it returns.
	Write(pos int64, pcm []byte)
	// Close ends the track's audio and returns when the sink has settled
	// or ctx ends.
	Close(ctx context.Context)
}

// recording is the sink that writes a track to its WAV. A failed write
// stops recording until resume succeeds; the stretch it missed becomes
// silence, so the WAV stays aligned to the call clock.
type recording struct {
	t       *track // whose call is told of errors and of stretches not recorded
	sink    AudioSink
	err     error // the last write failed: nothing is written until it resumes
	retryAt int64 // while err: the position at which resuming is next tried
	// samples is how many samples the WAV holds (the media goroutine
	// writes it, the call's documents read it).
	samples atomic.Int64
}

// recordRetrySeconds is how much audio passes between attempts to resume a
// recording whose writes failed: a full disk is not asked again per frame.
const recordRetrySeconds = 1

func (r *recording) Write(pos int64, pcm []byte) {
	if r.err != nil && pos >= r.retryAt {
		r.resume(pos)
	}
	if r.err != nil {
		return
	}
	if gap := pos - r.samples.Load(); gap > 0 && !r.ok(r.sink.WriteSilence(gap), pos) {
		return
	}
	if _, err := r.sink.Write(pcm); r.ok(err, pos) {
		r.samples.Store(pos + int64(len(pcm)/2))
	}
}

// ok notes the outcome of a write at pos. A failure is reported once, not
// again for each failed attempt to resume.
func (r *recording) ok(err error, pos int64) bool {
	if err == nil {
		return true
	}
	r.retryAt = pos + recordRetrySeconds*int64(r.t.rate)
	if r.err == nil {
		r.err = err
		r.report()
	}
	return false
}

func (r *recording) report() {
	r.t.log.Error().Err(r.err).Msg("recording failed; transcription continues")
	r.t.call.trackError(r.t.name, r.err)
}

// resume tries to continue at pos: the sink settles at what it holds,
// silence fills the stretch it missed, and that stretch is an audio.gap of
// kind "record". When the sink cannot resume or the fill fails, the next
// attempt waits another recordRetrySeconds of audio.
func (r *recording) resume(pos int64) {
	held, err := r.sink.Resume()
	if err == nil && held > pos {
		err = errors.New("the recording holds more than the call clock")
	}
	if err == nil {
		err = r.sink.WriteSilence(pos - held)
	}
	if err != nil {
		r.retryAt = pos + recordRetrySeconds*int64(r.t.rate)
		return
	}
	r.err = nil
	r.samples.Store(pos)
	t := r.t
	if pos > held {
		t.gap(held, pos-held, "record")
	}
	t.log.Info().Int64("at_ms", held*1000/int64(t.rate)).Int64("gap_ms", (pos-held)*1000/int64(t.rate)).
		Msg("recording resumed; what it missed is silence in the WAV and an audio.gap of kind record")
}

// flush puts the audio written so far in storage (see AudioSink.Flush). A
// failure is a failed write: the recording resumes, or settles at what
// reached storage when it closes.
func (r *recording) flush() {
	if r.err == nil {
		r.ok(r.sink.Flush(), r.samples.Load())
	}
}

// Close settles a failed recording at what reached storage, so that its
// header and the record say the same, and closes the WAV.
func (r *recording) Close(context.Context) {
	if r.err != nil {
		if held, err := r.sink.Resume(); err == nil {
			r.samples.Store(held)
		}
	}
	if err := r.sink.Close(); err != nil && r.err == nil {
		r.err = err
		r.report()
	}
}
