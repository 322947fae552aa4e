package config

import (
	"bytes"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/stretchr/testify/require"
)

// TestAdmissionLimits: the settings that bound sockets before a call
// exists and the resume window load from flags and the environment, show
// their defaults in --help and report bad values.
func TestAdmissionLimits(t *testing.T) {
	cases := []struct {
		name      string
		args, env []string
		want      Limits // only the four fields are compared
		problems  []string
	}{
		{name: "defaults", want: Limits{MaxPendingStreams: 256, StartTimeout: 5 * time.Second, MaxSocketsPerAddress: 1000, ResumeWindow: 10 * time.Minute}},
		{name: "flags", args: []string{"--max-pending-streams", "10", "--start-timeout", "2s", "--max-sockets-per-address", "0", "--resume-window", "0"},
			want: Limits{MaxPendingStreams: 10, StartTimeout: 2 * time.Second}},
		{name: "environment", env: []string{"BRIDGE_MAX_PENDING_STREAMS=7", "BRIDGE_START_TIMEOUT=1s", "BRIDGE_MAX_SOCKETS_PER_ADDRESS=50", "BRIDGE_RESUME_WINDOW=1h"},
			want: Limits{MaxPendingStreams: 7, StartTimeout: time.Second, MaxSocketsPerAddress: 50, ResumeWindow: time.Hour}},
		{name: "out of range, all reported", args: []string{"--max-pending-streams", "0", "--start-timeout", "10ms", "--max-sockets-per-address=-1", "--resume-window=-1s"},
			problems: []string{"--max-pending-streams: must be between 1 and", "--start-timeout: must be between 100ms and 10m0s, got 10ms",
				"--max-sockets-per-address: must be 0 (no cap) or between 1 and", "--resume-window: must be between 0s and"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ok := loadCase(t, tc.env, tc.args, tc.problems)
			if !ok {
				return
			}
			l := cfg.Limits
			require.Equal(t, tc.want, Limits{MaxPendingStreams: l.MaxPendingStreams, StartTimeout: l.StartTimeout,
				MaxSocketsPerAddress: l.MaxSocketsPerAddress, ResumeWindow: l.ResumeWindow})
		})
	}
	t.Run("help shows the defaults", func(t *testing.T) {
		var out bytes.Buffer
		var cfg Config
		p, err := kong.New(&cfg, append(Options(&out), kong.Exit(func(int) {}))...)
		require.NoError(t, err)
		_, _ = p.Parse([]string{"--help"})
		for _, want := range []string{"--max-pending-streams=256", "--start-timeout=5s", "--max-sockets-per-address=1000", "--resume-window=10m", "($BRIDGE_RESUME_WINDOW)"} {
			require.Contains(t, out.String(), want)
		}
	})
}
