package config

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFsyncInterval(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     string
		want    time.Duration
		problem string
	}{
		{name: "default", want: 5 * time.Second},
		{name: "flag", args: []string{"--fsync-interval", "1s"}, want: time.Second},
		{name: "environment", env: "250ms", want: 250 * time.Millisecond},
		{name: "off", args: []string{"--fsync-interval", "0"}, want: 0},
		{name: "too often", args: []string{"--fsync-interval", "10ms"}, problem: "--fsync-interval: must be 0 (only when a recording closes) or between 100ms and 1h, got 10ms"},
		{name: "negative", args: []string{"--fsync-interval=-1s"}, problem: "--fsync-interval: must be 0"},
		{name: "too rare", env: "2h", problem: "--fsync-interval: must be 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("BRIDGE_FSYNC_INTERVAL", tc.env)
			}
			cfg, err := Load(tc.args, io.Discard)
			if tc.problem != "" {
				require.ErrorContains(t, err, tc.problem)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, cfg.FsyncInterval)
		})
	}
}
