package bridge

import (
	"cmp"
	"errors"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
)

// Calls lists call records, newest first, live ones included.
func (r *Registry) Calls() []CallRecord {
	r.mu.Lock()
	live := slices.Collect(maps.Values(r.active))
	out := slices.AppendSeq(make([]CallRecord, 0, len(r.active)+len(r.past)), maps.Values(r.past))
	r.mu.Unlock()
	for _, c := range live {
		out = append(out, c.Record())
	}
	slices.SortFunc(out, func(a, b CallRecord) int {
		return cmp.Or(b.StartedAt.Compare(a.StartedAt), strings.Compare(a.CallID, b.CallID))
	})
	return out
}

// rememberLocked indexes an ended call. The index is bounded: past
// MaxIndexed calls the oldest tenth is dropped from memory at once (their
// records stay on disk, found by id on disk).
func (r *Registry) rememberLocked(rec CallRecord) {
	r.past[rec.CallID] = rec
	if len(r.past) <= r.cfg.MaxIndexed {
		return
	}
	recs := slices.SortedFunc(maps.Values(r.past), func(a, b CallRecord) int { return a.StartedAt.Compare(b.StartedAt) })
	for _, old := range recs[:len(recs)-r.cfg.MaxIndexed*9/10] {
		delete(r.past, old.CallID)
	}
}

// pastUnlocked is an ended call's record: from the index entry read under
// the lock, or else (older than the index keeps) from disk, outside the
// lock.
func (r *Registry) pastUnlocked(id string, indexed CallRecord, ok bool) (CallRecord, bool) {
	if ok {
		return indexed, true
	}
	var rec CallRecord
	if err := r.cfg.Store.ReadJSON(id, "call.json", &rec); err != nil || rec.CallID != id {
		return CallRecord{}, false
	}
	return rec, true
}

// writeRecord replaces the call.json of a call that is not live.
func (r *Registry) writeRecord(rec CallRecord) error {
	files, err := r.cfg.Store.Open(rec.CallID)
	if err == nil {
		err = files.WriteJSON("call.json", rec)
	}
	return err
}

// Record is one call's record; ok is false for an unknown call.
func (r *Registry) Record(id string) (CallRecord, bool) {
	r.mu.Lock()
	c := r.active[id]
	rec, ok := r.past[id]
	r.mu.Unlock()
	if c != nil {
		return c.Record(), true
	}
	return r.pastUnlocked(id, rec, ok)
}

// Transcript is one call's transcript, live or stored.
func (r *Registry) Transcript(id string) (Transcript, bool, error) {
	r.mu.Lock()
	c := r.active[id]
	r.mu.Unlock()
	if c != nil {
		return c.Transcript(), true, nil
	}
	if _, known := r.Record(id); !known {
		return Transcript{}, false, nil
	}
	var t Transcript
	err := r.cfg.Store.ReadJSON(id, "transcript.json", &t)
	if errors.Is(err, os.ErrNotExist) {
		return Transcript{CallID: id, Segments: []Segment{}, Events: []TranscriptEvent{}}, true, nil
	}
	return t, true, err
}

// OpenTrack opens the recording of a known call's track; ok is false when
// the call or the track is unknown.
func (r *Registry) OpenTrack(id, track string) (rec io.ReadSeekCloser, ok bool, err error) {
	call, ok := r.Record(id)
	if !ok || !slices.ContainsFunc(call.Tracks, func(t TrackRecord) bool { return t.Name == track }) {
		return nil, false, nil
	}
	rec, err = r.cfg.Store.OpenTrack(id, track)
	return rec, true, err
}
