package config

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestProvidersValidate(t *testing.T) {
	const secret = "0123456789abcdef-secret"
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want []string // one problem per entry; none: valid
	}{
		{"defaults are open and valid", nil, nil, nil},
		{"every scheme", []string{"--public-url", "https://b.example", "--twilio-auth-token", "abc123", "--signalwire-signing-key", "PSK1",
			"--media-bearer-token", secret, "--media-path-secret", secret, "--provider-path-secrets", "plivo=" + secret + ",vobiz=" + secret + "x",
			"--provider-bearer-tokens", "signalwire=" + secret, "--exotel-basic-auth", "KEY:TOKEN", "--l16-byte-order", "vobiz=le,signalwire=be", "--reorder-frames", "8"}, nil, nil},
		{"from the environment", nil, map[string]string{"BRIDGE_PROVIDER_PATH_SECRETS": "plivo=" + secret, "BRIDGE_L16_BYTE_ORDER": "signalwire=big"}, nil},
		{"signatures need the public URL", []string{"--twilio-auth-token", "abc", "--signalwire-signing-key", "k"}, nil,
			[]string{"--twilio-auth-token: needs --public-url", "--signalwire-signing-key: needs --public-url"}},
		{"short secrets", []string{"--media-bearer-token", "short", "--media-path-secret", "short"}, nil,
			[]string{"--media-bearer-token: must be at least 16", "--media-path-secret: must be 16 to 128"}},
		{"a path secret that needs escaping", []string{"--media-path-secret", "0123456789abcdef/x"}, nil,
			[]string{"--media-path-secret: may only contain"}},
		{"unknown providers", []string{"--provider-path-secrets", "acme=" + secret, "--provider-bearer-tokens", "acme=" + secret, "--l16-byte-order", "acme=le"}, nil,
			[]string{`--provider-bearer-tokens: unknown provider "acme"`, `--provider-path-secrets: unknown provider "acme"`, `--l16-byte-order: unknown provider "acme"`}},
		{"a bad byte order", []string{"--l16-byte-order", "vobiz=middle"}, nil, []string{`--l16-byte-order: vobiz="middle": want be or le`}},
		{"Basic auth without a password", []string{"--exotel-basic-auth", "KEY"}, nil, []string{"--exotel-basic-auth: must be USER:PASSWORD"}},
		{"Basic auth that needs escaping", []string{"--exotel-basic-auth", "KEY:TO@KEN"}, nil, []string{"--exotel-basic-auth: use only"}},
		{"reorder window too big", []string{"--reorder-frames", "500"}, nil, []string{"--reorder-frames: must be between 0 (off) and 50"}},
		{"media batch too long", []string{"--media-batch", "2s"}, nil, []string{"--media-batch: must be between 0 (off) and 1s"}},
		{"media batch negative", []string{"--media-batch=-5ms"}, nil, []string{"--media-batch: must be between 0 (off) and 1s"}},
	}
	// What each valid case parses to.
	valid := map[string]Providers{
		"defaults are open and valid": {ReorderFrames: 5, MediaBatch: 40 * time.Millisecond},
		"every scheme": {TwilioAuthToken: "abc123", SignalWireSigningKey: "PSK1", MediaBearerToken: secret, MediaPathSecret: secret,
			ProviderPathSecrets:  map[string]string{"plivo": secret, "vobiz": secret + "x"},
			ProviderBearerTokens: map[string]string{"signalwire": secret}, ExotelBasicAuth: "KEY:TOKEN",
			L16ByteOrder: map[string]string{"vobiz": "le", "signalwire": "be"}, ReorderFrames: 8, MediaBatch: 40 * time.Millisecond},
		"from the environment": {ProviderPathSecrets: map[string]string{"plivo": secret}, L16ByteOrder: map[string]string{"signalwire": "big"}, ReorderFrames: 5, MediaBatch: 40 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, err := Load(tc.args, io.Discard)
			if len(tc.want) == 0 {
				require.NoError(t, err)
				require.Equal(t, valid[tc.name], cfg.Providers)
				return
			}
			requireProblemPrefixes(t, err, tc.want)
		})
	}
}

func TestProvidersAccessors(t *testing.T) {
	cfg, err := Load([]string{"--l16-byte-order", "Vobiz=Little,telnyx=be", "--exotel-basic-auth", "KEY:TOKEN"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"vobiz": "le", "telnyx": "be"}, cfg.Providers.ByteOrders())
	u, p := cfg.Providers.ExotelCredentials()
	require.Equal(t, "KEY", u)
	require.Equal(t, "TOKEN", p)
	require.False(t, cfg.Providers.Open())
	require.True(t, Default().Providers.Open())
	require.Equal(t, 5, Default().Providers.ReorderFrames)
}
