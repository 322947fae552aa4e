package main

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTuneGC(t *testing.T) {
	orig := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(orig) })
	for _, tt := range []struct {
		name string
		env  map[string]string
		want int // GOGC afterwards
	}{
		{"neither set: the bridge's default", nil, defaultGCPercent},
		{"GOGC set", map[string]string{"GOGC": "100"}, 100},
		{"GOGC off", map[string]string{"GOGC": "off"}, 100},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "2GiB"}, 100},
	} {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetGCPercent(100) // what the runtime took from the environment, here
			applied := tuneGC(func(k string) string { return tt.env[k] })
			require.Equal(t, tt.want == defaultGCPercent, applied)
			require.Equal(t, tt.want, debug.SetGCPercent(100))
		})
	}
}
