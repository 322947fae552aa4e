package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNATS(t *testing.T) {
	cases := []struct {
		name      string
		args, env []string
		want      NATS
		servers   []string
		problems  []string
	}{
		{name: "off by default", want: NATS{NodeTimeout: 15 * time.Second}},
		{name: "flags", args: []string{"--nats-url", "nats://a:4222, tls://b:4222", "--nats-creds", "/etc/bridge/nats.creds", "--nats-ca", "/etc/bridge/ca.pem", "--node-id", "bridge-1"},
			want:    NATS{URL: "nats://a:4222, tls://b:4222", Creds: "/etc/bridge/nats.creds", CA: "/etc/bridge/ca.pem", NodeID: "bridge-1", NodeTimeout: 15 * time.Second},
			servers: []string{"nats://a:4222", "tls://b:4222"}},
		{name: "environment", env: []string{"BRIDGE_NATS_URL=nats://127.0.0.1:4222", "BRIDGE_NATS_CREDS=/c", "BRIDGE_NATS_CA=/ca", "BRIDGE_NODE_ID=n2", "BRIDGE_NODE_TIMEOUT=30s"},
			want: NATS{URL: "nats://127.0.0.1:4222", Creds: "/c", CA: "/ca", NodeID: "n2", NodeTimeout: 30 * time.Second}, servers: []string{"nats://127.0.0.1:4222"}},
		{name: "settings without a url", args: []string{"--nats-creds", "/c", "--nats-ca", "/ca"},
			problems: []string{"--nats-creds: has no effect without --nats-url", "--nats-ca: has no effect without --nats-url"}},
		{name: "bad values, all reported", args: []string{"--nats-url", "http://a:4222,nats://", "--node-id", "a b", "--node-timeout", "1s"},
			problems: []string{`--node-timeout: 1s must be from 3s to 5m`, `--nats-url: "http://a:4222" must start with nats://`, `--nats-url: "nats://" has no host`, `--node-id: "a b" must be at most 64`}},
		{name: "no server", args: []string{"--nats-url", " , "}, problems: []string{`--nats-url: " , " names no server`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ok := loadCase(t, tc.env, tc.args, tc.problems)
			if !ok {
				return
			}
			require.Equal(t, tc.want, cfg.NATS)
			require.Equal(t, tc.want.URL != "", cfg.NATS.Enabled())
			require.Equal(t, tc.servers, cfg.NATS.Servers())
		})
	}
}
