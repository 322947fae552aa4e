package config

import (
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// TestComposeSettingsExist: every BRIDGE_* variable docker-compose.yml sets
// is a setting of the bridge, so a misspelt one cannot be silently
// ignored by the containers.
func TestComposeSettingsExist(t *testing.T) {
	var cfg Config
	p, err := kong.New(&cfg, Options(io.Discard)...)
	require.NoError(t, err)
	var known []string
	for _, group := range p.Model.AllFlags(true) {
		for _, f := range group {
			known = append(known, f.Envs...)
		}
	}
	require.Contains(t, known, "BRIDGE_ADDR")

	raw, err := os.ReadFile("../docker-compose.yml")
	require.NoError(t, err)
	var compose struct {
		Services map[string]struct {
			Environment map[string]any `yaml:"environment"`
		} `yaml:"services"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &compose))
	require.NotEmpty(t, compose.Services)
	seen := 0
	for name, svc := range compose.Services {
		for key := range svc.Environment {
			if strings.HasPrefix(key, "BRIDGE_") {
				seen++
				require.True(t, slices.Contains(known, key), "service %s sets %s, which is no setting of the bridge", name, key)
			}
		}
	}
	require.Positive(t, seen, "the bridge service is configured through BRIDGE_* variables")
}
