package session

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/callcaptions/bridge/stt"
)

// scripted opens streams that each do what the next entry of script says.
type scripted struct {
	mu     sync.Mutex
	script []func(*fakeStream)
	opens  int
}

func (e *scripted) Open(context.Context, stt.StreamConfig) (stt.Stream, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := &fakeStream{out: make(chan stt.Result, 16), written: make(chan struct{}, 1)}
	if e.opens < len(e.script) {
		e.script[e.opens](s)
	}
	e.opens++
	return s, nil
}

func (e *scripted) opened() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.opens
}

// fakeStream takes audio until failed; Close delivers one final and ends.
type fakeStream struct {
	mu      sync.Mutex
	out     chan stt.Result
	written chan struct{}
	samples int64
	failed  bool
	closed  bool
}

func (s *fakeStream) Write(_ int64, pcm []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed {
		return stt.ErrStopped
	}
	s.samples += int64(len(pcm) / 2)
	select {
	case s.written <- struct{}{}:
	default:
	}
	return nil
}

func (s *fakeStream) Results() <-chan stt.Result { return s.out }

func (s *fakeStream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed && !s.failed {
		s.out <- stt.Result{Kind: stt.Final, Text: "done", EndMs: s.samples / 8}
		close(s.out)
	}
	s.closed = true
	return nil
}

// fail ends the stream with a failure notice, as an engine that gave up.
func (s *fakeStream) fail(permanent bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed = true
	s.out <- stt.Result{Kind: stt.Status, Status: &stt.StatusInfo{Event: stt.EventFailed, Permanent: permanent}}
	close(s.out)
}

type record struct {
	mu      sync.Mutex
	results []stt.Result
	notices []string
	gaps    [][2]int64
}

func (r *record) Result(res stt.Result) {
	r.mu.Lock()
	r.results = append(r.results, res)
	r.mu.Unlock()
}
func (r *record) Notice(ev, _ string) { r.mu.Lock(); r.notices = append(r.notices, ev); r.mu.Unlock() }
func (r *record) Gap(pos, n int64) {
	r.mu.Lock()
	r.gaps = append(r.gaps, [2]int64{pos, n})
	r.mu.Unlock()
}

func start(e stt.Recognizer, h Handler) *Session {
	s := New(Config{Recognizer: e, Stream: stt.StreamConfig{Track: "inbound", SampleRate: 8000}, Handler: h,
		Queue: time.Second, ReopenMin: time.Millisecond, ReopenMax: 4 * time.Millisecond, Log: zerolog.Nop()})
	go s.Run(context.Background())
	return s
}

func TestSession(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	frame := make([]byte, 320) // 20 ms at 8 kHz

	t.Run("close drains the stream and its final arrives", func(t *testing.T) {
		h := &record{}
		s := start(&scripted{}, h)
		for k := range 50 {
			s.Write(int64(160*k), frame)
		}
		s.Close(context.Background())
		require.Len(t, h.results, 1)
		require.Equal(t, int64(1000), h.results[0].EndMs, "every sample reached the stream")
		require.Empty(t, h.gaps)
	})

	t.Run("an outage is reopened with a notice; a permanent failure is not", func(t *testing.T) {
		h := &record{}
		e := &scripted{script: []func(*fakeStream){
			func(s *fakeStream) { s.fail(false) },
			func(s *fakeStream) { s.fail(true) },
		}}
		s := start(e, h)
		// Audio keeps coming: the feeder notices a stopped stream when it
		// writes to it.
		k := 0
		require.Eventually(t, func() bool {
			s.Write(int64(160*k), frame)
			k++
			return e.opened() >= 2
		}, 5*time.Second, time.Millisecond)
		s.Close(context.Background())
		require.Equal(t, 2, e.opened())
		require.Equal(t, []string{stt.EventResumed}, h.notices)
	})

	t.Run("a full queue drops the oldest audio as one gap", func(t *testing.T) {
		h := &record{}
		blocked := make(chan struct{})
		e := recognizerFunc(func() (stt.Stream, error) { <-blocked; return nil, context.Canceled })
		s := New(Config{Recognizer: e, Stream: stt.StreamConfig{Track: "inbound", SampleRate: 8000}, Handler: h,
			Queue: time.Second, Log: zerolog.Nop()})
		done := make(chan struct{})
		go func() { defer close(done); s.Run(context.Background()) }()
		for k := range 100 { // 2 s into a 1 s queue
			s.Write(int64(160*k), frame)
		}
		require.Equal(t, 16000, s.Queued())
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		close(blocked)
		s.Close(ctx)
		<-done
		require.Equal(t, [][2]int64{{0, 8000}, {8000, 8000}}, h.gaps, "the dropped second, then what was still queued")
	})
}

type recognizerFunc func() (stt.Stream, error)

func (f recognizerFunc) Open(context.Context, stt.StreamConfig) (stt.Stream, error) { return f() }
