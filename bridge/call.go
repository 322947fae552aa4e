package bridge

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/bridge/provider"
	"github.com/callcaptions/bridge/stt"
)

// Call is one phone call: the streams that carry its audio, its tracks, its
// record and transcript. It is created by the first stream that names its
// call id and ends when its last stream ends (after the reconnect grace
// when that stream was cut off without a stop).
type Call struct {
	id       string
	provider provider.Name
	reg      *Registry
	log      zerolog.Logger
	files    CallFiles
	ctx      context.Context // cancelled when the call is finalized: aborts STT
	cancel   context.CancelFunc

	mu         sync.Mutex
	rec        CallRecord
	transcript Transcript
	tracks     map[string]*track
	streams    map[*Stream]struct{}
	t0         time.Time // wall time of call t=0 (the first media frame)
	epochBase  int64     // Unix ms at call t=0, for providers with epoch timestamps
	hasEpoch   bool
	lastReason string
	ending     bool // finalization has begun; no stream may join
	recDirty   bool
	trDirty    bool
	// docsFailing: the last document write failed (run goroutine only).
	docsFailing bool
	// cbBytes is the JSON size of rec.Callbacks (see callbacks.go).
	cbBytes int
	// Segments and events already appended to the transcript journal.
	journaledSegs, journaledEvents int

	// failed: a goroutine of the call panicked (see Fail); it ends with
	// reason error and no stream may join it.
	failed bool

	wake  chan struct{} // something changed: streams, documents to write
	done  chan struct{} // closed when the call is finalized
	sttWG sync.WaitGroup
}

func (c *Call) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// ID is the provider's call id.
func (c *Call) ID() string { return c.id }

// nowMs is the call clock now by wall time, used only to anchor a stream
// that joins later (its own timestamps count from its own start).
func (c *Call) nowMsLocked() int64 {
	if c.t0.IsZero() {
		c.t0 = c.reg.now()
		return 0
	}
	return c.reg.now().Sub(c.t0).Milliseconds()
}

// epochToCallMs converts a Unix-ms media timestamp to the call clock.
func (c *Call) epochToCallMs(ts int64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.hasEpoch {
		c.hasEpoch = true
		c.epochBase = ts - c.nowMsLocked()
	}
	return ts - c.epochBase
}

func (c *Call) streamOffsetMs() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nowMsLocked()
}

// run is the call's own goroutine: it writes documents as they change,
// enforces the maximum duration and the reconnect grace, and finalizes the
// call when its last stream is gone.
func (c *Call) run() {
	defer func() {
		if v := recover(); v != nil {
			c.recovered(PanicCall, v, debug.Stack())
			c.endAfterPanic()
		}
	}()
	maxDur := time.NewTimer(c.reg.cfg.MaxCallDuration)
	defer maxDur.Stop()
	var grace *time.Timer
	var graceC <-chan time.Time
	// transcript.json is rewritten whole and synced: at most every
	// docsEvery while the call is live (see persist).
	docs := time.NewTimer(docsEvery)
	docs.Stop()
	defer docs.Stop()
	var docsC <-chan time.Time
	var lastTranscript time.Time
	for {
		select {
		case <-c.wake:
		case <-docsC:
			docsC = nil
		case <-maxDur.C:
			c.log.Warn().Dur("max", c.reg.cfg.MaxCallDuration).Msg("call reached its maximum duration")
			c.stopStreams(ReasonTimeout)
		case <-graceC:
			graceC = nil
			c.mu.Lock()
			idle := len(c.streams) == 0
			c.mu.Unlock()
			if idle {
				c.finalize()
				return
			}
		}
		since := time.Since(lastTranscript)
		if c.persist(since >= docsEvery) {
			lastTranscript = time.Now()
		} else if docsC == nil && c.transcriptDirty() {
			docs.Reset(docsEvery - since)
			docsC = docs.C
		}
		c.mu.Lock()
		idle := len(c.streams) == 0
		reason := c.endReasonLocked()
		c.mu.Unlock()
		if !idle {
			if grace != nil {
				grace.Stop()
				graceC = nil
			}
			continue
		}
		if reason == ReasonDisconnect && c.reg.cfg.ReconnectGrace > 0 && !c.reg.shuttingDown() {
			if graceC == nil {
				grace = time.NewTimer(c.reg.cfg.ReconnectGrace)
				graceC = grace.C
			}
			continue
		}
		c.finalize()
		return
	}
}

// endAfterPanic finishes a call whose run goroutine panicked: Fail has
// asked its streams to close; once they are gone the call is finalized.
// Finalization guards each of its steps, so it is not what panicked.
func (c *Call) endAfterPanic() {
	c.mu.Lock()
	ending := c.ending
	c.mu.Unlock()
	if ending {
		return
	}
	for {
		c.mu.Lock()
		idle := len(c.streams) == 0
		c.mu.Unlock()
		if idle {
			break
		}
		<-c.wake // streamEnded signals
	}
	c.finalize()
}

// stopStreams asks every stream's socket to close with reason.
func (c *Call) stopStreams(reason string) {
	c.mu.Lock()
	ss := slices.Collect(maps.Keys(c.streams))
	c.mu.Unlock()
	for _, s := range ss {
		s.stop(reason)
	}
}

// docsEvery bounds how often a live call rewrites transcript.json. Each
// write encodes the whole transcript, creates, syncs and renames a file:
// 0.3 to 1 ms of CPU (BENCHMARKS.md). Done on every final it cost more than
// the call's whole audio path; every 5 s it was still a third of the CPU
// budget at 500 calls. The live transcript is served from memory, so the
// file only matters after a crash, which loses at most this much of it
// (never audio: the WAVs are written as frames arrive and their headers
// patched every second). call.json changes rarely and is written at once;
// the end of the call writes both.
const docsEvery = 30 * time.Second

// transcriptDirty reports whether transcript.json is behind.
func (c *Call) transcriptDirty() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.trDirty
}

// persist writes call.json when it changed, and transcript.json when it
// changed and withTranscript is set. It reports whether it wrote the
// transcript.
func (c *Call) persist(withTranscript bool) bool {
	c.mu.Lock()
	var rec *CallRecord
	var tr *Transcript
	if c.recDirty {
		r := c.snapshotLocked()
		rec = &r
		c.recDirty = false
	}
	if c.trDirty && withTranscript {
		t := c.transcriptLocked()
		tr = &t
		c.trDirty = false
	}
	segs, evs := c.journaledSegs, c.journaledEvents
	lines := c.journalLinesLocked()
	c.mu.Unlock()
	var err error
	if len(lines) > 0 {
		if err = c.files.AppendJSON(journalName, lines...); err != nil {
			// The store appends all or nothing: the lines go again with
			// the next change.
			c.mu.Lock()
			c.journaledSegs, c.journaledEvents = segs, evs
			c.mu.Unlock()
		}
	}
	if rec != nil {
		err = errors.Join(err, c.files.WriteJSON("call.json", rec))
	}
	if tr != nil {
		err = errors.Join(err, c.files.WriteJSON("transcript.json", tr))
	}
	// A full disk fails every write: say so once, and again when it ends.
	switch {
	case err != nil && !c.docsFailing:
		c.docsFailing = true
		c.log.Error().Err(err).Msg("call documents not written; retrying at the next change")
		c.reg.metrics.RecordError()
	case err == nil && c.docsFailing && (rec != nil || tr != nil):
		c.docsFailing = false
		c.log.Info().Msg("call documents written again")
	}
	return tr != nil
}

// journalName is the transcript journal of a call (on-disk layout: next to
// transcript.json; removed once the call ends and transcript.json is whole).
const journalName = "transcript.jsonl"

// journalLine is one line of the transcript journal.
type journalLine struct {
	Segment *Segment         `json:"segment,omitempty"`
	Event   *TranscriptEvent `json:"event,omitempty"`
}

// journalLinesLocked returns what the journal does not have yet.
func (c *Call) journalLinesLocked() []any {
	segs, evs := c.transcript.Segments, c.transcript.Events
	if c.journaledSegs > len(segs) || c.journaledEvents > len(evs) { // the transcript was replaced (continued call)
		c.journaledSegs, c.journaledEvents = len(segs), len(evs)
	}
	n := len(segs) - c.journaledSegs + len(evs) - c.journaledEvents
	if n == 0 {
		return nil
	}
	lines := make([]any, 0, n)
	for i := c.journaledSegs; i < len(segs); i++ {
		seg := segs[i]
		lines = append(lines, journalLine{Segment: &seg})
	}
	for i := c.journaledEvents; i < len(evs); i++ {
		ev := evs[i]
		lines = append(lines, journalLine{Event: &ev})
	}
	c.journaledSegs, c.journaledEvents = len(segs), len(evs)
	return lines
}

// snapshotLocked is the call record with live track figures filled in.
func (c *Call) snapshotLocked() CallRecord {
	r := c.rec
	r.CustomParameters = maps.Clone(c.rec.CustomParameters)
	r.Streams = slices.Clone(c.rec.Streams)
	r.Tracks = slices.Clone(c.rec.Tracks)
	r.Callbacks = slices.Clone(c.rec.Callbacks)
	for i := range r.Tracks {
		if t := c.tracks[r.Tracks[i].Name]; t != nil {
			r.Tracks[i].Samples = t.rec.samples.Load()
			r.Tracks[i].Frames = t.frames.Load()
			r.Tracks[i].Duplicates = t.duplicates.Load()
			r.Tracks[i].GapMs = t.gapSamples.Load() * 1000 / int64(t.rate)
			if w := t.warning.Load(); w != nil {
				r.Tracks[i].Warning = *w
			}
		}
	}
	r.EventsDropped = c.transcript.EventsDropped
	if r.EndedAt == nil && !c.t0.IsZero() {
		r.DurationMs = c.reg.now().Sub(r.StartedAt).Milliseconds()
	}
	return r
}

func (c *Call) transcriptLocked() Transcript {
	return Transcript{
		CallID:   c.id,
		Tracks:   slices.Clone(c.transcript.Tracks),
		Segments: slices.Clone(c.transcript.Segments),
		Events:   slices.Clone(c.transcript.Events),

		EventsDropped: c.transcript.EventsDropped,
	}
}

// Record is the call record as it stands.
func (c *Call) Record() CallRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snapshotLocked()
}

// Transcript is the transcript so far.
func (c *Call) Transcript() Transcript {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.transcriptLocked()
}

// finalize ends the call: transcription settles, recordings close, the
// documents are written a last time and subscribers learn the call ended.
func (c *Call) finalize() {
	c.mu.Lock()
	c.ending = true
	tracks := slices.Collect(maps.Values(c.tracks))
	c.mu.Unlock()

	// Each step is guarded: a panic in one (a recording that cannot be
	// closed, a subscriber) ends the call with reason error but does not
	// skip the others.
	drain, cancel := context.WithTimeout(context.Background(), c.reg.cfg.DrainTimeout)
	var wg sync.WaitGroup
	for _, t := range tracks {
		wg.Go(func() { c.guard(PanicTrack, func() { t.finish(drain) }) })
	}
	wg.Wait()
	cancel()
	c.cancel()
	c.sttWG.Wait()

	now := c.reg.now()
	c.mu.Lock()
	reason := c.endReasonLocked()
	if reason == "" {
		reason = ReasonStop
	}
	c.rec.Status = StatusEnded
	c.rec.Reason = reason
	c.rec.EndedAt = &now
	c.rec.DurationMs = now.Sub(c.rec.StartedAt).Milliseconds()
	c.recDirty, c.trDirty = true, true
	duration := c.rec.DurationMs
	c.mu.Unlock()
	c.guard(PanicCall, func() {
		if c.persist(true) && !c.docsFailing {
			// transcript.json now holds everything the journal did.
			if err := c.files.Remove(journalName); err != nil {
				c.log.Warn().Err(err).Msg("remove transcript journal")
			}
		}
	})

	c.mu.Lock()
	if c.failed && reason != ReasonError { // writing the documents panicked
		reason = ReasonError
		c.rec.Reason = reason
	}
	c.mu.Unlock()
	c.guard(PanicCall, func() {
		c.reg.publish(Event{Type: TypeCallEnded, CallID: c.id, Body: CallEndedBody{
			Reason: reason, EndedAt: now, DurationMs: duration,
		}})
	})
	c.log.Info().Str("reason", reason).Int64("duration_ms", duration).Msg("call ended")
	c.guard(PanicCall, func() { c.reg.ended(c) })
	close(c.done)
}

// addStream joins a stream to the call, creating the tracks it brings.
func (c *Call) addStream(p provider.Name, st *provider.Start) (*Stream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ending || c.failed {
		return nil, ErrCallEnding
	}
	if err := sameOwner(c.provider, c.rec.AccountID, p, st.AccountID); err != nil {
		return nil, err
	}
	if len(c.streams) >= c.reg.cfg.MaxStreamsPerCall {
		return nil, fmt.Errorf("%w: %d streams already", ErrTooManyStreams, len(c.streams))
	}
	names := st.Tracks
	if len(names) == 0 {
		names = []string{"inbound"}
	}
	// A track can be fed by one stream at a time; a reconnecting stream
	// takes over a track whose stream has gone.
	for _, n := range names {
		for s := range c.streams {
			if s.track(n) != nil {
				return nil, fmt.Errorf("%w: track %q already streaming", ErrTrackBusy, n)
			}
		}
	}
	order := st.Format.Order
	if o, ok := c.reg.cfg.ByteOrder[p]; ok && o != provider.OrderUnknown {
		order = o
	}
	if order == provider.OrderUnknown {
		order = provider.LittleEndian
	}
	s := &Stream{call: c, id: st.StreamID, stopCh: make(chan struct{}), start: st, order: order, openTracks: len(st.Tracks) == 0}
	now := c.reg.now()
	var added []string
	for _, n := range names {
		t := c.tracks[n]
		if t == nil {
			var err error
			t, err = c.newTrackLocked(n, st, order)
			if err != nil {
				return nil, err
			}
			added = append(added, n)
		} else if t.rate != st.Format.SampleRate {
			return nil, fmt.Errorf("%w: track %q continues at %d Hz but was %d Hz", ErrFormatChange, n, st.Format.SampleRate, t.rate)
		} else {
			t.encoding, t.order = st.Format.Encoding, order
			// A reconnecting stream counts its chunks from 1 again (Vobiz
			// maxRetries): only its timestamps place it after the old one.
			t.clock.hasChunk = false
		}
		s.tracks = append(s.tracks, t)
	}
	c.streams[s] = struct{}{}
	c.rec.Streams = append(c.rec.Streams, StreamRecord{
		StreamID: st.StreamID, Tracks: names, Encoding: string(st.Format.Encoding), Format: st.Format.Raw,
		SampleRate: st.Format.SampleRate, StartedAt: now,
	})
	for k, v := range st.CustomParameters {
		if c.rec.CustomParameters == nil {
			c.rec.CustomParameters = map[string]string{}
		}
		c.rec.CustomParameters[k] = v
	}
	c.recDirty = true
	c.signal()
	if len(added) > 0 && len(c.tracks) > len(added) {
		c.transcript.Tracks = append(c.transcript.Tracks, added...)
		c.reg.publish(Event{Type: TypeCallUpdated, CallID: c.id, Body: c.startedBodyLocked()})
	}
	return s, nil
}

// addTrackTo gives a stream a track its start frame did not name, when its
// media frames first carry it (Telnyx and Exotel list no tracks).
func (c *Call) addTrackTo(s *Stream, name string) error {
	if name != "inbound" && name != "outbound" {
		return fmt.Errorf("media for unknown track %q", name)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for o := range c.streams {
		if o != s && o.track(name) != nil {
			return fmt.Errorf("%w: track %q already streaming", ErrTrackBusy, name)
		}
	}
	t := c.tracks[name]
	if t == nil {
		var err error
		if t, err = c.newTrackLocked(name, s.start, s.order); err != nil {
			return err
		}
		c.transcript.Tracks = append(c.transcript.Tracks, name)
		c.reg.publish(Event{Type: TypeCallUpdated, CallID: c.id, Body: c.startedBodyLocked()})
	}
	s.tracks = append(s.tracks, t)
	if s.reorder != nil {
		s.reorder = append(s.reorder, nil)
		if w := c.reg.reorderWindow(c.provider); w > 0 {
			s.reorder[len(s.reorder)-1] = newReorderer(w)
		}
	}
	for i := range c.rec.Streams {
		if c.rec.Streams[i].StreamID == s.id && c.rec.Streams[i].EndedAt == nil {
			c.rec.Streams[i].Tracks = append(slices.Clone(c.rec.Streams[i].Tracks), name)
		}
	}
	c.recDirty = true
	c.signal()
	return nil
}

func (c *Call) startedBodyLocked() CallStartedBody {
	return CallStartedBody{
		Provider: string(c.provider), Tracks: slices.Clone(c.transcript.Tracks), StartedAt: c.rec.StartedAt,
		CustomParameters: maps.Clone(c.rec.CustomParameters), From: c.rec.From, To: c.rec.To,
	}
}

func (c *Call) newTrackLocked(name string, st *provider.Start, order provider.ByteOrder) (*track, error) {
	// A track recorded before (the call id came back) is continued.
	prev := -1
	for i := range c.rec.Tracks {
		if c.rec.Tracks[i].Name == name {
			prev = i
		}
	}
	var sink AudioSink
	var err error
	if prev >= 0 {
		sink, err = c.files.AppendTrack(name, st.Format.SampleRate)
	} else {
		sink, err = c.files.CreateTrack(name, st.Format.SampleRate)
	}
	var sinkErr error
	if err != nil {
		// The track is still transcribed (see unrecorded.go).
		sinkErr = fmt.Errorf("open %s recording: %w", name, err)
		sink = failedSink{sinkErr}
	}
	t := &track{
		call: c, name: name, rate: st.Format.SampleRate,
		encoding: st.Format.Encoding, order: order,
		log:   c.log.With().Str("track", name).Logger(),
		warns: zerolog.BurstSampler{Burst: 1, Period: mediaWarnEvery},
		clock: mediaClock{rate: int64(st.Format.SampleRate), maxGap: int64(c.reg.cfg.MaxGap.Seconds() * float64(st.Format.SampleRate)), next: sink.Samples()},
	}
	t.rec = recording{t: t, sink: sink, err: sinkErr}
	t.rec.samples.Store(sink.Samples())
	t.sinks = []Sink{&t.rec}
	rec := TrackRecord{Name: name, SampleRate: t.rate, Encoding: string(st.Format.Encoding), File: name + ".wav"}
	if sinkErr != nil {
		rec.Error = sinkErr.Error()
		t.log.Error().Err(sinkErr).Msg("recording failed; transcription continues")
		c.reg.metrics.RecordError()
	}
	if st.Format.Encoding == provider.L16 {
		rec.ByteOrder = orderName(order)
	}
	if prev >= 0 {
		rec.Frames, rec.Duplicates, rec.GapMs = c.rec.Tracks[prev].Frames, c.rec.Tracks[prev].Duplicates, c.rec.Tracks[prev].GapMs
		t.frames.Store(rec.Frames)
		t.duplicates.Store(rec.Duplicates)
		t.gapSamples.Store(rec.GapMs * int64(t.rate) / 1000)
		for _, seg := range c.transcript.Segments {
			if seg.Track == name {
				t.segOffset++
			}
		}
		c.rec.Tracks[prev] = rec
	} else {
		c.rec.Tracks = append(c.rec.Tracks, rec)
	}
	c.tracks[name] = t
	if c.reg.cfg.Recognizer != nil {
		t.transcribe(c.reg.cfg.Recognizer, c.reg.cfg.STTQueue, maps.Clone(st.CustomParameters))
	}
	return t, nil
}

// streamEnded removes a stream; the run goroutine decides whether the call
// ends.
func (c *Call) streamEnded(s *Stream, reason string, err error) {
	now := c.reg.now()
	c.mu.Lock()
	delete(c.streams, s)
	c.lastReason = reason
	for i := range c.rec.Streams {
		if c.rec.Streams[i].StreamID == s.id && c.rec.Streams[i].EndedAt == nil {
			c.rec.Streams[i].EndedAt = &now
			c.rec.Streams[i].Reason = reason
			if err != nil {
				c.rec.Streams[i].Error = err.Error()
			}
			break
		}
	}
	if err != nil && c.rec.Error == "" {
		c.rec.Error = err.Error()
	}
	c.recDirty = true
	c.mu.Unlock()
	c.signal()
}

// segmentsLocked is how many final segments the track has.
func (c *Call) segmentsLocked(track string) int {
	n := 0
	for _, seg := range c.transcript.Segments {
		if seg.Track == track {
			n++
		}
	}
	return n
}

// addEventLocked keeps ev in the transcript unless the call already holds
// MaxEventsPerCall events: then ev is counted as dropped instead (the
// newest are dropped, so the start of the story stays whole) and false is
// returned. An event that is not kept is not published either, so late
// joiners, live subscribers and the transcript agree.
func (c *Call) addEventLocked(ev TranscriptEvent) bool {
	if len(c.transcript.Events) >= c.reg.cfg.MaxEventsPerCall {
		if c.transcript.EventsDropped == 0 {
			c.log.Warn().Int("max", c.reg.cfg.MaxEventsPerCall).Str("type", ev.Type).
				Msg("call reached its maximum number of events; further events are counted, not kept")
		}
		c.transcript.EventsDropped++
		c.trDirty = true
		c.reg.metrics.EventsDropped(1)
		return false
	}
	c.transcript.Events = append(c.transcript.Events, ev)
	c.trDirty = true
	c.signal()
	return true
}

func (c *Call) addEvent(ev TranscriptEvent) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addEventLocked(ev)
}

// gap records audio that never arrived on a track.
func (c *Call) gap(track string, atSample, samples int64, kind string, rate int) {
	at, dur := atSample*1000/int64(rate), samples*1000/int64(rate)
	if c.addEvent(TranscriptEvent{Type: TypeGap, Track: track, AtMs: at, DurationMs: dur, Kind: kind}) {
		c.reg.publish(Event{Type: TypeGap, CallID: c.id, Body: GapBody{Track: track, StartMs: at, DurationMs: dur, Kind: kind}})
	}
	c.reg.metrics.Gap(kind, dur)
}

// sttGap records audio that was never transcribed: dropped before the
// recognizer could take it, or queued when transcription ended.
func (c *Call) sttGap(track string, atSample, samples int64, rate int) {
	c.log.Warn().Str("track", track).Int64("at_ms", atSample*1000/int64(rate)).Int64("dropped_ms", samples*1000/int64(rate)).
		Msg("audio not transcribed (speech-to-text queue full or the engine unavailable)")
	c.gap(track, atSample, samples, "stt", rate)
}

func (c *Call) trackError(track string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.rec.Tracks {
		if c.rec.Tracks[i].Name == track && c.rec.Tracks[i].Error == "" {
			c.rec.Tracks[i].Error = err.Error()
		}
	}
	c.recDirty = true
	c.signal()
	c.reg.metrics.RecordError()
}

// result handles one recognizer result.
func (c *Call) result(t *track, r stt.Result) {
	track := t.name
	if t.segOffset > 0 && r.SegmentID != "" {
		r.SegmentID = t.continuedSegment(r.SegmentID)
	}
	switch r.Kind {
	case stt.Partial:
		c.reg.publish(Event{Type: TypeTranscriptPartial, CallID: c.id, Body: PartialBody{
			Track: track, SegmentID: r.SegmentID, Text: r.Text, Stability: r.Stability, StartMs: r.StartMs, EndMs: r.EndMs,
		}})
	case stt.Final:
		seg := Segment{Track: track, SegmentID: r.SegmentID, StartMs: r.StartMs, EndMs: r.EndMs,
			Text: r.Text, Confidence: r.Confidence, Words: r.Words}
		c.mu.Lock()
		c.transcript.Segments = append(c.transcript.Segments, seg)
		c.trDirty = true
		c.mu.Unlock()
		c.signal()
		c.reg.publish(Event{Type: TypeTranscriptFinal, CallID: c.id, Body: seg})
		c.reg.metrics.Final(track)
		if at, ok := t.arrivals.when((r.EndMs - 1) / 100); ok && r.EndMs > 0 {
			c.reg.metrics.CaptionLatency(c.reg.now().Sub(time.Unix(0, at)))
		}
	case stt.Status:
		if r.Status == nil {
			return
		}
		typ := TypeSTTPrefix + r.Status.Event
		if c.addEvent(TranscriptEvent{Type: typ, Track: track, AtMs: r.StartMs, Code: r.Status.Code, Message: r.Status.Message}) {
			c.reg.publish(Event{Type: typ, CallID: c.id, Body: STTBody{Track: track, AtMs: r.StartMs, Code: r.Status.Code, Message: r.Status.Message}})
		}
		c.reg.metrics.STTEvent(r.Status.Event, r.Status.Code)
	}
}

// Errors a caller branches on.
var (
	ErrTooManyCalls   = errors.New("too many concurrent calls")
	ErrTooManyStreams = errors.New("too many streams for this call")
	ErrTrackBusy      = errors.New("track busy")
	ErrFormatChange   = errors.New("track format changed")
	ErrCallEnding     = errors.New("call is ending")
	ErrShuttingDown   = errors.New("shutting down")
	ErrUnsupported    = errors.New("unsupported media format")
)
