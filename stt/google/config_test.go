package google

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	speech "cloud.google.com/go/speech/apiv1"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/api/option"

	"github.com/callcaptions/bridge/stt/session"
)

func TestConfigDefaults(t *testing.T) {
	require.NoError(t, Config{}.Validate())
	c := Config{}.withDefaults()
	assert.Equal(t, "speech.googleapis.com:443", c.Endpoint)
	assert.Equal(t, "en-US", c.Language)
	assert.Equal(t, 3, c.PoolSize, "ceil(200/80)")
	assert.Equal(t, 4*time.Minute+30*time.Second, c.RotateAfter)
	assert.Equal(t, session.HoldReopen, c.Hold)
	assert.Equal(t, 2, Config{MaxStreams: 100}.withDefaults().PoolSize)
	assert.Equal(t, 1, Config{MaxStreams: 80}.withDefaults().PoolSize)
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // every one must appear in the error
	}{
		{"endpoint without port", Config{Endpoint: "speech.googleapis.com"}, []string{"google endpoint=", "host:port"}},
		{"insecure with key", Config{Insecure: true, CredentialsFile: "k.json"}, []string{"credentials-file", "insecure"}},
		{"language", Config{Language: "english please"}, []string{"google language=english please", "BCP-47"}},
		{"too many alternatives", Config{AlternativeLanguages: []string{"es-US", "fr-FR", "de-DE", "it-IT"}}, []string{"alternative-languages", "at most 3"}},
		{"bad alternative", Config{AlternativeLanguages: []string{"x"}}, []string{"alternative-languages=x"}},
		{"model", Config{Model: "Phone Call"}, []string{"model=Phone Call"}},
		{"boost range", Config{Boost: 25, PhraseHints: []string{"Acme"}}, []string{"boost=25", "between 0 and 20"}},
		{"boost without hints", Config{Boost: 5}, []string{"boost=5", "phrase-hints"}},
		{"empty hint", Config{PhraseHints: []string{""}}, []string{"phrase-hints", "1 to 100"}},
		{"max alternatives", Config{MaxAlternatives: 31}, []string{"max-alternatives=31", "0 and 30"}},
		{"pool", Config{PoolSize: 100}, []string{"pool-size=100"}},
		{"stream limit", Config{Policy: session.Policy{StreamLimit: 6 * time.Minute}}, []string{"stream-limit=6m0s", "at most 5m0s"}},
		{"rotate after limit", Config{Policy: session.Policy{RotateAfter: 5 * time.Minute, StreamLimit: 4 * time.Minute}}, []string{"rotate-after=5m0s", "less than stream-limit"}},
		{"hold", Config{Policy: session.Policy{Hold: "music"}}, []string{"hold=music", "reopen or keepalive"}},
		{"idle close", Config{Policy: session.Policy{IdleClose: 12 * time.Second}}, []string{"idle-close=12s", "at most 8s"}},
		{"negative", Config{Policy: session.Policy{DrainTimeout: -time.Second}}, []string{"drain-timeout=-1s", "positive"}},
		{"chunk", Config{Policy: session.Policy{ChunkDuration: time.Second}}, []string{"chunk-duration=1s", "20ms and 500ms"}},
		{"queue", Config{Policy: session.Policy{QueueDuration: 100 * time.Millisecond}}, []string{"queue-duration", "at least 1s"}},
		{"replay", Config{Policy: session.Policy{ReplayLimit: 100 * time.Millisecond}}, []string{"replay-limit", "at least 1s"}},
		{"silence level", Config{Policy: session.Policy{SilenceLevel: 40000}}, []string{"silence-level=40000"}},
		{"backoff order", Config{Policy: session.Policy{BackoffInitial: time.Minute, BackoffMax: time.Second}}, []string{"backoff-initial=1m0s", "backoff-max"}},
		{"retries", Config{Policy: session.Policy{MaxRetries: -1}}, []string{"max-retries=-1"}},
		{"every problem at once", Config{Language: "??", MaxAlternatives: -1, Policy: session.Policy{Hold: "x"}},
			[]string{"language=??", "hold=x", "max-alternatives=-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	_, err := New(context.Background(), Config{Policy: session.Policy{Hold: "x"}}, zerolog.Nop())
	require.ErrorContains(t, err, "hold=x")
	_, err = New(context.Background(), Config{CredentialsFile: filepath.Join(t.TempDir(), "missing.json")}, zerolog.Nop())
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "create google speech client"), err.Error())
}

// The client outlives the context New was given (a start-up timeout):
// credentials are refreshed with the client's context for as long as the
// client lives, so only Close may end it.
func TestClientContextLivesUntilClose(t *testing.T) {
	var clientCtx context.Context
	capture := func(ctx context.Context, opts ...option.ClientOption) (*speech.Client, error) {
		clientCtx = ctx
		return speech.NewClient(ctx, opts...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	r, err := newRecognizer(ctx, Config{Endpoint: "127.0.0.1:1", Insecure: true}, zerolog.Nop(), capture)
	require.NoError(t, err)
	cancel()
	require.NoError(t, clientCtx.Err(), "cancelling the start-up context must not end the client's")
	_, hasDeadline := clientCtx.Deadline()
	require.False(t, hasDeadline, "the client's context has no deadline")
	require.NoError(t, r.Close())
	require.ErrorIs(t, clientCtx.Err(), context.Canceled, "Close ends the client's context")
}
