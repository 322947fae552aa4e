package bridge

import (
	"encoding/json"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge/provider"
)

// limitMetrics counts what the per-call bounds drop.
type limitMetrics struct {
	nopMetrics
	eventsDropped atomic.Int64
}

func (m *limitMetrics) EventsDropped(n int) { m.eventsDropped.Add(int64(n)) }

// TestEventsPerCallCapped: a client that sends far more DTMF than any call
// has (and a track whose gaps add more events) cannot grow the call's
// events without bound. The first MaxEventsPerCall events are kept and
// published; the rest are counted in the call record, the transcript and
// the metrics, and are not published either, so that a subscriber and the
// transcript agree.
func TestEventsPerCallCapped(t *testing.T) {
	const maxEvents, digits = 50, 400
	store, pub, metrics := newMemStore(), &eventLog{}, &limitMetrics{}
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
	require.Equal(t, int64(digits+9-maxEvents), metrics.eventsDropped.Load())
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
