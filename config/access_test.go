package config

import (
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAccessValidate: the settings that open or restrict the dashboard,
// the API and the caption sockets.
func TestAccessValidate(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want []string // one problem per entry; none: valid
	}{
		{"token only", []string{"--api-token", "tok"}, nil, nil},
		{"anonymous only", []string{"--allow-anonymous"}, nil, nil},
		{"anonymous from the environment", nil, map[string]string{"BRIDGE_ALLOW_ANONYMOUS": "true"}, nil},
		{"anonymous and a token", []string{"--allow-anonymous", "--api-token", "tok"}, nil, []string{"--allow-anonymous: cannot be combined with --api-token"}},
		{"anonymous and a token from the environment", []string{"--allow-anonymous"}, map[string]string{"BRIDGE_API_TOKEN": "tok"}, []string{"--allow-anonymous: cannot be combined"}},
		{"hosts", []string{"--allowed-hosts", "bridge.example.com,10.0.0.5:8080,[2001:db8::1]:443,::1,*,Intranet"}, nil, nil},
		{"hosts from the environment", nil, map[string]string{"BRIDGE_ALLOWED_HOSTS": "a.example,b.example"}, nil},
		{"bad hosts", []string{"--allowed-hosts", "https://x.example,bad host,a..b"}, nil,
			[]string{`--allowed-hosts: "https://x.example" is not`, `--allowed-hosts: "bad host" is not`, `--allowed-hosts: "a..b" is not`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, err := Load(tc.args, io.Discard)
			if len(tc.want) == 0 {
				require.NoError(t, err)
				if tc.env["BRIDGE_ALLOW_ANONYMOUS"] != "" {
					require.True(t, cfg.AllowAnonymous)
				}
				return
			}
			requireProblemPrefixes(t, err, tc.want)
		})
	}
	cfg, err := Load([]string{"--allowed-hosts", "a.example,b.example"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, []string{"a.example", "b.example"}, cfg.AllowedHosts)
	require.False(t, Default().AllowAnonymous, "nothing is anonymous by default")
}
