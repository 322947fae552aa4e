package google

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"regexp"
	"time"

	"github.com/callcaptions/bridge/stt/session"
)

// DefaultConfig is the configuration of the zero Config's fields; its
// Policy is session.DefaultPolicy(). PoolSize is derived from MaxStreams.
func DefaultConfig() Config {
	return Config{Endpoint: "speech.googleapis.com:443", Language: "en-US", MaxStreams: 200, Policy: session.DefaultPolicy()}
}

// Models used when Config.Model is empty.
const (
	DefaultModel8k       = "telephony"
	DefaultModelWideband = "latest_long"
)

const (
	// streamsPerConn is how many concurrent streams one gRPC connection is
	// sized for: Google's frontends allow about 100, and a margin keeps
	// rollovers and retries from queueing behind the limit.
	streamsPerConn = 80
	// maxStreamLimit leaves margin below Google's 305 s stream limit for
	// the drain after the half-close.
	maxStreamLimit = 5 * time.Minute
	// maxRequestBytes is the largest audio payload per request. Google
	// documents 25 KB; older servers rejected more than 15,360 bytes.
	maxRequestBytes = 15360
	// maxIdleClose stays below Google's observed ~10 s audio timeout.
	maxIdleClose = 8 * time.Second
)

// Config configures the Google Cloud Speech-to-Text v1 recognizer. A zero
// field means the documented default. The names in error messages are the
// command-line names without the "google-" prefix.
type Config struct {
	// Endpoint is host:port of the Speech API; default
	// speech.googleapis.com:443. Regional: eu-speech.googleapis.com:443,
	// us-speech.googleapis.com:443.
	Endpoint string
	// Insecure dials Endpoint in plaintext without authentication, for
	// local emulators and tests.
	Insecure bool
	// CredentialsFile is a service-account key file; empty means
	// Application Default Credentials.
	CredentialsFile string

	// The recognition config: Language is a BCP-47 tag, with up to 3
	// AlternativeLanguages; Model defaults to DefaultModel8k for 8 kHz
	// tracks and DefaultModelWideband above; Enhanced asks for its enhanced
	// variant; PhraseHints are boosted by Boost (0..20); of MaxAlternatives
	// (0..30) only the best is reported; partials are on unless
	// DisableInterimResults.
	Language, Model                                         string
	AlternativeLanguages, PhraseHints                       []string
	Enhanced, Punctuation, WordTimeOffsets, ProfanityFilter bool
	Boost                                                   float64
	MaxAlternatives                                         int
	DisableInterimResults                                   bool

	// MaxStreams is how many tracks may transcribe at once (Open fails
	// beyond it); PoolSize the gRPC connections, by default one per 80.
	MaxStreams, PoolSize int

	// Policy is how a track's session.Stream uses Google: rotation, hold,
	// queue, replay, drain and retries. A zero field means Google's
	// default (session.DefaultPolicy()); StreamLimit is at most 5m and
	// IdleClose at most 8s.
	session.Policy
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.Endpoint, c.Language = cmp.Or(c.Endpoint, d.Endpoint), cmp.Or(c.Language, d.Language)
	c.MaxStreams = cmp.Or(c.MaxStreams, d.MaxStreams)
	c.PoolSize = cmp.Or(c.PoolSize, (c.MaxStreams+streamsPerConn-1)/streamsPerConn)
	c.Policy = c.Policy.WithDefaults()
	return c
}

var (
	// languageRE accepts BCP-47 tags such as en-US, es-419, cmn-Hans-CN.
	languageRE = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$`)
	modelRE    = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)
)

const (
	maxAltLanguages = 3
	maxBoost        = 20
	maxAlternatives = 30
	maxPhrases      = 5000
	maxPhraseLen    = 100
)

// Validate reports every problem with c at once, each naming the setting
// and what would be valid.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(name string, value any, want string) {
		errs = append(errs, fmt.Errorf("google %s=%v: %s", name, value, want))
	}
	if _, port, err := net.SplitHostPort(c.Endpoint); err != nil || port == "" {
		bad("endpoint", c.Endpoint, "must be host:port, e.g. speech.googleapis.com:443")
	}
	if c.Insecure && c.CredentialsFile != "" {
		bad("credentials-file", c.CredentialsFile, "must be empty when insecure is set (plaintext sends no credentials)")
	}
	if !languageRE.MatchString(c.Language) {
		bad("language", c.Language, "must be a BCP-47 language tag such as en-US")
	}
	if len(c.AlternativeLanguages) > maxAltLanguages {
		bad("alternative-languages", c.AlternativeLanguages, fmt.Sprintf("at most %d languages", maxAltLanguages))
	}
	for _, l := range c.AlternativeLanguages {
		if !languageRE.MatchString(l) {
			bad("alternative-languages", l, "each must be a BCP-47 language tag such as es-US")
		}
	}
	if c.Model != "" && !modelRE.MatchString(c.Model) {
		bad("model", c.Model, "must be a model name such as telephony, phone_call or latest_long")
	}
	if c.Boost < 0 || c.Boost > maxBoost {
		bad("boost", c.Boost, fmt.Sprintf("must be between 0 and %d", maxBoost))
	}
	if c.Boost > 0 && len(c.PhraseHints) == 0 {
		bad("boost", c.Boost, "needs phrase-hints to apply to")
	}
	if len(c.PhraseHints) > maxPhrases {
		bad("phrase-hints", len(c.PhraseHints), fmt.Sprintf("at most %d phrases", maxPhrases))
	}
	for _, p := range c.PhraseHints {
		if p == "" || len(p) > maxPhraseLen {
			bad("phrase-hints", fmt.Sprintf("%q", p), fmt.Sprintf("each phrase must have 1 to %d characters", maxPhraseLen))
		}
	}
	if c.MaxAlternatives < 0 || c.MaxAlternatives > maxAlternatives {
		bad("max-alternatives", c.MaxAlternatives, fmt.Sprintf("must be between 0 and %d", maxAlternatives))
	}
	if c.MaxStreams < 0 {
		bad("max-streams", c.MaxStreams, fmt.Sprintf("must be positive (0 means %d)", DefaultConfig().MaxStreams))
	}
	if c.PoolSize < 0 || c.PoolSize > 64 {
		bad("pool-size", c.PoolSize, "must be between 1 and 64 (0 means ceil(max-streams/80))")
	}
	positive := []struct {
		name string
		v    time.Duration
	}{
		{"rotate-after", c.RotateAfter}, {"stream-limit", c.StreamLimit}, {"rotate-pause", c.RotatePause},
		{"idle-close", c.IdleClose}, {"silence-close", c.SilenceClose}, {"pre-roll", c.PreRoll},
		{"gap-fill", c.GapFill}, {"chunk-duration", c.ChunkDuration}, {"queue-duration", c.QueueDuration},
		{"replay-limit", c.ReplayLimit}, {"drain-timeout", c.DrainTimeout}, {"send-timeout", c.SendTimeout},
		{"backoff-initial", c.BackoffInitial}, {"backoff-max", c.BackoffMax}, {"exhausted-backoff", c.ExhaustedBackoff},
	}
	for _, p := range positive {
		if p.v < 0 {
			bad(p.name, p.v, "must be a positive duration (0 means the default)")
		}
	}
	if c.StreamLimit > maxStreamLimit {
		bad("stream-limit", c.StreamLimit, fmt.Sprintf("must be at most %v (Google ends streams at 305s)", maxStreamLimit))
	}
	if c.RotateAfter >= c.StreamLimit {
		bad("rotate-after", c.RotateAfter, fmt.Sprintf("must be less than stream-limit (%v)", c.StreamLimit))
	}
	if c.RotatePause >= c.StreamLimit-c.RotateAfter && c.RotateAfter < c.StreamLimit {
		bad("rotate-pause", c.RotatePause, fmt.Sprintf("must be shorter than stream-limit minus rotate-after (%v)", c.StreamLimit-c.RotateAfter))
	}
	if c.Hold != session.HoldReopen && c.Hold != session.HoldKeepAlive {
		bad("hold", c.Hold, "must be reopen or keepalive")
	}
	if c.IdleClose > maxIdleClose {
		bad("idle-close", c.IdleClose, fmt.Sprintf("must be at most %v (Google ends streams after about 10s without audio)", maxIdleClose))
	}
	if c.SilenceLevel < 0 || c.SilenceLevel > 32767 {
		bad("silence-level", c.SilenceLevel, "must be an RMS level between 0 and 32767")
	}
	if c.ChunkDuration < 20*time.Millisecond || c.ChunkDuration > 500*time.Millisecond {
		bad("chunk-duration", c.ChunkDuration, "must be between 20ms and 500ms")
	}
	if c.QueueDuration < time.Second {
		bad("queue-duration", c.QueueDuration, "must be at least 1s")
	}
	if c.ReplayLimit < time.Second {
		bad("replay-limit", c.ReplayLimit, "must be at least 1s")
	}
	if c.BackoffInitial > c.BackoffMax {
		bad("backoff-initial", c.BackoffInitial, fmt.Sprintf("must not exceed backoff-max (%v)", c.BackoffMax))
	}
	if c.MaxRetries < 0 {
		bad("max-retries", c.MaxRetries, fmt.Sprintf("must be positive (0 means %d)", session.DefaultPolicy().MaxRetries))
	}
	return errors.Join(errs...)
}
