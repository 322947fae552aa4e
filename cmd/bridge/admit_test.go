package main

import (
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
)

// TestResumeWindowZeroMeansNever: with --resume-window 0 a stream for a
// call that has ended is refused (1008) and the call stays as it was.
func TestResumeWindowZeroMeansNever(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.ResumeWindow = 0
	inst, base := startBridge(t, cfg)
	const callSid = "CAe5000000000000000000000000000001"
	gen := bursts(300, 8000, 0, 1, 1)
	c := dial(t, base, "/media", nil)
	send(t, c, twilioStart(callSid, "MZe5000000000000000000000000000001", []string{"inbound"}, nil))
	for k := range 10 {
		send(t, c, twilioMedia("MZe5000000000000000000000000000001", "inbound", k+2, k+1, 20*k, mulawFrame(gen, 160*k, 160)))
	}
	send(t, c, twilioStop("MZe5000000000000000000000000000001", callSid, 20))
	var first bridge.CallRecord
	require.Eventually(t, func() bool {
		var ok bool
		first, ok = inst.reg.Record(callSid)
		return ok && first.Status == bridge.StatusEnded
	}, 10*time.Second, 5*time.Millisecond)

	again := dial(t, base, "/media", nil)
	send(t, again, twilioStart(callSid, "MZe5000000000000000000000000000002", []string{"inbound"}, nil))
	require.NoError(t, again.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, _, err := again.ReadMessage()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, websocket.ClosePolicyViolation, ce.Code)
	require.Contains(t, ce.Text, "continuing ended calls is off")
	rec, ok := inst.reg.Record(callSid)
	require.True(t, ok)
	require.Equal(t, first.Streams, rec.Streams, "the ended call is left as it was")
	require.Equal(t, bridge.StatusEnded, rec.Status)
}

func TestOffIfZero(t *testing.T) {
	require.Equal(t, -1, offIfZero(0))
	require.Equal(t, 5, offIfZero(5))
	require.Equal(t, time.Duration(-1), offIfZero(time.Duration(0)))
	require.Equal(t, time.Minute, offIfZero(time.Minute))
}
