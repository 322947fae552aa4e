package bridge

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge/provider"
)

// TestReadyEvents: after call.ended (marked More) a call publishes
// transcript.ready (the transcript inline) and recording.ready (each
// track's links, duration and size), in that order, its last events.
func TestReadyEvents(t *testing.T) {
	events := &eventLog{}
	reg := NewRegistry(Config{Store: newMemStore(), Publisher: events, Log: zerolog.Nop(),
		BaseURL: "https://b.example/", ObjectURL: func(id, file string) string { return "s3://bk/calls/" + id + "/" + file }})
	const id = "CA ready/1"
	s, err := reg.StartStream(provider.Twilio, &provider.Start{CallID: id, StreamID: "MZ1", Tracks: []string{"inbound"}, Format: pcmu8k})
	require.NoError(t, err)
	play(t, s, utterances([2]float64{0, 1}), 0, 50)
	s.End(ReasonStop, nil)
	require.Eventually(t, func() bool { return len(events.of(id, TypeRecordingReady)) == 1 }, 10*time.Second, time.Millisecond)

	evs := events.of(id, "")
	n := len(evs)
	require.Equal(t, []string{TypeCallEnded, TypeTranscriptReady, TypeRecordingReady}, []string{evs[n-3].Type, evs[n-2].Type, evs[n-1].Type})
	require.True(t, evs[n-3].More, "call.ended says more follows")
	require.Equal(t, evs[n-3].Seq+1, evs[n-2].Seq)
	require.Equal(t, evs[n-2].Seq+1, evs[n-1].Seq)

	var tr struct {
		URL        string     `json:"url"`
		Bytes      int        `json:"bytes"`
		Transcript Transcript `json:"transcript"`
	}
	require.NoError(t, json.Unmarshal(evs[n-2].Data, &tr))
	require.Equal(t, "https://b.example/api/calls/CA%20ready%2F1/transcript", tr.URL)
	require.Equal(t, id, tr.Transcript.CallID)
	require.Positive(t, tr.Bytes)

	var rr RecordingReadyBody
	require.NoError(t, json.Unmarshal(evs[n-1].Data, &rr))
	require.Equal(t, []RecordingFile{{
		Track: "inbound", URL: "https://b.example/api/calls/CA%20ready%2F1/recordings/inbound.wav",
		DurationMs: 1000, Bytes: 44 + 2*50*160, SampleRate: 8000, ObjectURL: "s3://bk/calls/" + id + "/inbound.wav",
	}}, rr.Recordings)
}

// TestWebhookFailuresInRecord: failures reported while the call runs and
// after it ended are both listed in its record, up to the bound; an
// unknown call is an error.
func TestWebhookFailuresInRecord(t *testing.T) {
	store := newMemStore()
	reg := NewRegistry(Config{Store: store, Publisher: &eventLog{}, Log: zerolog.Nop()})
	const id = "CAhooks"
	s, err := reg.StartStream(provider.Twilio, &provider.Start{CallID: id, StreamID: "MZ1", Tracks: []string{"inbound"}, Format: pcmu8k})
	require.NoError(t, err)
	live := WebhookFailure{URL: "https://a.example/h", EventID: "msg_1", Type: TypeCallStarted, Seq: 1, Attempts: 12, Error: "HTTP 500"}
	require.NoError(t, reg.AttachWebhookFailure(id, live))
	s.End(ReasonStop, nil)
	waitCallEnded(t, reg, id)
	late := WebhookFailure{URL: "https://a.example/h", EventID: "msg_2", Type: TypeRecordingReady, Seq: 5, Error: "outbox full"}
	require.NoError(t, reg.AttachWebhookFailure(id, late))
	for range MaxWebhookFailures {
		_ = reg.AttachWebhookFailure(id, late)
	}
	rec, ok := reg.Record(id)
	require.True(t, ok)
	require.Len(t, rec.WebhooksFailed, MaxWebhookFailures)
	require.Equal(t, live, rec.WebhooksFailed[0])
	require.Equal(t, late, rec.WebhooksFailed[1])
	require.Error(t, reg.AttachWebhookFailure(id, late), "over the bound")
	require.Error(t, reg.AttachWebhookFailure("CAnever", late))
}
