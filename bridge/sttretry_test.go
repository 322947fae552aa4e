package bridge

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/callcaptions/bridge/stt"
)

// failingEngine opens streams that fail at once, as an engine does that
// is refused (permanent) or cannot reach its service and gave up on it.
type failingEngine struct {
	permanent bool
	code      string

	mu    sync.Mutex
	opens []time.Time
}

func (e *failingEngine) Open(context.Context, stt.StreamConfig) (stt.Stream, error) {
	e.mu.Lock()
	e.opens = append(e.opens, time.Now())
	e.mu.Unlock()
	out := make(chan stt.Result, 1)
	out <- stt.Result{Kind: stt.Status, Track: "inbound", Status: &stt.StatusInfo{
		Event: stt.EventFailed, Code: e.code, Message: "refused", Permanent: e.permanent}}
	close(out)
	return failedStream{out}, nil
}

func (e *failingEngine) opened() []time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]time.Time(nil), e.opens...)
}

type failedStream struct{ out chan stt.Result }

func (s failedStream) Write(int64, []byte) error {
	return fmt.Errorf("failed stream: %w", stt.ErrStopped)
}
func (s failedStream) Results() <-chan stt.Result { return s.out }
func (s failedStream) Close() error               { return nil }

// TestPermanentSTTFailureIsNotReopened: a failure the engine marks
// permanent gives one stt.failed and no other stream for the rest of the
// call, while the recording goes on.
func TestPermanentSTTFailureIsNotReopened(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	defer func(lo, hi time.Duration) { sttReopenMin, sttReopenMax = lo, hi }(sttReopenMin, sttReopenMax)
	sttReopenMin, sttReopenMax = 5*time.Millisecond, 20*time.Millisecond

	store, pub, metrics := newMemStore(), &eventLog{}, NewMetrics(nil)
	engine := &failingEngine{permanent: true, code: "PermissionDenied"}
	reg := NewRegistry(Config{Store: store, Recognizer: engine, Publisher: pub, Metrics: metrics,
		Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), STTQueue: time.Second})
	s := startCall(t, reg, "CA-denied")
	gen := utterances([2]float64{0.3, 1.3})
	play(t, s, gen, 0, 25)
	require.Eventually(t, func() bool { return len(pub.of("CA-denied", TypeSTTPrefix+stt.EventFailed)) == 1 },
		5*time.Second, time.Millisecond)
	// Audio keeps coming long after the failure (many reopen delays).
	for k := 25; k < 500; k += 25 {
		play(t, s, gen, k, k+25)
		require.Never(t, func() bool { return len(engine.opened()) > 1 }, 10*time.Millisecond, time.Millisecond,
			"a permanent failure was reopened")
	}
	s.End(ReasonStop, nil)
	rec := waitCallEnded(t, reg, "CA-denied")

	require.Len(t, engine.opened(), 1)
	require.Len(t, pub.of("CA-denied", TypeSTTPrefix+stt.EventFailed), 1)
	require.Empty(t, pub.of("CA-denied", TypeSTTPrefix+stt.EventResumed))
	require.Equal(t, 1, sttCount(t, metrics, stt.EventFailed))
	require.Equal(t, int64(500*160), rec.Tracks[0].Samples, "the recording is complete")
	require.Equal(t, decoded(gen, 500), store.sink("CA-denied", "inbound").bytes())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reg.Shutdown(ctx)
}

// TestSTTReopenBacksOff: an engine that keeps giving up is reopened after
// ever longer waits (jittered, at least half the doubled delay, up to the
// cap); the failure notices it reports do not count as the stream working.
func TestSTTReopenBacksOff(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	defer func(lo, hi time.Duration) { sttReopenMin, sttReopenMax = lo, hi }(sttReopenMin, sttReopenMax)
	sttReopenMin, sttReopenMax = 20*time.Millisecond, 160*time.Millisecond

	engine := &failingEngine{code: "Unavailable"}
	reg := NewRegistry(Config{Store: newMemStore(), Recognizer: engine, Publisher: &eventLog{},
		Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel), STTQueue: time.Second})
	s := startCall(t, reg, "CA-down")
	gen := utterances([2]float64{0.3, 1.3})
	const wantOpens = 7
	deadline := time.Now().Add(20 * time.Second)
	// Audio keeps flowing (the feeder notices a failed stream when it
	// writes); the loop is bounded in frames and time.
	for k := 0; len(engine.opened()) < wantOpens && k < 200_000 && time.Now().Before(deadline); k += 5 {
		play(t, s, gen, k, k+5)
		require.Eventually(t, func() bool { return queued(s) == 0 || len(engine.opened()) >= wantOpens },
			5*time.Second, 100*time.Microsecond)
	}
	s.End(ReasonStop, nil)
	waitCallEnded(t, reg, "CA-down")

	opens := engine.opened()
	require.GreaterOrEqual(t, len(opens), wantOpens)
	delay := sttReopenMin
	for i := 1; i < wantOpens; i++ {
		require.GreaterOrEqual(t, opens[i].Sub(opens[i-1]), delay/2,
			"reopen %d came before half its delay of %s: the backoff was reset", i, delay)
		delay = min(2*delay, sttReopenMax)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reg.Shutdown(ctx)
}

// gapEngine opens streams that take all audio and report one stretch of
// it as never transcribed (as a session.Stream does when its queue is full).
type gapEngine struct{}

func (gapEngine) Open(context.Context, stt.StreamConfig) (stt.Stream, error) {
	out := make(chan stt.Result, 1)
	out <- stt.Result{Kind: stt.Status, Track: "inbound", StartMs: 1000, EndMs: 1500,
		Status: &stt.StatusInfo{Event: stt.EventGap, Message: "send queue full"}}
	return &gapStream{out: out}, nil
}

type gapStream struct {
	out  chan stt.Result
	once sync.Once
}

func (s *gapStream) Write(int64, []byte) error  { return nil }
func (s *gapStream) Results() <-chan stt.Result { return s.out }
func (s *gapStream) Close() error               { s.once.Do(func() { close(s.out) }); return nil }

// TestSTTStreamGapIsCounted: audio a stream reports as never transcribed
// (an stt.gap status) is counted once as stt gap milliseconds.
func TestSTTStreamGapIsCounted(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	pub, metrics := &eventLog{}, NewMetrics(nil)
	reg := NewRegistry(Config{Store: newMemStore(), Recognizer: gapEngine{}, Publisher: pub, Metrics: metrics,
		Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), STTQueue: time.Second})
	s := startCall(t, reg, "CA-gap")
	play(t, s, utterances([2]float64{0.3, 1.3}), 0, 25) // 0.5 s: the session's queue never drops
	s.End(ReasonStop, nil)
	waitCallEnded(t, reg, "CA-gap")

	require.Len(t, pub.of("CA-gap", TypeSTTPrefix+stt.EventGap), 1)
	require.Equal(t, 500.0, testutil.ToFloat64(metrics.gapMs.WithLabelValues("stt")))
	require.Equal(t, 0.0, testutil.ToFloat64(metrics.gapMs.WithLabelValues("media")))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reg.Shutdown(ctx)
}
