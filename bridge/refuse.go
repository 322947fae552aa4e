package bridge

import (
	"fmt"
	"maps"

	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/bridge/provider"
)

// checkFormat refuses a stream the bridge cannot decode or record.
func checkFormat(f provider.Format) error {
	if f.Encoding == "" {
		return fmt.Errorf("%w: %q", ErrUnsupported, Clip(f.Raw))
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

// maxRefusedStreams bounds the refused streams a call record lists. Beyond
// it a refusal is only counted in the record (refused_streams_dropped):
// a sender repeating a refused start cannot grow the record.
const maxRefusedStreams = 8

// recordRefused keeps a trace of a stream refused at its start frame, so
// that the call's record says why nothing was recorded: a call the bridge
// has not seen gets a record with status ended, reason error and the error
// (and subscribers learn that it started and ended); a live or stored call
// of the same provider and account (and, ended, within the resume window)
// gets the refused stream added to its streams. A refusal the bridge would
// not take as a call (a bad id, the maximum of calls reached, another
// provider's call) is only logged.
func (r *Registry) recordRefused(p provider.Name, st *provider.Start, refusal error) {
	log := r.log.With().Str("call_id", Clip(st.CallID)).Str("provider", string(p)).Str("stream_id", Clip(st.StreamID)).Logger()
	if CheckCallID(st.CallID) != nil {
		log.Warn().Err(refusal).Msg("stream refused at its start frame")
		return
	}
	now := r.cfg.Now()
	sr := StreamRecord{
		StreamID: clipTo(st.StreamID, MaxCallIDLen), Tracks: clipAll(st.Tracks), Encoding: string(st.Format.Encoding), Format: Clip(st.Format.Raw),
		SampleRate: st.Format.SampleRate, StartedAt: now, EndedAt: &now, Reason: ReasonError, Error: refusal.Error(), Refused: true,
	}
	c, indexed, isIndexed, err := r.claim(st.CallID, true)
	switch {
	case c != nil:
		c.refused(p, st, sr, refusal)
	case err != nil:
		log.Warn().Err(refusal).Msg("stream refused at its start frame; not recorded (shutting down or at the maximum of calls)")
	default:
		r.recordRefusedStored(p, st, sr, refusal, indexed, isIndexed, log)
	}
}

// recordRefusedStored records a refusal for a call id that is not live;
// the caller has claimed the id (busy).
func (r *Registry) recordRefusedStored(p provider.Name, st *provider.Start, sr StreamRecord, refusal error, indexed CallRecord, isIndexed bool, log zerolog.Logger) {
	release := func(rec *CallRecord) {
		r.mu.Lock()
		if rec != nil {
			r.rememberLocked(*rec)
		}
		r.releaseLocked(st.CallID)
		r.mu.Unlock()
	}
	now := *sr.EndedAt
	rec, known := r.pastUnlocked(st.CallID, indexed, isIndexed)
	if known {
		if err := r.mayContinue(p, st, rec); err != nil {
			release(nil)
			log.Warn().Err(refusal).AnErr("not_recorded", err).Msg("stream refused at its start frame; its call is left as it was")
			return
		}
		addRefused(&rec, sr)
	} else {
		rec = newRecord(p, st, now)
		rec.Status, rec.Reason, rec.Error, rec.EndedAt = StatusEnded, ReasonError, refusal.Error(), &now
		rec.Streams = []StreamRecord{sr}
		r.mu.Lock()
		rec.Callbacks = r.takePendingLocked(st.CallID, false)
		r.mu.Unlock()
	}
	if err := r.writeRecord(rec); err != nil {
		release(nil)
		log.Error().Err(err).Msg("record the refused stream")
		return
	}
	release(&rec)
	log.Warn().Err(refusal).Msg("stream refused at its start frame; the call record says why")
	if known {
		return
	}
	r.metrics.CallStarted()
	r.metrics.CallEnded(ReasonError)
	r.env.publish(Event{Type: TypeCallStarted, CallID: st.CallID, Body: CallStartedBody{
		Provider: string(p), Tracks: []string{}, StartedAt: now, CustomParameters: maps.Clone(st.CustomParameters), From: st.From, To: st.To,
	}})
	r.env.publish(Event{Type: TypeCallEnded, CallID: st.CallID, Body: CallEndedBody{Reason: ReasonError, EndedAt: now}})
}

// refused records a stream refused at its start frame in a live call of
// the same provider and account.
func (c *Call) refused(p provider.Name, st *provider.Start, sr StreamRecord, refusal error) {
	log := c.log.With().Str("stream_id", Clip(st.StreamID)).Logger()
	c.mu.Lock()
	if err := sameOwner(c.provider, c.rec.AccountID, p, st.AccountID); err != nil {
		c.mu.Unlock()
		log.Warn().Err(refusal).AnErr("not_recorded", err).Str("stream_provider", string(p)).Msg("stream refused; the call is left as it was")
		return
	}
	added := addRefused(&c.rec, sr)
	c.recDirty = true
	c.mu.Unlock()
	c.signal()
	if added {
		log.Warn().Err(refusal).Msg("stream refused; the call goes on")
	}
}

// addRefused lists a refused stream in rec, or counts it once the record
// lists maxRefusedStreams; it reports whether it was listed.
func addRefused(rec *CallRecord, sr StreamRecord) bool {
	n := 0
	for _, s := range rec.Streams {
		if s.Refused {
			n++
		}
	}
	if n >= maxRefusedStreams {
		rec.RefusedStreamsDropped++
		return false
	}
	rec.Streams = append(rec.Streams, sr)
	return true
}
