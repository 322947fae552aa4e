package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
)

// TestTimestampJumpsCannotFillTheDisk plays, over a real media socket, a
// stream whose timestamp jumps just under --max-gap after every frame. The
// recording holds the frames and at most the call's wall time plus
// --max-gap of silence (not one --max-gap per frame), the transcript keeps
// --max-events-per-call of its audio.gap events and counts the rest, and
// both are in /metrics.
func TestTimestampJumpsCannotFillTheDisk(t *testing.T) {
	const (
		token     = "limits-test-token"
		frames    = 300
		maxEvents = 100
		sid       = "CAjump00000000000000000000000000001"
		stream    = "MZjump00000000000000000000000000001"
	)
	cfg := testConfig(t)
	cfg.APIToken = token
	cfg.Limits.MaxGap = time.Second
	cfg.Limits.MaxEventsPerCall = maxEvents
	_, base := startBridge(t, cfg)

	began := time.Now()
	c := dial(t, base, "/media/twilio", nil)
	send(t, c, twilioStart(sid, stream, []string{"inbound"}, nil))
	ts := 0
	for k := range frames {
		send(t, c, twilioMediaTS(stream, k+2, ts, mulawFrame(tone, 160*k, 160)))
		ts += 20 + 990 // the frame, then a jump just under --max-gap
	}
	send(t, c, twilioStop(stream, sid, frames+2))
	code, _ := closeOf(t, c)
	require.Equal(t, 1000, code)

	// The condition runs off the test goroutine: it only reports.
	require.Eventually(t, func() bool {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/calls/"+sid, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var r bridge.CallRecord
		return json.NewDecoder(resp.Body).Decode(&r) == nil && r.Status == bridge.StatusEnded
	}, 20*time.Second, 10*time.Millisecond)
	wall := time.Since(began)
	var rec bridge.CallRecord
	require.NoError(t, json.Unmarshal(authGet(t, base, token, "/api/calls/"+sid), &rec))

	b := authGet(t, base, token, "/api/calls/"+sid+"/recordings/inbound.wav")
	w := parseWAV(t, b)
	t.Logf("recording: %d samples, %d of them the frames, after %s of wall time", len(w.samples), frames*160, wall)
	silenceBound := int((wall + cfg.Limits.MaxGap).Seconds() * 8000)
	require.LessOrEqual(t, len(w.samples), frames*160+silenceBound,
		"at most wall time (%s) plus --max-gap of silence, not %d × 990 ms", wall, frames-1)
	require.Greater(t, len(w.samples), frames*160, "every frame is kept, and some silence")
	require.Equal(t, int64(len(w.samples)), rec.Tracks[0].Samples)

	var tr bridge.Transcript
	require.NoError(t, json.Unmarshal(authGet(t, base, token, "/api/calls/"+sid+"/transcript"), &tr))
	require.Len(t, tr.Events, maxEvents)
	require.Equal(t, int64(frames-1-maxEvents), tr.EventsDropped)
	require.Equal(t, int64(frames-1-maxEvents), rec.EventsDropped)
	for _, ev := range tr.Events {
		require.Equal(t, bridge.TypeGap, ev.Type)
		require.LessOrEqual(t, ev.AtMs*8, int64(len(w.samples)), "gap times are on the recording's clock")
	}
	require.Equal(t, float64(frames-1-maxEvents), authMetric(t, base, token, "bridge_call_events_dropped_total"))
	require.Positive(t, authMetric(t, base, token, "bridge_gap_unfilled_milliseconds_total"))
}
