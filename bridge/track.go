package bridge

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/bridge/codec"
	"github.com/callcaptions/bridge/bridge/provider"
	"github.com/callcaptions/bridge/stt"
)

// sttChunkMs is how much audio the feeder hands the recognizer per Write at
// most: 100 ms is what Google recommends and keeps caption latency low.
const sttChunkMs = 100

// track is one recorded and transcribed track of a call. The stream that
// owns it calls ingest from its read loop; nothing on that path waits for
// the recognizer or a subscriber.
type track struct {
	call *Call
	name string
	rate int
	log  zerolog.Logger

	// Owned by the ingesting stream (one at a time).
	clock     mediaClock
	pcm       []byte // decode scratch, reused for every frame
	sink      AudioSink
	sinkErr   error // the recording's last write failed: nothing is written until it resumes
	retryAt   int64 // while sinkErr: the position at which resuming is next tried
	encoding  provider.Encoding
	order     provider.ByteOrder
	checked   int // L16 frames examined by the byte-order detector
	swapVotes int // of those, frames that looked byte-swapped
	lastWarn  time.Time

	queue   *pcmQueue
	sttDone chan struct{} // closed when the STT goroutines have exited
	cancel  context.CancelFunc

	frames     atomic.Int64
	samples    atomic.Int64 // samples recorded, filled gaps included (the sink is not read across goroutines)
	duplicates atomic.Int64
	gapSamples atomic.Int64
	warning    atomic.Pointer[string]
	// segOffset is how many segments the track had before the call was
	// continued; the recognizer counts from 1 again, the transcript does not.
	segOffset int

	arrivals arrivals

	closeOnce sync.Once
}

// arrivals remembers when recent audio reached the bridge, in 100 ms
// buckets of the track's timeline, so a final's caption latency can be
// measured without keeping anything per frame. 64 buckets cover the last
// 6.4 s, longer than any engine takes to settle an utterance's end.
type arrivals struct {
	bucket [64]atomic.Int64 // which bucket the slot holds (+1; 0 = empty)
	at     [64]atomic.Int64 // Unix nanoseconds of the first audio of that bucket
	last   int64            // last bucket marked (ingest goroutine only)
}

// mark records now as the arrival of bucket, once per bucket: the clock is
// read only when a frame starts a new bucket (every 100 ms of audio), not
// for every frame.
func (a *arrivals) mark(bucket int64, now func() time.Time) {
	if bucket+1 == a.last {
		return
	}
	a.last = bucket + 1
	i := bucket & 63
	a.bucket[i].Store(0)
	a.at[i].Store(now().UnixNano())
	a.bucket[i].Store(bucket + 1)
}

func (a *arrivals) when(bucket int64) (int64, bool) {
	i := bucket & 63
	if a.bucket[i].Load() != bucket+1 {
		return 0, false
	}
	at := a.at[i].Load()
	return at, a.bucket[i].Load() == bucket+1
}

// decode turns one wire payload into PCM16LE in t.pcm.
func (t *track) decode(payload []byte) ([]byte, error) {
	var need int
	switch t.encoding {
	case provider.PCMU, provider.PCMA:
		need = 2 * len(payload)
	case provider.L16:
		if len(payload)%2 != 0 {
			return nil, errOddL16
		}
		need = len(payload)
	default:
		return nil, errUnsupported
	}
	if cap(t.pcm) < need {
		t.pcm = make([]byte, need)
	}
	dst := t.pcm[:need]
	switch t.encoding {
	case provider.PCMU:
		codec.DecodeMulaw(dst, payload)
	case provider.PCMA:
		codec.DecodeAlaw(dst, payload)
	case provider.L16:
		if t.order == provider.BigEndian {
			codec.DecodeL16BE(dst, payload)
		} else {
			codec.DecodeL16LE(dst, payload)
		}
	}
	return dst, nil
}

var (
	errOddL16      = errors.New("L16 payload has an odd number of bytes")
	errUnsupported = errors.New("unsupported encoding")
)

// detectOrder looks at the first seconds of L16 audio and warns once when
// it looks byte-swapped: the configured byte order for the provider is
// wrong. One frame can fool the detector (a loud pure tone repeats few
// values), so it takes a vote: correctly ordered audio almost never looks
// swapped, swapped audio does on nearly every frame that is not silent.
func (t *track) detectOrder(pcm []byte) {
	const (
		framesToCheck = 250 // about 5 s of 20 ms frames
		votesToWarn   = 25  // frames that must look swapped
	)
	if t.encoding != provider.L16 || t.checked >= framesToCheck {
		return
	}
	t.checked++
	if codec.LooksByteSwapped(pcm) {
		t.swapVotes++
	}
	if t.swapVotes == votesToWarn {
		t.checked = framesToCheck
		msg := "L16 audio looks byte-swapped: the configured byte order for this provider is probably wrong"
		t.warning.Store(&msg)
		t.log.Warn().Str("byte_order", orderName(t.order)).Msg(msg)
	}
}

func orderName(o provider.ByteOrder) string {
	switch o {
	case provider.LittleEndian:
		return "le"
	case provider.BigEndian:
		return "be"
	}
	return ""
}

// silenceAllowance is the most silence the track may have been filled
// with by now: the call's wall time since t=0 plus the maximum gap. It is
// measured from the call's start, not the track's, so that a track that
// starts late is padded to the call's t=0. The clock asks only when a
// frame needs silence, so the wall clock is not read for every frame.
func (t *track) silenceAllowance() int64 {
	ms := t.call.streamOffsetMs() + t.call.reg.cfg.MaxGap.Milliseconds()
	return ms * int64(t.rate) / 1000
}

// write records pcm at its placement and queues it for transcription.
func (t *track) write(p placement, pcm []byte) {
	if p.gap > 0 || p.skipped > 0 {
		t.gapSamples.Add(p.gap + p.skipped)
		if t.sinkErr == nil && p.gap > 0 {
			t.recordWrite(t.sink.WriteSilence(p.gap), p.pos)
		}
		t.call.gap(t.name, p.pos-p.gap, p.gap+p.skipped, "media", t.rate)
		if p.skipped > 0 {
			t.call.reg.metrics.GapUnfilled(p.skipped * 1000 / int64(t.rate))
			t.mediaWarn().Int64("at_ms", (p.pos-p.gap)*1000/int64(t.rate)).Int64("gap_ms", (p.gap+p.skipped)*1000/int64(t.rate)).
				Int64("filled_ms", p.gap*1000/int64(t.rate)).Msg("media gap longer than the maximum gap, or than the silence still allowed (the call's wall time plus the maximum gap, in all): the rest is not filled with silence; the whole gap is an audio.gap event")
		}
	}
	if t.sinkErr != nil && p.pos >= t.retryAt {
		t.resumeRecording(p.pos)
	}
	if t.sinkErr == nil {
		_, err := t.sink.Write(pcm)
		t.recordWrite(err, p.pos)
	}
	end := p.pos + int64(len(pcm)/2)
	if t.sinkErr == nil {
		// After a recording error the count stays at what the WAV holds.
		t.samples.Store(end)
	}
	t.arrivals.mark((end-1)*10/int64(t.rate), t.call.reg.cfg.Now)
	if t.queue != nil {
		// Also while the recognizer is down: the queue keeps the newest
		// audio for the next stream and counts what it drops.
		t.queue.push(p.pos, pcm)
	}
}

// mediaWarnEvery bounds the warnings about one track's media to one per
// period: the conditions they report can repeat on every frame.
const mediaWarnEvery = 5 * time.Second

// mediaWarn is a warning about the track's media, or nil (which logs
// nothing) when one was logged less than mediaWarnEvery ago. Only the
// ingesting stream calls it.
func (t *track) mediaWarn() *zerolog.Event {
	now := time.Now()
	if now.Sub(t.lastWarn) < mediaWarnEvery {
		return nil
	}
	t.lastWarn = now
	return t.log.Warn()
}

func (t *track) recordErr() {
	if t.sinkErr != nil {
		t.log.Error().Err(t.sinkErr).Msg("recording failed; transcription continues")
		t.call.trackError(t.name, t.sinkErr)
	}
}

// recordRetrySeconds is how much audio passes between attempts to resume a
// recording whose writes failed: a full disk is not asked again per frame.
const recordRetrySeconds = 1

// recordWrite notes the outcome of a write to the recording at pos. A
// failure stops recording until resumeRecording succeeds; it is reported
// once, not again for each failed attempt to resume.
func (t *track) recordWrite(err error, pos int64) {
	if err == nil {
		return
	}
	t.retryAt = pos + recordRetrySeconds*int64(t.rate)
	if t.sinkErr == nil {
		t.sinkErr = err
		t.recordErr()
	}
}

// resumeRecording tries to continue a recording whose writes failed, at pos
// on the call clock: the sink settles at what it holds, silence fills the
// stretch it missed so that the WAV stays aligned to the call clock, and
// that stretch is an audio.gap of kind "record". When the sink cannot
// resume or the fill fails, the next attempt waits another
// recordRetrySeconds of audio.
func (t *track) resumeRecording(pos int64) {
	held, err := t.sink.Resume()
	if err == nil && held > pos {
		err = errors.New("the recording holds more than the call clock")
	}
	if err == nil {
		err = t.sink.WriteSilence(pos - held)
	}
	if err != nil {
		t.retryAt = pos + recordRetrySeconds*int64(t.rate)
		return
	}
	t.sinkErr = nil
	t.samples.Store(pos)
	if pos > held {
		t.call.gap(t.name, held, pos-held, "record", t.rate)
	}
	t.log.Info().Int64("at_ms", held*1000/int64(t.rate)).Int64("gap_ms", (pos-held)*1000/int64(t.rate)).
		Msg("recording resumed; what it missed is silence in the WAV and an audio.gap of kind record")
}

// Reopening a recognizer stream that stopped (or could not be opened):
// the first attempt waits about sttReopenMin, doubling up to sttReopenMax
// while attempts keep failing, each wait jittered to between half and all
// of it so that the tracks of many calls do not reopen in step. Engines
// retry short outages themselves; this covers the long ones they give up
// on, so a track is transcribed again once the engine is back, and only the
// audio of the outage is lost to transcription (an audio.gap of kind stt).
// Only progress resets the delay: a stream that delivered transcript text
// (a partial or a final with words in it). Status results (retries, gaps,
// a failure) are not progress, so an engine that keeps failing is reopened
// ever more slowly. A failure the engine marks permanent (credentials,
// permissions, configuration) is never reopened. Variables so that tests
// need not wait seconds.
var (
	sttReopenMin = time.Second
	sttReopenMax = 30 * time.Second
)

// reopenWait is the jittered wait for a reopen delay of d.
func reopenWait(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// transcribe runs in its own goroutine for the life of the track: it opens
// a recognizer stream, feeds it from the queue and turns its results into
// transcript segments and events (on a second goroutine, since Write may
// block), and opens a new stream after a backoff when one fails. It returns
// when the queue is closed and the last stream has delivered its results,
// when a stream failed for good, or when ctx is cancelled.
func (t *track) transcribe(ctx context.Context, sc stt.StreamConfig) {
	var results sync.WaitGroup
	defer func() {
		if v := recover(); v != nil {
			stack := debug.Stack()
			t.cancel() // abandons the engine stream: its results reader returns
			results.Wait()
			t.call.recovered(PanicTrack, v, stack)
		}
	}()
	defer t.discardQueued()
	delay := sttReopenMin
	failing := false // the last attempt failed: notices are not repeated
	for streams := 0; ; {
		stream, err := t.call.reg.cfg.Recognizer.Open(ctx, sc)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				t.sttNotice(stt.EventFailed, "", "speech-to-text unavailable; recording continues, retrying: "+err.Error())
				t.log.Error().Err(err).Msg("speech-to-text unavailable for this track; recording continues")
			}
			failing = true
		} else {
			if streams > 0 || failing {
				t.call.mu.Lock()
				t.segOffset = t.call.segmentsLocked(t.name)
				t.call.mu.Unlock()
				t.sttNotice(stt.EventResumed, "", "speech-to-text stream reopened")
				t.log.Info().Int("streams", streams+1).Msg("speech-to-text stream reopened")
			}
			streams++
			var out streamOutcome
			results.Go(func() { out = t.results(stream) })
			finished := t.feed(ctx, stream)
			results.Wait()
			if finished || ctx.Err() != nil {
				return
			}
			if out.permanent {
				t.log.Error().Msg("speech-to-text failed for good on this track; recording continues without transcription")
				return
			}
			if out.progress {
				delay = sttReopenMin // it worked for a while: this is a new outage
			}
			failing = false
			t.log.Warn().Dur("retry_in", delay).Msg("speech-to-text stream stopped; recording continues, reopening")
		}
		if !t.waitReopen(ctx, reopenWait(delay)) {
			return
		}
		delay = min(2*delay, sttReopenMax)
	}
}

// sttNotice records a notice of the bridge's own about the track's
// transcription, at the track's current position.
func (t *track) sttNotice(event, code, msg string) {
	at := t.samples.Load() * 1000 / int64(t.rate)
	typ := TypeSTTPrefix + event
	c := t.call
	if c.addEvent(TranscriptEvent{Type: typ, Track: t.name, AtMs: at, Code: code, Message: msg}) {
		c.reg.publish(Event{Type: typ, CallID: c.id, Body: STTBody{Track: t.name, AtMs: at, Code: code, Message: msg}})
	}
	c.reg.metrics.STTEvent(event, code)
}

// waitReopen waits d before the next attempt; false when the track ended
// meanwhile.
func (t *track) waitReopen(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			return true
		case <-ctx.Done():
			return false
		case <-t.queue.notify: // audio keeps coming; only a close matters
			if t.queue.isClosed() {
				return false
			}
		}
	}
}

// reportDropped records audio the queue dropped since the last report.
func (t *track) reportDropped() {
	if pos, n := t.queue.takeDroppedSpan(); n > 0 {
		t.call.sttGap(t.name, pos, n/2, t.rate)
	}
}

// discardQueued records what will never be transcribed when transcription
// ends early (the engine was down at the end of the call, or the drain
// timed out): what the queue dropped and what it still holds.
func (t *track) discardQueued() {
	t.queue.close()
	t.reportDropped()
	buf := make([]byte, 2*t.rate*sttChunkMs/1000)
	var from, n int64 = 0, 0
	for {
		pos, m, ok := t.queue.pop(buf)
		if ok && n > 0 && pos == from+n {
			n += int64(m / 2)
			continue
		}
		if n > 0 {
			t.call.sttGap(t.name, from, n, t.rate)
		}
		if !ok {
			return
		}
		from, n = pos, int64(m/2)
	}
}

// feed moves audio from the queue to the stream, which may block. It
// returns true when the queue was closed and drained (the stream is then
// closed, and settles), false when the stream stopped taking audio or ctx
// was cancelled.
func (t *track) feed(ctx context.Context, stream stt.Stream) bool {
	buf := make([]byte, 2*t.rate*sttChunkMs/1000)
	defer stream.Close()
	for {
		for {
			t.reportDropped()
			pos, n, ok := t.queue.pop(buf)
			if !ok {
				break
			}
			if err := stream.Write(pos, buf[:n]); err != nil {
				if !errors.Is(err, stt.ErrStopped) && ctx.Err() == nil {
					t.log.Warn().Err(err).Msg("speech-to-text stopped taking audio")
				}
				// The chunk in hand never reached the engine.
				t.call.sttGap(t.name, pos, int64(n/2), t.rate)
				return false
			}
		}
		if t.queue.isClosed() {
			// Closed and drained (a push racing close is refused by push).
			if _, _, ok := t.queue.pop(buf); !ok {
				return true
			}
			continue
		}
		select {
		case <-t.queue.notify:
		case <-ctx.Done():
			return false
		}
	}
}

// streamOutcome is what one recognizer stream amounted to.
type streamOutcome struct {
	progress  bool // it delivered transcript text
	permanent bool // it failed in a way a new stream would repeat
}

// results turns one stream's output into transcript segments and
// subscriber events, until the stream closes Results.
func (t *track) results(stream stt.Stream) streamOutcome {
	var out streamOutcome
	defer func() {
		if v := recover(); v != nil {
			stack := debug.Stack()
			t.cancel() // the feeder stops too; the call ends
			t.call.recovered(PanicTrack, v, stack)
		}
	}()
	for r := range stream.Results() {
		t.call.result(t, r)
		switch {
		case r.Kind == stt.Partial || r.Kind == stt.Final:
			out.progress = out.progress || strings.TrimSpace(r.Text) != ""
		case r.Status != nil && r.Status.Event == stt.EventFailed:
			out.permanent = r.Status.Permanent
		}
	}
	return out
}

// finish closes the track's input and waits for transcription to settle,
// then closes the WAV. Safe to call more than once.
func (t *track) finish(ctx context.Context) {
	t.closeOnce.Do(func() {
		if t.queue != nil {
			t.queue.close()
			select {
			case <-t.sttDone:
			case <-ctx.Done():
				t.cancel()
				<-t.sttDone
			}
		}
		if t.cancel != nil {
			t.cancel()
		}
		if t.sinkErr != nil {
			// Settle the WAV at what reached storage, so its header and
			// the record say the same.
			if held, err := t.sink.Resume(); err == nil {
				t.samples.Store(held)
			}
		}
		if err := t.sink.Close(); err != nil && t.sinkErr == nil {
			t.sinkErr = err
			t.recordErr()
		}
	})
}

// continuedSegment renumbers a recognizer's "<track>-<n>" after the
// segments the track already had.
func (t *track) continuedSegment(id string) string {
	n, err := strconv.Atoi(strings.TrimPrefix(id, t.name+"-"))
	if err != nil {
		return id
	}
	return stt.SegmentID(t.name, n+t.segOffset)
}
