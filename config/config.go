// Package config holds every setting of the bridge in one Config: defaults
// in one place (struct tags, shown by --help), loading from flags and
// BRIDGE_* environment variables, and a Validate that reports every problem
// at once, each naming the setting and what would be valid.
package config

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/alecthomas/kong"
)

// Config is the bridge's configuration. Every field is a flag and an
// environment variable; the names are part of the public contract.
type Config struct {
	Addr      string `name:"addr" default:"127.0.0.1:8080" env:"BRIDGE_ADDR" help:"Address to listen on (host:port). Use 0.0.0.0:8080 to accept providers from outside this machine."`
	Data      string `name:"data" default:"./data" env:"BRIDGE_DATA" help:"Directory for recordings, call records and transcripts." type:"path"`
	STT       string `name:"stt" default:"mock" enum:"mock,google" env:"BRIDGE_STT" help:"Speech-to-text engine: mock (offline, deterministic) or google (Cloud Speech-to-Text)."`
	APIToken  string `name:"api-token" env:"BRIDGE_API_TOKEN" help:"Token required by the dashboard, REST API and caption sockets (Authorization: Bearer, ?token= or the cookie set by the start-up link). Empty: one is generated and kept in <data>/api-token, and the start-up link carries it."`
	PublicURL string `name:"public-url" env:"BRIDGE_PUBLIC_URL" help:"The https:// base URL providers and browsers reach (e.g. https://abc.ngrok.app). Used for Twilio signatures and generated stream instructions."`

	AllowAnonymous bool          `name:"allow-anonymous" default:"false" env:"BRIDGE_ALLOW_ANONYMOUS" help:"Serve the dashboard, REST API and caption sockets without a token: every recording and transcript is readable by anyone who can reach the port. Not with --api-token."`
	AllowedHosts   []string      `name:"allowed-hosts" env:"BRIDGE_ALLOWED_HOSTS" sep:"," help:"Host names the dashboard, REST API and caption sockets answer besides loopback, the --public-url host and the --addr host (comma-separated; a port is ignored). * allows any Host, which re-opens DNS rebinding."`
	FsyncInterval  time.Duration `name:"fsync-interval" default:"5s" env:"BRIDGE_FSYNC_INTERVAL" help:"How often recordings and transcript journals are synced to disk while calls run, bounding what a power cut loses. 0: only when a recording closes."`

	LogLevel  string `name:"log-level" default:"info" enum:"debug,info,warn,error" env:"BRIDGE_LOG_LEVEL" help:"Log level: debug, info, warn, error."`
	LogFormat string `name:"log-format" default:"auto" enum:"auto,console,json" env:"BRIDGE_LOG_FORMAT" help:"Log format: json, console, or auto (console on a terminal, JSON otherwise)."`

	Mock      Mock      `embed:"" prefix:"mock-" envprefix:"BRIDGE_MOCK_" group:"Mock speech-to-text"`
	Limits    Limits    `embed:"" group:"Limits"`
	Google    Google    `embed:"" prefix:"google-" envprefix:"BRIDGE_GOOGLE_" group:"Google Speech-to-Text (--stt google)"`
	Dashboard Dashboard `embed:"" group:"Dashboard"`
	Providers Providers `embed:"" group:"Providers"`
	S3        S3        `embed:"" group:"Object storage (S3)"`
	NATS      NATS      `embed:"" group:"Cluster (NATS)"`
	Webhook   Webhook   `embed:"" group:"Webhooks"`
}

// Mock configures the offline speech-to-text engine.
type Mock struct {
	Script    string        `name:"script" env:"SCRIPT" help:"File of lines the mock engine speaks, one utterance per line (prefix a line with inbound: or outbound: to tie it to a track). Empty: describe each utterance instead." type:"path"`
	FailAfter time.Duration `name:"fail-after" env:"FAIL_AFTER" help:"Make every mock stream fail after this much audio (0: never). For testing STT outages."`
	Latency   time.Duration `name:"latency" env:"LATENCY" help:"Delay every mock result by this much (0: none). For testing caption latency."`
}

// Limits bound what one call, one client and the whole process may use.
type Limits struct {
	MaxCalls           int           `name:"max-calls" default:"${max_calls}" env:"BRIDGE_MAX_CALLS" help:"Concurrent calls; further media sockets get 503 before the upgrade."`
	MaxStreamsPerCall  int           `name:"max-streams-per-call" default:"${max_streams_per_call}" env:"BRIDGE_MAX_STREAMS_PER_CALL" help:"Media streams (sockets) one call may have at once."`
	MaxMessageBytes    int           `name:"max-message-bytes" default:"${max_message_bytes}" env:"BRIDGE_MAX_MESSAGE_BYTES" help:"Largest WebSocket message accepted on a media socket."`
	MaxCallDuration    time.Duration `name:"max-call-duration" default:"${max_call_duration}" env:"BRIDGE_MAX_CALL_DURATION" help:"Calls longer than this are ended with reason timeout."`
	IdleTimeout        time.Duration `name:"idle-timeout" default:"${idle_timeout}" env:"BRIDGE_IDLE_TIMEOUT" help:"A media stream with no frames for this long is ended with reason timeout."`
	MaxGap             time.Duration `name:"max-gap" default:"${max_gap}" env:"BRIDGE_MAX_GAP" help:"Largest stretch of missing audio filled with silence at once; a longer gap is recorded as an event and the track continues after this much silence. In all, a track is filled with at most the call's wall time plus this much silence."`
	ReconnectGrace     time.Duration `name:"reconnect-grace" default:"2s" env:"BRIDGE_RECONNECT_GRACE" help:"After a stream's socket closes without stop, how long the call waits for the provider to reconnect before it ends."`
	STTQueue           time.Duration `name:"stt-queue" default:"${stt_queue}" env:"BRIDGE_STT_QUEUE" help:"Audio held per track for a slow speech-to-text stream; beyond it the oldest audio is dropped (recorded as an stt gap)."`
	MaxSubscribers     int           `name:"max-subscribers" default:"${max_subscribers}" env:"BRIDGE_MAX_SUBSCRIBERS" help:"Caption subscribers in total."`
	MaxSubscribersCall int           `name:"max-subscribers-per-call" default:"${max_subscribers_per_call}" env:"BRIDGE_MAX_SUBSCRIBERS_PER_CALL" help:"Caption subscribers per call."`
	SubscriberWait     time.Duration `name:"subscriber-wait" default:"${subscriber_wait}" env:"BRIDGE_SUBSCRIBER_WAIT" help:"How long a subscriber to a call that has not started waits for it."`
	SubscriberQueue    int           `name:"subscriber-queue" default:"${subscriber_queue}" env:"BRIDGE_SUBSCRIBER_QUEUE" help:"Events queued for one subscriber before it is disconnected as too slow."`
	MaxEventsPerCall   int           `name:"max-events-per-call" default:"${max_events_per_call}" env:"BRIDGE_MAX_EVENTS_PER_CALL" help:"Transcript events (gaps, DTMF, speech-to-text notices) one call keeps; further events are neither kept nor published, only counted (events_dropped)."`
	MaxReplayBytes     int           `name:"max-replay-bytes" default:"${max_replay_bytes}" env:"BRIDGE_MAX_REPLAY_BYTES" help:"Bytes of events kept per call for caption subscribers that join late or resume; beyond it the oldest are dropped (call.started is always kept) and a late joiner gets replay.truncated."`
	ShutdownTimeout    time.Duration `name:"shutdown-timeout" default:"30s" env:"BRIDGE_SHUTDOWN_TIMEOUT" help:"On SIGTERM, how long live calls may drain before they end with reason shutdown."`

	// Before a call exists: sockets that have not started, per address, and
	// continuing an ended call.
	MaxPendingStreams    int           `name:"max-pending-streams" default:"${max_pending_streams}" env:"BRIDGE_MAX_PENDING_STREAMS" help:"Media sockets open that have not sent their start frame; further ones get 503 before the upgrade."`
	StartTimeout         time.Duration `name:"start-timeout" default:"${start_timeout}" env:"BRIDGE_START_TIMEOUT" help:"A media socket that sends no start frame for this long after it opened is closed (1008)."`
	MaxSocketsPerAddress int           `name:"max-sockets-per-address" default:"${max_sockets_per_address}" env:"BRIDGE_MAX_SOCKETS_PER_ADDRESS" help:"Media sockets, and separately caption sockets, open from one remote address; further ones get 429 before the upgrade. Behind a reverse proxy or ngrok every socket comes from the proxy's address: size it for all of them. 0: no cap."`
	ResumeWindow         time.Duration `name:"resume-window" default:"${resume_window}" env:"BRIDGE_RESUME_WINDOW" help:"How long after a call ended a stream with its call id, from the same provider and account, may continue it. 0: never (such a stream is refused)."`
}

// Default returns the embedded defaults: what `go run ./cmd/bridge` uses.
func Default() Config {
	cfg, err := Load(nil, io.Discard)
	if err != nil {
		panic("config: defaults do not load: " + err.Error())
	}
	return cfg
}

// Load parses command-line arguments (without the program name) and the
// BRIDGE_* environment over the defaults, then validates. Help goes to out.
func Load(args []string, out io.Writer) (Config, error) {
	var cfg Config
	p, err := kong.New(&cfg, Options(out)...)
	if err != nil {
		return Config{}, err
	}
	if _, err := p.Parse(args); err != nil {
		return Config{}, err
	}
	return cfg, cfg.Validate()
}

// Options are the kong options shared by Load and the command line.
func Options(out io.Writer) []kong.Option {
	return []kong.Option{
		kong.Name("bridge"),
		kong.Description("Live phone-call audio to WAV recordings, transcripts and live captions."),
		kong.Writers(out, out),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, FlagsLast: true}),
		defaults(),
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(setting, format string, a ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", setting, fmt.Sprintf(format, a...)))
	}
	if _, port, err := net.SplitHostPort(c.Addr); err != nil || port == "" {
		bad("addr", "%q is not host:port (e.g. 127.0.0.1:8080 or :8080)", c.Addr)
	}
	if strings.TrimSpace(c.Data) == "" {
		bad("data", "must name a directory")
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		switch {
		case err != nil:
			bad("public-url", "%q does not parse: %v", c.PublicURL, err)
		case u.Scheme != "https" && u.Scheme != "http":
			bad("public-url", "%q must start with https:// (or http:// for local testing)", c.PublicURL)
		case u.Host == "":
			bad("public-url", "%q has no host", c.PublicURL)
		case u.RawQuery != "" || u.Fragment != "":
			bad("public-url", "%q must not have a query or fragment (providers cannot keep one on stream URLs)", c.PublicURL)
		}
	}
	if c.AllowAnonymous && c.APIToken != "" {
		bad("allow-anonymous", "cannot be combined with --api-token: drop one (the token is what --allow-anonymous turns off)")
	}
	for _, h := range c.AllowedHosts {
		if h != "*" && !validHostName(h) {
			bad("allowed-hosts", "%q is not a host name, IP address or * (e.g. bridge.example.com,10.0.0.5)", h)
		}
	}
	if c.FsyncInterval != 0 && (c.FsyncInterval < 100*time.Millisecond || c.FsyncInterval > time.Hour) {
		bad("fsync-interval", "must be 0 (only when a recording closes) or between 100ms and 1h, got %s", c.FsyncInterval)
	}
	if c.Mock.FailAfter < 0 {
		bad("mock-fail-after", "must be 0 (never) or a positive duration, got %s", c.Mock.FailAfter)
	}
	if c.Mock.Latency < 0 || c.Mock.Latency > time.Minute {
		bad("mock-latency", "must be between 0 and 1m, got %s", c.Mock.Latency)
	}
	l := c.Limits
	count := func(name string, v, min, max int) {
		if v < min || v > max {
			bad(name, "must be between %d and %d, got %d", min, max, v)
		}
	}
	count("max-calls", l.MaxCalls, 1, 1_000_000)
	count("max-streams-per-call", l.MaxStreamsPerCall, 1, 64)
	count("max-message-bytes", l.MaxMessageBytes, 4096, 16<<20)
	count("max-subscribers", l.MaxSubscribers, 1, 10_000_000)
	count("max-subscribers-per-call", l.MaxSubscribersCall, 1, 1_000_000)
	count("subscriber-queue", l.SubscriberQueue, 1, 1_000_000)
	count("max-events-per-call", l.MaxEventsPerCall, 1, 10_000_000)
	count("max-replay-bytes", l.MaxReplayBytes, 64<<10, 1<<30)
	duration := func(name string, v, min, max time.Duration) {
		if v < min || v > max {
			bad(name, "must be between %s and %s, got %s", min, max, v)
		}
	}
	duration("max-call-duration", l.MaxCallDuration, time.Second, 7*24*time.Hour)
	duration("idle-timeout", l.IdleTimeout, 100*time.Millisecond, time.Hour)
	duration("max-gap", l.MaxGap, 20*time.Millisecond, time.Hour)
	duration("reconnect-grace", l.ReconnectGrace, 0, 10*time.Minute)
	duration("stt-queue", l.STTQueue, 100*time.Millisecond, 5*time.Minute)
	duration("subscriber-wait", l.SubscriberWait, time.Second, 24*time.Hour)
	duration("shutdown-timeout", l.ShutdownTimeout, 0, time.Hour)
	count("max-pending-streams", l.MaxPendingStreams, 1, 1_000_000)
	duration("start-timeout", l.StartTimeout, 100*time.Millisecond, 10*time.Minute)
	if l.MaxSocketsPerAddress < 0 || l.MaxSocketsPerAddress > 10_000_000 {
		bad("max-sockets-per-address", "must be 0 (no cap) or between 1 and 10000000, got %d", l.MaxSocketsPerAddress)
	}
	duration("resume-window", l.ResumeWindow, 0, 7*24*time.Hour)
	c.Dashboard.check(bad)
	c.Providers.check(c.PublicURL, bad)
	c.S3.check(bad)
	c.NATS.check(bad)
	c.Webhook.check(bad)
	return errors.Join(errs...)
}

// validHostName reports whether h (an optional :port ignored, an IPv6
// address in brackets) is a DNS name or an IP address.
func validHostName(h string) bool {
	h = hostOnly(h)
	if h == "" || len(h) > 253 {
		return false
	}
	if net.ParseIP(h) != nil {
		return true
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// hostOnly strips an optional port and IPv6 brackets from a Host value:
// "Example.com:8080" → "Example.com", "[::1]:80" → "::1". A port that is
// not a number gives "". What cannot be split is returned as it is, for
// the caller to refuse.
func hostOnly(h string) string {
	if host, port, err := net.SplitHostPort(h); err == nil {
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return ""
		}
		return host
	}
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		return h[1 : len(h)-1]
	}
	return h
}
