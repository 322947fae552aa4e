package bridge

import (
	"cmp"
	"encoding/json"
	"errors"
	"os"
	"slices"
)

// Load indexes the stored calls, once, at start-up, before calls are
// taken. A call that was active when the process died is marked
// interrupted, its recordings are repaired so they play, and its transcript
// is completed from its journal.
func (r *Registry) Load() (interrupted int, err error) {
	err = r.cfg.Store.Scan(func(b []byte, repair func() (map[string]int64, error)) {
		var rec CallRecord
		if json.Unmarshal(b, &rec) != nil || rec.CallID == "" {
			return // nothing the API could name
		}
		if rec.Status == StatusActive {
			samples, rerr := repair()
			if rerr != nil {
				r.log.Error().Err(rerr).Str("call_id", rec.CallID).Msg("repair recordings")
			}
			measureTracks(&rec, samples)
			r.recoverTranscript(rec.CallID)
			rec.Status = StatusInterrupted
			rec.Reason = cmp.Or(rec.Reason, ReasonError)
			rec.Error = cmp.Or(rec.Error, "the bridge stopped while the call was active; audio up to the last header update is kept")
			if werr := r.writeRecord(rec); werr != nil {
				r.log.Error().Err(werr).Str("call_id", rec.CallID).Msg("mark call interrupted")
			}
			interrupted++
		}
		r.mu.Lock()
		r.rememberLocked(rec)
		r.mu.Unlock()
	})
	return interrupted, err
}

// recoverTranscript brings transcript.json of a call interrupted by a
// crash up to its journal: the finals and events that came after the last
// rewrite of the document.
func (r *Registry) recoverTranscript(id string) {
	var tr Transcript
	if err := r.cfg.Store.ReadJSON(id, "transcript.json", &tr); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.log.Warn().Err(err).Str("call_id", id).Msg("read transcript of an interrupted call")
	}
	tr.CallID = id
	seen := map[string]bool{}
	for _, s := range tr.Segments {
		seen[s.SegmentID] = true
	}
	events := map[TranscriptEvent]bool{}
	for _, e := range tr.Events {
		events[e] = true
	}
	added := 0
	err := r.cfg.Store.ReadJSONLines(id, journalName, func(b []byte) error {
		var l journalLine
		if json.Unmarshal(b, &l) != nil {
			return nil // a damaged line costs that line only
		}
		if l.Segment != nil && !seen[l.Segment.SegmentID] {
			seen[l.Segment.SegmentID] = true
			tr.Segments = append(tr.Segments, *l.Segment)
			added++
		}
		if l.Event != nil && !events[*l.Event] {
			events[*l.Event] = true
			tr.Events = append(tr.Events, *l.Event)
			added++
		}
		return nil
	})
	if err != nil {
		r.log.Warn().Err(err).Str("call_id", id).Msg("read transcript journal")
		return
	}
	if added == 0 {
		return
	}
	if tr.Segments == nil {
		tr.Segments = []Segment{}
	}
	if tr.Events == nil {
		tr.Events = []TranscriptEvent{}
	}
	for _, s := range tr.Segments {
		if !slices.Contains(tr.Tracks, s.Track) {
			tr.Tracks = append(tr.Tracks, s.Track)
		}
	}
	f, err := r.cfg.Store.Open(id)
	if err == nil {
		err = f.WriteJSON("transcript.json", tr)
	}
	if err != nil {
		r.log.Error().Err(err).Str("call_id", id).Msg("write recovered transcript")
		return
	}
	_ = f.Remove(journalName)
	r.log.Info().Str("call_id", id).Int("recovered", added).Msg("transcript completed from its journal")
}

// measureTracks brings the record of an interrupted call up to its
// repaired recordings (samples by track): call.json is written when the
// call changes, not with every frame, so after a crash its sample counts
// lag the audio kept.
func measureTracks(rec *CallRecord, samples map[string]int64) {
	for i := range rec.Tracks {
		t := &rec.Tracks[i]
		n, ok := samples[t.Name]
		if !ok || t.SampleRate <= 0 {
			continue
		}
		t.Samples = n
		// The call lasted at least as long as its audio.
		rec.DurationMs = max(rec.DurationMs, n*1000/int64(t.SampleRate))
	}
}
