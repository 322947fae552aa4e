package config

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/stretchr/testify/require"
)

// setting is one flag: its environment variable, its documented default,
// a valid value other than the default (as a flag and as an environment
// value) and where the parsed value lands in Config.
type setting struct {
	flag, env string
	def       any      // Default()'s value: what --help promises
	args      []string // the flag with the other value
	envValue  string   // the same value in the environment
	want      any      // the parsed value
	with      []string // flags the value needs to be valid
	get       func(Config) any
}

func abs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	require.NoError(t, err)
	return a
}

const (
	testToken  = "tok-0123456789abcdef"
	testSecret = "sec-0123456789abcdef"
	testURL    = "https://bridge.example.com"
)

// settings lists every flag of Config.
func settings(t *testing.T) []setting {
	str := func(flag, env, def, v string, get func(Config) any, with ...string) setting {
		return setting{flag: flag, env: env, def: def, args: []string{"--" + flag, v}, envValue: v, want: v, with: with, get: get}
	}
	num := func(flag, env string, def, v int, get func(Config) any) setting {
		s := strconv.Itoa(v)
		return setting{flag: flag, env: env, def: def, args: []string{"--" + flag, s}, envValue: s, want: v, get: get}
	}
	dur := func(flag, env string, def, v time.Duration, get func(Config) any) setting {
		return setting{flag: flag, env: env, def: def, args: []string{"--" + flag, v.String()}, envValue: v.String(), want: v, get: get}
	}
	on := func(flag, env string, get func(Config) any) setting { // a switch that is off by default
		return setting{flag: flag, env: env, def: false, args: []string{"--" + flag}, envValue: "true", want: true, get: get}
	}
	off := func(flag, env string, get func(Config) any) setting { // a negatable switch that is on by default
		return setting{flag: flag, env: env, def: true, args: []string{"--no-" + flag}, envValue: "false", want: false, get: get}
	}
	return []setting{
		str("addr", "BRIDGE_ADDR", "127.0.0.1:8080", "0.0.0.0:9090", func(c Config) any { return c.Addr }),
		{flag: "data", env: "BRIDGE_DATA", def: abs(t, "./data"), args: []string{"--data", "/srv/bridge"}, envValue: "/srv/bridge", want: "/srv/bridge",
			get: func(c Config) any { return c.Data }},
		str("stt", "BRIDGE_STT", "mock", "google", func(c Config) any { return c.STT }),
		str("api-token", "BRIDGE_API_TOKEN", "", testToken, func(c Config) any { return c.APIToken }),
		str("public-url", "BRIDGE_PUBLIC_URL", "", testURL, func(c Config) any { return c.PublicURL }),
		on("allow-anonymous", "BRIDGE_ALLOW_ANONYMOUS", func(c Config) any { return c.AllowAnonymous }),
		{flag: "allowed-hosts", env: "BRIDGE_ALLOWED_HOSTS", def: []string(nil), args: []string{"--allowed-hosts", "captions.example.com,10.0.0.7"},
			envValue: "captions.example.com,10.0.0.7", want: []string{"captions.example.com", "10.0.0.7"}, get: func(c Config) any { return c.AllowedHosts }},
		dur("fsync-interval", "BRIDGE_FSYNC_INTERVAL", 5*time.Second, time.Second, func(c Config) any { return c.FsyncInterval }),
		str("log-level", "BRIDGE_LOG_LEVEL", "info", "debug", func(c Config) any { return c.LogLevel }),
		str("log-format", "BRIDGE_LOG_FORMAT", "auto", "json", func(c Config) any { return c.LogFormat }),

		{flag: "mock-script", env: "BRIDGE_MOCK_SCRIPT", def: "", args: []string{"--mock-script", "/etc/bridge/lines.txt"},
			envValue: "/etc/bridge/lines.txt", want: "/etc/bridge/lines.txt", get: func(c Config) any { return c.Mock.Script }},
		dur("mock-fail-after", "BRIDGE_MOCK_FAIL_AFTER", 0, 3*time.Second, func(c Config) any { return c.Mock.FailAfter }),
		dur("mock-latency", "BRIDGE_MOCK_LATENCY", 0, 250*time.Millisecond, func(c Config) any { return c.Mock.Latency }),

		num("max-calls", "BRIDGE_MAX_CALLS", 2000, 17, func(c Config) any { return c.Limits.MaxCalls }),
		num("max-streams-per-call", "BRIDGE_MAX_STREAMS_PER_CALL", 4, 3, func(c Config) any { return c.Limits.MaxStreamsPerCall }),
		num("max-message-bytes", "BRIDGE_MAX_MESSAGE_BYTES", 262144, 8192, func(c Config) any { return c.Limits.MaxMessageBytes }),
		dur("max-call-duration", "BRIDGE_MAX_CALL_DURATION", 4*time.Hour, 90*time.Minute, func(c Config) any { return c.Limits.MaxCallDuration }),
		dur("idle-timeout", "BRIDGE_IDLE_TIMEOUT", 30*time.Second, 45*time.Second, func(c Config) any { return c.Limits.IdleTimeout }),
		dur("max-gap", "BRIDGE_MAX_GAP", 10*time.Second, 3*time.Second, func(c Config) any { return c.Limits.MaxGap }),
		dur("reconnect-grace", "BRIDGE_RECONNECT_GRACE", 2*time.Second, 5*time.Second, func(c Config) any { return c.Limits.ReconnectGrace }),
		dur("stt-queue", "BRIDGE_STT_QUEUE", 2*time.Second, 4*time.Second, func(c Config) any { return c.Limits.STTQueue }),
		num("max-subscribers", "BRIDGE_MAX_SUBSCRIBERS", 10000, 99, func(c Config) any { return c.Limits.MaxSubscribers }),
		num("max-subscribers-per-call", "BRIDGE_MAX_SUBSCRIBERS_PER_CALL", 100, 7, func(c Config) any { return c.Limits.MaxSubscribersCall }),
		dur("subscriber-wait", "BRIDGE_SUBSCRIBER_WAIT", 2*time.Minute, 30*time.Second, func(c Config) any { return c.Limits.SubscriberWait }),
		num("subscriber-queue", "BRIDGE_SUBSCRIBER_QUEUE", 512, 64, func(c Config) any { return c.Limits.SubscriberQueue }),
		dur("shutdown-timeout", "BRIDGE_SHUTDOWN_TIMEOUT", 30*time.Second, 12*time.Second, func(c Config) any { return c.Limits.ShutdownTimeout }),
		num("max-events-per-call", "BRIDGE_MAX_EVENTS_PER_CALL", 10000, 500, func(c Config) any { return c.Limits.MaxEventsPerCall }),
		num("max-replay-bytes", "BRIDGE_MAX_REPLAY_BYTES", 4194304, 1<<20, func(c Config) any { return c.Limits.MaxReplayBytes }),
		num("max-pending-streams", "BRIDGE_MAX_PENDING_STREAMS", 256, 32, func(c Config) any { return c.Limits.MaxPendingStreams }),
		dur("start-timeout", "BRIDGE_START_TIMEOUT", 5*time.Second, 2*time.Second, func(c Config) any { return c.Limits.StartTimeout }),
		num("max-sockets-per-address", "BRIDGE_MAX_SOCKETS_PER_ADDRESS", 1000, 50, func(c Config) any { return c.Limits.MaxSocketsPerAddress }),
		dur("resume-window", "BRIDGE_RESUME_WINDOW", 10*time.Minute, time.Minute, func(c Config) any { return c.Limits.ResumeWindow }),

		str("google-endpoint", "BRIDGE_GOOGLE_ENDPOINT", "speech.googleapis.com:443", "eu-speech.googleapis.com:443", func(c Config) any { return c.Google.Endpoint }),
		on("google-insecure", "BRIDGE_GOOGLE_INSECURE", func(c Config) any { return c.Google.Insecure }),
		{flag: "google-credentials-file", env: "BRIDGE_GOOGLE_CREDENTIALS_FILE", def: "", args: []string{"--google-credentials-file", "/etc/bridge/key.json"},
			envValue: "/etc/bridge/key.json", want: "/etc/bridge/key.json", get: func(c Config) any { return c.Google.CredentialsFile }},
		str("google-language", "BRIDGE_GOOGLE_LANGUAGE", "en-US", "de-DE", func(c Config) any { return c.Google.Language }),
		{flag: "google-alternative-languages", env: "BRIDGE_GOOGLE_ALTERNATIVE_LANGUAGES", def: []string(nil),
			args: []string{"--google-alternative-languages", "fr-FR,it-IT"}, envValue: "fr-FR,it-IT", want: []string{"fr-FR", "it-IT"},
			get: func(c Config) any { return c.Google.AlternativeLanguages }},
		str("google-model", "BRIDGE_GOOGLE_MODEL", "", "phone_call", func(c Config) any { return c.Google.Model }),
		on("google-enhanced", "BRIDGE_GOOGLE_ENHANCED", func(c Config) any { return c.Google.Enhanced }),
		off("google-punctuation", "BRIDGE_GOOGLE_PUNCTUATION", func(c Config) any { return c.Google.Punctuation }),
		off("google-word-time-offsets", "BRIDGE_GOOGLE_WORD_TIME_OFFSETS", func(c Config) any { return c.Google.WordTimeOffsets }),
		on("google-profanity-filter", "BRIDGE_GOOGLE_PROFANITY_FILTER", func(c Config) any { return c.Google.ProfanityFilter }),
		{flag: "google-phrase-hints", env: "BRIDGE_GOOGLE_PHRASE_HINTS", def: []string(nil),
			args: []string{"--google-phrase-hints", "call back,refund"}, envValue: "call back,refund", want: []string{"call back", "refund"},
			get: func(c Config) any { return c.Google.PhraseHints }},
		{flag: "google-boost", env: "BRIDGE_GOOGLE_BOOST", def: 0.0, args: []string{"--google-boost", "7.5"}, envValue: "7.5", want: 7.5,
			get: func(c Config) any { return c.Google.Boost }},
		num("google-max-alternatives", "BRIDGE_GOOGLE_MAX_ALTERNATIVES", 0, 3, func(c Config) any { return c.Google.MaxAlternatives }),
		off("google-interim-results", "BRIDGE_GOOGLE_INTERIM_RESULTS", func(c Config) any { return c.Google.InterimResults }),
		num("google-max-streams", "BRIDGE_GOOGLE_MAX_STREAMS", 200, 50, func(c Config) any { return c.Google.MaxStreams }),
		num("google-pool-size", "BRIDGE_GOOGLE_POOL_SIZE", 0, 2, func(c Config) any { return c.Google.PoolSize }),
		dur("google-rotate-after", "BRIDGE_GOOGLE_ROTATE_AFTER", 270*time.Second, 3*time.Minute, func(c Config) any { return c.Google.RotateAfter }),
		dur("google-stream-limit", "BRIDGE_GOOGLE_STREAM_LIMIT", 290*time.Second, 4*time.Minute, func(c Config) any { return c.Google.StreamLimit }),
		dur("google-rotate-pause", "BRIDGE_GOOGLE_ROTATE_PAUSE", 300*time.Millisecond, 500*time.Millisecond, func(c Config) any { return c.Google.RotatePause }),
		str("google-hold", "BRIDGE_GOOGLE_HOLD", "reopen", "keepalive", func(c Config) any { return c.Google.Hold }),
		dur("google-idle-close", "BRIDGE_GOOGLE_IDLE_CLOSE", 3*time.Second, 5*time.Second, func(c Config) any { return c.Google.IdleClose }),
		dur("google-silence-close", "BRIDGE_GOOGLE_SILENCE_CLOSE", 10*time.Second, 20*time.Second, func(c Config) any { return c.Google.SilenceClose }),
		num("google-silence-level", "BRIDGE_GOOGLE_SILENCE_LEVEL", 150, 300, func(c Config) any { return c.Google.SilenceLevel }),
		dur("google-pre-roll", "BRIDGE_GOOGLE_PRE_ROLL", time.Second, 2*time.Second, func(c Config) any { return c.Google.PreRoll }),
		dur("google-gap-fill", "BRIDGE_GOOGLE_GAP_FILL", time.Second, 2*time.Second, func(c Config) any { return c.Google.GapFill }),
		dur("google-chunk-duration", "BRIDGE_GOOGLE_CHUNK_DURATION", 100*time.Millisecond, 50*time.Millisecond, func(c Config) any { return c.Google.ChunkDuration }),
		dur("google-queue-duration", "BRIDGE_GOOGLE_QUEUE_DURATION", 10*time.Second, 20*time.Second, func(c Config) any { return c.Google.QueueDuration }),
		dur("google-replay-limit", "BRIDGE_GOOGLE_REPLAY_LIMIT", 30*time.Second, 40*time.Second, func(c Config) any { return c.Google.ReplayLimit }),
		dur("google-drain-timeout", "BRIDGE_GOOGLE_DRAIN_TIMEOUT", 10*time.Second, 5*time.Second, func(c Config) any { return c.Google.DrainTimeout }),
		dur("google-send-timeout", "BRIDGE_GOOGLE_SEND_TIMEOUT", 10*time.Second, 5*time.Second, func(c Config) any { return c.Google.SendTimeout }),
		dur("google-backoff-initial", "BRIDGE_GOOGLE_BACKOFF_INITIAL", 250*time.Millisecond, 500*time.Millisecond, func(c Config) any { return c.Google.BackoffInitial }),
		dur("google-backoff-max", "BRIDGE_GOOGLE_BACKOFF_MAX", 10*time.Second, 20*time.Second, func(c Config) any { return c.Google.BackoffMax }),
		dur("google-exhausted-backoff", "BRIDGE_GOOGLE_EXHAUSTED_BACKOFF", 2*time.Second, 3*time.Second, func(c Config) any { return c.Google.ExhaustedBackoff }),
		num("google-max-retries", "BRIDGE_GOOGLE_MAX_RETRIES", 8, 4, func(c Config) any { return c.Google.MaxRetries }),

		str("inbound-label", "BRIDGE_INBOUND_LABEL", "Caller", "Patient", func(c Config) any { return c.Dashboard.InboundLabel }),
		str("outbound-label", "BRIDGE_OUTBOUND_LABEL", "Agent", "Nurse", func(c Config) any { return c.Dashboard.OutboundLabel }),

		str("twilio-auth-token", "BRIDGE_TWILIO_AUTH_TOKEN", "", "twilio0123", func(c Config) any { return c.Providers.TwilioAuthToken }, "--public-url", testURL),
		str("signalwire-signing-key", "BRIDGE_SIGNALWIRE_SIGNING_KEY", "", "PSK0123", func(c Config) any { return c.Providers.SignalWireSigningKey }, "--public-url", testURL),
		str("media-bearer-token", "BRIDGE_MEDIA_BEARER_TOKEN", "", testToken, func(c Config) any { return c.Providers.MediaBearerToken }),
		str("media-path-secret", "BRIDGE_MEDIA_PATH_SECRET", "", testSecret, func(c Config) any { return c.Providers.MediaPathSecret }),
		{flag: "provider-bearer-tokens", env: "BRIDGE_PROVIDER_BEARER_TOKENS", def: map[string]string(nil),
			args: []string{"--provider-bearer-tokens", "signalwire=" + testToken + ",telnyx=" + testToken + "x"}, envValue: "signalwire=" + testToken + ",telnyx=" + testToken + "x",
			want: map[string]string{"signalwire": testToken, "telnyx": testToken + "x"}, get: func(c Config) any { return c.Providers.ProviderBearerTokens }},
		{flag: "provider-path-secrets", env: "BRIDGE_PROVIDER_PATH_SECRETS", def: map[string]string(nil),
			args: []string{"--provider-path-secrets", "plivo=" + testSecret}, envValue: "plivo=" + testSecret,
			want: map[string]string{"plivo": testSecret}, get: func(c Config) any { return c.Providers.ProviderPathSecrets }},
		str("exotel-basic-auth", "BRIDGE_EXOTEL_BASIC_AUTH", "", "KEY:TOKEN", func(c Config) any { return c.Providers.ExotelBasicAuth }),
		{flag: "l16-byte-order", env: "BRIDGE_L16_BYTE_ORDER", def: map[string]string(nil),
			args: []string{"--l16-byte-order", "vobiz=le,telnyx=little"}, envValue: "vobiz=le,telnyx=little",
			want: map[string]string{"vobiz": "le", "telnyx": "little"}, get: func(c Config) any { return c.Providers.L16ByteOrder }},
		num("reorder-frames", "BRIDGE_REORDER_FRAMES", 5, 8, func(c Config) any { return c.Providers.ReorderFrames }),
		dur("media-batch", "BRIDGE_MEDIA_BATCH", 40*time.Millisecond, 100*time.Millisecond, func(c Config) any { return c.Providers.MediaBatch }),

		str("s3-bucket", "BRIDGE_S3_BUCKET", "", "calls", func(c Config) any { return c.S3.Bucket }),
		str("s3-prefix", "BRIDGE_S3_PREFIX", "", "bridge/", func(c Config) any { return c.S3.Prefix }, "--s3-bucket", "calls"),
		str("s3-endpoint", "BRIDGE_S3_ENDPOINT", "", "http://127.0.0.1:7070", func(c Config) any { return c.S3.Endpoint }, "--s3-bucket", "calls"),
		str("s3-region", "BRIDGE_S3_REGION", "", "eu-west-1", func(c Config) any { return c.S3.Region }, "--s3-bucket", "calls"),
		{flag: "s3-path-style", env: "BRIDGE_S3_PATH_STYLE", def: false, args: []string{"--s3-path-style"}, envValue: "true", want: true,
			with: []string{"--s3-bucket", "calls"}, get: func(c Config) any { return c.S3.PathStyle }},
		{flag: "spool-keep", env: "BRIDGE_SPOOL_KEEP", def: false, args: []string{"--spool-keep"}, envValue: "true", want: true,
			with: []string{"--s3-bucket", "calls"}, get: func(c Config) any { return c.S3.SpoolKeep }},
		str("nats-url", "BRIDGE_NATS_URL", "", "nats://127.0.0.1:4222", func(c Config) any { return c.NATS.URL }),
		str("nats-creds", "BRIDGE_NATS_CREDS", "", "/etc/bridge/nats.creds", func(c Config) any { return c.NATS.Creds }, "--nats-url", "nats://127.0.0.1:4222"),
		str("nats-ca", "BRIDGE_NATS_CA", "", "/etc/bridge/ca.pem", func(c Config) any { return c.NATS.CA }, "--nats-url", "nats://127.0.0.1:4222"),
		str("node-id", "BRIDGE_NODE_ID", "", "bridge-1", func(c Config) any { return c.NATS.NodeID }),
		dur("node-timeout", "BRIDGE_NODE_TIMEOUT", 15*time.Second, 40*time.Second, func(c Config) any { return c.NATS.NodeTimeout }),

		{flag: "webhook-url", env: "BRIDGE_WEBHOOK_URL", def: []string(nil),
			args: []string{"--webhook-url", "http://127.0.0.1:9/a", "--webhook-url", "https://app.example/b"}, envValue: "http://127.0.0.1:9/a,https://app.example/b",
			want: []string{"http://127.0.0.1:9/a", "https://app.example/b"}, with: []string{"--webhook-secret", testWebhookSecret},
			get: func(c Config) any { return c.Webhook.URLs }},
		str("webhook-secret", "BRIDGE_WEBHOOK_SECRET", "", testWebhookSecret, func(c Config) any { return c.Webhook.Secret }, "--webhook-url", "http://127.0.0.1:9/"),
		{flag: "webhook-events", env: "BRIDGE_WEBHOOK_EVENTS", def: []string{"call.started", "call.ended", "transcript.final", "transcript.ready", "recording.ready"},
			args: []string{"--webhook-events", "transcript.partial,call.ended"}, envValue: "transcript.partial,call.ended",
			want: []string{"transcript.partial", "call.ended"}, get: func(c Config) any { return c.Webhook.Events }},
		dur("webhook-timeout", "BRIDGE_WEBHOOK_TIMEOUT", 10*time.Second, 30*time.Second, func(c Config) any { return c.Webhook.Timeout }),
		num("webhook-attempts", "BRIDGE_WEBHOOK_ATTEMPTS", 12, 3, func(c Config) any { return c.Webhook.Attempts }),
		num("inline-transcript-max", "BRIDGE_INLINE_TRANSCRIPT_MAX", 262144, 0, func(c Config) any { return c.Webhook.InlineMax }),
	}
}

// flags is every flag Config declares, by name, as kong models it.
func flags(t *testing.T) map[string]*kong.Flag {
	t.Helper()
	var cfg Config
	p, err := kong.New(&cfg, Options(io.Discard)...)
	require.NoError(t, err)
	out := map[string]*kong.Flag{}
	for _, group := range p.Model.AllFlags(true) {
		for _, f := range group {
			if f.Name != "help" {
				out[f.Name] = f
			}
		}
	}
	return out
}

// TestEverySetting: each flag and its environment variable reach their own
// field (and only change that one), the defaults are the documented ones,
// and no flag is left out of this test.
func TestEverySetting(t *testing.T) {
	all := settings(t)
	model := flags(t)
	var names []string
	for _, s := range all {
		names = append(names, s.flag)
		f, ok := model[s.flag]
		require.True(t, ok, "--%s is not a flag", s.flag)
		require.Equal(t, []string{s.env}, f.Envs, "--%s's environment variable", s.flag)
	}
	for name := range model {
		require.True(t, slices.Contains(names, name), "--%s has no row in this test", name)
	}

	def := Default()
	for _, s := range all {
		t.Run(s.flag, func(t *testing.T) {
			require.Equal(t, s.def, s.get(def), "the default of --%s", s.flag)
			require.NotEqual(t, s.def, s.want, "the test value must differ from the default")

			fromFlag, err := Load(append(slices.Clone(s.with), s.args...), io.Discard)
			require.NoError(t, err)
			require.Equal(t, s.want, s.get(fromFlag), "--%s", s.flag)

			t.Setenv(s.env, s.envValue)
			fromEnv, err := Load(s.with, io.Discard)
			require.NoError(t, err)
			require.Equal(t, s.want, s.get(fromEnv), "$%s", s.env)

			// Nothing else moved: every other setting keeps its default.
			for _, o := range all {
				if o.flag == s.flag || slices.Contains(s.with, "--"+o.flag) {
					continue
				}
				require.Equal(t, o.def, o.get(fromFlag), "--%s changed --%s", s.flag, o.flag)
				require.Equal(t, o.def, o.get(fromEnv), "$%s changed --%s", s.env, o.flag)
			}
		})
	}

	t.Run("a flag wins over the environment", func(t *testing.T) {
		t.Setenv("BRIDGE_MAX_CALLS", "17")
		cfg, err := Load([]string{"--max-calls", "18"}, io.Discard)
		require.NoError(t, err)
		require.Equal(t, 18, cfg.Limits.MaxCalls)
	})
}

// TestHelpShowsDefaults: --help shows every flag with its default and its
// environment variable.
func TestHelpShowsDefaults(t *testing.T) {
	var out bytes.Buffer
	var cfg Config
	exited := false
	p, err := kong.New(&cfg, append(Options(&out), kong.Exit(func(int) { exited = true }))...)
	require.NoError(t, err)
	_, _ = p.Parse([]string{"--help"})
	require.True(t, exited, "--help exits")
	// Help wraps long lines; compare with the wrapping undone.
	help := strings.Join(strings.Fields(out.String()), " ")
	for _, s := range settings(t) {
		f := flags(t)[s.flag]
		require.Contains(t, help, "($"+s.env+")", "--help names the variable of --%s", s.flag)
		switch {
		case f.IsBool() && f.Tag.Negatable != "":
			require.Contains(t, help, "--[no-]"+s.flag, "--help shows that --%s can be turned off", s.flag)
		case f.IsBool():
			require.Contains(t, help, "--"+s.flag+" ", "--help shows --%s", s.flag)
		case f.HasDefault:
			shown := f.Default
			if _, isString := s.def.(string); isString {
				shown = `"` + shown + `"`
			}
			require.Contains(t, help, "--"+s.flag+"="+shown, "--help shows the default of --%s", s.flag)
		default:
			require.Contains(t, help, "--"+s.flag+"=", "--help shows --%s", s.flag)
		}
	}
}

// TestValidateRejects: every value Validate rejects, one at a time, gives
// exactly one problem that names the setting and what would be valid; and
// all problems are reported at once.
func TestValidateRejects(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string // the start of the one problem
	}{
		{"addr without a port", func(c *Config) { c.Addr = "127.0.0.1" }, `--addr: "127.0.0.1" is not host:port`},
		{"addr with an empty port", func(c *Config) { c.Addr = "127.0.0.1:" }, `--addr: "127.0.0.1:" is not host:port`},
		{"no data directory", func(c *Config) { c.Data = "  " }, "--data: must name a directory"},
		{"public-url that does not parse", func(c *Config) { c.PublicURL = "https://[::1" }, `--public-url: "https://[::1" does not parse`},
		{"public-url not http", func(c *Config) { c.PublicURL = "wss://b.example" }, `--public-url: "wss://b.example" must start with https://`},
		{"public-url without a host", func(c *Config) { c.PublicURL = "https:///x" }, `--public-url: "https:///x" has no host`},
		{"public-url with a query", func(c *Config) { c.PublicURL = "https://b.example/?a=1" }, "--public-url: \"https://b.example/?a=1\" must not have a query"},
		{"public-url with a fragment", func(c *Config) { c.PublicURL = "https://b.example/#x" }, "--public-url: \"https://b.example/#x\" must not have a query or fragment"},
		{"negative mock-fail-after", func(c *Config) { c.Mock.FailAfter = -time.Second }, "--mock-fail-after: must be 0 (never) or a positive duration, got -1s"},
		{"negative mock-latency", func(c *Config) { c.Mock.Latency = -time.Millisecond }, "--mock-latency: must be between 0 and 1m, got -1ms"},
		{"mock-latency too long", func(c *Config) { c.Mock.Latency = 2 * time.Minute }, "--mock-latency: must be between 0 and 1m, got 2m0s"},
		{"max-calls zero", func(c *Config) { c.Limits.MaxCalls = 0 }, "--max-calls: must be between 1 and 1000000, got 0"},
		{"max-calls too many", func(c *Config) { c.Limits.MaxCalls = 1_000_001 }, "--max-calls: must be between 1 and 1000000, got 1000001"},
		{"max-streams-per-call zero", func(c *Config) { c.Limits.MaxStreamsPerCall = 0 }, "--max-streams-per-call: must be between 1 and 64, got 0"},
		{"max-streams-per-call too many", func(c *Config) { c.Limits.MaxStreamsPerCall = 65 }, "--max-streams-per-call: must be between 1 and 64, got 65"},
		{"max-message-bytes too small", func(c *Config) { c.Limits.MaxMessageBytes = 4095 }, "--max-message-bytes: must be between 4096 and 16777216, got 4095"},
		{"max-message-bytes too big", func(c *Config) { c.Limits.MaxMessageBytes = 16<<20 + 1 }, "--max-message-bytes: must be between 4096 and 16777216, got 16777217"},
		{"max-subscribers negative", func(c *Config) { c.Limits.MaxSubscribers = -1 }, "--max-subscribers: must be between 1 and 10000000, got -1"},
		{"max-subscribers-per-call zero", func(c *Config) { c.Limits.MaxSubscribersCall = 0 }, "--max-subscribers-per-call: must be between 1 and 1000000, got 0"},
		{"subscriber-queue zero", func(c *Config) { c.Limits.SubscriberQueue = 0 }, "--subscriber-queue: must be between 1 and 1000000, got 0"},
		{"max-call-duration too short", func(c *Config) { c.Limits.MaxCallDuration = time.Millisecond }, "--max-call-duration: must be between 1s and 168h0m0s, got 1ms"},
		{"max-call-duration too long", func(c *Config) { c.Limits.MaxCallDuration = 8 * 24 * time.Hour }, "--max-call-duration: must be between 1s and 168h0m0s, got 192h0m0s"},
		{"idle-timeout too short", func(c *Config) { c.Limits.IdleTimeout = time.Millisecond }, "--idle-timeout: must be between 100ms and 1h0m0s, got 1ms"},
		{"max-gap too short", func(c *Config) { c.Limits.MaxGap = 10 * time.Millisecond }, "--max-gap: must be between 20ms and 1h0m0s, got 10ms"},
		{"max-gap too long", func(c *Config) { c.Limits.MaxGap = 2 * time.Hour }, "--max-gap: must be between 20ms and 1h0m0s, got 2h0m0s"},
		{"reconnect-grace negative", func(c *Config) { c.Limits.ReconnectGrace = -time.Second }, "--reconnect-grace: must be between 0s and 10m0s, got -1s"},
		{"stt-queue too short", func(c *Config) { c.Limits.STTQueue = 50 * time.Millisecond }, "--stt-queue: must be between 100ms and 5m0s, got 50ms"},
		{"subscriber-wait too short", func(c *Config) { c.Limits.SubscriberWait = 0 }, "--subscriber-wait: must be between 1s and 24h0m0s, got 0s"},
		{"shutdown-timeout too long", func(c *Config) { c.Limits.ShutdownTimeout = 2 * time.Hour }, "--shutdown-timeout: must be between 0s and 1h0m0s, got 2h0m0s"},
		{"inbound-label empty", func(c *Config) { c.Dashboard.InboundLabel = "" }, "--inbound-label: must not be empty"},
		{"outbound-label two lines", func(c *Config) { c.Dashboard.OutboundLabel = "a\tb" }, `--outbound-label: must be one line of text, got "a\tb"`},
		{"outbound-label not UTF-8", func(c *Config) { c.Dashboard.OutboundLabel = "a\xffb" }, `--outbound-label: must be one line of text`},
		{"inbound-label too long", func(c *Config) { c.Dashboard.InboundLabel = strings.Repeat("é", 41) }, "--inbound-label: at most 40 characters, got 41"},
		{"twilio-auth-token with a space", func(c *Config) { c.PublicURL, c.Providers.TwilioAuthToken = testURL, "abc def" }, "--twilio-auth-token: must not contain white space"},
		{"twilio-auth-token without public-url", func(c *Config) { c.Providers.TwilioAuthToken = "abc" }, "--twilio-auth-token: needs --public-url"},
		{"signalwire-signing-key with a newline", func(c *Config) { c.PublicURL, c.Providers.SignalWireSigningKey = testURL, "PSK\n1" }, "--signalwire-signing-key: must not contain white space"},
		{"signalwire-signing-key without public-url", func(c *Config) { c.Providers.SignalWireSigningKey = "PSK1" }, "--signalwire-signing-key: needs --public-url"},
		{"media-bearer-token short", func(c *Config) { c.Providers.MediaBearerToken = "short" }, "--media-bearer-token: must be at least 16 characters"},
		{"media-bearer-token long", func(c *Config) { c.Providers.MediaBearerToken = strings.Repeat("t", 1025) }, "--media-bearer-token: must be at most 1024 characters"},
		{"media-bearer-token with a control character", func(c *Config) { c.Providers.MediaBearerToken = testToken + "\x7f" }, "--media-bearer-token: must not contain white space or control characters"},
		{"media-path-secret short", func(c *Config) { c.Providers.MediaPathSecret = "short" }, "--media-path-secret: must be 16 to 128 characters, got 5"},
		{"media-path-secret long", func(c *Config) { c.Providers.MediaPathSecret = strings.Repeat("s", 129) }, "--media-path-secret: must be 16 to 128 characters, got 129"},
		{"media-path-secret with a slash", func(c *Config) { c.Providers.MediaPathSecret = testSecret + "/x" }, "--media-path-secret: may only contain A-Z a-z 0-9 - . _ ~"},
		{"provider-bearer-tokens for no provider", func(c *Config) { c.Providers.ProviderBearerTokens = map[string]string{"acme": testToken} }, `--provider-bearer-tokens: unknown provider "acme"`},
		{"provider-bearer-tokens short", func(c *Config) { c.Providers.ProviderBearerTokens = map[string]string{"signalwire": "short"} }, "--provider-bearer-tokens: signalwire: must be at least 16 characters"},
		{"provider-path-secrets for no provider", func(c *Config) { c.Providers.ProviderPathSecrets = map[string]string{"acme": testSecret} }, `--provider-path-secrets: unknown provider "acme"`},
		{"provider-path-secrets with a space", func(c *Config) { c.Providers.ProviderPathSecrets = map[string]string{"plivo": testSecret + " x"} }, "--provider-path-secrets: plivo: may only contain"},
		{"exotel-basic-auth without a password", func(c *Config) { c.Providers.ExotelBasicAuth = "KEY:" }, "--exotel-basic-auth: must be USER:PASSWORD with both parts non-empty"},
		{"exotel-basic-auth without a user", func(c *Config) { c.Providers.ExotelBasicAuth = ":TOKEN" }, "--exotel-basic-auth: must be USER:PASSWORD with both parts non-empty"},
		{"exotel-basic-auth with a space", func(c *Config) { c.Providers.ExotelBasicAuth = "KEY:TO KEN" }, "--exotel-basic-auth: must not contain white space"},
		{"exotel-basic-auth that needs escaping", func(c *Config) { c.Providers.ExotelBasicAuth = "KEY:TO@KEN" }, "--exotel-basic-auth: use only letters, digits"},
		{"l16-byte-order for no provider", func(c *Config) { c.Providers.L16ByteOrder = map[string]string{"acme": "le"} }, `--l16-byte-order: unknown provider "acme"`},
		{"l16-byte-order not an order", func(c *Config) { c.Providers.L16ByteOrder = map[string]string{"plivo": "middle"} }, `--l16-byte-order: plivo="middle": want be or le`},
		{"reorder-frames negative", func(c *Config) { c.Providers.ReorderFrames = -1 }, "--reorder-frames: must be between 0 (off) and 50, got -1"},
		{"reorder-frames too many", func(c *Config) { c.Providers.ReorderFrames = 51 }, "--reorder-frames: must be between 0 (off) and 50, got 51"},
	}
	all := Default()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default()
			require.NoError(t, cfg.Validate(), "the defaults are valid")
			tc.mutate(&cfg)
			problems := problemsOf(t, cfg.Validate())
			require.Len(t, problems, 1, "%q", problems)
			require.True(t, strings.HasPrefix(problems[0], tc.want), "got  %q\nwant %q...", problems[0], tc.want)
		})
		if tc.mutate != nil {
			tc.mutate(&all)
		}
	}

	t.Run("every problem at once", func(t *testing.T) {
		problems := problemsOf(t, all.Validate())
		// Cases that set the same field report the last value only.
		require.GreaterOrEqual(t, len(problems), 25, "%q", problems)
		for _, setting := range []string{"--addr", "--data", "--mock-latency", "--max-calls", "--max-message-bytes",
			"--max-gap", "--inbound-label", "--outbound-label", "--media-path-secret", "--exotel-basic-auth", "--reorder-frames"} {
			require.True(t, slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, setting+": ") }), "%s is among %q", setting, problems)
		}
	})

	t.Run("from the command line", func(t *testing.T) {
		_, err := Load([]string{"--max-calls", "0", "--max-gap", "1ms", "--addr", "nope"}, io.Discard)
		require.Equal(t, []string{`--addr: "nope" is not host:port (e.g. 127.0.0.1:8080 or :8080)`,
			"--max-calls: must be between 1 and 1000000, got 0", "--max-gap: must be between 20ms and 1h0m0s, got 1ms"}, problemsOf(t, err))
	})

	t.Run("kong refuses what is not a value of the type", func(t *testing.T) {
		for _, args := range [][]string{{"--stt", "whisper"}, {"--max-calls", "many"}, {"--idle-timeout", "30"}, {"--log-level", "trace"}} {
			_, err := Load(args, io.Discard)
			require.Error(t, err, "%v", args)
			require.Contains(t, err.Error(), strings.TrimPrefix(args[0], "--"), "%v: the error names the setting", args)
		}
	})
}

// problemsOf splits Validate's joined error into its problems.
func problemsOf(t *testing.T, err error) []string {
	t.Helper()
	require.Error(t, err)
	var joined interface{ Unwrap() []error }
	require.True(t, errors.As(err, &joined), "every problem at once: %v", err)
	var out []string
	for _, e := range joined.Unwrap() {
		out = append(out, e.Error())
	}
	return out
}

// requireProblemPrefixes checks that err holds one problem per want, in
// order, each starting with its want.
func requireProblemPrefixes(t *testing.T, err error, want []string) {
	t.Helper()
	problems := problemsOf(t, err)
	require.Len(t, problems, len(want), "%v", problems)
	for i, w := range want {
		require.True(t, strings.HasPrefix(problems[i], w), "problem %d: %q should start with %q", i, problems[i], w)
	}
}
