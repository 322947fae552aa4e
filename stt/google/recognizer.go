package google

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	speech "cloud.google.com/go/speech/apiv1"
	"cloud.google.com/go/speech/apiv1/speechpb"
	"github.com/rs/zerolog"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/callcaptions/bridge/stt"
	"github.com/callcaptions/bridge/stt/session"
)

// ErrCapacity is returned by Open when MaxStreams tracks are already
// transcribing. The caller records the track without transcription.
var ErrCapacity = errors.New("google: max-streams reached")

// ErrClosed is returned by Open after Close.
var ErrClosed = errors.New("google: recognizer closed")

// Per-call overrides read from stt.StreamConfig.Params.
const (
	// ParamLanguage replaces Config.Language for one call (a BCP-47 tag);
	// an invalid tag is ignored with a warning.
	ParamLanguage = "language"
	// ParamHints adds comma-separated phrase hints to Config.PhraseHints
	// for one call.
	ParamHints = "hints"
)

// Recognizer transcribes tracks with Google Cloud Speech-to-Text v1
// streaming recognition. One Recognizer holds the process's single client
// and its connection pool; it is safe for concurrent use.
type Recognizer struct {
	cfg    Config
	log    zerolog.Logger
	client *speech.Client

	cancel context.CancelFunc // ends the client's context
	wg     sync.WaitGroup

	mu      sync.Mutex
	streams map[*session.Stream]context.CancelFunc // open ones
	closed  bool
	once    sync.Once
	err     error
}

var _ stt.Recognizer = (*Recognizer)(nil)

// New validates cfg and builds the client. opts are appended after the
// options derived from cfg, so they win. The client keeps the context it is
// built with for as long as it lives (credentials are refreshed with it), so
// it gets one that only Close cancels: ctx gives its values, not its
// deadline.
func New(ctx context.Context, cfg Config, log zerolog.Logger, opts ...option.ClientOption) (*Recognizer, error) {
	return newRecognizer(ctx, cfg, log, speech.NewClient, opts...)
}

// clientFunc builds the Speech client; speech.NewClient outside tests.
type clientFunc func(ctx context.Context, opts ...option.ClientOption) (*speech.Client, error)

func newRecognizer(ctx context.Context, cfg Config, log zerolog.Logger, newClient clientFunc, opts ...option.ClientOption) (*Recognizer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	o := []option.ClientOption{
		option.WithEndpoint(cfg.Endpoint),
		option.WithGRPCConnectionPool(cfg.PoolSize),
	}
	switch {
	case cfg.Insecure:
		o = append(o,
			option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	case cfg.CredentialsFile != "":
		o = append(o, option.WithAuthCredentialsFile(option.ServiceAccount, cfg.CredentialsFile))
	}
	o = append(o, opts...)
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	client, err := newClient(rctx, o...)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("create google speech client: %w", err)
	}
	r := &Recognizer{
		cfg:     cfg,
		log:     log.With().Str("component", "stt.google").Logger(),
		client:  client,
		cancel:  cancel,
		streams: map[*session.Stream]context.CancelFunc{},
	}
	r.log.Info().Str("endpoint", cfg.Endpoint).Bool("insecure", cfg.Insecure).
		Bool("credentials_file", cfg.CredentialsFile != "").Int("pool_size", cfg.PoolSize).
		Int("max_streams", cfg.MaxStreams).Str("hold", cfg.Hold).Msg("google speech client ready")
	return r, nil
}

// Close abandons every open stream, waits for their goroutines and closes
// the client. Close the streams first for their last results. Idempotent.
func (r *Recognizer) Close() error {
	r.once.Do(func() {
		r.mu.Lock()
		r.closed = true
		for _, cancel := range r.streams {
			cancel()
		}
		r.mu.Unlock()
		r.cancel()
		r.wg.Wait()
		r.err = r.client.Close()
	})
	return r.err
}

// Open starts transcribing one track. The stream ends when ctx is
// cancelled, after Close and its last results, or on a permanent failure.
func (r *Recognizer) Open(ctx context.Context, sc stt.StreamConfig) (stt.Stream, error) {
	if sc.SampleRate < 8000 || sc.SampleRate > 48000 {
		return nil, fmt.Errorf("open google stream: sample rate %d: must be 8000..48000", sc.SampleRate)
	}
	if sc.Track == "" {
		return nil, errors.New("open google stream: empty track")
	}
	log := r.log.With().Str("call_id", sc.CallID).Str("track", sc.Track).Logger()
	s := session.NewStream(&engine{r: r, request: r.recognitionConfig(sc, log)}, r.cfg.Policy, sc.Track, sc.SampleRate, log)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return nil, ErrClosed
	case len(r.streams) >= r.cfg.MaxStreams:
		return nil, ErrCapacity
	}
	sctx, cancel := context.WithCancel(ctx)
	r.streams[s] = cancel
	r.wg.Go(func() {
		defer func() {
			cancel()
			r.mu.Lock()
			delete(r.streams, s)
			r.mu.Unlock()
		}()
		s.Run(sctx)
	})
	return s, nil
}

// recognitionConfig builds the first request of every engine stream of a
// track, applying the per-call overrides.
func (r *Recognizer) recognitionConfig(sc stt.StreamConfig, log zerolog.Logger) *speechpb.StreamingRecognizeRequest {
	c := r.cfg
	lang := c.Language
	if v := strings.TrimSpace(sc.Params[ParamLanguage]); v != "" {
		if languageRE.MatchString(v) {
			lang = v
		} else {
			log.Warn().Str("language", v).Msg("ignoring invalid language parameter")
		}
	}
	hints := append([]string(nil), c.PhraseHints...)
	for _, h := range strings.Split(sc.Params[ParamHints], ",") {
		h = strings.TrimSpace(h)
		if h == "" || len(h) > maxPhraseLen || len(hints) >= maxPhrases {
			continue
		}
		hints = append(hints, h)
	}
	model := c.Model
	if model == "" {
		model = DefaultModelWideband
		if sc.SampleRate <= 8000 {
			model = DefaultModel8k
		}
	}
	rc := &speechpb.RecognitionConfig{
		Encoding:                   speechpb.RecognitionConfig_LINEAR16,
		SampleRateHertz:            int32(sc.SampleRate),
		AudioChannelCount:          1,
		LanguageCode:               lang,
		AlternativeLanguageCodes:   c.AlternativeLanguages,
		Model:                      model,
		UseEnhanced:                c.Enhanced,
		EnableAutomaticPunctuation: c.Punctuation,
		EnableWordTimeOffsets:      c.WordTimeOffsets,
		ProfanityFilter:            c.ProfanityFilter,
		MaxAlternatives:            int32(c.MaxAlternatives),
	}
	if len(hints) > 0 {
		rc.SpeechContexts = []*speechpb.SpeechContext{{Phrases: hints, Boost: float32(c.Boost)}}
	}
	stream := &speechpb.StreamingRecognitionConfig{Config: rc, InterimResults: !c.DisableInterimResults}
	return &speechpb.StreamingRecognizeRequest{
		StreamingRequest: &speechpb.StreamingRecognizeRequest_StreamingConfig{StreamingConfig: stream},
	}
}
