package config

import (
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// loadCase loads args with env set; with problems, it checks that Load
// names each of them and returns false.
func loadCase(t *testing.T, env, args, problems []string) (Config, bool) {
	t.Helper()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	cfg, err := Load(args, io.Discard)
	if len(problems) > 0 {
		require.Error(t, err)
		for _, p := range problems {
			require.Contains(t, err.Error(), p)
		}
		return cfg, false
	}
	require.NoError(t, err)
	return cfg, true
}
