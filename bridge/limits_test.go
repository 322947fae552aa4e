package bridge

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge/provider"
)

// TestEventsPerCallCapped: a client that sends far more DTMF than any call
// has (and a track whose gaps add more events) cannot grow the call's
// events without bound. The first MaxEventsPerCall events are kept and
// published; the rest are counted in the call record, the transcript and
// the metrics, and are not published either, so that a subscriber and the
// transcript agree.
func TestEventsPerCallCapped(t *testing.T) {
	const maxEvents, digits = 50, 400
	store, pub, metrics := newMemStore(), &eventLog{}, NewMetrics(nil)
	reg := NewRegistry(Config{Store: store, Publisher: pub, Metrics: metrics, Log: zerolog.Nop(), MaxEventsPerCall: maxEvents})
	const id = "CAevents"
	s := startCall(t, reg, id)
	for k := range digits {
		s.DTMF(&provider.Event{Kind: provider.KindDTMF, Digit: string(rune('0' + k%10)), TimestampMs: int64(k), HasTimestamp: true})
	}
	// Gaps after the cap are dropped as well: frames 0, 2, 4, … leave a
	// frame missing each time.
	gen := utterances([2]float64{0, 1})
	for k := 0; k < 20; k += 2 {
		ev := provider.Event{Kind: provider.KindMedia, Track: "inbound", Payload: ulawFrame(gen, k),
			Chunk: int64(k + 1), HasChunk: true, TimestampMs: int64(20 * k), HasTimestamp: true}
		require.NoError(t, s.Media(&ev))
	}

	tr := s.Call().Transcript()
	require.Len(t, tr.Events, maxEvents, "events kept")
	require.Equal(t, int64(digits+9-maxEvents), tr.EventsDropped)
	require.Equal(t, float64(digits+9-maxEvents), testutil.ToFloat64(metrics.eventsDropped))
	require.Len(t, pub.of(id, TypeDTMF), maxEvents, "only kept events are published")
	require.Empty(t, pub.of(id, TypeGap), "gaps beyond the cap are not published")
	require.Equal(t, int64(digits+9-maxEvents), s.Call().Record().EventsDropped)

	s.End(ReasonStop, nil)
	rec := waitCallEnded(t, reg, id)
	require.Equal(t, int64(digits+9-maxEvents), rec.EventsDropped)
	var stored Transcript
	require.NoError(t, store.ReadJSON(id, "transcript.json", &stored))
	require.Len(t, stored.Events, maxEvents)
	require.Equal(t, int64(digits+9-maxEvents), stored.EventsDropped)
	var raw map[string]any
	b, err := json.Marshal(stored)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &raw))
	require.EqualValues(t, digits+9-maxEvents, raw["events_dropped"])
}

// fakeClock is a wall clock that moves only when the test says so.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// startTrack starts a stream of call id carrying one μ-law 8 kHz track.
func startTrack(t *testing.T, reg *Registry, p provider.Name, id, stream, track string) *Stream {
	t.Helper()
	s, err := reg.StartStream(p, &provider.Start{
		CallID: id, StreamID: stream, Tracks: []string{track},
		Format: provider.Format{Encoding: provider.PCMU, SampleRate: 8000, Channels: 1},
	})
	require.NoError(t, err)
	return s
}

// frameAt sends frame k of gen on track with timestamp tsMs (and no chunk).
func frameAt(t *testing.T, s *Stream, track string, gen func(int) int16, k int, tsMs int64) {
	t.Helper()
	ev := provider.Event{Kind: provider.KindMedia, Track: track, Payload: ulawFrame(gen, k), TimestampMs: tsMs, HasTimestamp: true}
	require.NoError(t, s.Media(&ev))
}

// TestSilenceBoundedByWallTime: a stream whose timestamps jump ahead on
// every frame, each jump just under the maximum gap, cannot make the bridge
// write more silence than the call's wall time plus the maximum gap. The
// frames themselves are kept, one after the other, and the gaps are still
// events.
func TestSilenceBoundedByWallTime(t *testing.T) {
	const frames = 500
	maxGap := time.Second
	clock := &fakeClock{now: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
	store, pub, metrics := newMemStore(), &eventLog{}, NewMetrics(nil)
	reg := NewRegistry(Config{Store: store, Publisher: pub, Metrics: metrics, Log: zerolog.Nop(), MaxGap: maxGap, Now: clock.Now})
	const id = "CAjumps"
	s := startTrack(t, reg, provider.Twilio, id, "MZjumps", "inbound")
	gen := utterances([2]float64{0, 100})
	var ts int64
	for k := range frames {
		frameAt(t, s, "inbound", gen, k, ts)
		ts += 20 + maxGap.Milliseconds() - 10 // the frame, then a jump just under the maximum gap
		clock.advance(20 * time.Millisecond)  // the frames arrive in real time
	}
	wall := time.Duration(frames) * 20 * time.Millisecond
	s.End(ReasonStop, nil)
	rec := waitCallEnded(t, reg, id)

	samples := int64(len(store.sink(id, "inbound").bytes()) / 2)
	bound := int64((wall+maxGap).Seconds()*8000) + frames*160
	require.LessOrEqual(t, samples, bound, "silence bounded by wall time plus the maximum gap, not %d jumps", frames-1)
	require.Greater(t, samples, int64(frames*160), "gaps are filled while the allowance lasts")
	require.Equal(t, samples, rec.Tracks[0].Samples, "the record agrees with the recording")
	require.Equal(t, int64(frames), rec.Tracks[0].Frames)
	require.Len(t, pub.of(id, TypeGap), frames-1, "every jump is an audio.gap")
	require.Positive(t, testutil.ToFloat64(metrics.gapUnfilled))
}

// TestHonestSilenceStillFilled: the bound does not touch what real calls
// do. A track that joins 15 s after the call started (more than the
// maximum gap) is padded to its place on the call clock; a stream that
// reconnects after 3 s continues after that much silence; an epoch-stamped
// (Plivo) track that loses frames has them filled.
func TestHonestSilenceStillFilled(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
	store := newMemStore()
	reg := NewRegistry(Config{Store: store, Log: zerolog.Nop(), MaxGap: 10 * time.Second, Now: clock.Now, ReconnectGrace: time.Minute})
	gen := utterances([2]float64{0, 100})

	t.Run("late track", func(t *testing.T) {
		const id = "CAlate"
		in := startTrack(t, reg, provider.Twilio, id, "MZin", "inbound")
		for k := range 750 { // 15 s of inbound audio in real time
			frameAt(t, in, "inbound", gen, k, int64(20*k))
			clock.advance(20 * time.Millisecond)
		}
		out := startTrack(t, reg, provider.Twilio, id, "MZout", "outbound")
		for k := range 50 {
			frameAt(t, out, "outbound", gen, k, int64(20*k))
			clock.advance(20 * time.Millisecond)
		}
		out.End(ReasonStop, nil)
		in.End(ReasonStop, nil)
		waitCallEnded(t, reg, id)
		got := store.sink(id, "outbound").bytes()
		require.Len(t, got, 2*(15*8000+50*160), "padded to 15 s on the call clock")
		require.Equal(t, make([]byte, 2*15*8000), got[:2*15*8000])
	})
	t.Run("reconnect", func(t *testing.T) {
		const id = "CAreconnect"
		s := startTrack(t, reg, provider.Twilio, id, "MZ1", "inbound")
		for k := range 50 {
			frameAt(t, s, "inbound", gen, k, int64(20*k))
			clock.advance(20 * time.Millisecond)
		}
		s.End(ReasonDisconnect, nil)
		clock.advance(3 * time.Second)
		s = startTrack(t, reg, provider.Twilio, id, "MZ2", "inbound")
		for k := range 50 {
			frameAt(t, s, "inbound", gen, 50+k, int64(20*k))
			clock.advance(20 * time.Millisecond)
		}
		s.End(ReasonStop, nil)
		waitCallEnded(t, reg, id)
		require.Len(t, store.sink(id, "inbound").bytes(), 2*(100*160+3*8000), "3 s of silence between the streams")
	})
	t.Run("epoch timestamps", func(t *testing.T) {
		const id = "CAepoch"
		s := startTrack(t, reg, provider.Plivo, id, "MZepoch", "inbound")
		epoch := clock.Now().UnixMilli()
		for k := range 100 {
			if k%10 != 5 { // one frame in ten is lost
				frameAt(t, s, "inbound", gen, k, epoch+int64(20*k))
			}
			clock.advance(20 * time.Millisecond)
		}
		s.End(ReasonStop, nil)
		rec := waitCallEnded(t, reg, id)
		require.Len(t, store.sink(id, "inbound").bytes(), 2*100*160, "lost frames filled")
		require.Equal(t, int64(10*20), rec.Tracks[0].GapMs)
	})
	t.Run("telnyx reordering", func(t *testing.T) {
		const id = "CAtelnyx"
		s := startTrack(t, reg, provider.Telnyx, id, "MZtelnyx", "inbound")
		// Pairs arrive swapped, and chunk 21 never comes.
		var order []int
		for k := 0; k < 100; k += 2 {
			order = append(order, k+1, k)
		}
		for _, k := range order {
			if k == 20 {
				continue
			}
			ev := provider.Event{Kind: provider.KindMedia, Track: "inbound", Payload: ulawFrame(gen, k),
				Chunk: int64(k + 1), HasChunk: true, TimestampMs: int64(20 * k), HasTimestamp: true}
			require.NoError(t, s.Media(&ev))
			clock.advance(20 * time.Millisecond)
		}
		s.End(ReasonStop, nil)
		rec := waitCallEnded(t, reg, id)
		require.Len(t, store.sink(id, "inbound").bytes(), 2*100*160, "in order, the lost frame filled")
		require.Equal(t, int64(20), rec.Tracks[0].GapMs)
		require.Zero(t, rec.Tracks[0].Duplicates)
	})
}
