package bridge

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/bridge/provider"
)

// callEnv is what a call uses of the bridge around it, handed to it when it
// is created: a call never reaches into the registry.
type callEnv struct {
	cfg          *Config // limits, clock, recognizer and publisher; read only
	metrics      *Metrics
	shuttingDown func() bool
	ended        func(*Call) // the call's goroutine is done with it
}

func (e *callEnv) publish(ev Event) {
	if e.cfg.Publisher != nil {
		e.cfg.Publisher.Publish(ev)
	}
}

// Call is one phone call: the streams that carry its audio, its tracks, its
// record and transcript. It is created by the first stream that names its
// call id and ends when its last stream ends (after the reconnect grace
// when that stream was cut off without a stop).
type Call struct {
	id       string
	provider provider.Name
	env      callEnv
	log      zerolog.Logger
	files    CallFiles

	mu          sync.Mutex
	rec         CallRecord
	transcript  Transcript
	tracks      map[string]*track
	streams     map[*Stream]struct{}
	t0          time.Time // wall time of call t=0 (the first media frame)
	epochBase   int64     // Unix ms at call t=0, for providers with epoch timestamps
	hasEpoch    bool
	lastReason  string
	ending      bool // finalization has begun; no stream may join
	recDirty    bool
	trDirty     bool
	docsFailing bool // the last document write failed (run goroutine only)
	cbBytes     int  // the JSON size of rec.Callbacks
	failed      bool // a goroutine panicked (see Fail): reason error, no stream may join
	// Segments and events already appended to the transcript journal.
	journaledSegs, journaledEvents int

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
		c.t0 = c.env.cfg.Now()
		return 0
	}
	return c.env.cfg.Now().Sub(c.t0).Milliseconds()
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

// run is the call's own goroutine (see doc.go).
func (c *Call) run() {
	defer func() {
		if v := recover(); v != nil {
			c.recovered(PanicCall, v, debug.Stack())
			c.endAfterPanic()
		}
	}()
	maxDur := time.NewTimer(c.env.cfg.MaxCallDuration)
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
			c.log.Warn().Dur("max", c.env.cfg.MaxCallDuration).Msg("call reached its maximum duration")
			c.stopStreams(ReasonTimeout)
		case <-graceC:
			graceC = nil
			if c.idle() {
				c.finalize()
				return
			}
		}
		since := time.Since(lastTranscript)
		if c.persist(since >= docsEvery, false) {
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
		if reason == ReasonDisconnect && c.env.cfg.ReconnectGrace > 0 && !c.env.shuttingDown() {
			if graceC == nil {
				grace = time.NewTimer(c.env.cfg.ReconnectGrace)
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
	for !c.idle() {
		<-c.wake // streamEnded signals
	}
	c.finalize()
}

// idle reports whether the call has no stream.
func (c *Call) idle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.streams) == 0
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
	drain, cancel := context.WithTimeout(context.Background(), c.env.cfg.DrainTimeout)
	var wg sync.WaitGroup
	for _, t := range tracks {
		wg.Go(func() { c.guard(PanicTrack, func() { t.finish(drain) }) })
	}
	wg.Wait()
	cancel()
	for _, t := range tracks {
		if t.stopSTT != nil {
			t.stopSTT()
		}
	}
	c.sttWG.Wait()

	now := c.env.cfg.Now()
	c.mu.Lock()
	reason := cmp.Or(c.endReasonLocked(), ReasonStop)
	c.rec.Status = StatusEnded
	c.rec.Reason = reason
	c.rec.EndedAt = &now
	c.rec.DurationMs = now.Sub(c.rec.StartedAt).Milliseconds()
	c.recDirty, c.trDirty = true, true
	duration := c.rec.DurationMs
	c.mu.Unlock()
	c.guard(PanicCall, func() {
		if c.persist(true, true) && !c.docsFailing {
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
		c.env.publish(Event{Type: TypeCallEnded, CallID: c.id, More: true, Body: CallEndedBody{
			Reason: reason, EndedAt: now, DurationMs: duration,
		}})
	})
	c.guard(PanicCall, c.publishReady)
	c.log.Info().Str("reason", reason).Int64("duration_ms", duration).Msg("call ended")
	c.guard(PanicCall, func() { c.env.ended(c) })
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
	if len(c.streams) >= c.env.cfg.MaxStreamsPerCall {
		return nil, fmt.Errorf("%w: %d streams already", ErrTooManyStreams, len(c.streams))
	}
	names := trackNames(st)
	for _, n := range names {
		if err := c.trackFreeLocked(nil, n); err != nil {
			return nil, err
		}
	}
	order := cmp.Or(c.env.cfg.ByteOrder[p], st.Format.Order, provider.LittleEndian) // the zero order is unknown
	s := &Stream{call: c, id: st.StreamID, stopCh: make(chan struct{}), start: st, order: order, openTracks: len(st.Tracks) == 0}
	var added []string
	for _, n := range names {
		t := c.tracks[n]
		if t == nil {
			t = c.newTrackLocked(n, st, order)
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
		s.reorder = append(s.reorder, c.env.reorderer(p))
	}
	c.streams[s] = struct{}{}
	c.rec.Streams = append(c.rec.Streams, StreamRecord{
		StreamID: st.StreamID, Tracks: names, Encoding: string(st.Format.Encoding), Format: st.Format.Raw,
		SampleRate: st.Format.SampleRate, StartedAt: c.env.cfg.Now(),
	})
	if c.rec.CustomParameters == nil && len(st.CustomParameters) > 0 {
		c.rec.CustomParameters = map[string]string{}
	}
	maps.Copy(c.rec.CustomParameters, st.CustomParameters)
	c.recDirty = true
	c.signal()
	if len(added) > 0 && len(c.tracks) > len(added) {
		c.transcript.Tracks = append(c.transcript.Tracks, added...)
		c.env.publish(Event{Type: TypeCallUpdated, CallID: c.id, Body: c.startedBodyLocked()})
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
	if err := c.trackFreeLocked(s, name); err != nil {
		return err
	}
	t := c.tracks[name]
	if t == nil {
		t = c.newTrackLocked(name, s.start, s.order)
		c.transcript.Tracks = append(c.transcript.Tracks, name)
		c.env.publish(Event{Type: TypeCallUpdated, CallID: c.id, Body: c.startedBodyLocked()})
	}
	s.tracks = append(s.tracks, t)
	s.reorder = append(s.reorder, c.env.reorderer(c.provider))
	for i := range c.rec.Streams {
		if c.rec.Streams[i].StreamID == s.id && c.rec.Streams[i].EndedAt == nil {
			c.rec.Streams[i].Tracks = append(slices.Clone(c.rec.Streams[i].Tracks), name)
		}
	}
	c.recDirty = true
	c.signal()
	return nil
}

// trackFreeLocked refuses track name when a stream other than s feeds it:
// a track is fed by one stream at a time; a reconnecting stream takes over
// a track whose stream has gone.
func (c *Call) trackFreeLocked(s *Stream, name string) error {
	for o := range c.streams {
		if o != s && o.track(name) != nil {
			return fmt.Errorf("%w: track %q already streaming", ErrTrackBusy, name)
		}
	}
	return nil
}

// trackNames are the tracks a start frame names; one that names none
// brings the inbound track.
func trackNames(st *provider.Start) []string {
	if len(st.Tracks) == 0 {
		return []string{"inbound"}
	}
	return st.Tracks
}

func (c *Call) newTrackLocked(name string, st *provider.Start, order provider.ByteOrder) *track {
	// A track recorded before (the call id came back) is continued.
	prev := slices.IndexFunc(c.rec.Tracks, func(r TrackRecord) bool { return r.Name == name })
	open := c.files.CreateTrack
	if prev >= 0 {
		open = c.files.AppendTrack
	}
	sink, err := open(name, st.Format.SampleRate)
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
		clock: mediaClock{rate: int64(st.Format.SampleRate), maxGap: int64(c.env.cfg.MaxGap.Seconds() * float64(st.Format.SampleRate)), next: sink.Samples()},
	}
	t.rec = recording{t: t, sink: sink, err: sinkErr}
	t.rec.samples.Store(sink.Samples())
	t.sinks = []Sink{&t.rec}
	rec := TrackRecord{Name: name, SampleRate: t.rate, Encoding: string(st.Format.Encoding), File: name + ".wav"}
	if sinkErr != nil {
		rec.Error = sinkErr.Error()
		t.log.Error().Err(sinkErr).Msg("recording failed; transcription continues")
		c.env.metrics.recordErrors.Inc()
	}
	if st.Format.Encoding == provider.L16 {
		rec.ByteOrder = orderNames[order]
	}
	if prev >= 0 {
		rec.Frames, rec.Duplicates, rec.GapMs = c.rec.Tracks[prev].Frames, c.rec.Tracks[prev].Duplicates, c.rec.Tracks[prev].GapMs
		t.frames.Store(rec.Frames)
		t.duplicates.Store(rec.Duplicates)
		t.gapSamples.Store(rec.GapMs * int64(t.rate) / 1000)
		t.segOffset = c.segmentsLocked(name)
		c.rec.Tracks[prev] = rec
	} else {
		c.rec.Tracks = append(c.rec.Tracks, rec)
	}
	c.tracks[name] = t
	if c.env.cfg.Recognizer != nil {
		t.transcribe(c.env.cfg.Recognizer, c.env.cfg.STTQueue, maps.Clone(st.CustomParameters))
	}
	return t
}

// streamEnded removes a stream; the run goroutine decides whether the call
// ends.
func (c *Call) streamEnded(s *Stream, reason string, err error) {
	now := c.env.cfg.Now()
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

// openCall makes the call a stream's start frame st opens, with its files
// (a failedFiles when filesErr says they could not be opened); prev is the
// record of the ended call it continues, if known. The call is not running
// until its registry starts it.
func openCall(env callEnv, log zerolog.Logger, p provider.Name, st *provider.Start,
	files CallFiles, filesErr error, prev CallRecord, known bool) *Call {
	now := env.cfg.Now()
	c := &Call{
		id: st.CallID, provider: p, env: env, files: files,
		log:     log.With().Str("call_id", Clip(st.CallID)).Str("provider", string(p)).Logger(),
		tracks:  map[string]*track{},
		streams: map[*Stream]struct{}{},
		wake:    make(chan struct{}, 1), // coalesced: run re-reads all state on each wake-up
		done:    make(chan struct{}),
	}
	tracks := trackNames(st)
	c.rec = newRecord(p, st, now)
	c.transcript = Transcript{CallID: st.CallID, Tracks: slices.Clone(tracks), Segments: []Segment{}, Events: []TranscriptEvent{}}
	if known {
		c.continueFrom(prev, now)
		tracks = c.transcript.Tracks
		for _, n := range st.Tracks {
			if !slices.Contains(tracks, n) {
				tracks = append(tracks, n)
			}
		}
		c.transcript.Tracks = tracks
	}
	if filesErr != nil {
		c.rec.Error = filesErr.Error()
	}
	c.recDirty, c.trDirty = true, true
	return c
}

// newRecord is the record of a call st starts at now.
func newRecord(p provider.Name, st *provider.Start, now time.Time) CallRecord {
	return CallRecord{
		CallID: st.CallID, Provider: string(p), AccountID: st.AccountID, Status: StatusActive,
		StartedAt: now, From: st.From, To: st.To, CustomParameters: maps.Clone(st.CustomParameters),
		Tracks: []TrackRecord{}, Streams: []StreamRecord{},
	}
}

// joinFailed ends a call whose creating stream could not join it: with no
// stream it ends at once, with err in its record.
func (c *Call) joinFailed(err error) {
	c.mu.Lock()
	c.lastReason = ReasonError
	c.rec.Error = cmp.Or(c.rec.Error, err.Error())
	c.mu.Unlock()
	c.signal()
}
