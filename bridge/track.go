package bridge

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/bridge/codec"
	"github.com/callcaptions/bridge/bridge/provider"
	"github.com/callcaptions/bridge/stt"
	"github.com/callcaptions/bridge/stt/session"
)

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
	encoding  provider.Encoding
	order     provider.ByteOrder
	checked   int                  // L16 frames examined by the byte-order detector
	swapVotes int                  // of those, frames that looked byte-swapped
	warns     zerolog.BurstSampler // mediaWarn's: one per mediaWarnEvery

	rec     recording
	stt     *session.Session   // nil: not transcribed
	stopSTT context.CancelFunc // ends the session once the call is finalized and its audio drained
	sinks   []Sink             // rec, then stt if transcribed

	frames     atomic.Int64
	duplicates atomic.Int64
	gapSamples atomic.Int64
	warning    atomic.Pointer[string]
	// segOffset is how many segments the track had before the call was
	// continued; the recognizer counts from 1 again, the transcript does not.
	segOffset int

	arrivals arrivals
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
	need := len(payload)
	switch t.encoding {
	case provider.PCMU, provider.PCMA:
		need *= 2
	case provider.L16:
		if need%2 != 0 {
			return nil, errOddL16
		}
	default:
		return nil, errUnsupported
	}
	if cap(t.pcm) < need {
		t.pcm = make([]byte, need)
	}
	dst := t.pcm[:need]
	switch {
	case t.encoding == provider.PCMU:
		codec.DecodeMulaw(dst, payload)
	case t.encoding == provider.PCMA:
		codec.DecodeAlaw(dst, payload)
	case t.order == provider.BigEndian:
		codec.DecodeL16BE(dst, payload)
	default:
		codec.DecodeL16LE(dst, payload)
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
		t.log.Warn().Str("byte_order", orderNames[t.order]).Msg(msg)
	}
}

// orderNames name the byte orders in call.json and the logs.
var orderNames = map[provider.ByteOrder]string{provider.LittleEndian: "le", provider.BigEndian: "be"}

// silenceAllowance is the most silence the track may have been filled
// with by now: the call's wall time since t=0 plus the maximum gap. It is
// measured from the call's start, not the track's, so that a track that
// starts late is padded to the call's t=0. The clock asks only when a
// frame needs silence, so the wall clock is not read for every frame.
func (t *track) silenceAllowance() int64 {
	ms := t.call.streamOffsetMs() + t.call.env.cfg.MaxGap.Milliseconds()
	return ms * int64(t.rate) / 1000
}

// gap records audio of the track that never arrived (kind media), that its
// recording missed (record) or that was never transcribed (stt).
func (t *track) gap(atSample, samples int64, kind string) {
	at, dur := atSample*1000/int64(t.rate), samples*1000/int64(t.rate)
	t.call.event(TranscriptEvent{Type: TypeGap, Track: t.name, AtMs: at, DurationMs: dur, Kind: kind},
		GapBody{Track: t.name, StartMs: at, DurationMs: dur, Kind: kind})
	t.call.env.metrics.Gap(kind, dur)
}

// write hands pcm to the track's sinks at its placement, after noting a
// gap before it.
func (t *track) write(p placement, pcm []byte) {
	if p.gap > 0 || p.skipped > 0 {
		t.gapSamples.Add(p.gap + p.skipped)
		t.gap(p.pos-p.gap, p.gap+p.skipped, "media")
		if p.skipped > 0 {
			t.call.env.metrics.gapUnfilled.Add(float64(p.skipped * 1000 / int64(t.rate)))
			t.mediaWarn().Int64("at_ms", (p.pos-p.gap)*1000/int64(t.rate)).Int64("gap_ms", (p.gap+p.skipped)*1000/int64(t.rate)).
				Int64("filled_ms", p.gap*1000/int64(t.rate)).Msg("media gap longer than the maximum gap, or than the silence still allowed (the call's wall time plus the maximum gap, in all): the rest is not filled with silence; the whole gap is an audio.gap event")
		}
	}
	t.arrivals.mark((p.pos+int64(len(pcm)/2)-1)*10/int64(t.rate), t.call.env.cfg.Now)
	for _, s := range t.sinks {
		s.Write(p.pos, pcm)
	}
}

// mediaWarnEvery bounds the warnings about one track's media to one per
// period: the conditions they report can repeat on every frame.
const mediaWarnEvery = 5 * time.Second

// mediaWarn is a warning about the track's media, or nil (which logs
// nothing) when one was logged in the current mediaWarnEvery. Only the
// ingesting stream calls it.
func (t *track) mediaWarn() *zerolog.Event {
	l := t.log.Sample(&t.warns)
	return l.Warn()
}

// Reopening a recognizer stream that stopped (or could not be opened)
// waits about sttReopenMin, doubling up to sttReopenMax; see package
// stt/session. Variables so that tests need not wait seconds.
var (
	sttReopenMin = session.DefaultReopenMin
	sttReopenMax = session.DefaultReopenMax
)

// transcribe starts the track's transcription session, owned by the call
// (see doc.go): it runs until the track finishes or the call's context
// ends.
func (t *track) transcribe(r stt.Recognizer, queue time.Duration, params map[string]string) {
	c := t.call
	t.stt = session.New(session.Config{
		Recognizer: r,
		Stream:     stt.StreamConfig{CallID: c.id, Track: t.name, SampleRate: t.rate, Params: params},
		Handler:    (*sttEvents)(t),
		Queue:      queue,
		ReopenMin:  sttReopenMin,
		ReopenMax:  sttReopenMax,
		Log:        t.log,
		Panicked:   func(v any, stack []byte) { c.recovered(PanicTrack, v, stack) },
	})
	t.sinks = append(t.sinks, t.stt)
	ctx, cancel := context.WithCancel(context.Background())
	t.stopSTT = cancel
	c.sttWG.Go(func() { t.stt.Run(ctx) })
}

// sttEvents turns what the track's transcription session reports into
// transcript segments and events.
type sttEvents track

func (e *sttEvents) Result(r stt.Result) { e.call.result((*track)(e), r) }

// Gap records audio that was never transcribed: dropped before the
// recognizer could take it, or queued when transcription ended.
func (e *sttEvents) Gap(pos, samples int64) {
	e.log.Warn().Int64("at_ms", pos*1000/int64(e.rate)).Int64("dropped_ms", samples*1000/int64(e.rate)).
		Msg("audio not transcribed (speech-to-text queue full or the engine unavailable)")
	(*track)(e).gap(pos, samples, "stt")
}

// Notice records a notice of the session's own at the track's current
// position. A reopened stream counts its segments from 1 again: they are
// numbered on after those the transcript already has.
func (e *sttEvents) Notice(event, msg string) {
	t := (*track)(e)
	if event == stt.EventResumed {
		t.call.mu.Lock()
		t.segOffset = t.call.segmentsLocked(t.name)
		t.call.mu.Unlock()
	}
	at := t.rec.samples.Load() * 1000 / int64(t.rate)
	typ := TypeSTTPrefix + event
	c := t.call
	c.event(TranscriptEvent{Type: typ, Track: t.name, AtMs: at, Message: msg},
		STTBody{Track: t.name, AtMs: at, Message: msg})
	c.env.metrics.STTEvent(event, "")
}

// finish closes the track's sinks, the last first: transcription settles
// before the WAV closes. finalize calls it once.
func (t *track) finish(ctx context.Context) {
	for _, s := range slices.Backward(t.sinks) {
		s.Close(ctx)
	}
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
