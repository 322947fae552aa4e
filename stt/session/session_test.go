package session

import (
	"context"
	"sync"
	"sync/atomic"
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

// taken is one write a stream accepted.
type taken struct {
	stream    int // 1-based, in opening order
	pos, n    int64
	inline    bool // by TryWrite on the writer's goroutine
	overlaps  bool // another Write or TryWrite was running
	afterStop bool // came after Close
}

// inlineEngine opens inlineStreams and logs every write they take. Stream
// k fails (as an engine that gave up) at the position failAt[k-1] if
// given (on the first write that reaches it); TryWrite refuses writes for
// which refuse says so and panics where panics says so; Open waits while
// hold is not nil.
type inlineEngine struct {
	failAt []int64
	refuse func(stream int, pos int64) bool
	panics func(pos int64) bool
	hold   chan struct{}

	mu    sync.Mutex
	opens int
	log   []taken
}

func (e *inlineEngine) Open(ctx context.Context, _ stt.StreamConfig) (stt.Stream, error) {
	e.mu.Lock()
	hold := e.hold
	e.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.opens++
	s := &inlineStream{e: e, n: e.opens, out: make(chan stt.Result, 16), failAt: -1}
	if e.opens <= len(e.failAt) {
		s.failAt = e.failAt[e.opens-1]
	}
	return s, nil
}

func (e *inlineEngine) opened() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.opens
}

func (e *inlineEngine) taken() []taken {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]taken(nil), e.log...)
}

type inlineStream struct {
	e      *inlineEngine
	n      int
	out    chan stt.Result
	failAt int64 // -1: never
	busy   atomic.Bool

	mu             sync.Mutex
	failed, closed bool
	samples        int64
}

var _ stt.InlineWriter = (*inlineStream)(nil)

func (s *inlineStream) TryWrite(pos int64, pcm []byte) (bool, error) {
	if s.e.panics != nil && s.e.panics(pos) {
		panic("inline stream panics")
	}
	if s.e.refuse != nil && s.e.refuse(s.n, pos) {
		return false, nil
	}
	return true, s.write(pos, pcm, true)
}

func (s *inlineStream) Write(pos int64, pcm []byte) error { return s.write(pos, pcm, false) }

func (s *inlineStream) write(pos int64, pcm []byte, inline bool) error {
	overlaps := !s.busy.CompareAndSwap(false, true)
	defer s.busy.Store(false)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed {
		return stt.ErrStopped
	}
	if s.failAt >= 0 && pos+int64(len(pcm)/2) > s.failAt {
		s.failed = true
		s.out <- stt.Result{Kind: stt.Status, Status: &stt.StatusInfo{Event: stt.EventFailed, Code: "Unavailable"}}
		close(s.out)
		return stt.ErrStopped
	}
	s.samples += int64(len(pcm) / 2)
	s.e.mu.Lock()
	s.e.log = append(s.e.log, taken{stream: s.n, pos: pos, n: int64(len(pcm) / 2), inline: inline, overlaps: overlaps, afterStop: s.closed})
	s.e.mu.Unlock()
	return nil
}

func (s *inlineStream) Results() <-chan stt.Result { return s.out }

func (s *inlineStream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed && !s.failed {
		s.out <- stt.Result{Kind: stt.Final, Text: "done"}
		close(s.out)
	}
	s.closed = true
	return nil
}

// bypassed reports whether Write currently hands audio to the stream.
func (s *Session) bypassed() bool {
	s.queue.mu.Lock()
	defer s.queue.mu.Unlock()
	return s.queue.direct != nil
}

// requireTakenInOrder checks that the log covers [from, to) of stream,
// each sample once, in order, and returns how many writes were inline.
func requireTakenInOrder(t *testing.T, log []taken, stream int, from, to int64) (inline int) {
	t.Helper()
	next := from
	for _, w := range log {
		if w.stream != stream {
			continue
		}
		require.False(t, w.overlaps, "Write and TryWrite ran at the same time")
		require.False(t, w.afterStop, "audio written after Close")
		require.Equal(t, next, w.pos, "stream %d: audio lost, repeated or reordered", stream)
		next += w.n
		if w.inline {
			inline++
		}
	}
	require.Equal(t, to, next, "stream %d: audio missing at the end", stream)
	return inline
}

// TestInlineWrites: a stream that takes audio inline gets it from Write on
// the writer's goroutine while it is open and nothing is queued; a refused
// write and a failure put the audio back through the queue and the
// feeder, so that across a failure and a reopen every sample reaches a
// stream once and in order, or is reported as a gap.
func TestInlineWrites(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	frame := make([]byte, 320) // 20 ms at 8 kHz
	write := func(s *Session, from, to int) {
		for k := from; k < to; k++ {
			s.Write(int64(160*k), frame)
		}
	}

	t.Run("in order across a failure, a reopen and refusals", func(t *testing.T) {
		h := &record{}
		e := &inlineEngine{failAt: []int64{40 * 160}, refuse: func(stream int, pos int64) bool {
			return stream == 2 && pos/160%7 == 3
		}}
		s := New(Config{Recognizer: e, Stream: stt.StreamConfig{Track: "inbound", SampleRate: 8000}, Handler: h,
			Queue: 10 * time.Second, ReopenMin: time.Millisecond, ReopenMax: 4 * time.Millisecond, Log: zerolog.Nop()})
		write(s, 0, 1) // queued: no stream yet
		done := make(chan struct{})
		go func() { defer close(done); s.Run(context.Background()) }()
		require.Eventually(t, s.bypassed, 5*time.Second, time.Millisecond, "the open stream takes audio inline")
		write(s, 1, 40)
		write(s, 40, 41) // the first stream fails on it
		require.Eventually(t, func() bool { return e.opened() == 2 && s.bypassed() }, 5*time.Second, time.Millisecond,
			"a second stream is opened and takes audio inline")
		write(s, 41, 100)
		s.Close(context.Background())
		<-done

		log := e.taken()
		inline1 := requireTakenInOrder(t, log, 1, 0, 40*160)
		inline2 := requireTakenInOrder(t, log, 2, 41*160, 100*160)
		require.Equal(t, 39, inline1, "all but the first frame went inline")
		require.Positive(t, inline2)
		require.Less(t, inline2, 59, "refused frames went through the queue")
		require.Equal(t, [][2]int64{{40 * 160, 160}}, h.gaps, "the frame the failed stream refused is a gap")
		require.Equal(t, []string{stt.EventResumed}, h.notices)
	})

	t.Run("a full queue while no stream is open drops the oldest as a gap", func(t *testing.T) {
		h := &record{}
		e := &inlineEngine{failAt: []int64{10 * 160}}
		s := New(Config{Recognizer: e, Stream: stt.StreamConfig{Track: "inbound", SampleRate: 8000}, Handler: h,
			Queue: time.Second, ReopenMin: time.Millisecond, ReopenMax: 4 * time.Millisecond, Log: zerolog.Nop()})
		done := make(chan struct{})
		go func() { defer close(done); s.Run(context.Background()) }()

		require.Eventually(t, s.bypassed, 5*time.Second, time.Millisecond)
		hold := make(chan struct{})
		e.mu.Lock()
		e.hold = hold // the next stream cannot be opened for now
		e.mu.Unlock()
		write(s, 0, 10)
		write(s, 10, 11) // fails the stream: transcription waits for a reopen
		require.Eventually(t, func() bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			return len(h.gaps) == 1
		}, 5*time.Second, time.Millisecond)
		require.False(t, s.bypassed())
		write(s, 11, 111) // 2 s into a 1 s queue
		require.Equal(t, 8000*2, s.Queued())
		close(hold)
		require.Eventually(t, func() bool { return e.opened() == 2 && s.bypassed() }, 5*time.Second, time.Millisecond)
		write(s, 111, 120)
		s.Close(context.Background())
		<-done

		log := e.taken()
		requireTakenInOrder(t, log, 1, 0, 10*160)
		requireTakenInOrder(t, log, 2, 61*160, 120*160)
		require.Equal(t, [][2]int64{{10 * 160, 160}, {11 * 160, 50 * 160}}, h.gaps,
			"the failed frame, then the oldest second of the queue")
	})

	t.Run("a panic of TryWrite reaches the writer and the session still closes", func(t *testing.T) {
		h := &record{}
		e := &inlineEngine{panics: func(pos int64) bool { return pos == 5*160 }}
		s := New(Config{Recognizer: e, Stream: stt.StreamConfig{Track: "inbound", SampleRate: 8000}, Handler: h,
			Queue: time.Second, Log: zerolog.Nop()})
		done := make(chan struct{})
		go func() { defer close(done); s.Run(context.Background()) }()

		require.Eventually(t, s.bypassed, 5*time.Second, time.Millisecond)
		write(s, 0, 5)
		require.PanicsWithValue(t, "inline stream panics", func() { write(s, 5, 6) })
		require.False(t, s.bypassed(), "the panicking stream no longer takes audio inline")
		write(s, 6, 10) // queued, and written by the feeder
		s.Close(context.Background())
		<-done
		log := e.taken()
		requireTakenInOrder(t, log[:5], 1, 0, 5*160)
		requireTakenInOrder(t, log[5:], 1, 6*160, 10*160)
		require.Empty(t, h.gaps)
	})

	t.Run("close while waiting to reopen ends the session; what is queued is a gap", func(t *testing.T) {
		h := &record{}
		e := &inlineEngine{failAt: []int64{10 * 160}}
		s := New(Config{Recognizer: e, Stream: stt.StreamConfig{Track: "inbound", SampleRate: 8000}, Handler: h,
			Queue: time.Second, ReopenMin: time.Hour, ReopenMax: time.Hour, Log: zerolog.Nop()})
		done := make(chan struct{})
		go func() { defer close(done); s.Run(context.Background()) }()

		require.Eventually(t, s.bypassed, 5*time.Second, time.Millisecond)
		write(s, 0, 11) // the stream fails on the last frame
		require.Eventually(t, func() bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			return len(h.gaps) == 1
		}, 5*time.Second, time.Millisecond)
		write(s, 11, 21) // queued for a reopen an hour away
		closed := make(chan struct{})
		go func() { defer close(closed); s.Close(context.Background()) }()
		select {
		case <-closed:
		case <-time.After(30 * time.Second):
			require.FailNow(t, "Close waited for the reopen")
		}
		<-done
		require.Equal(t, 1, e.opened())
		requireTakenInOrder(t, e.taken(), 1, 0, 10*160)
		require.Equal(t, [][2]int64{{10 * 160, 160}, {11 * 160, 10 * 160}}, h.gaps)
	})
}
