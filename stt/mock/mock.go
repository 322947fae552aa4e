// Package mock is a deterministic speech-to-text engine for tests and for
// running the bridge offline. What it reports depends on the audio only,
// never on wall time, however the audio is cut into Write calls.
//
// Recognition is an energy detector over 20 ms windows on the call clock:
// an utterance runs from the first window above Config.Threshold until
// Config.MinSilence of silence (a jump in positions counts as silence) or
// Close; one that fails or is cancelled first gets no final. It is given
// the next script line of its track or a description ("inbound utterance 2
// (1.4 s)"); partials grow by a word every Config.WordEvery, then one final.
//
// StreamConfig.Params override the configuration for one stream (an
// invalid value makes Open fail): "script" (lines separated by "|", empty
// for descriptions only), "mock_fail_after_ms" and "mock_latency_ms".
//
// Write runs the detector on the caller's goroutine and queues its results
// (at most 64; then Write blocks until the consumer catches up or the
// context is cancelled). TryWrite (stt.InlineWriter) is Write when the
// queue has room for all that the audio could produce, and refuses the
// audio otherwise, so that it never blocks. A goroutine moves the results
// to the unbuffered Results once due; it runs only while results wait (a
// stream in silence has none), its last run closes Results after the last
// result, or at once on cancel. Close never blocks: a Write still running
// settles the stream.
package mock

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/callcaptions/bridge/stt"
)

// Defaults used for zero (or negative) Config fields.
const (
	// DefaultThreshold is an RMS amplitude of about -41 dBFS: 10 dB under
	// speech at -30 dBFS and far above μ-law silence (0) and line noise
	// around -60 dBFS (RMS ≈ 33).
	DefaultThreshold = 300.0
	// DefaultMinSilence is a pause long enough to end a sentence but longer
	// than the gaps between words.
	DefaultMinSilence = 500 * time.Millisecond
	// DefaultMinSpeech drops clicks and line pops, shorter than any word.
	DefaultMinSpeech = 100 * time.Millisecond
	// DefaultWordEvery is roughly the pace of conversational speech
	// (four words a second).
	DefaultWordEvery = 250 * time.Millisecond
)

// Parameters read from StreamConfig.Params.
const (
	ParamScript    = "script"
	ParamFailAfter = "mock_fail_after_ms"
	ParamLatency   = "mock_latency_ms"
)

// confidence is given to every final and every word: the mock is as sure of
// itself as a good engine on clean audio, and the value never varies.
const confidence = 0.9

// maxStability is what the Stability of partials rises toward as words are
// added, never reached: a partial is never as settled as a final.
const maxStability = 0.9

// Config configures a Recognizer. The zero value is ready to use.
type Config struct {
	// Script holds the lines that utterances are given, in order. A line
	// prefixed "inbound:" or "outbound:" belongs to that track only; other
	// lines are shared, and each stream takes the lines of its track from its
	// own cursor. When a track's lines run out, utterances are described
	// instead ("inbound utterance 3 (2.1 s)").
	Script []string
	// Threshold is the RMS amplitude of PCM16 (0..32767) above which a 20 ms
	// window is speech; MinSilence the silence that ends an utterance;
	// MinSpeech the shortest utterance reported (shorter bursts use up
	// neither a script line nor a segment number); WordEvery the speech
	// that adds a word to the partials. Zero means the Default* constant.
	Threshold                        float64
	MinSilence, MinSpeech, WordEvery time.Duration
	// FailAfter makes every stream fail for good once this much audio has
	// been written to it (gaps do not count): it reports a Status result
	// with Event stt.EventFailed and Code "Unavailable", closes Results, and
	// Write returns an error wrapping stt.ErrStopped. The utterance in
	// progress is lost, as it is when a real engine drops. 0 means never.
	FailAfter time.Duration
	// Latency delays the delivery of each result by this much wall time
	// after the Write (or Close) that produced it. Write does not wait for
	// it, but the queue fills while results are held back. 0 means
	// immediately.
	Latency time.Duration
}

// Recognizer opens mock streams. It is safe for concurrent use.
type Recognizer struct {
	cfg   Config
	lines []scriptLine
}

var _ stt.Recognizer = (*Recognizer)(nil)

// New returns a Recognizer with cfg, zero fields replaced by their defaults.
func New(cfg Config) *Recognizer {
	cfg.Threshold = cmp.Or(max(cfg.Threshold, 0), DefaultThreshold)
	cfg.MinSilence = cmp.Or(max(cfg.MinSilence, 0), DefaultMinSilence)
	cfg.MinSpeech = cmp.Or(max(cfg.MinSpeech, 0), DefaultMinSpeech)
	cfg.WordEvery = cmp.Or(max(cfg.WordEvery, 0), DefaultWordEvery)
	cfg.FailAfter = max(cfg.FailAfter, 0)
	cfg.Latency = max(cfg.Latency, 0)
	cfg.Script = append([]string(nil), cfg.Script...)
	return &Recognizer{cfg: cfg, lines: parseLines(cfg.Script)}
}

// Open starts a stream for one track. The stream stops delivering results
// when ctx is cancelled.
func (r *Recognizer) Open(ctx context.Context, sc stt.StreamConfig) (stt.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mock stt: open: %w", err)
	}
	if sc.Track == "" {
		return nil, errors.New("mock stt: open: track is empty")
	}
	if sc.SampleRate <= 0 || sc.SampleRate%50 != 0 {
		return nil, fmt.Errorf("mock stt: open %s: sample rate %d is not a positive multiple of 50 Hz (8000, 16000 or 24000)", sc.Track, sc.SampleRate)
	}
	lines := r.lines
	if v, ok := sc.Params[ParamScript]; ok {
		lines = parseLines(strings.Split(v, "|"))
	}
	cfg := r.cfg
	var err1, err2 error
	cfg.FailAfter, err1 = msParam(sc.Params, ParamFailAfter, cfg.FailAfter)
	cfg.Latency, err2 = msParam(sc.Params, ParamLatency, cfg.Latency)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("mock stt: open %s: %w", sc.Track, err)
	}
	return newStream(ctx, cfg, sc.Track, int64(sc.SampleRate), linesFor(lines, sc.Track)), nil
}

// msParam reads a whole number of milliseconds >= 0 from params[key], or
// returns def when the key is absent.
func msParam(params map[string]string, key string, def time.Duration) (time.Duration, error) {
	v, ok := params[key]
	if !ok {
		return def, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 || n > int64(24*time.Hour/time.Millisecond) {
		return 0, fmt.Errorf("param %s: want whole milliseconds from 0 to 86400000, got %q", key, v)
	}
	return time.Duration(n) * time.Millisecond, nil
}
