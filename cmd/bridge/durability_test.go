package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFsyncIntervalSetting(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"--help"}, &out, &errb))
	require.Contains(t, out.String(), `--fsync-interval=5s`)
	require.Contains(t, out.String(), "$BRIDGE_FSYNC_INTERVAL")

	out.Reset()
	errb.Reset()
	require.Equal(t, 2, run([]string{"--fsync-interval", "1ms"}, &out, &errb))
	require.Contains(t, errb.String(), "--fsync-interval")
}

// TestFsyncRounds: with --fsync-interval the recordings are synced on the
// timer while calls run (the rounds show in /metrics); with 0 they are
// not.
func TestFsyncRounds(t *testing.T) {
	for _, tt := range []struct {
		name     string
		interval time.Duration
	}{{"every 100ms", 100 * time.Millisecond}, {"off", 0}} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.APIToken = authAPIToken
			cfg.FsyncInterval = tt.interval
			_, base := startBridge(t, cfg)
			const callSid, streamSid = "CA9200000000000000000000000000000a", "MZ9200000000000000000000000000000a"
			c := dial(t, base, "/media", nil)
			playBursts(t, c, callSid, streamSid, 50)
			if tt.interval > 0 {
				rounds := func() float64 { return authMetric(t, base, authAPIToken, "bridge_fsync_round_seconds_count") }
				require.Eventually(t, func() bool { return rounds() >= 3 }, 10*time.Second, 10*time.Millisecond)
			}
			send(t, c, twilioStop(streamSid, callSid, 60))
			waitEndedVia(t, apiGet, base, callSid)
			if tt.interval == 0 {
				require.Zero(t, authMetric(t, base, authAPIToken, "bridge_fsync_round_seconds_count"))
			}
		})
	}
}
