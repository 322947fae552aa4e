package bridge

import (
	"encoding/json"
	"net/url"
	"strings"
)

// After call.ended (the recordings closed, the documents written) a call
// publishes where its results are: transcript.ready, then recording.ready,
// its last event.

// publishReady publishes transcript.ready and recording.ready.
func (c *Call) publishReady() {
	c.mu.Lock()
	rec := c.snapshotLocked()
	tr := c.transcriptLocked()
	c.mu.Unlock()
	base := strings.TrimSuffix(c.env.cfg.BaseURL, "/") + "/api/calls/" + url.PathEscape(c.id)

	recs := RecordingReadyBody{Recordings: []RecordingFile{}}
	for _, t := range rec.Tracks {
		f := RecordingFile{
			Track: t.Name, URL: base + "/recordings/" + url.PathEscape(t.Name) + ".wav",
			Bytes: wavHeaderBytes + 2*t.Samples, SampleRate: t.SampleRate,
		}
		if c.env.cfg.ObjectURL != nil {
			f.ObjectURL = c.env.cfg.ObjectURL(c.id, t.File)
		}
		if t.SampleRate > 0 {
			f.DurationMs = t.Samples * 1000 / int64(t.SampleRate)
		}
		recs.Recordings = append(recs.Recordings, f)
	}
	// recording.ready goes out even if transcript.ready fails: one-call
	// caption subscribers end with it (call.ended is marked More).
	defer c.env.publish(Event{Type: TypeRecordingReady, CallID: c.id, Body: recs})

	trBody := TranscriptReadyBody{URL: base + "/transcript"}
	if b, err := json.Marshal(tr); err == nil {
		trBody.Bytes = len(b)
		limit := c.env.cfg.InlineTranscript
		if limit == 0 {
			limit = MaxInlineTranscript
		}
		if len(b) <= limit {
			trBody.Transcript = b
		}
	}
	c.env.publish(Event{Type: TypeTranscriptReady, CallID: c.id, Body: trBody})
}

// wavHeaderBytes is the size of the canonical WAV header before PCM16 data.
const wavHeaderBytes = 44
