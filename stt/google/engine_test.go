package google

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/stt"
	"github.com/callcaptions/bridge/stt/google/speechtest"
)

// The first request carries the settings, the per-call overrides and the
// rate-dependent model; audio goes out as LINEAR16 at the track's rate.
func TestRecognitionConfig(t *testing.T) {
	fake, addr := speechtest.Start(t, fakeRules())
	cfg := testConfig(addr)
	cfg.PhraseHints, cfg.Boost = []string{"Acme"}, 10
	cfg.AlternativeLanguages = []string{"es-US"}
	cfg.Punctuation, cfg.ProfanityFilter, cfg.MaxAlternatives = true, true, 2
	r := newTestRecognizer(t, cfg)

	open := func(rate int, params map[string]string) {
		sc := stt.StreamConfig{CallID: "CA", Track: "inbound", SampleRate: rate, Params: params}
		require.NoError(t, transcribe(t, r, sc, player{rate: rate}, synth(rate, time.Second, nil)).werr)
	}
	open(8000, map[string]string{"language": "es-MX", "hints": " Widget , ,Gizmo"})
	open(16000, map[string]string{"language": "not a language"})

	cs := fake.Configs()
	require.Len(t, cs, 2)
	c8, c16 := cs[0].GetConfig(), cs[1].GetConfig()
	assert.True(t, cs[0].GetInterimResults())
	assert.Equal(t, int32(8000), c8.GetSampleRateHertz())
	assert.Equal(t, "telephony", c8.GetModel())
	assert.Equal(t, "es-MX", c8.GetLanguageCode())
	assert.Equal(t, []string{"es-US"}, c8.GetAlternativeLanguageCodes())
	assert.Equal(t, []string{"Acme", "Widget", "Gizmo"}, c8.GetSpeechContexts()[0].GetPhrases())
	assert.InDelta(t, 10, c8.GetSpeechContexts()[0].GetBoost(), 0.001)
	assert.True(t, c8.GetEnableAutomaticPunctuation())
	assert.True(t, c8.GetProfanityFilter())
	assert.True(t, c8.GetEnableWordTimeOffsets())
	assert.Equal(t, int32(2), c8.GetMaxAlternatives())
	assert.Equal(t, int32(16000), c16.GetSampleRateHertz())
	assert.Equal(t, "latest_long", c16.GetModel())
	assert.Equal(t, "en-US", c16.GetLanguageCode(), "an invalid override is ignored")
	assert.Equal(t, []string{"Acme"}, c16.GetSpeechContexts()[0].GetPhrases())
}

// Missing frames: a short stretch is sent as silence and a long one starts
// a new engine stream; either way the times stay on the call clock.
func TestPositionJumps(t *testing.T) {
	rules := fakeRules()
	rules.StreamLimit = time.Minute
	fake, addr := speechtest.Start(t, rules)
	cfg := longStreams(testConfig(addr))
	cfg.SilenceClose = 10 * time.Second // only the jumps end streams here
	r := newTestRecognizer(t, cfg)
	const rate = 8000
	total := 20 * time.Second
	words := spokenIn(stretch{1, 300 * time.Millisecond, 6 * time.Second}, stretch{50, 7 * time.Second, 12 * time.Second},
		stretch{100, 18 * time.Second, total})
	skips := []span{{6 * rate, 6*rate + 3200}, {12 * rate, 17 * rate}} // 400 ms, then 5 s
	rs := speak(t, r, stt.StreamConfig{CallID: "CA", Track: "inbound", SampleRate: rate}, player{rate: rate, skips: skips}, total, words)
	checkWords(t, "inbound", rs, words)
	assert.Empty(t, statuses(rs))
	opened, _, _, _, _ := fake.Stats()
	assert.Equal(t, 2, opened, "only the long jump starts a new stream")
}

// An engine that stops reading blocks the sender; Write still returns at
// once, the overflow is reported as a gap, the stuck stream is abandoned
// after send-timeout and transcription carries on.
func TestStalledEngine(t *testing.T) {
	rules := fakeRules()
	rules.StreamLimit = time.Minute
	rules.AudioTimeout = time.Minute
	rules.Script = func(n int, st speechtest.State) error {
		if n == 1 && st.Audio >= 3*time.Second && !st.InWord {
			return speechtest.ErrStall
		}
		return nil
	}
	fake, addr := speechtest.Start(t, rules)
	cfg := longStreams(testConfig(addr))
	cfg.QueueDuration, cfg.SendTimeout = time.Second, 300*time.Millisecond
	r := newTestRecognizer(t, cfg)
	const rate = 16000
	total := 30 * time.Second
	words := utterances(1, 300*time.Millisecond, total)
	rs := speak(t, r, stt.StreamConfig{CallID: "CA", Track: "inbound", SampleRate: rate}, player{rate: rate}, total, words)

	st := statuses(rs)
	assert.Contains(t, st, "retry:Unavailable")
	assert.Contains(t, st, stt.EventGap)
	assert.NotContains(t, st, "failed")
	var gaps []span
	seen := map[string]int{}
	for _, r := range rs {
		switch {
		case r.Kind == stt.Status && r.Status.Event == stt.EventGap:
			assert.Less(t, r.StartMs, r.EndMs)
			gaps = append(gaps, span{r.StartMs, r.EndMs})
		case r.Kind == stt.Final:
			for _, w := range r.Words {
				seen[w.Word]++
			}
		}
	}
	// Every word clear of the reported gaps is there exactly once.
	for _, w := range words {
		inGap := false
		for _, g := range gaps {
			inGap = inGap || (w.endMs > g.from && w.startMs < g.to)
		}
		if !inGap {
			assert.Equal(t, 1, seen[speechtest.WordName(w.k)], "word %v", w)
		}
		assert.LessOrEqual(t, seen[speechtest.WordName(w.k)], 1, "word %v", w)
	}
	_, _, _, failures, _ := fake.Stats()
	assert.Empty(t, failures)
}

// Cancelling the Open context abandons the stream: Results closes without
// waiting for the engine and Write reports ErrStopped.
func TestContextCancel(t *testing.T) {
	rules := fakeRules()
	rules.AudioTimeout = time.Minute
	_, addr := speechtest.Start(t, rules)
	r := newTestRecognizer(t, testConfig(addr))
	ctx, cancel := context.WithCancel(context.Background())
	s, err := r.Open(ctx, stt.StreamConfig{CallID: "CA", Track: "inbound", SampleRate: 8000})
	require.NoError(t, err)
	res := collect(s)
	pcm := synth(8000, 2*time.Second, utterances(1, 100*time.Millisecond, 2*time.Second))
	require.NoError(t, s.Write(0, pcm))
	cancel()
	wait(t, res, 5*time.Second)
	require.Eventually(t, func() bool { return s.Write(16000, make([]byte, 320)) != nil }, 5*time.Second, 10*time.Millisecond)
	require.ErrorIs(t, s.Write(16160, make([]byte, 320)), stt.ErrStopped)
}

func TestOpenLimits(t *testing.T) {
	_, addr := speechtest.Start(t, fakeRules())
	cfg := testConfig(addr)
	cfg.MaxStreams = 1
	r := newTestRecognizer(t, cfg)
	_, err := r.Open(context.Background(), stt.StreamConfig{Track: "inbound", SampleRate: 4000})
	require.ErrorContains(t, err, "sample rate 4000")
	s, err := r.Open(context.Background(), stt.StreamConfig{Track: "inbound", SampleRate: 8000})
	require.NoError(t, err)
	_, err = r.Open(context.Background(), stt.StreamConfig{Track: "outbound", SampleRate: 8000})
	require.ErrorIs(t, err, ErrCapacity)
	res := collect(s)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")
	assert.Empty(t, wait(t, res, 5*time.Second))
	// The condition runs on a goroutine of its own: it hands the stream
	// over, and the test goroutine closes it.
	var freed stt.Stream
	require.Eventually(t, func() bool {
		s, err := r.Open(context.Background(), stt.StreamConfig{Track: "outbound", SampleRate: 8000})
		if err == nil {
			freed = s
		}
		return err == nil
	}, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, freed.Close())
	require.NoError(t, r.Close())
	require.NoError(t, r.Close())
	_, err = r.Open(context.Background(), stt.StreamConfig{Track: "inbound", SampleRate: 8000})
	require.ErrorIs(t, err, ErrClosed)
}
