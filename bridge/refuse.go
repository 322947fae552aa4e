package bridge

import (
	"fmt"
	"maps"
	"slices"

	"github.com/callcaptions/bridge/bridge/provider"
)

// checkFormat refuses a stream the bridge cannot decode or record.
func checkFormat(f provider.Format) error {
	if f.Encoding == "" {
		return fmt.Errorf("%w: %q", ErrUnsupported, f.Raw)
	}
	switch f.SampleRate {
	case 8000, 16000, 24000:
	default:
		return fmt.Errorf("%w: sample rate %d (want 8000, 16000 or 24000)", ErrUnsupported, f.SampleRate)
	}
	if f.Channels > 1 {
		return fmt.Errorf("%w: %d channels (want mono)", ErrUnsupported, f.Channels)
	}
	return nil
}

// recordRefused keeps a trace of a stream refused at its start frame, so
// that the call's record says why nothing was recorded: a call the bridge
// has not seen gets a record with status ended, reason error and the error
// (no tracks, no recordings); a live or stored call gets the refused stream
// added to its streams. Subscribers waiting for a new call learn that it
// started and ended. A start frame without a call id leaves no record.
func (r *Registry) recordRefused(p provider.Name, st *provider.Start, refusal error) {
	if st.CallID == "" {
		return
	}
	now := r.now()
	sr := StreamRecord{
		StreamID: st.StreamID, Tracks: slices.Clone(st.Tracks), Encoding: string(st.Format.Encoding), Format: st.Format.Raw,
		SampleRate: st.Format.SampleRate, StartedAt: now, EndedAt: &now, Reason: ReasonError, Error: refusal.Error(),
	}
	if sr.Tracks == nil {
		sr.Tracks = []string{}
	}

	r.mu.Lock()
	c := r.active[st.CallID]
	if c != nil {
		r.mu.Unlock()
		c.mu.Lock()
		c.rec.Streams = append(c.rec.Streams, sr)
		c.recDirty = true
		c.mu.Unlock()
		c.signal()
		c.log.Warn().Err(refusal).Str("stream_id", st.StreamID).Msg("stream refused; the call goes on")
		return
	}
	// Written under the registry lock so that a stream starting the same
	// call id now cannot interleave its first call.json with this one.
	// Refusals are rare and the document is small.
	defer r.mu.Unlock()
	rec, known := r.pastLocked(st.CallID)
	if known {
		rec.Streams = append(rec.Streams, sr)
	} else {
		rec = CallRecord{
			CallID: st.CallID, Provider: string(p), AccountID: st.AccountID, Status: StatusEnded,
			Reason: ReasonError, Error: refusal.Error(), StartedAt: now, EndedAt: &now,
			From: st.From, To: st.To, CustomParameters: maps.Clone(st.CustomParameters),
			Tracks: []TrackRecord{}, Streams: []StreamRecord{sr},
		}
		rec.Callbacks = r.takePendingLocked(st.CallID)
	}
	files, err := r.cfg.Store.Open(st.CallID)
	if err == nil {
		err = files.WriteJSON("call.json", rec)
	}
	log := r.log.With().Str("call_id", st.CallID).Str("provider", string(p)).Logger()
	if err != nil {
		log.Error().Err(err).Msg("record the refused stream")
		return
	}
	r.rememberLocked(rec)
	log.Warn().Err(refusal).Str("stream_id", st.StreamID).Msg("stream refused at its start frame; the call record says why")
	if known {
		return
	}
	r.metrics.CallStarted()
	r.metrics.CallEnded(ReasonError)
	r.publish(Event{Type: TypeCallStarted, CallID: st.CallID, Body: CallStartedBody{
		Provider: string(p), Tracks: []string{}, StartedAt: now, CustomParameters: maps.Clone(st.CustomParameters), From: st.From, To: st.To,
	}})
	r.publish(Event{Type: TypeCallEnded, CallID: st.CallID, Body: CallEndedBody{Reason: ReasonError, EndedAt: now}})
}
