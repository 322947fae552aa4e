package config

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/callcaptions/bridge/stt/google"
)

// Google configures Google Cloud Speech-to-Text (--stt google). Field names
// match stt/google.Config so that wiring copies them one to one; the only
// exception is InterimResults, which is DisableInterimResults there (its
// zero value means on). The engine owns its defaults: the tags name them
// (${google_…}, see googleVars) so that --help shows them.
type Google struct {
	Endpoint        string `name:"endpoint" default:"${google_endpoint}" env:"ENDPOINT" help:"Speech API host:port. Regional: eu-speech.googleapis.com:443 or us-speech.googleapis.com:443."`
	Insecure        bool   `name:"insecure" env:"INSECURE" help:"Plaintext and no credentials, for local emulators and tests only."`
	CredentialsFile string `name:"credentials-file" env:"CREDENTIALS_FILE" help:"Service-account key file. Empty: Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud auth application-default login, or the attached service account)." type:"path"`

	Language             string   `name:"language" default:"${google_language}" env:"LANGUAGE" help:"BCP-47 language of the calls. A call's custom parameter 'language' overrides it."`
	AlternativeLanguages []string `name:"alternative-languages" sep:"," env:"ALTERNATIVE_LANGUAGES" help:"Up to 3 more languages callers may speak (comma-separated)."`
	Model                string   `name:"model" env:"MODEL" help:"Recognition model. Empty: telephony for 8 kHz tracks, latest_long for wideband tracks."`
	Enhanced             bool     `name:"enhanced" env:"ENHANCED" help:"Use the enhanced variant of the model (phone_call, video)."`
	Punctuation          bool     `name:"punctuation" default:"true" negatable:"" env:"PUNCTUATION" help:"Automatic punctuation (where the language supports it)."`
	WordTimeOffsets      bool     `name:"word-time-offsets" default:"true" negatable:"" env:"WORD_TIME_OFFSETS" help:"Per-word times in finals."`
	ProfanityFilter      bool     `name:"profanity-filter" env:"PROFANITY_FILTER" help:"Mask profanities."`
	PhraseHints          []string `name:"phrase-hints" sep:"," env:"PHRASE_HINTS" help:"Phrases to favour (comma-separated). A call's custom parameter 'hints' adds more."`
	Boost                float64  `name:"boost" env:"BOOST" help:"Weight of the phrase hints, 0 to 20."`
	MaxAlternatives      int      `name:"max-alternatives" env:"MAX_ALTERNATIVES" help:"Alternatives to request, 0 to 30; only the best is reported."`
	InterimResults       bool     `name:"interim-results" default:"true" negatable:"" env:"INTERIM_RESULTS" help:"Partial results while a sentence is spoken."`

	MaxStreams int `name:"max-streams" default:"${google_max_streams}" env:"MAX_STREAMS" help:"Tracks transcribed at once; further tracks are recorded without a transcript."`
	PoolSize   int `name:"pool-size" env:"POOL_SIZE" help:"gRPC connections to the API. 0: one per 80 max-streams (Google allows about 100 streams per connection)."`

	RotateAfter time.Duration `name:"rotate-after" default:"${google_rotate_after}" env:"ROTATE_AFTER" help:"Audio after which a recognition stream is replaced at the next pause (Google ends streams at 305 s)."`
	StreamLimit time.Duration `name:"stream-limit" default:"${google_stream_limit}" env:"STREAM_LIMIT" help:"Audio at which a stream is replaced even mid-speech; at most 5m."`
	RotatePause time.Duration `name:"rotate-pause" default:"${google_rotate_pause}" env:"ROTATE_PAUSE" help:"Quiet audio that counts as a pause for rotate-after."`

	Hold         string        `name:"hold" default:"${google_hold}" enum:"reopen,keepalive" env:"HOLD" help:"While nobody speaks: reopen (close the stream after silence-close, reopen on speech with pre-roll; silence is not billed) or keepalive (stream the quiet audio)."`
	IdleClose    time.Duration `name:"idle-close" default:"${google_idle_close}" env:"IDLE_CLOSE" help:"No audio arriving for this long closes the stream until audio returns (at most 8s, below Google's audio timeout)."`
	SilenceClose time.Duration `name:"silence-close" default:"${google_silence_close}" env:"SILENCE_CLOSE" help:"Quiet audio after which hold=reopen closes the stream."`
	SilenceLevel int           `name:"silence-level" default:"${google_silence_level}" env:"SILENCE_LEVEL" help:"RMS level (0-32767) at or below which audio counts as quiet."`
	PreRoll      time.Duration `name:"pre-roll" default:"${google_pre_roll}" env:"PRE_ROLL" help:"Audio before the first loud chunk sent when a stream reopens after a hold."`
	GapFill      time.Duration `name:"gap-fill" default:"${google_gap_fill}" env:"GAP_FILL" help:"Longest stretch of missing audio sent as silence; after a longer one the next stream starts where audio resumes."`

	ChunkDuration time.Duration `name:"chunk-duration" default:"${google_chunk_duration}" env:"CHUNK_DURATION" help:"Audio per request, 20ms to 500ms."`
	QueueDuration time.Duration `name:"queue-duration" default:"${google_queue_duration}" env:"QUEUE_DURATION" help:"Audio waiting to be sent per track; beyond it new audio is dropped and reported as a gap."`
	ReplayLimit   time.Duration `name:"replay-limit" default:"${google_replay_limit}" env:"REPLAY_LIMIT" help:"Unfinalized audio kept per track to replay after a stream failure."`
	DrainTimeout  time.Duration `name:"drain-timeout" default:"${google_drain_timeout}" env:"DRAIN_TIMEOUT" help:"How long a closing stream may take to deliver its last results."`
	SendTimeout   time.Duration `name:"send-timeout" default:"${google_send_timeout}" env:"SEND_TIMEOUT" help:"A send blocked this long counts as an unavailable stream."`

	BackoffInitial   time.Duration `name:"backoff-initial" default:"${google_backoff_initial}" env:"BACKOFF_INITIAL" help:"First delay before reopening a failed stream; doubles with jitter."`
	BackoffMax       time.Duration `name:"backoff-max" default:"${google_backoff_max}" env:"BACKOFF_MAX" help:"Longest delay before reopening a failed stream."`
	ExhaustedBackoff time.Duration `name:"exhausted-backoff" default:"${google_exhausted_backoff}" env:"EXHAUSTED_BACKOFF" help:"First delay after a quota error (ResourceExhausted); doubles up to 4x backoff-max."`
	MaxRetries       int           `name:"max-retries" default:"${google_max_retries}" env:"MAX_RETRIES" help:"Failed streams in a row, with no result between them, before transcription of a track stops."`
}

// googleVars are the engine's defaults, for the ${google_…} in Google's
// tags: each is the engine's field of the same name as the tagged one.
func googleVars() kong.Vars {
	d := reflect.ValueOf(google.DefaultConfig())
	vars := kong.Vars{}
	t := reflect.TypeFor[Google]()
	for i := range t.NumField() {
		f := t.Field(i)
		if name, ok := strings.CutPrefix(f.Tag.Get("default"), "${"); ok {
			vars[strings.TrimSuffix(name, "}")] = fmt.Sprint(d.FieldByName(f.Name).Interface())
		}
	}
	return vars
}
