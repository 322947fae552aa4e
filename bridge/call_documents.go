package bridge

import (
	"errors"
	"maps"
	"slices"
	"time"
)

// A call's documents: call.json and transcript.json, rewritten as the call
// changes, and the transcript journal between rewrites.

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
// transcript. A live call's documents do not wait for the disk's flush
// (WriteJSONNoWait: the store's sync round makes them durable, with the
// recordings they describe); the last write of an ended call (final) does,
// before call.ended says the call is done.
func (c *Call) persist(withTranscript, final bool) bool {
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
	write := c.files.WriteJSONNoWait
	if final {
		write = c.files.WriteJSON
	}
	if rec != nil {
		err = errors.Join(err, write("call.json", rec))
	}
	if tr != nil {
		err = errors.Join(err, write("transcript.json", tr))
	}
	// A full disk fails every write: say so once, and again when it ends.
	switch {
	case err != nil && !c.docsFailing:
		c.docsFailing = true
		c.log.Error().Err(err).Msg("call documents not written; retrying at the next change")
		c.env.metrics.recordErrors.Inc()
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
	for _, seg := range segs[c.journaledSegs:] {
		lines = append(lines, journalLine{Segment: &seg})
	}
	for _, ev := range evs[c.journaledEvents:] {
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
		r.DurationMs = c.env.cfg.Now().Sub(r.StartedAt).Milliseconds()
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

// continueFrom makes a call whose id comes back after it ended (a
// provider reconnecting late, or after the bridge restarted) continue its
// record, transcript and recordings: new audio follows what was kept, on
// the same call clock.
func (c *Call) continueFrom(prev CallRecord, now time.Time) {
	var endMs int64
	for _, t := range prev.Tracks {
		if t.SampleRate > 0 {
			endMs = max(endMs, t.Samples*1000/int64(t.SampleRate))
		}
	}
	var tr Transcript
	if err := c.env.cfg.Store.ReadJSON(c.id, "transcript.json", &tr); err == nil {
		c.transcript.Segments = append(c.transcript.Segments, tr.Segments...)
		c.transcript.Events = append(c.transcript.Events, tr.Events...)
		c.transcript.EventsDropped = tr.EventsDropped
		if len(tr.Tracks) > 0 {
			c.transcript.Tracks = tr.Tracks
		}
	}
	c.journaledSegs, c.journaledEvents = len(c.transcript.Segments), len(c.transcript.Events)
	c.transcript.Events = append(c.transcript.Events, TranscriptEvent{Type: TypeCallResumed, AtMs: endMs,
		Message: "the call continued after it had " + prev.Status})
	c.rec = prev
	c.rec.Status, c.rec.Reason, c.rec.EndedAt = StatusActive, "", nil
	c.rec.Streams, c.rec.Tracks = slices.Clone(prev.Streams), slices.Clone(prev.Tracks)
	c.t0 = now.Add(-time.Duration(endMs) * time.Millisecond)
	c.log.Info().Str("was", prev.Status).Int64("at_ms", endMs).Msg("call continues")
}

// addCallbacks adds status callbacks that arrived before the call started.
func (c *Call) addCallbacks(cbs []map[string]any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec.Callbacks = append(c.rec.Callbacks, cbs...)
	c.cbBytes = callbacksSize(c.rec.Callbacks)
}

// attachCallback adds a status callback of size bytes to the live call's
// record if fits allows it for the callbacks the call holds. ending is true
// when the call is being finalized: the callback then belongs to the
// stored record.
func (c *Call) attachCallback(cb map[string]any, size int, fits func(n, held int) error) (ending bool, err error) {
	c.mu.Lock()
	if c.ending {
		c.mu.Unlock()
		return true, nil
	}
	if err := fits(len(c.rec.Callbacks), c.cbBytes); err != nil {
		c.mu.Unlock()
		return false, err
	}
	c.rec.Callbacks = append(c.rec.Callbacks, cb)
	c.cbBytes += size
	c.recDirty = true
	c.mu.Unlock()
	c.signal()
	return false, nil
}
