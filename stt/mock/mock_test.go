package mock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/callcaptions/bridge/stt"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// threeBursts is a call with bursts of 1.0 s, 1.4 s and 0.6 s.
var threeBursts = []part{silence(400), tone(1000), silence(800), tone(1400), silence(700), tone(600), silence(600)}

var threeSpans = []span{{400, 1400}, {2200, 3600}, {4300, 4900}}

func TestSegments(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		sc     stt.StreamConfig
		parts  []part
		spans  []span
		finals []string
	}{
		{"script lines in order",
			Config{Script: []string{"hello world", "how are you today my friend", "bye"}}, inbound(8000), threeBursts, threeSpans, []string{"hello world", "how are you today my friend", "bye"}},
		{"descriptions without a script",
			Config{}, inbound(8000), threeBursts, threeSpans, []string{"inbound utterance 1 (1.0 s)", "inbound utterance 2 (1.4 s)", "inbound utterance 3 (0.6 s)"}},
		{"descriptions once the script runs out",
			Config{Script: []string{"only line"}}, inbound(8000), threeBursts, threeSpans, []string{"only line", "inbound utterance 2 (1.4 s)", "inbound utterance 3 (0.6 s)"}},
		{"inbound takes its own and the shared lines",
			Config{Script: []string{"inbound: caller one", "outbound: agent one", "shared line", "inbound:caller two"}}, inbound(8000), threeBursts, threeSpans, []string{"caller one", "shared line", "caller two"}},
		{"outbound takes its own and the shared lines",
			Config{Script: []string{"inbound: caller one", "outbound: agent one", "shared line", "inbound:caller two"}}, stt.StreamConfig{Track: "outbound", SampleRate: 8000}, threeBursts, threeSpans, []string{"agent one", "shared line", "outbound utterance 3 (0.6 s)"}},
		{"script param replaces the configured script",
			Config{Script: []string{"configured"}}, stt.StreamConfig{Track: "inbound", SampleRate: 8000, Params: map[string]string{ParamScript: "alpha beta| outbound: not mine |gamma"}}, threeBursts, threeSpans, []string{"alpha beta", "gamma", "inbound utterance 3 (0.6 s)"}},
		{"empty script param means descriptions",
			Config{Script: []string{"configured"}}, stt.StreamConfig{Track: "inbound", SampleRate: 8000, Params: map[string]string{ParamScript: ""}}, []part{tone(800)}, []span{{0, 800}}, []string{"inbound utterance 1 (0.8 s)"}},
		{"bursts off the 20 ms grid",
			Config{Script: []string{"a", "b"}}, inbound(8000), []part{silence(410), tone(995), silence(810), tone(1385), silence(600)}, []span{{410, 1405}, {2215, 3600}}, []string{"a", "b"}},
		{"clicks shorter than MinSpeech are ignored",
			Config{Script: []string{"first", "second"}}, inbound(8000), []part{silence(200), tone(40), silence(600), tone(500), silence(600), tone(60), silence(600), tone(500), silence(600)}, []span{{840, 1340}, {2600, 3100}}, []string{"first", "second"}},
		{"pauses shorter than MinSilence do not split",
			Config{}, inbound(8000), []part{tone(600), silence(480), tone(600), silence(500)}, []span{{0, 1680}}, []string{"inbound utterance 1 (1.7 s)"}},
		{"MinSilence sets the pause that splits",
			Config{MinSilence: 200 * time.Millisecond}, inbound(8000), []part{tone(600), silence(200), tone(600), silence(200)}, []span{{0, 600}, {800, 1400}}, []string{"inbound utterance 1 (0.6 s)", "inbound utterance 2 (0.6 s)"}},
		{"audio that ends mid-utterance is settled by Close",
			Config{Script: []string{"cut off"}}, inbound(8000), []part{silence(400), tone(1010)}, []span{{400, 1410}}, []string{"cut off"}},
		{"silence only",
			Config{}, inbound(8000), []part{silence(3000)}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pcm := synth(tt.sc.SampleRate, toneAmp, tt.parts...)
			got := play(t, New(tt.cfg), tt.sc, chunked(0, pcm, tt.sc.SampleRate/50))
			require.NoError(t, got.err)
			requireWellFormed(t, tt.sc.Track, got.results)
			fs := finals(got.results)
			require.Equal(t, tt.finals, texts(fs))
			requireSpans(t, tt.spans, fs)
		})
	}
}

func TestTracksShareARecognizer(t *testing.T) {
	// One Recognizer serves both tracks of a call at once; each stream keeps
	// its own script cursor.
	r := New(Config{Script: []string{"inbound: caller one", "outbound: agent one", "shared line"}})
	pcm := synth(8000, toneAmp, threeBursts...)
	want := map[string][]string{
		"inbound":  {"caller one", "shared line", "inbound utterance 3 (0.6 s)"},
		"outbound": {"agent one", "shared line", "outbound utterance 3 (0.6 s)"},
	}
	type stream struct {
		st      stt.Stream
		results <-chan []stt.Result
		err     chan error
	}
	streams := map[string]stream{}
	for track := range want {
		st, err := r.Open(t.Context(), stt.StreamConfig{CallID: "CA1", Track: track, SampleRate: 8000})
		require.NoError(t, err)
		s := stream{st: st, results: drainAsync(st.Results()), err: make(chan error, 1)}
		streams[track] = s
		go func() {
			for _, w := range chunked(0, pcm, 160) {
				if err := s.st.Write(w.pos, w.pcm); err != nil {
					s.err <- err
					return
				}
			}
			s.err <- s.st.Close()
		}()
	}
	for track, wantTexts := range want {
		s := streams[track]
		require.NoError(t, <-s.err)
		rs := waitDrain(t, s.results)
		requireWellFormed(t, track, rs)
		require.Equal(t, wantTexts, texts(finals(rs)))
	}
}

func TestCloseEndsAtLastAudio(t *testing.T) {
	// The final of an utterance cut by Close ends where the audio ends,
	// even inside a window.
	pcm := synth(8000, toneAmp, silence(400), tone(1010))
	got := play(t, New(Config{}), inbound(8000), chunked(0, pcm, 160))
	require.NoError(t, got.err)
	fs := finals(got.results)
	require.Len(t, fs, 1)
	require.Equal(t, int64(400), fs[0].StartMs)
	require.Equal(t, int64(1410), fs[0].EndMs)
	require.Equal(t, stt.Final, got.results[len(got.results)-1].Kind, "nothing after the final")
}

func TestPartials(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		parts    []part
		partials []string
		final    string
	}{
		{
			name:     "one more word every WordEvery",
			cfg:      Config{Script: []string{"one two three four five six seven"}},
			parts:    []part{tone(1000), silence(600)},
			partials: []string{"one", "one two", "one two three", "one two three four"},
			final:    "one two three four five six seven",
		},
		{
			name:     "a short line stops growing",
			cfg:      Config{Script: []string{"hello world"}},
			parts:    []part{tone(1400), silence(600)},
			partials: []string{"hello", "hello world"},
			final:    "hello world",
		},
		{
			name:     "WordEvery sets the pace",
			cfg:      Config{Script: []string{"a b c d e f"}, WordEvery: 100 * time.Millisecond},
			parts:    []part{tone(450), silence(600)},
			partials: []string{"a", "a b", "a b c", "a b c d"},
			final:    "a b c d e f",
		},
		{
			name:     "descriptions grow too",
			parts:    []part{tone(1400), silence(600)},
			partials: []string{"inbound", "inbound utterance", "inbound utterance 1", "inbound utterance 1 (1.0", "inbound utterance 1 (1.3 s)"},
			final:    "inbound utterance 1 (1.4 s)",
		},
		{
			name:  "shorter than WordEvery gives only a final",
			cfg:   Config{Script: []string{"quick"}},
			parts: []part{tone(200), silence(600)},
			final: "quick",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := play(t, New(tt.cfg), inbound(8000), chunked(0, synth(8000, toneAmp, tt.parts...), 160))
			require.NoError(t, got.err)
			requireWellFormed(t, "inbound", got.results)
			require.NotEmpty(t, got.results)
			last := got.results[len(got.results)-1]
			require.Equal(t, stt.Final, last.Kind)
			require.Equal(t, tt.final, last.Text)
			require.Equal(t, tt.partials, texts(got.results[:len(got.results)-1]))
			for _, p := range got.results[:len(got.results)-1] {
				require.Equal(t, stt.Partial, p.Kind)
				require.Equal(t, "inbound-1", p.SegmentID)
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	// The same call, cut into writes of different sizes (in samples; PCM16
	// writes are whole samples) and at different rates, gives the same
	// results.
	cfg := Config{Script: []string{"hello world", "how are you today my friend"}}
	reference := play(t, New(cfg), inbound(8000), chunked(0, synth(8000, toneAmp, threeBursts...), 160))
	require.NoError(t, reference.err)
	require.Len(t, finals(reference.results), 3)

	tests := []struct {
		name  string
		rate  int
		chunk int // samples per write
	}{
		{"8 kHz 20 ms again", 8000, 160},
		{"8 kHz 100 ms", 8000, 800},
		{"8 kHz 7 samples", 8000, 7},
		{"8 kHz 1 sample", 8000, 1},
		{"8 kHz 333 samples", 8000, 333},
		{"8 kHz one write", 8000, 1 << 20},
		{"16 kHz 20 ms", 16000, 320},
		{"16 kHz 7 samples", 16000, 7},
		{"24 kHz 20 ms", 24000, 480},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pcm := synth(tt.rate, toneAmp, threeBursts...)
			got := play(t, New(cfg), inbound(tt.rate), chunked(0, pcm, tt.chunk))
			require.NoError(t, got.err)
			require.Equal(t, reference.results, got.results)
		})
	}
}

func TestThreshold(t *testing.T) {
	// -30 dBFS RMS is 1036; the tone's peak is √2 times its RMS.
	const minus30dBFS = 1036 * 1.4142
	noise := func(rms int16) []byte { // a square wave: RMS equals its amplitude
		pcm := synth(8000, 0, silence(2000))
		for i := 0; i < len(pcm); i += 2 {
			v := rms
			if i/2%2 == 1 {
				v = -rms
			}
			pcm[i], pcm[i+1] = byte(v), byte(uint16(v)>>8)
		}
		return pcm
	}
	tests := []struct {
		name     string
		cfg      Config
		pcm      []byte
		segments int
	}{
		{"speech at -30 dBFS", Config{}, synth(8000, minus30dBFS, tone(1000), silence(600)), 1},
		{"noise at -60 dBFS", Config{}, noise(33), 0},
		{"mu-law silence decoded", Config{}, noise(8), 0},
		{"digital silence", Config{}, synth(8000, 0, silence(2000)), 0},
		{"a higher threshold", Config{Threshold: 2000}, synth(8000, minus30dBFS, tone(1000), silence(600)), 0},
		{"a lower threshold", Config{Threshold: 20}, noise(33), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := play(t, New(tt.cfg), inbound(8000), chunked(0, tt.pcm, 160))
			require.NoError(t, got.err)
			require.Len(t, finals(got.results), tt.segments)
		})
	}
}

func TestGaps(t *testing.T) {
	const rate = 8000
	at := func(ms int64) int64 { return ms * rate / 1000 }
	burst := func(ms int) []byte { return synth(rate, toneAmp, tone(ms)) }
	// Two bursts, the second where the audio resumes.
	two := func(first, resumeMs, second int) []write {
		return append(chunked(0, burst(first), 160), chunked(at(int64(resumeMs)), burst(second), 160)...)
	}
	tests := []struct {
		name   string
		writes []write
		spans  []span
	}{
		{"a long gap ends the utterance", two(1000, 1600, 1000), []span{{0, 1000}, {1600, 2600}}},
		{"a short gap does not", two(1000, 1200, 800), []span{{0, 2000}}},
		{"gaps that start and end inside windows", two(1005, 1713, 1000), []span{{0, 1005}, {1713, 2713}}},
		{"a gap inside one window", two(1005, 1012, 500), []span{{0, 1512}}},
		{"a stream that starts late is on the call clock",
			chunked(at(10_000), synth(rate, toneAmp, silence(400), tone(1000), silence(600)), 160), []span{{10_400, 11_400}}},
		{"an empty write past the end is a gap",
			append(append(chunked(0, burst(1000), 160), write{pos: at(1700)}), chunked(at(1700), burst(500), 160)...), []span{{0, 1000}, {1700, 2200}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := play(t, New(Config{}), inbound(rate), tt.writes)
			require.NoError(t, got.err)
			requireWellFormed(t, "inbound", got.results)
			requireSpans(t, tt.spans, finals(got.results))
		})
	}
}

func TestWriteErrors(t *testing.T) {
	r := New(Config{})
	tests := []struct {
		name   string
		second write
		want   string
	}{
		{"backwards", write{pos: 100, pcm: make([]byte, 320)}, "must not go backwards"},
		{"overlapping", write{pos: 159, pcm: make([]byte, 320)}, "must not go backwards"},
		{"odd byte count", write{pos: 160, pcm: make([]byte, 7)}, "whole 2-byte samples"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, cancel := openCancellable(t, r, inbound(8000))
			defer cancel()
			require.NoError(t, st.Write(0, make([]byte, 320)))
			werr := st.Write(tt.second.pos, tt.second.pcm)
			require.ErrorContains(t, werr, tt.want)
			require.NotErrorIs(t, werr, stt.ErrStopped, "a bad write does not stop the stream")
			require.NoError(t, st.Write(160, make([]byte, 320)), "the stream goes on")
		})
	}
}

func TestFailAfter(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		params map[string]string
		failMs int64 // 0: never fails
	}{
		{"configured", Config{FailAfter: 2 * time.Second}, nil, 2000},
		{"param", Config{}, map[string]string{ParamFailAfter: "2500"}, 2500},
		{"param overrides the configuration", Config{FailAfter: time.Second}, map[string]string{ParamFailAfter: "3000"}, 3000},
		{"param 0 means never", Config{FailAfter: time.Second}, map[string]string{ParamFailAfter: "0"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			sc := stt.StreamConfig{Track: "inbound", SampleRate: 8000, Params: tt.params}
			pcm := synth(8000, toneAmp, threeBursts...)
			got := play(t, New(tt.cfg), sc, chunked(0, pcm, 160))
			requireWellFormed(t, "inbound", got.results)
			if tt.failMs == 0 {
				require.NoError(t, got.err)
				require.Len(t, finals(got.results), 3)
				return
			}
			require.ErrorIs(t, got.err, stt.ErrStopped)
			last := got.results[len(got.results)-1]
			require.Equal(t, stt.Status, last.Kind)
			require.Equal(t, stt.EventFailed, last.Status.Event)
			require.Equal(t, "Unavailable", last.Status.Code)
			require.Equal(t, tt.failMs, last.StartMs)
			for _, r := range got.results[:len(got.results)-1] {
				require.LessOrEqual(t, r.EndMs, tt.failMs, "only results from audio before the failure")
			}
			require.Equal(t, []string{"inbound utterance 1 (1.0 s)"}, texts(finals(got.results)),
				"the utterance in progress at the failure is lost")
		})
	}
}

func TestAfterFailure(t *testing.T) {
	defer goleak.VerifyNone(t)
	st, _ := openCancellable(t, New(Config{FailAfter: 100 * time.Millisecond}), inbound(8000))
	got := drainAsync(st.Results())
	err := st.Write(0, make([]byte, 2*1000))
	require.ErrorIs(t, err, stt.ErrStopped, "the write that reaches FailAfter")
	require.ErrorIs(t, st.Write(1000, make([]byte, 320)), stt.ErrStopped)
	rs := waitDrain(t, got)
	require.Len(t, rs, 1)
	require.Equal(t, int64(100), rs[0].StartMs)
	require.NoError(t, st.Close())
	require.NoError(t, st.Close())
	require.ErrorIs(t, st.Write(2000, make([]byte, 320)), stt.ErrStopped)
}

// TestLatency: each result is due exactly the configured latency after the
// Write that produced it (not earlier, not later, not doubled), is not
// delivered before it is due, and latency never changes what is said.
// The due times are read from the queue, so nothing here depends on how
// fast the machine is.
func TestLatency(t *testing.T) {
	pcm := synth(8000, toneAmp, threeBursts...)
	reference := play(t, New(Config{}), inbound(8000), chunked(0, pcm, 160))
	require.NotEmpty(t, reference.results)

	tests := []struct {
		name   string
		cfg    Config
		params map[string]string
		delay  time.Duration
	}{
		{"configured", Config{Latency: time.Hour}, nil, time.Hour},
		{"param", Config{}, map[string]string{ParamLatency: "3600000"}, time.Hour},
		{"param over configured", Config{Latency: time.Minute}, map[string]string{ParamLatency: "7200000"}, 2 * time.Hour},
		{"none", Config{}, nil, 0},
		{"param 0 means immediately", Config{Latency: time.Hour}, map[string]string{ParamLatency: "0"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			sc := stt.StreamConfig{Track: "inbound", SampleRate: 8000, Params: tt.params}
			st, cancel := openCancellable(t, New(tt.cfg), sc)
			require.Equal(t, tt.delay, st.latency)
			got := drainAsync(st.Results())
			// Each result is due latency after the wall time of the Write
			// (or the Close) that queued it, which lies between before and
			// after.
			var dues []time.Time
			scan := func(before, after time.Time) {
				st.mu.Lock()
				defer st.mu.Unlock()
				if tt.delay == 0 {
					for k := range st.count {
						p := st.ring[(st.head+k)%len(st.ring)]
						require.True(t, p.due.IsZero(), "due at once: %v", p.due)
					}
					return
				}
				// With a latency, deliver takes at most the head out of the
				// queue (it then waits for its time) and the ring does not
				// wrap, so head+count results have been queued so far.
				for n := len(dues); n < st.head+st.count; n++ {
					k := n - st.head
					if k < 0 {
						dues = append(dues, time.Time{}) // taken before this loop saw it
						continue
					}
					p := st.ring[(st.head+k)%len(st.ring)]
					require.False(t, p.due.Before(before.Add(tt.delay)), "due %v before the latency after its Write", p.due.Sub(before))
					require.False(t, p.due.After(after.Add(tt.delay)), "due %v, later than the latency after its Write", p.due.Sub(before))
					dues = append(dues, p.due)
				}
			}
			for _, w := range chunked(0, pcm, 160) {
				before := time.Now()
				require.NoError(t, st.Write(w.pos, w.pcm))
				scan(before, time.Now())
			}
			before := time.Now()
			require.NoError(t, st.Close())
			scan(before, time.Now())
			if tt.delay == 0 {
				require.Equal(t, reference.results, waitDrain(t, got), "without latency everything is delivered at once")
				return
			}
			require.Len(t, dues, len(reference.results), "each result was queued once")
			require.Positive(t, len(slices.DeleteFunc(dues, time.Time.IsZero)), "the due times were checked")
			// Nothing is delivered before it is due: the head leaves the
			// queue to wait for its time, the rest stay.
			require.Eventually(t, func() bool {
				st.mu.Lock()
				defer st.mu.Unlock()
				return st.head == 1
			}, 10*time.Second, time.Millisecond, "deliver takes the first result to wait for it")
			require.Equal(t, len(reference.results)-1, undelivered(t, st), "every result but the one waiting for its time is still queued")
			cancel()
			require.Empty(t, waitDrain(t, got))
		})
	}

	t.Run("delivered once due, content unchanged", func(t *testing.T) {
		const delay = 50 * time.Millisecond
		st, _ := openCancellable(t, New(Config{Latency: delay}), inbound(8000))
		got := drainAsync(st.Results())
		begin := time.Now()
		for _, w := range chunked(0, pcm, 160) {
			require.NoError(t, st.Write(w.pos, w.pcm))
		}
		require.NoError(t, st.Close())
		require.Equal(t, reference.results, waitDrain(t, got), "latency changes timing, never content")
		require.GreaterOrEqual(t, time.Since(begin), delay, "the last result waited for its latency")
	})
}

// undelivered requires that Results has nothing to read yet and returns how
// many results are queued.
func undelivered(t *testing.T, st *Stream) int {
	select {
	case r := <-st.Results():
		require.FailNow(t, "delivered before its latency", "%+v", r)
	default:
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.count
}

func TestLatencyDoesNotBlockWrite(t *testing.T) {
	defer goleak.VerifyNone(t)
	st, cancel := openCancellable(t, New(Config{Latency: time.Hour}), inbound(8000))
	for _, w := range chunked(0, synth(8000, toneAmp, threeBursts...), 160) {
		require.NoError(t, st.Write(w.pos, w.pcm))
	}
	require.NoError(t, st.Close())
	require.Positive(t, undelivered(t, st), "results wait in the queue")
	cancel()
	requireClosedEmpty(t, st)
}

// requireClosedEmpty waits for the delivering goroutine to exit and checks
// that Results is closed with nothing left in it.
func requireClosedEmpty(t *testing.T, st *Stream) {
	t.Helper()
	select {
	case <-st.done:
	case <-time.After(10 * time.Second):
		require.FailNow(t, "Results was not closed after cancel")
	}
	_, ok := <-st.Results()
	require.False(t, ok, "no result after cancel")
}

// longLine has a word per 20 ms of a 10 s utterance, so that WordEvery 20 ms
// gives far more partials than the queue holds.
var longLine = strings.TrimSpace(strings.Repeat("word ", 500))

func TestCancel(t *testing.T) {
	t.Run("while idle", func(t *testing.T) {
		defer goleak.VerifyNone(t)
		st, cancel := openCancellable(t, New(Config{}), inbound(8000))
		require.NoError(t, st.Write(0, synth(8000, toneAmp, tone(500))))
		cancel()
		requireClosedEmpty(t, st)
		err := st.Write(4000, make([]byte, 320))
		require.ErrorIs(t, err, stt.ErrStopped)
		require.ErrorIs(t, err, context.Canceled)
		require.NoError(t, st.Close())
	})
	t.Run("while Write waits for room", func(t *testing.T) {
		defer goleak.VerifyNone(t)
		st, cancel, werr := blockedWrite(t)
		cancel()
		select {
		case err := <-werr:
			require.ErrorIs(t, err, stt.ErrStopped)
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(10 * time.Second):
			require.FailNow(t, "Write stayed blocked after cancel")
		}
		requireClosedEmpty(t, st)
	})
	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := New(Config{}).Open(ctx, inbound(8000))
		require.ErrorIs(t, err, context.Canceled)
	})
}

// blockedWrite opens a stream whose Write of a long utterance blocks on its
// full queue while nobody reads; werr gets what that Write returns.
func blockedWrite(t *testing.T) (*Stream, context.CancelFunc, <-chan error) {
	st, cancel := openCancellable(t, New(Config{Script: []string{longLine}, WordEvery: 20 * time.Millisecond}), inbound(8000))
	werr := make(chan error, 1)
	go func() { werr <- st.Write(0, synth(8000, toneAmp, tone(10_000))) }()
	require.Eventually(t, func() bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.count == queueSize
	}, 10*time.Second, time.Millisecond, "the queue fills while nobody reads")
	return st, cancel, werr
}

func TestClose(t *testing.T) {
	t.Run("idempotent, and no writes after", func(t *testing.T) {
		defer goleak.VerifyNone(t)
		st, _ := openCancellable(t, New(Config{}), inbound(8000))
		got := drainAsync(st.Results())
		require.NoError(t, st.Write(0, synth(8000, toneAmp, tone(500))))
		require.NoError(t, st.Close())
		require.NoError(t, st.Close())
		require.ErrorIs(t, st.Write(4000, make([]byte, 320)), stt.ErrStopped)
		require.Len(t, finals(waitDrain(t, got)), 1)
	})
	t.Run("before any audio", func(t *testing.T) {
		defer goleak.VerifyNone(t)
		st, _ := openCancellable(t, New(Config{}), inbound(8000))
		require.NoError(t, st.Close())
		require.Empty(t, waitDrain(t, drainAsync(st.Results())))
	})
	t.Run("does not wait for a blocked Write", func(t *testing.T) {
		defer goleak.VerifyNone(t)
		st, _, werr := blockedWrite(t)
		require.NoError(t, st.Close(), "returns while Write is blocked")
		rs := waitDrain(t, drainAsync(st.Results()))
		require.NoError(t, <-werr)
		requireWellFormed(t, "inbound", rs)
		fs := finals(rs)
		require.Len(t, fs, 1, "the blocked Write settled the utterance")
		require.Equal(t, longLine, fs[0].Text)
		require.Equal(t, int64(10_000), fs[0].EndMs)
	})
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name string
		sc   stt.StreamConfig
		want string
	}{
		{"no track", stt.StreamConfig{SampleRate: 8000}, "track is empty"},
		{"no sample rate", stt.StreamConfig{Track: "inbound"}, "sample rate 0"},
		{"odd sample rate", stt.StreamConfig{Track: "inbound", SampleRate: 8001}, "sample rate 8001"},
		{"fail after not a number", stt.StreamConfig{Track: "inbound", SampleRate: 8000,
			Params: map[string]string{ParamFailAfter: "soon"}}, `param mock_fail_after_ms: want whole milliseconds from 0 to 86400000, got "soon"`},
		{"fail after negative", stt.StreamConfig{Track: "inbound", SampleRate: 8000,
			Params: map[string]string{ParamFailAfter: "-1"}}, "param mock_fail_after_ms"},
		{"latency with a unit", stt.StreamConfig{Track: "inbound", SampleRate: 8000,
			Params: map[string]string{ParamLatency: "30ms"}}, "param mock_latency_ms"},
		{"latency fractional", stt.StreamConfig{Track: "inbound", SampleRate: 8000,
			Params: map[string]string{ParamLatency: "1.5"}}, "param mock_latency_ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := New(Config{}).Open(t.Context(), tt.sc)
			require.ErrorContains(t, err, tt.want)
			require.Nil(t, st)
		})
	}
}

func TestLoadScript(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "script.txt")
	require.NoError(t, os.WriteFile(path, []byte("# a call\n\n  inbound: hi there  \nshared line\n   # indented comment\noutbound: hello\n"), 0o600))
	lines, err := LoadScript(path)
	require.NoError(t, err)
	require.Equal(t, []string{"inbound: hi there", "shared line", "outbound: hello"}, lines)

	_, err = LoadScript(filepath.Join(dir, "missing.txt"))
	require.Error(t, err)
	require.True(t, errors.Is(err, os.ErrNotExist))
}

func TestWriteDoesNotAllocate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		pcm  []byte
	}{
		{"silence", Config{}, make([]byte, 320)},
		{"silence with latency", Config{Latency: time.Second}, make([]byte, 320)},
		// With words an hour apart, speech inside an utterance emits nothing.
		{"speech between words", Config{WordEvery: time.Hour}, synth(8000, toneAmp, tone(20))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, cancel := openCancellable(t, New(tt.cfg), inbound(8000))
			defer cancel()
			var pos int64
			require.NoError(t, st.Write(pos, tt.pcm))
			pos += 160
			allocs := testing.AllocsPerRun(1000, func() {
				if err := st.Write(pos, tt.pcm); err != nil {
					panic(err)
				}
				pos += 160
			})
			require.Zero(t, allocs)
		})
	}
}

func BenchmarkWrite(b *testing.B) {
	// A call of 20 ms frames at 8 kHz: sentences of speech and pauses, so
	// the measure includes the partials and finals a real call produces.
	pcm := synth(8000, toneAmp, tone(1500), silence(700), tone(800), silence(1000))
	frames := chunked(0, pcm, 160)
	ctx, cancel := context.WithCancel(context.Background())
	st, err := New(Config{Script: []string{"hello there how can I help you today"}}).Open(ctx, inbound(8000))
	if err != nil {
		b.Fatal(err)
	}
	drained := drainAsync(st.Results())
	period := int64(len(pcm) / 2)
	b.ReportAllocs()
	b.SetBytes(320)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		f := frames[i%len(frames)]
		if err := st.Write(int64(i/len(frames))*period+f.pos, f.pcm); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cancel()
	<-drained
}

// TestTryWrite: TryWrite takes audio like Write while the queue has room
// for what it could produce, refuses it (taking none) instead of waiting
// when it has not, and takes it again once the consumer made room.
func TestTryWrite(t *testing.T) {
	defer goleak.VerifyNone(t)
	st, cancel := openCancellable(t, New(Config{Script: []string{longLine}, WordEvery: 20 * time.Millisecond}), inbound(8000))
	defer cancel()
	frames := chunked(0, synth(8000, toneAmp, tone(10_000)), 160)
	refused := -1
	for i, w := range frames {
		ok, err := st.TryWrite(w.pos, w.pcm)
		require.NoError(t, err)
		if !ok {
			refused = i
			break
		}
	}
	require.Positive(t, refused, "a queue that nobody drains fills up")
	st.mu.Lock()
	count, next := st.count, st.next
	st.mu.Unlock()
	require.LessOrEqual(t, count, queueSize)
	require.Greater(t, count, queueSize-5, "refused only when the queue was nearly full")
	require.Equal(t, frames[refused].pos, next, "a refused frame is not taken")

	for range 10 {
		<-st.Results()
	}
	require.Eventually(t, func() bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		return queueSize-st.count >= 5
	}, 10*time.Second, time.Millisecond)
	ok, err := st.TryWrite(frames[refused].pos, frames[refused].pcm)
	require.NoError(t, err)
	require.True(t, ok, "taken once there is room")
	cancel()
	requireClosedEmpty(t, st)
}

// The result queue starts small and grows as results pile up, keeping
// their order across the ring's wrap, up to queueSize (one more while the
// stream settles at Close).
func TestQueueGrowsInOrder(t *testing.T) {
	s := &Stream{delivered: true} // no delivering goroutine: take does its part
	pushed, taken := 0, 0
	push := func(n int) {
		for range n {
			require.NoError(t, s.push(stt.Result{SegmentID: fmt.Sprint(pushed)}))
			pushed++
		}
	}
	take := func(n int) { // as deliver does
		for range n {
			s.mu.Lock()
			require.Positive(t, s.count)
			p := s.ring[s.head]
			s.ring[s.head] = pending{}
			s.head = (s.head + 1) % len(s.ring)
			s.count--
			s.mu.Unlock()
			require.Equal(t, fmt.Sprint(taken), p.r.SegmentID)
			taken++
		}
	}
	push(3)
	require.Len(t, s.ring, 4, "a few slots to start with")
	take(2)
	push(3) // wraps the ring
	push(9) // grows it while wrapped
	take(5)
	push(queueSize - s.count)
	require.Len(t, s.ring, queueSize)
	s.flushing = true
	push(1)
	require.Len(t, s.ring, queueSize+1, "one more slot for the final queued at Close")
	take(s.count)
	require.Equal(t, pushed, taken)
}
