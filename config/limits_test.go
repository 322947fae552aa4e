package config

import (
	"bytes"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/stretchr/testify/require"
)

// TestPerCallBounds: the per-call bounds are flags and environment
// variables with documented defaults, and bad values are refused by name.
func TestPerCallBounds(t *testing.T) {
	def := Default()
	require.Equal(t, 10_000, def.Limits.MaxEventsPerCall)
	require.Equal(t, 4<<20, def.Limits.MaxReplayBytes)

	t.Run("flags", func(t *testing.T) {
		cfg, err := Load([]string{"--max-events-per-call", "50", "--max-replay-bytes", "131072"}, &bytes.Buffer{})
		require.NoError(t, err)
		require.Equal(t, 50, cfg.Limits.MaxEventsPerCall)
		require.Equal(t, 131072, cfg.Limits.MaxReplayBytes)
	})
	t.Run("environment", func(t *testing.T) {
		t.Setenv("BRIDGE_MAX_EVENTS_PER_CALL", "70")
		t.Setenv("BRIDGE_MAX_REPLAY_BYTES", "65536")
		cfg, err := Load(nil, &bytes.Buffer{})
		require.NoError(t, err)
		require.Equal(t, 70, cfg.Limits.MaxEventsPerCall)
		require.Equal(t, 65536, cfg.Limits.MaxReplayBytes)
	})
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no events", []string{"--max-events-per-call", "0"}, "--max-events-per-call: must be between 1 and 10000000, got 0"},
		{"negative events", []string{"--max-events-per-call", "-5"}, "--max-events-per-call"},
		{"replay too small", []string{"--max-replay-bytes", "1000"}, "--max-replay-bytes: must be between 65536 and 1073741824, got 1000"},
		{"replay too large", []string{"--max-replay-bytes", "2147483648"}, "--max-replay-bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.args, &bytes.Buffer{})
			require.ErrorContains(t, err, tc.want)
		})
	}
	t.Run("help shows defaults", func(t *testing.T) {
		var out bytes.Buffer
		var cfg Config
		p, err := kong.New(&cfg, append(Options(&out), kong.Exit(func(int) {}))...)
		require.NoError(t, err)
		_, _ = p.Parse([]string{"--help"})
		for _, want := range []string{
			`--max-events-per-call=10000`, "$BRIDGE_MAX_EVENTS_PER_CALL",
			`--max-replay-bytes=4194304`, "$BRIDGE_MAX_REPLAY_BYTES",
		} {
			require.Contains(t, out.String(), want)
		}
	})
}
