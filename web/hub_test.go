package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/callcaptions/bridge/bridge"
)

// leakOpts ignore fasthttp's own background loops: the date refresher it
// starts once per process, and the worker-pool cleaner, which notices
// Shutdown only after its idle sleep (10 s, not configurable through fiber).
var leakOpts = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
}

// testHub is a Hub whose Publish takes events as bridge makes them and
// numbers and encodes them first, as the bridge's Sequencer does in front
// of every publisher.
type testHub struct {
	*Hub
	seq *bridge.Sequencer
}

func wrapHub(h *Hub) *testHub {
	return &testHub{Hub: h, seq: bridge.NewSequencer(h, 0, nil, zerolog.Nop())}
}

func (h *testHub) Publish(ev bridge.Event) { h.seq.Publish(ev) }

// newTestHub returns a hub closed at the end of the test, after which no
// goroutine started by the test may remain.
func newTestHub(t testing.TB, cfg HubConfig) *testHub {
	t.Helper()
	opts := append([]goleak.Option{goleak.IgnoreCurrent()}, leakOpts...)
	// Registered first, so it runs after every later cleanup.
	t.Cleanup(func() { goleak.VerifyNone(t, opts...) })
	h := NewHub(cfg, zerolog.Nop())
	t.Cleanup(h.Close)
	return wrapHub(h)
}

func evStarted(call string, tracks ...string) bridge.Event {
	return bridge.Event{Type: bridge.TypeCallStarted, CallID: call, Body: bridge.CallStartedBody{
		Provider: "twilio", Tracks: tracks, StartedAt: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC),
	}}
}

func evPartial(call, seg, text string) bridge.Event {
	return bridge.Event{Type: bridge.TypeTranscriptPartial, CallID: call, Body: bridge.PartialBody{
		Track: "inbound", SegmentID: seg, Text: text, Stability: 0.5,
	}}
}

func evFinal(call, seg, text string) bridge.Event {
	return bridge.Event{Type: bridge.TypeTranscriptFinal, CallID: call, Body: bridge.FinalBody{
		Track: "inbound", SegmentID: seg, Text: text, Confidence: 0.9,
	}}
}

func evEnded(call string) bridge.Event {
	return bridge.Event{Type: bridge.TypeCallEnded, CallID: call, Body: bridge.CallEndedBody{
		Reason: bridge.ReasonStop, EndedAt: time.Date(2026, 11, 21, 10, 3, 10, 0, time.UTC), DurationMs: 190000,
	}}
}

// wire is the subset of an encoded event the tests look at.
type wire struct {
	Type      string   `json:"type"`
	CallID    string   `json:"call_id"`
	Seq       uint64   `json:"seq"`
	SegmentID string   `json:"segment_id"`
	Text      string   `json:"text"`
	Tracks    []string `json:"tracks"`
}

func decode(t testing.TB, data []byte) wire {
	t.Helper()
	var w wire
	require.NoError(t, json.Unmarshal(data, &w), "event %s", data)
	return w
}

func next(t testing.TB, s *Subscription) wire {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	data, err := s.Next(ctx)
	require.NoError(t, err)
	return decode(t, data)
}

// nextN reads n events.
func nextN(t testing.TB, s *Subscription, n int) []wire {
	t.Helper()
	out := make([]wire, 0, n)
	for range n {
		out = append(out, next(t, s))
	}
	return out
}

// requireIdle checks that nothing is queued for s.
func requireIdle(t testing.TB, s *Subscription) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	data, err := s.Next(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded, "unexpected event %s", data)
}

func nextErr(t testing.TB, s *Subscription) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	data, err := s.Next(ctx)
	require.Error(t, err, "unexpected event %s", data)
	return err
}

func seqs(ws []wire) []uint64 {
	out := make([]uint64, len(ws))
	for i, w := range ws {
		out[i] = w.Seq
	}
	return out
}

func types(ws []wire) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.Type
	}
	return out
}

func subscribe(t testing.TB, h *testHub, call string, after uint64) *Subscription {
	t.Helper()
	s, err := h.Subscribe(call, after)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

func TestHubSeqPerCall(t *testing.T) {
	t.Run("independent across calls", func(t *testing.T) {
		h := newTestHub(t, HubConfig{})
		a := subscribe(t, h, "CA-A", 0)
		b := subscribe(t, h, "CA-B", 0)
		all := subscribe(t, h, "", 0)

		h.Publish(evStarted("CA-A", "inbound"))
		h.Publish(evStarted("CA-B", "inbound"))
		for i := range 3 {
			h.Publish(evFinal("CA-A", fmt.Sprint("a", i), "x"))
			if i < 2 {
				h.Publish(evFinal("CA-B", fmt.Sprint("b", i), "y"))
			}
		}

		require.Equal(t, []uint64{1, 2, 3, 4}, seqs(nextN(t, a, 4)))
		require.Equal(t, []uint64{1, 2, 3}, seqs(nextN(t, b, 3)))
		perCall := map[string][]uint64{}
		for _, w := range nextN(t, all, 7) {
			perCall[w.CallID] = append(perCall[w.CallID], w.Seq)
		}
		require.Equal(t, map[string][]uint64{"CA-A": {1, 2, 3, 4}, "CA-B": {1, 2, 3}}, perCall)
	})

	t.Run("concurrent publishers", func(t *testing.T) {
		const writers, each = 8, 200
		h := newTestHub(t, HubConfig{Outbox: writers*each + 1})
		s := subscribe(t, h, "CA-A", 0)
		h.Publish(evStarted("CA-A", "inbound"))
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					h.Publish(evFinal("CA-A", fmt.Sprintf("w%d-%d", w, i), "x"))
				}
			})
		}
		wg.Wait()
		got := seqs(nextN(t, s, writers*each+1))
		for i, seq := range got {
			require.Equal(t, uint64(i+1), seq, "seq at %d", i)
		}
		requireIdle(t, s)
	})
}

func TestHubEncodesOnce(t *testing.T) {
	h := newTestHub(t, HubConfig{})
	one := subscribe(t, h, "CA1", 0)
	two := subscribe(t, h, "CA1", 0)
	all := subscribe(t, h, "", 0)
	h.Publish(evStarted("CA1", "inbound"))
	h.Publish(evFinal("CA1", "inbound-1", "hello"))

	ctx := context.Background()
	for range 2 {
		b1, err := one.Next(ctx)
		require.NoError(t, err)
		b2, err := two.Next(ctx)
		require.NoError(t, err)
		b3, err := all.Next(ctx)
		require.NoError(t, err)
		require.Same(t, unsafe.SliceData(b1), unsafe.SliceData(b2), "subscribers share one encoding")
		require.Same(t, unsafe.SliceData(b1), unsafe.SliceData(b3), "all-calls subscribers share it too")
	}
	// The replay log hands out the same bytes as well.
	late := subscribe(t, h, "CA1", 1)
	b, err := late.Next(ctx)
	require.NoError(t, err)
	require.JSONEq(t, `{"type":"transcript.final","call_id":"CA1","seq":2,"track":"inbound","segment_id":"inbound-1","start_ms":0,"end_ms":0,"text":"hello","confidence":0.9}`, string(b))
}

func TestHubEncoding(t *testing.T) {
	tests := []struct {
		name string
		ev   bridge.Event
		want string // exact bytes
	}{
		{
			name: "nil body gives the three fields",
			ev:   bridge.Event{Type: "stt.retry", CallID: "CA1"},
			want: `{"type":"stt.retry","call_id":"CA1","seq":1}`,
		},
		{
			name: "body fields follow seq",
			ev:   evEnded("CA1"),
			want: `{"type":"call.ended","call_id":"CA1","seq":1,"reason":"stop","ended_at":"2026-11-21T10:03:10Z","duration_ms":190000}`,
		},
		{
			name: "pointer body",
			ev:   bridge.Event{Type: bridge.TypeDTMF, CallID: "CA1", Body: &bridge.DTMFBody{Track: "inbound", Digit: "5", AtMs: 1200}},
			want: `{"type":"dtmf","call_id":"CA1","seq":1,"track":"inbound","digit":"5","at_ms":1200}`,
		},
		{
			name: "empty object body",
			ev:   bridge.Event{Type: bridge.TypeGap, CallID: "CA1", Body: struct{}{}},
			want: `{"type":"audio.gap","call_id":"CA1","seq":1}`,
		},
		{
			name: "body that is not an object is left out",
			ev:   bridge.Event{Type: bridge.TypeGap, CallID: "CA1", Body: "oops"},
			want: `{"type":"audio.gap","call_id":"CA1","seq":1}`,
		},
		{
			name: "call id escaped",
			ev:   bridge.Event{Type: "stt.failed", CallID: "C\"A\\\n\x01é\xff"},
			want: `{"type":"stt.failed","call_id":"C\"A\\\n\u0001é\ufffd","seq":1}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHub(t, HubConfig{})
			all := subscribe(t, h, "", 0)
			h.Publish(tt.ev)
			b, err := all.Next(context.Background())
			require.NoError(t, err)
			require.True(t, json.Valid(b), "%s", b)
			require.Equal(t, tt.want, string(b))
		})
	}
}

func TestHubLateJoin(t *testing.T) {
	h := newTestHub(t, HubConfig{})
	h.Publish(evStarted("CA1", "inbound"))                                                            // 1
	h.Publish(evPartial("CA1", "s1", "hel"))                                                          // 2
	h.Publish(evFinal("CA1", "s1", "hello"))                                                          // 3
	h.Publish(evPartial("CA1", "s2", "wor"))                                                          // 4: newest, still not replayed
	h.Publish(bridge.Event{Type: bridge.TypeDTMF, CallID: "CA1", Body: bridge.DTMFBody{Digit: "1"}})  // 5
	h.Publish(bridge.Event{Type: bridge.TypeGap, CallID: "CA1", Body: bridge.GapBody{Kind: "media"}}) // 6
	h.Publish(bridge.Event{Type: "stt.retry", CallID: "CA1", Body: bridge.STTBody{Code: "UNAVAILABLE"}})

	for _, call := range []string{"CA1", ""} {
		t.Run("call="+call, func(t *testing.T) {
			s := subscribe(t, h, call, 0)
			got := nextN(t, s, 5)
			require.Equal(t, []string{bridge.TypeCallStarted, bridge.TypeTranscriptFinal, bridge.TypeDTMF, bridge.TypeGap, "stt.retry"}, types(got))
			require.Equal(t, []uint64{1, 3, 5, 6, 7}, seqs(got))
			requireIdle(t, s)
		})
	}

	s := subscribe(t, h, "CA1", 0)
	nextN(t, s, 5)
	h.Publish(evPartial("CA1", "s2", "world"))
	w := next(t, s)
	require.Equal(t, wire{Type: bridge.TypeTranscriptPartial, CallID: "CA1", Seq: 8, SegmentID: "s2", Text: "world"}, w)
}

func TestHubCallUpdatedListsAllTracks(t *testing.T) {
	h := newTestHub(t, HubConfig{})
	early := subscribe(t, h, "CA1", 0)
	h.Publish(evStarted("CA1", "inbound"))
	h.Publish(evPartial("CA1", "s1", "hi"))
	h.Publish(bridge.Event{Type: bridge.TypeCallUpdated, CallID: "CA1", Body: bridge.CallStartedBody{
		Provider: "twilio", Tracks: []string{"outbound"}, CustomParameters: map[string]string{"k": "v"},
	}})

	got := nextN(t, early, 3)
	require.Equal(t, []string{"inbound"}, got[0].Tracks, "what was sent stays as it was")
	require.Equal(t, []string{"outbound"}, got[2].Tracks)

	late := subscribe(t, h, "CA1", 0)
	data, err := late.Next(context.Background())
	require.NoError(t, err)
	require.JSONEq(t, `{"type":"call.started","call_id":"CA1","seq":1,"provider":"twilio","tracks":["inbound","outbound"],"started_at":"2026-11-21T10:00:00Z","custom_parameters":{"k":"v"}}`, string(data))
	w := next(t, late)
	require.Equal(t, bridge.TypeCallUpdated, w.Type, "kept for resumes after call.started")
	require.Equal(t, uint64(3), w.Seq)
	requireIdle(t, late)
}

func TestHubResumeAfter(t *testing.T) {
	h := newTestHub(t, HubConfig{})
	h.Publish(evStarted("CA1", "inbound"))                                                           // 1
	h.Publish(evPartial("CA1", "s1", "a"))                                                           // 2
	h.Publish(evFinal("CA1", "s1", "ab"))                                                            // 3
	h.Publish(evFinal("CA1", "s2", "cd"))                                                            // 4
	h.Publish(evPartial("CA1", "s3", "e"))                                                           // 5
	h.Publish(bridge.Event{Type: bridge.TypeDTMF, CallID: "CA1", Body: bridge.DTMFBody{Digit: "9"}}) // 6

	tests := []struct {
		after uint64
		want  []uint64
	}{
		{0, []uint64{1, 3, 4, 6}},
		{1, []uint64{3, 4, 6}},
		{2, []uint64{3, 4, 6}},
		{3, []uint64{4, 6}},
		{6, nil},
		{100, nil},
	}
	subs := make([]*Subscription, len(tests))
	for i, tt := range tests {
		subs[i] = subscribe(t, h, "CA1", tt.after)
		t.Run(fmt.Sprint("after=", tt.after), func(t *testing.T) {
			require.Equal(t, tt.want, nilIfEmpty(seqs(nextN(t, subs[i], len(tt.want)))))
			requireIdle(t, subs[i])
		})
	}
	// Live events continue right after the replay, without gap or repeat.
	h.Publish(evFinal("CA1", "s3", "ef"))
	for _, s := range subs {
		require.Equal(t, uint64(7), next(t, s).Seq)
	}
}

func nilIfEmpty(s []uint64) []uint64 {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestHubWaitsForCallStart(t *testing.T) {
	h := newTestHub(t, HubConfig{})
	s := subscribe(t, h, "CA9", 0)
	requireIdle(t, s)
	require.Equal(t, 1, h.Stats().Subscribers)
	require.Equal(t, 0, h.Stats().Calls)

	h.Publish(evStarted("CA9", "inbound"))
	h.Publish(evPartial("CA9", "s1", "he"))
	got := nextN(t, s, 2) // read before the final, which would replace it
	h.Publish(evFinal("CA9", "s1", "hey"))
	h.Publish(evEnded("CA9"))
	got = append(got, nextN(t, s, 2)...)
	require.Equal(t, []string{bridge.TypeCallStarted, bridge.TypeTranscriptPartial, bridge.TypeTranscriptFinal, bridge.TypeCallEnded}, types(got))
	require.Equal(t, []uint64{1, 2, 3, 4}, seqs(got))
	require.ErrorIs(t, nextErr(t, s), io.EOF)
	require.ErrorIs(t, nextErr(t, s), io.EOF, "EOF is sticky")
	require.Equal(t, 0, h.Stats().Subscribers)
}

func TestHubWaitTimeout(t *testing.T) {
	h := newTestHub(t, HubConfig{WaitTimeout: 30 * time.Millisecond})
	s, err := h.Subscribe("CA-never", 0)
	require.NoError(t, err)

	err = nextErr(t, s)
	require.ErrorIs(t, err, DisconnectCallNotStarted)
	var de *DisconnectError
	require.ErrorAs(t, err, &de)
	require.Equal(t, "call_not_started", de.Reason)
	require.Equal(t, 0, h.Stats().Subscribers)

	s.Close()
	h.mu.RLock()
	defer h.mu.RUnlock()
	require.Empty(t, h.calls, "nobody waits for the call any more")
}

func TestHubPartialCoalescing(t *testing.T) {
	type want struct{ call, typ, text string }
	tests := []struct {
		name string
		evs  []bridge.Event
		want []want
	}{
		{
			name: "burst keeps only the newest",
			evs: func() []bridge.Event {
				var evs []bridge.Event
				for i := range 100 {
					evs = append(evs, evPartial("CA1", "s1", fmt.Sprint("p", i)))
				}
				return evs
			}(),
			want: []want{{"CA1", bridge.TypeTranscriptPartial, "p99"}},
		},
		{
			name: "final removes the pending partial",
			evs:  []bridge.Event{evPartial("CA1", "s1", "hel"), evFinal("CA1", "s1", "hello")},
			want: []want{{"CA1", bridge.TypeTranscriptFinal, "hello"}},
		},
		{
			name: "newer partial moves behind other segments",
			evs:  []bridge.Event{evPartial("CA1", "s1", "a"), evPartial("CA1", "s2", "b"), evPartial("CA1", "s1", "c")},
			want: []want{{"CA1", bridge.TypeTranscriptPartial, "b"}, {"CA1", bridge.TypeTranscriptPartial, "c"}},
		},
		{
			name: "final of another segment keeps the partial",
			evs:  []bridge.Event{evPartial("CA1", "s1", "a"), evFinal("CA1", "s2", "b")},
			want: []want{{"CA1", bridge.TypeTranscriptPartial, "a"}, {"CA1", bridge.TypeTranscriptFinal, "b"}},
		},
		{
			name: "same segment id in two calls",
			evs:  []bridge.Event{evPartial("CA1", "s1", "a"), evPartial("CA2", "s1", "b")},
			want: []want{{"CA1", bridge.TypeTranscriptPartial, "a"}, {"CA2", bridge.TypeTranscriptPartial, "b"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHub(t, HubConfig{})
			s := subscribe(t, h, "", 0)
			h.Publish(evStarted("CA1", "inbound"))
			h.Publish(evStarted("CA2", "inbound"))
			nextN(t, s, 2)
			for _, ev := range tt.evs {
				h.Publish(ev)
			}
			var got []want
			var last = map[string]uint64{}
			for range tt.want {
				w := next(t, s)
				require.Greater(t, w.Seq, last[w.CallID], "seq order")
				last[w.CallID] = w.Seq
				got = append(got, want{w.CallID, w.Type, w.Text})
			}
			require.Equal(t, tt.want, got)
			requireIdle(t, s)
			require.Equal(t, uint64(len(tt.evs)-len(tt.want)), h.Stats().DroppedPartials)
		})
	}
}

func TestHubSlowSubscriberNeverBlocksPublish(t *testing.T) {
	const events = 100_000
	h := newTestHub(t, HubConfig{}) // default Outbox 512
	h.Publish(evStarted("CA1", "inbound"))
	stuck := subscribe(t, h, "CA1", 0)
	reader := subscribe(t, h, "CA1", 0)

	// Event i is seq i+2: partials of segment i/10, closed by a final every
	// tenth event.
	var lastSeq atomic.Uint64
	type result struct {
		finals []wire
		err    error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		finalized := map[string]bool{}
		var prev uint64
		for len(r.finals) < events/10 {
			data, err := reader.Next(context.Background())
			if err != nil {
				r.err = err
				break
			}
			var w wire
			if err := json.Unmarshal(data, &w); err != nil {
				r.err = err
				break
			}
			if w.Seq <= prev {
				r.err = fmt.Errorf("seq %d after %d", w.Seq, prev)
				break
			}
			prev = w.Seq
			switch w.Type {
			case bridge.TypeTranscriptPartial:
				if finalized[w.SegmentID] {
					r.err = fmt.Errorf("partial of %s after its final", w.SegmentID)
				}
			case bridge.TypeTranscriptFinal:
				finalized[w.SegmentID] = true
				r.finals = append(r.finals, w)
			}
			if r.err != nil {
				break
			}
			lastSeq.Store(w.Seq)
		}
		done <- r
	}()

	for i := range events {
		seg := fmt.Sprint("inbound-", i/10)
		if i%10 == 9 {
			h.Publish(evFinal("CA1", seg, seg))
		} else {
			h.Publish(evPartial("CA1", seg, "…"))
		}
		// Pace the publisher by the reading subscriber only (never by the
		// stuck one), so that the reader itself stays within its outbox.
		if i%1000 == 999 {
			want := uint64(i + 2)
			require.Eventually(t, func() bool { return lastSeq.Load() >= want }, 10*time.Second, time.Millisecond)
		}
	}

	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("reader did not finish")
	}
	require.NoError(t, r.err)
	require.Len(t, r.finals, events/10)
	for k, w := range r.finals {
		require.Equal(t, fmt.Sprint("inbound-", k), w.Text)
	}
	require.ErrorIs(t, nextErr(t, stuck), DisconnectSlow)
	st := h.Stats()
	require.Equal(t, uint64(1), st.SlowDisconnects)
	require.Equal(t, uint64(events+1), st.Published)
	require.Equal(t, 1, st.Subscribers)
}

func TestHubSlowLimits(t *testing.T) {
	text := strings.Repeat("x", 100)
	// Every final below encodes to the same size: one-digit seq and segment.
	ev := evFinal("CA1", "s1", text)
	data, err := bridge.Encode(ev.Type, ev.CallID, 1, ev.Body)
	require.NoError(t, err)
	size := len(data)
	tests := []struct {
		name string
		cfg  HubConfig
	}{
		{"events", HubConfig{Outbox: 4}},
		{"bytes", HubConfig{OutboxBytes: 4*size + size/2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHub(t, tt.cfg)
			s := subscribe(t, h, "CA1", 0)
			h.Publish(evStarted("CA1", "inbound"))
			next(t, s)
			for i := 1; i <= 4; i++ {
				h.Publish(evFinal("CA1", fmt.Sprint("s", i), text))
				require.Zero(t, h.Stats().SlowDisconnects, "final %d", i)
			}
			h.Publish(evFinal("CA1", "s5", text))
			require.Equal(t, uint64(1), h.Stats().SlowDisconnects)
			require.ErrorIs(t, nextErr(t, s), DisconnectSlow, "queued events are released, not delivered")
			require.Equal(t, 0, h.Stats().Subscribers)
		})
	}
}

func TestHubLimits(t *testing.T) {
	tests := []struct {
		name string
		cfg  HubConfig
		run  func(t *testing.T, h *testHub)
	}{
		{"total", HubConfig{MaxSubscribers: 2}, func(t *testing.T, h *testHub) {
			a := subscribe(t, h, "A", 0)
			subscribe(t, h, "", 0)
			_, err := h.Subscribe("B", 0)
			require.ErrorIs(t, err, ErrTooManySubscribers)
			_, err = h.Subscribe("", 0)
			require.ErrorIs(t, err, ErrTooManySubscribers)
			a.Close()
			subscribe(t, h, "B", 0)
			require.Equal(t, uint64(2), h.Stats().Rejected)
		}},
		{"per call", HubConfig{MaxPerCall: 1}, func(t *testing.T, h *testHub) {
			h.Publish(evStarted("A"))
			a := subscribe(t, h, "A", 0)
			_, err := h.Subscribe("A", 0)
			require.ErrorIs(t, err, ErrTooManyForCall)
			subscribe(t, h, "B", 0) // waiting for B counts for B only
			_, err = h.Subscribe("B", 0)
			require.ErrorIs(t, err, ErrTooManyForCall)
			a.Close()
			subscribe(t, h, "A", 0)
		}},
		{"bad arguments", HubConfig{}, func(t *testing.T, h *testHub) {
			_, err := h.Subscribe(strings.Repeat("x", maxCallIDLen+1), 0)
			require.ErrorIs(t, err, ErrInvalidCallID)
			_, err = h.Subscribe("", 3)
			require.ErrorIs(t, err, ErrAfterWithoutCall)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, newTestHub(t, tt.cfg))
		})
	}
}

func TestHubAllCalls(t *testing.T) {
	h := newTestHub(t, HubConfig{})
	h.Publish(evStarted("CA1", "inbound"))
	h.Publish(evPartial("CA1", "s1", "he"))
	h.Publish(evFinal("CA1", "s1", "hey"))
	h.Publish(evStarted("CA2", "inbound"))
	h.Publish(evFinal("CA2", "s1", "yo"))
	h.Publish(evStarted("CA3", "inbound"))
	h.Publish(evEnded("CA3"))

	s := subscribe(t, h, "", 0)
	type ev struct {
		call string
		seq  uint64
	}
	var got []ev
	for _, w := range nextN(t, s, 4) {
		got = append(got, ev{w.CallID, w.Seq})
	}
	require.Equal(t, []ev{{"CA1", 1}, {"CA1", 3}, {"CA2", 1}, {"CA2", 2}}, got, "active calls only, in start order")
	requireIdle(t, s)

	h.Publish(evPartial("CA2", "s2", "a"))
	h.Publish(evEnded("CA1"))
	h.Publish(evStarted("CA4"))
	got = nil
	for _, w := range nextN(t, s, 3) {
		got = append(got, ev{w.CallID, w.Seq})
	}
	require.Equal(t, []ev{{"CA2", 3}, {"CA1", 4}, {"CA4", 1}}, got)
	requireIdle(t, s) // no EOF when one call ends
}

func TestHubCallEnded(t *testing.T) {
	var clock atomic.Pointer[time.Time]
	setClock := func(t time.Time) { clock.Store(&t) }
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	setClock(t0)
	h := newTestHub(t, HubConfig{RetainEnded: time.Minute, WaitTimeout: 30 * time.Millisecond})
	h.now = func() time.Time { return *clock.Load() }

	live := subscribe(t, h, "CA1", 0)
	h.Publish(evStarted("CA1", "inbound"))
	h.Publish(evFinal("CA1", "s1", "bye"))
	h.Publish(evEnded("CA1"))
	require.Equal(t, []uint64{1, 2, 3}, seqs(nextN(t, live, 3)))
	require.ErrorIs(t, nextErr(t, live), io.EOF)

	t.Run("late join replays and ends", func(t *testing.T) {
		setClock(t0.Add(59 * time.Second))
		s := subscribe(t, h, "CA1", 0)
		require.Equal(t, []string{bridge.TypeCallStarted, bridge.TypeTranscriptFinal, bridge.TypeCallEnded}, types(nextN(t, s, 3)))
		require.ErrorIs(t, nextErr(t, s), io.EOF)
		resumed := subscribe(t, h, "CA1", 3)
		require.ErrorIs(t, nextErr(t, resumed), io.EOF)
	})
	t.Run("events after call.ended are dropped", func(t *testing.T) {
		before := h.Stats().Published
		h.Publish(evFinal("CA1", "s2", "late"))
		require.Equal(t, before, h.Stats().Published)
	})
	t.Run("after eviction a subscriber waits like for an unknown call", func(t *testing.T) {
		setClock(t0.Add(time.Minute))
		s := subscribe(t, h, "CA1", 0)
		require.ErrorIs(t, nextErr(t, s), DisconnectCallNotStarted)
	})
	t.Run("a call id that starts again after eviction starts afresh, with bridge's seq", func(t *testing.T) {
		s := subscribe(t, h, "CA1", 0)
		h.Publish(evStarted("CA1", "inbound"))
		w := next(t, s)
		require.Equal(t, bridge.TypeCallStarted, w.Type)
		// Bridge remembers the call's seq longer than the hub the call (the
		// late final took 4), so a resume never sees seq go back.
		require.Equal(t, uint64(5), w.Seq)
		requireIdle(t, s)
	})
}

func TestHubCallRestartsBeforeEviction(t *testing.T) {
	h := newTestHub(t, HubConfig{})
	h.Publish(evStarted("CA1", "inbound"))
	h.Publish(evEnded("CA1"))
	h.Publish(evStarted("CA1", "outbound"))
	s := subscribe(t, h, "CA1", 0)
	w := next(t, s)
	require.Equal(t, uint64(3), w.Seq, "seq keeps increasing so resumes stay valid")
	require.Equal(t, []string{"outbound"}, w.Tracks)
	requireIdle(t, s)
}

func TestHubClose(t *testing.T) {
	h := newTestHub(t, HubConfig{})
	h.Publish(evStarted("CA1", "inbound"))
	subs := []*Subscription{
		subscribe(t, h, "CA1", 0),
		subscribe(t, h, "CA-waiting", 0),
		subscribe(t, h, "", 0),
	}
	errs := make(chan error, len(subs))
	for _, s := range subs {
		go func() {
			for {
				if _, err := s.Next(context.Background()); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	h.Close()
	for range subs {
		requireErrorSoon(t, errs, DisconnectShutdown, "Next did not return after Close")
	}
	require.Equal(t, 0, h.Stats().Subscribers)
	_, err := h.Subscribe("CA1", 0)
	require.ErrorIs(t, err, ErrHubClosed)
	h.Publish(evFinal("CA1", "s1", "ignored"))
	h.Close()
}

func TestHubSubscriptionClose(t *testing.T) {
	h := newTestHub(t, HubConfig{})
	s, err := h.Subscribe("CA1", 0)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = s.Next(ctx)
	require.ErrorIs(t, err, context.Canceled)

	errc := make(chan error, 1)
	go func() {
		_, err := s.Next(context.Background())
		errc <- err
	}()
	s.Close()
	s.Close()
	requireErrorSoon(t, errc, ErrSubscriptionClosed, "Close did not wake Next")
	require.Equal(t, 0, h.Stats().Subscribers)
}

// requireErrorSoon waits up to 5 s for an error from errc that is target.
func requireErrorSoon(t *testing.T, errc <-chan error, target error, late string) {
	t.Helper()
	select {
	case err := <-errc:
		require.ErrorIs(t, err, target)
	case <-time.After(5 * time.Second):
		t.Fatal(late)
	}
}

func TestHubOutboxCompaction(t *testing.T) {
	// Many coalesced partials interleaved with reads must not grow the
	// queue beyond a small multiple of what is live.
	var q outbox
	for i := range 10_000 {
		q.push(&message{data: []byte("p"), seq: uint64(i), kind: bridge.KindPartial, seg: segKey{"c", "s"}})
		if i%3 == 0 {
			q.push(&message{data: []byte("f"), seq: uint64(i), kind: bridge.KindDurable})
		}
		if i%5 == 0 {
			_, _ = q.pop()
		}
	}
	require.LessOrEqual(t, cap(q.items), 4*(q.live+1)+16)
	var last uint64
	n := 0
	for {
		m, ok := q.pop()
		if !ok {
			break
		}
		require.GreaterOrEqual(t, m.seq, last)
		last = m.seq
		n++
	}
	require.Zero(t, q.live)
	require.Zero(t, q.bytes)
	require.Empty(t, q.partials)
	require.Positive(t, n)
}

func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprint("subscribers=", n), func(b *testing.B) {
			h := wrapHub(NewHub(HubConfig{Outbox: 1 << 20, OutboxBytes: 1 << 30, MaxPerCall: n}, zerolog.Nop()))
			h.Publish(evStarted("CA1", "inbound"))
			var wg sync.WaitGroup
			for range n {
				s, err := h.Subscribe("CA1", 0)
				require.NoError(b, err)
				wg.Go(func() {
					defer s.Close()
					for {
						if _, err := s.Next(context.Background()); err != nil {
							return
						}
					}
				})
			}
			// Partials of a few segments: the hot path, and nothing grows the
			// replay log.
			evs := make([]bridge.Event, 8)
			for i := range evs {
				evs[i] = evPartial("CA1", fmt.Sprint("inbound-", i), "the quick brown fox jumps over the lazy dog")
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				h.Publish(evs[i%len(evs)])
			}
			b.StopTimer()
			h.Close()
			wg.Wait()
			if st := h.Stats(); st.SlowDisconnects != 0 {
				b.Fatalf("%d slow disconnects", st.SlowDisconnects)
			}
		})
	}
}
