package bridge

import (
	"maps"
	"slices"
	"time"

	"github.com/callcaptions/bridge/stt"
)

func (c *Call) startedBodyLocked() CallStartedBody {
	return CallStartedBody{
		Provider: string(c.provider), Tracks: slices.Clone(c.transcript.Tracks), StartedAt: c.rec.StartedAt,
		CustomParameters: maps.Clone(c.rec.CustomParameters), From: c.rec.From, To: c.rec.To,
	}
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

// event keeps ev in the transcript and publishes it with body, unless the
// call already holds MaxEventsPerCall events: then ev is counted as dropped
// instead (the newest are dropped, so the start of the story stays whole).
// An event that is not kept is not published either, so late joiners, live
// subscribers and the transcript agree.
func (c *Call) event(ev TranscriptEvent, body any) {
	c.mu.Lock()
	kept := len(c.transcript.Events) < c.env.cfg.MaxEventsPerCall
	if kept {
		c.transcript.Events = append(c.transcript.Events, ev)
		c.signal()
	} else {
		if c.transcript.EventsDropped == 0 {
			c.log.Warn().Int("max", c.env.cfg.MaxEventsPerCall).Str("type", ev.Type).
				Msg("call reached its maximum number of events; further events are counted, not kept")
		}
		c.transcript.EventsDropped++
		c.env.metrics.EventsDropped(1)
	}
	c.trDirty = true
	c.mu.Unlock()
	if kept {
		c.env.publish(Event{Type: ev.Type, CallID: c.id, Body: body})
	}
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
	c.env.metrics.recordErrors.Inc()
}

// result handles one recognizer result.
func (c *Call) result(t *track, r stt.Result) {
	track := t.name
	if t.segOffset > 0 && r.SegmentID != "" {
		r.SegmentID = t.continuedSegment(r.SegmentID)
	}
	switch r.Kind {
	case stt.Partial:
		c.env.publish(Event{Type: TypeTranscriptPartial, CallID: c.id, Body: PartialBody{
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
		c.env.publish(Event{Type: TypeTranscriptFinal, CallID: c.id, Body: seg})
		c.env.metrics.finals.WithLabelValues(track).Inc()
		if at, ok := t.arrivals.when((r.EndMs - 1) / 100); ok && r.EndMs > 0 {
			c.env.metrics.CaptionLatency(c.env.cfg.Now().Sub(time.Unix(0, at)))
		}
	case stt.Status:
		if r.Status == nil {
			return
		}
		typ := TypeSTTPrefix + r.Status.Event
		c.event(TranscriptEvent{Type: typ, Track: track, AtMs: r.StartMs, Code: r.Status.Code, Message: r.Status.Message},
			STTBody{Track: track, AtMs: r.StartMs, Code: r.Status.Code, Message: r.Status.Message})
		c.env.metrics.STTEvent(r.Status.Event, r.Status.Code)
		if r.Status.Event == stt.EventGap {
			// Audio the stream dropped; what the session's queue dropped
			// never reached it and is counted by sttEvents.Gap.
			c.env.metrics.Gap("stt", r.EndMs-r.StartMs)
		}
	}
}
