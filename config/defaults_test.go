package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/web"
)

// TestDefaultsAreTheComponents: each limit's default on the command line is
// the one its component takes for a zero value, read through the right
// variable.
func TestDefaultsAreTheComponents(t *testing.T) {
	l, d := Default().Limits, Default().Dashboard
	b, w, h := bridge.Defaults(), web.Defaults(), web.HubDefaults()
	require.Equal(t, []int{b.MaxCalls, b.MaxStreamsPerCall, b.MaxEventsPerCall,
		w.MaxMessageBytes, w.MaxPendingStreams, w.MaxSocketsPerAddress,
		h.MaxSubscribers, h.MaxPerCall, h.Outbox, h.MaxReplayBytes},
		[]int{l.MaxCalls, l.MaxStreamsPerCall, l.MaxEventsPerCall,
			l.MaxMessageBytes, l.MaxPendingStreams, l.MaxSocketsPerAddress,
			l.MaxSubscribers, l.MaxSubscribersCall, l.SubscriberQueue, l.MaxReplayBytes})
	require.Equal(t, []time.Duration{b.MaxCallDuration, b.MaxGap, b.STTQueue, b.ResumeWindow, w.IdleTimeout, w.StartTimeout, h.WaitTimeout},
		[]time.Duration{l.MaxCallDuration, l.MaxGap, l.STTQueue, l.ResumeWindow, l.IdleTimeout, l.StartTimeout, l.SubscriberWait})
	require.Equal(t, []string{w.InboundLabel, w.OutboundLabel}, []string{d.InboundLabel, d.OutboundLabel})
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		4 * time.Hour: "4h", 2 * time.Minute: "2m", 10 * time.Second: "10s", 90 * time.Second: "1m30s",
		90 * time.Minute: "1h30m", 300 * time.Millisecond: "300ms", time.Hour + time.Second: "1h0m1s",
	} {
		require.Equal(t, want, shortDuration(d), "%v", d)
	}
}
