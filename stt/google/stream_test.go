package google

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/callcaptions/bridge/stt"
	"github.com/callcaptions/bridge/stt/google/speechtest"
	"github.com/callcaptions/bridge/stt/session"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// spoken is a word of a synthetic call, on the call clock.
type spoken struct {
	k              int
	startMs, endMs int64
}

// utterances lays out words from k0 on: groups of one to three words with
// short gaps, separated by pauses long enough for a final.
func utterances(k0 int, from, to time.Duration) []spoken {
	var out []spoken
	t := from.Milliseconds()
	end := to.Milliseconds()
	k := k0
	for i := 0; ; i++ {
		n := 1 + i%3
		var group []spoken
		tt := t
		for j := 0; j < n; j++ {
			d := int64(200 + (k*37%5)*40)
			group = append(group, spoken{k: k, startMs: tt, endMs: tt + d})
			tt += d + 100
			k++
		}
		if tt+500 > end {
			return out
		}
		out = append(out, group...)
		t = tt + int64(800+(i%4)*150)
	}
}

// stretch is where utterances(k0, from, to) lays out words.
type stretch struct {
	k0       int
	from, to time.Duration
}

// spokenIn is the utterances of every stretch.
func spokenIn(ss ...stretch) []spoken {
	var out []spoken
	for _, s := range ss {
		out = append(out, utterances(s.k0, s.from, s.to)...)
	}
	return out
}

// synth renders words into PCM16LE at rate: square-wave bursts in quiet
// noise, so the fake hears exactly these words.
func synth(rate int, total time.Duration, words []spoken) []byte {
	n := int(int64(total) * int64(rate) / int64(time.Second))
	pcm := make([]byte, 2*n)
	for i := 0; i < n; i++ {
		v := int16((i*7919)%81 - 40)
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(v))
	}
	for _, w := range words {
		a, b := int(w.startMs)*rate/1000, int(w.endMs)*rate/1000
		for i := a; i < b && i < n; i++ {
			v := speechtest.WordAmp(w.k)
			if i%2 == 1 {
				v = -v
			}
			binary.LittleEndian.PutUint16(pcm[2*i:], uint16(v))
		}
	}
	return pcm
}

// player feeds a call to a stream the way the bridge does: 20 ms frames
// with call-clock positions, faster than real time (the fake does not
// enforce pacing), and a copy to a recording that must stay complete.
type player struct {
	rate    int
	speedup int
	// hold, if set, is a stretch of the call for which no audio arrives:
	// the player waits holdWall of wall time, then continues after it.
	hold     *span
	holdWall time.Duration
	// skips are stretches whose frames never arrive, with no wall wait.
	skips []span
}

func (p player) play(t *testing.T, s stt.Stream, pcm []byte) (recording []byte, writeErr error) {
	t.Helper()
	recording, writeErr, closeErr := p.feed(s, pcm)
	require.NoError(t, closeErr)
	return recording, writeErr
}

// feed is play for any goroutine: it plays pcm, closes s and returns the
// errors for the test goroutine to check.
func (p player) feed(s stt.Stream, pcm []byte) (recording []byte, writeErr, closeErr error) {
	frame := p.rate / 50 // 20 ms
	speed := max(p.speedup, 1)
	tick := time.NewTicker(20 * time.Millisecond / time.Duration(speed))
	defer tick.Stop()
	var rec bytes.Buffer
	for pos := 0; pos*2 < len(pcm); pos += frame {
		if p.hold != nil && int64(pos) >= p.hold.from && int64(pos) < p.hold.to {
			if int64(pos) == p.hold.from {
				// Simulates the provider sending nothing for a while; the
				// point of the test is the passing of wall time.
				time.Sleep(p.holdWall)
			}
			continue
		}
		if skipped(p.skips, int64(pos)) {
			continue
		}
		end := min(len(pcm), (pos+frame)*2)
		f := pcm[pos*2 : end]
		rec.Write(f) // the recording never depends on transcription
		if err := s.Write(int64(pos), f); err != nil && writeErr == nil {
			writeErr = err
		}
		<-tick.C
	}
	return rec.Bytes(), writeErr, s.Close()
}

// span is a stretch of call-clock samples [from, to).
type span struct{ from, to int64 }

func skipped(ss []span, pos int64) bool {
	for _, s := range ss {
		if pos >= s.from && pos < s.to {
			return true
		}
	}
	return false
}

func collect(s stt.Stream) <-chan []stt.Result {
	out := make(chan []stt.Result, 1)
	go func() {
		var rs []stt.Result
		for r := range s.Results() {
			rs = append(rs, r)
		}
		out <- rs
	}()
	return out
}

func wait(t *testing.T, ch <-chan []stt.Result, d time.Duration) []stt.Result {
	t.Helper()
	select {
	case rs := <-ch:
		return rs
	case <-time.After(d):
		t.Fatalf("results not closed within %v", d)
		return nil
	}
}

// checkWords asserts that the finals hold exactly want, once each, in
// order, with the call-clock times where the audio was.
func checkWords(t *testing.T, track string, rs []stt.Result, want []spoken) {
	t.Helper()
	var got []string
	var lastEnd int64 = -1
	seg := 0
	finals := map[string]bool{}
	for _, r := range rs {
		require.Equal(t, track, r.Track)
		switch r.Kind {
		case stt.Partial:
			assert.False(t, finals[r.SegmentID], "partial after the final of %s", r.SegmentID)
			assert.Equal(t, stt.SegmentID(track, seg+1), r.SegmentID, "partial belongs to the open segment")
		case stt.Final:
			seg++
			require.Equal(t, stt.SegmentID(track, seg), r.SegmentID)
			finals[r.SegmentID] = true
			require.NotEmpty(t, r.Words)
			assert.Equal(t, r.Words[0].StartMs, r.StartMs, "segment starts with its first word")
			assert.Equal(t, r.Words[len(r.Words)-1].EndMs, r.EndMs, "segment ends with its last word")
			assert.GreaterOrEqual(t, r.StartMs, lastEnd, "finals are in call-clock order")
			assert.InDelta(t, 0.9, r.Confidence, 0.001)
			lastEnd = r.EndMs
			var texts []string
			for _, w := range r.Words {
				got = append(got, fmt.Sprintf("%s@%d-%d", w.Word, w.StartMs, w.EndMs))
				texts = append(texts, w.Word)
			}
			assert.Equal(t, strings.Join(texts, " "), r.Text)
		}
	}
	var exp []string
	for _, w := range want {
		exp = append(exp, fmt.Sprintf("%s@%d-%d", speechtest.WordName(w.k), w.startMs, w.endMs))
	}
	require.Equal(t, exp, got)
}

func statuses(rs []stt.Result) []string {
	var out []string
	for _, r := range rs {
		if r.Kind == stt.Status {
			s := r.Status.Event
			if r.Status.Code != "" {
				s += ":" + r.Status.Code
			}
			out = append(out, s)
		}
	}
	return out
}

func count(ss []string, s string) int {
	n := 0
	for _, x := range ss {
		if x == s {
			n++
		}
	}
	return n
}

// testConfig shrinks every limit so that a test call crosses them in
// seconds.
func testConfig(addr string) Config {
	return Config{Endpoint: addr, Insecure: true, WordTimeOffsets: true, Policy: session.Policy{
		RotateAfter: 5 * time.Second, StreamLimit: 8 * time.Second,
		IdleClose: time.Second, SilenceClose: 2 * time.Second, PreRoll: 500 * time.Millisecond,
		QueueDuration: 30 * time.Second, ReplayLimit: 30 * time.Second,
		DrainTimeout: 3 * time.Second, SendTimeout: time.Second,
		BackoffInitial: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond, ExhaustedBackoff: 20 * time.Millisecond,
	}}
}

// longStreams rotates streams only after 50 s of audio.
func longStreams(cfg Config) Config {
	cfg.RotateAfter, cfg.StreamLimit = 50*time.Second, 55*time.Second
	return cfg
}

func fakeRules() speechtest.Config {
	return speechtest.Config{StreamLimit: 10 * time.Second, AudioTimeout: 2 * time.Second}
}

func newTestRecognizer(t *testing.T, cfg Config) *Recognizer {
	t.Helper()
	r, err := New(context.Background(), cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	return r
}

// transcribed is what transcribe saw.
type transcribed struct {
	s    stt.Stream
	rec  []byte // the audio the stream was given
	werr error  // the first error of Write or Close
	rs   []stt.Result
}

// transcribe opens a stream of r, plays pcm into it forty times faster
// than real time and waits for its results.
func transcribe(t *testing.T, r *Recognizer, sc stt.StreamConfig, p player, pcm []byte) transcribed {
	t.Helper()
	s, err := r.Open(context.Background(), sc)
	require.NoError(t, err)
	res := collect(s)
	p.speedup = 40
	rec, werr := p.play(t, s, pcm)
	return transcribed{s: s, rec: rec, werr: werr, rs: wait(t, res, 30*time.Second)}
}

// speak is transcribe of words spoken over total, written without an error.
func speak(t *testing.T, r *Recognizer, sc stt.StreamConfig, p player, total time.Duration, words []spoken) []stt.Result {
	t.Helper()
	run := transcribe(t, r, sc, p, synth(sc.SampleRate, total, words))
	require.NoError(t, run.werr)
	return run.rs
}

// counter is the value of the counter called name in reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) int {
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return int(mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
	return 0
}

// A three-minute call crosses many rollovers (every ~5 s of audio, none
// forced) and comes out as exactly the scripted words, once each, at the
// call-clock times of the audio.
func TestLongCallRotations(t *testing.T) {
	fake, addr := speechtest.Start(t, fakeRules())
	cfg := testConfig(addr)
	reg := prometheus.NewRegistry()
	cfg.Metrics = session.NewMetrics(reg)
	r := newTestRecognizer(t, cfg)

	const rate = 8000
	total := 3 * time.Minute
	words := utterances(1, 500*time.Millisecond, total)
	run := transcribe(t, r, stt.StreamConfig{CallID: "CA1", Track: "inbound", SampleRate: rate}, player{rate: rate}, synth(rate, total, words))
	require.NoError(t, run.werr)
	require.Len(t, run.rec, int(total.Seconds())*rate*2)
	rs := run.rs
	checkWords(t, "inbound", rs, words)
	st := statuses(rs)
	rollovers := count(st, stt.EventRollover)
	assert.GreaterOrEqual(t, rollovers, 25, "statuses: %v", st)
	assert.Equal(t, rollovers, len(st), "only rollovers expected: %v", st)
	opened, maxActive, maxMsg, failures, _ := fake.Stats()
	assert.Empty(t, failures, "the fake's limits were never hit")
	assert.Equal(t, 1, maxActive, "one engine stream at a time per track")
	assert.Equal(t, rollovers+1, opened)
	assert.Equal(t, 1600, maxMsg, "100 ms of 8 kHz LINEAR16 per request")
	assert.Equal(t, rollovers, counter(t, reg, "bridge_stt_rotations_total"))
	assert.Equal(t, opened, counter(t, reg, "bridge_stt_streams_opened_total"))

	// Rollovers happen at pauses: no rollover time falls inside a word.
	for _, r := range rs {
		if r.Kind == stt.Status {
			for _, w := range words {
				assert.False(t, r.StartMs > w.startMs && r.StartMs < w.endMs, "rollover at %d ms splits %v", r.StartMs, w)
			}
		}
	}
}

// A stream killed mid-word by each retryable code is reopened with the
// audio since the last final replayed: nothing lost, nothing doubled.
func TestRetryableErrorsRecover(t *testing.T) {
	kinds := []struct {
		name string
		err  error
	}{
		{"OutOfRange", status.Error(codes.OutOfRange, "Exceeded maximum allowed stream duration of 305 seconds.")},
		{"Aborted", status.Error(codes.Aborted, "Max duration of 5 minutes reached for stream.")},
		{"Unavailable", status.Error(codes.Unavailable, "408:Request Timeout")},
		{"DeadlineExceeded", status.Error(codes.DeadlineExceeded, "deadline")},
		{"Internal", status.Error(codes.Internal, "internal error")},
		{"ResourceExhausted", status.Error(codes.ResourceExhausted, "Resource has been exhausted (e.g. check quota).")},
		{"InBandUnavailable", speechtest.InBand{Err: status.Error(codes.Unavailable, "in-band")}},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			code := status.Code(k.err)
			var ib speechtest.InBand
			if errors.As(k.err, &ib) {
				code = status.Code(ib.Err)
			}
			rules := fakeRules()
			rules.StreamLimit = time.Minute
			// Streams 1 and 2 each die in the middle of a word, after
			// some finals of their own.
			rules.Script = func(n int, st speechtest.State) error {
				if n <= 2 && st.InWord && st.Audio > 3*time.Second {
					return k.err
				}
				return nil
			}
			_, addr := speechtest.Start(t, rules)
			cfg := longStreams(testConfig(addr))
			r := newTestRecognizer(t, cfg)

			const rate = 16000
			total := 15 * time.Second
			words := utterances(100, 300*time.Millisecond, total)
			rs := speak(t, r, stt.StreamConfig{CallID: "CA2", Track: "outbound", SampleRate: rate}, player{rate: rate}, total, words)

			checkWords(t, "outbound", rs, words)
			st := statuses(rs)
			assert.Equal(t, []string{stt.EventRetry + ":" + code.String(), stt.EventResumed,
				stt.EventRetry + ":" + code.String(), stt.EventResumed}, st)
		})
	}
}

// A permanent error stops transcription of the track and says so; the
// recording is unaffected and Write reports ErrStopped without blocking.
func TestPermanentErrorStops(t *testing.T) {
	for _, code := range []codes.Code{codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated} {
		t.Run(code.String(), func(t *testing.T) {
			rules := fakeRules()
			rules.Script = func(n int, st speechtest.State) error {
				if st.Audio >= 2*time.Second {
					return status.Error(code, "nope")
				}
				return nil
			}
			fake, addr := speechtest.Start(t, rules)
			r := newTestRecognizer(t, testConfig(addr))
			const rate = 8000
			total := 8 * time.Second
			words := utterances(1, 300*time.Millisecond, total)
			pcm := synth(rate, total, words)
			run := transcribe(t, r, stt.StreamConfig{CallID: "CA3", Track: "inbound", SampleRate: rate}, player{rate: rate}, pcm)
			require.ErrorIs(t, run.werr, stt.ErrStopped)
			assert.Equal(t, pcm, run.rec, "the recording is complete")
			rs := run.rs
			st := statuses(rs)
			require.Equal(t, []string{stt.EventFailed + ":" + code.String()}, st)
			last := rs[len(rs)-1]
			assert.Equal(t, stt.Status, last.Kind)
			assert.Equal(t, "nope", last.Status.Message)
			assert.True(t, last.Status.Permanent, "the caller must not reopen it")
			// The engine fails once it has 2 s of audio; the failure is placed
			// at the audio sent when the error came back, which real-time
			// playing has moved on by the round trip (longer on a busy
			// machine), never by seconds.
			assert.GreaterOrEqual(t, last.StartMs, int64(1900), "failure time on the call clock")
			assert.LessOrEqual(t, last.StartMs, int64(3000), "failure time on the call clock")
			opened, _, _, _, _ := fake.Stats()
			assert.Equal(t, 1, opened, "no retry after a permanent error")
			require.ErrorIs(t, run.s.Write(int64(total.Seconds())*rate, make([]byte, 320)), stt.ErrStopped)
		})
	}
}

// Streams that keep failing without a result give up after MaxRetries.
func TestRetriesExhausted(t *testing.T) {
	rules := fakeRules()
	rules.Script = func(n int, st speechtest.State) error { return status.Error(codes.Unavailable, "down") }
	fake, addr := speechtest.Start(t, rules)
	cfg := testConfig(addr)
	cfg.MaxRetries = 3
	r := newTestRecognizer(t, cfg)
	requireGaveUp(t, fake, r, "an outage: a stream opened later may work")
}

// requireGaveUp plays 5 s into a stream of r and requires it to fail three
// times, then give up for now, each time on a stream of its own.
func requireGaveUp(t *testing.T, fake *speechtest.Server, r *Recognizer, why string) {
	pcm := synth(8000, 5*time.Second, utterances(1, 300*time.Millisecond, 5*time.Second))
	run := transcribe(t, r, stt.StreamConfig{CallID: "CA4", Track: "inbound", SampleRate: 8000}, player{rate: 8000}, pcm)
	require.ErrorIs(t, run.werr, stt.ErrStopped)
	assert.Equal(t, []string{"retry:Unavailable", "retry:Unavailable", "retry:Unavailable", "failed:Unavailable"}, statuses(run.rs))
	assert.False(t, run.rs[len(run.rs)-1].Status.Permanent, why)
	opened, _, _, _, _ := fake.Stats()
	assert.Equal(t, 4, opened)
}

// A server that ends every stream at once, cleanly and without a word, is
// an outage: streams are reopened with backoff, not as fast as audio
// arrives, and the track gives up after MaxRetries (not permanently).
func TestStreamsEndingAtOnceBackOff(t *testing.T) {
	rules := fakeRules()
	rules.Script = func(int, speechtest.State) error { return speechtest.ErrEndOK }
	fake, addr := speechtest.Start(t, rules)
	cfg := testConfig(addr)
	cfg.MaxRetries = 3
	r := newTestRecognizer(t, cfg)
	requireGaveUp(t, fake, r, "an outage, not a permanent failure")
}

// Holds: minutes of quiet audio, and a stretch with no audio at all that is
// longer than the engine's audio timeout, neither error nor lose the
// utterance that follows.
func TestHoldAndSilence(t *testing.T) {
	for _, policy := range []string{session.HoldReopen, session.HoldKeepAlive} {
		t.Run(policy, func(t *testing.T) {
			fake, addr := speechtest.Start(t, fakeRules())
			cfg := testConfig(addr)
			cfg.Hold = policy
			r := newTestRecognizer(t, cfg)

			const rate = 8000
			total := 100 * time.Second
			// Speech, 40 s of quiet audio, speech, then 30 s with no audio
			// at all (2.5 s of wall time, beyond the 2 s audio timeout),
			// and speech right where audio resumes.
			words := spokenIn(stretch{1, 300 * time.Millisecond, 10 * time.Second}, stretch{200, 50 * time.Second, 60 * time.Second},
				stretch{400, 90 * time.Second, total})
			hold := span{60 * rate, 90 * rate}
			rs := speak(t, r, stt.StreamConfig{CallID: "CA5", Track: "inbound", SampleRate: rate}, player{rate: rate, hold: &hold, holdWall: 2500 * time.Millisecond}, total, words)

			checkWords(t, "inbound", rs, words)
			for _, e := range statuses(rs) {
				assert.Equal(t, stt.EventRollover, e)
			}
			_, _, _, failures, timeouts := fake.Stats()
			assert.Empty(t, failures)
			assert.Zero(t, timeouts)
			heard := fake.Heard()
			if policy == session.HoldReopen {
				// Most of the 40 s of quiet audio never reached the engine:
				// only silence-close and the pre-roll of it did.
				assert.Less(t, heard, 40*time.Second, "heard %v", heard)
			} else {
				assert.Greater(t, heard, 65*time.Second, "keepalive streams quiet audio: heard %v", heard)
			}
		})
	}
}

// 100 tracks share one client (and its connection pool); every track gets
// its own words, and no goroutine outlives the calls.
func TestConcurrentTracks(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rules := fakeRules()
	// Google's own audio timeout (about 10 s), not the short one other
	// tests use: 100 players on a loaded machine can pause a few seconds,
	// and this test is about capacity and rotation, not the timeout.
	rules.AudioTimeout = 10 * time.Second
	fake, addr := speechtest.Start(t, rules)
	cfg := testConfig(addr)
	cfg.MaxStreams = 100
	cfg.RotateAfter, cfg.StreamLimit = 2*time.Second, 4*time.Second
	r, err := New(context.Background(), cfg, zerolog.Nop())
	require.NoError(t, err)
	require.Equal(t, 2, r.cfg.PoolSize, "ceil(100/80) connections")

	const tracks, rate = 100, 8000
	total := 6 * time.Second
	// Each track plays on its own goroutine and hands its outcome to the
	// test goroutine, which checks it.
	type outcome struct {
		track                     string
		words                     []spoken
		openErr, writeErr, endErr error
		results                   []stt.Result
	}
	outcomes := make(chan outcome, tracks)
	for i := 0; i < tracks; i++ {
		go func() {
			o := outcome{track: "t" + strconv.Itoa(i), words: utterances(1+i*6, 300*time.Millisecond, total)}
			defer func() { outcomes <- o }()
			s, err := r.Open(context.Background(), stt.StreamConfig{CallID: "CA" + strconv.Itoa(i), Track: o.track, SampleRate: rate})
			if o.openErr = err; err != nil {
				return
			}
			res := collect(s)
			_, o.writeErr, o.endErr = player{rate: rate, speedup: 10}.feed(s, synth(rate, total, o.words))
			select {
			case o.results = <-res:
			case <-time.After(50 * time.Second):
				o.endErr = errors.Join(o.endErr, errors.New("results not closed within 50s"))
			}
		}()
	}
	for range tracks {
		o := <-outcomes
		require.NoError(t, o.openErr, o.track)
		require.NoError(t, o.writeErr, o.track)
		require.NoError(t, o.endErr, o.track)
		checkWords(t, o.track, o.results, o.words)
	}
	_, err = r.Open(context.Background(), stt.StreamConfig{CallID: "x", Track: "inbound", SampleRate: rate})
	require.NoError(t, err, "capacity is free again after the calls")
	opened, maxActive, _, failures, _ := fake.Stats()
	assert.Empty(t, failures)
	assert.LessOrEqual(t, maxActive, tracks)
	assert.Greater(t, opened, tracks, "rollovers happened")
	require.NoError(t, r.Close())
	fake.Stop()
}
