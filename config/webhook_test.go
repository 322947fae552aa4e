package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

const testWebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw/oHn45DDLyo="

func TestWebhook(t *testing.T) {
	cases := []struct {
		name      string
		args, env []string
		urls      []string
		problems  []string
	}{
		{name: "off by default"},
		{name: "environment", env: []string{"BRIDGE_WEBHOOK_URL=http://127.0.0.1:9/a,https://b.example/h", "BRIDGE_WEBHOOK_SECRET=" + testWebhookSecret},
			urls: []string{"http://127.0.0.1:9/a", "https://b.example/h"}},
		{name: "url without a secret", args: []string{"--webhook-url", "http://127.0.0.1:9/"},
			problems: []string{"--webhook-secret: is required with --webhook-url", "head -c 32 /dev/urandom"}},
		{name: "secret without a url", args: []string{"--webhook-secret", testWebhookSecret},
			problems: []string{"--webhook-secret: has no effect without --webhook-url"}},
		{name: "bad values, all reported", args: []string{"--webhook-url", "ftp://x/", "--webhook-url", "/relative", "--webhook-secret", "abc",
			"--webhook-events", "call.started,call.exploded", "--webhook-timeout", "0s", "--webhook-attempts", "0", "--inline-transcript-max", "262145"},
			problems: []string{`--webhook-url: "ftp://x/" must be an absolute`, `--webhook-url: "/relative" must be`, "--webhook-secret: webhook secret must be whsec_",
				`--webhook-events: "call.exploded" is not an event type`, "--webhook-timeout: 0s must be from 1s to 2m", "--webhook-attempts: 0 must be from 1 to 30",
				"--inline-transcript-max: 262145 must be from 0 to 262144"}},
		{name: "empty key", args: []string{"--webhook-url", "http://127.0.0.1:9/", "--webhook-secret", "whsec_"},
			problems: []string{"--webhook-secret:", "the key is 0 bytes"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ok := loadCase(t, tc.env, tc.args, tc.problems)
			if !ok {
				return
			}
			require.Equal(t, tc.urls, cfg.Webhook.URLs)
			require.Equal(t, len(tc.urls) > 0, cfg.Webhook.Enabled())
		})
	}
}
