package web

import (
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
)

// TestHubAfterCallEvents: transcript.ready and recording.ready come after
// call.ended. A live one-call subscriber gets them and ends after
// recording.ready; late joiners and resumes get them from the replay log;
// without More, call.ended still ends subscribers at once.
func TestHubAfterCallEvents(t *testing.T) {
	h := newTestHub(t, HubConfig{})
	live := subscribe(t, h, "CAr", 0)
	all := subscribe(t, h, "", 0)
	h.Publish(evStarted("CAr", "inbound"))
	h.Publish(evFinal("CAr", "s1", "hi"))
	ended := evEnded("CAr")
	ended.More = true
	h.Publish(ended)
	h.Publish(bridge.Event{Type: bridge.TypeTranscriptReady, CallID: "CAr", Body: bridge.TranscriptReadyBody{URL: "/api/calls/CAr/transcript"}})
	h.Publish(bridge.Event{Type: bridge.TypeRecordingReady, CallID: "CAr", Body: bridge.RecordingReadyBody{}})

	want := []string{bridge.TypeCallStarted, bridge.TypeTranscriptFinal, bridge.TypeCallEnded, bridge.TypeTranscriptReady, bridge.TypeRecordingReady}
	got := nextN(t, live, 5)
	require.Equal(t, want, types(got))
	require.Equal(t, []uint64{1, 2, 3, 4, 5}, seqs(got))
	require.ErrorIs(t, nextErr(t, live), io.EOF)
	require.Equal(t, want, types(nextN(t, all, 5)))

	late := subscribe(t, h, "CAr", 0)
	require.Equal(t, want, types(nextN(t, late, 5)))
	require.ErrorIs(t, nextErr(t, late), io.EOF)
	resumed := subscribe(t, h, "CAr", 3)
	got = nextN(t, resumed, 2)
	require.Equal(t, []uint64{4, 5}, seqs(got))
	require.ErrorIs(t, nextErr(t, resumed), io.EOF)

	// A call.ended without More (a refused call, another replica's) ends
	// subscribers at once, as before.
	s := subscribe(t, h, "CAx", 0)
	h.Publish(evStarted("CAx", "inbound"))
	h.Publish(evEnded("CAx"))
	require.Equal(t, []string{bridge.TypeCallStarted, bridge.TypeCallEnded}, types(nextN(t, s, 2)))
	require.ErrorIs(t, nextErr(t, s), io.EOF)
	h.Publish(bridge.Event{Type: bridge.TypeTranscriptFinal, CallID: "CAx", Body: bridge.FinalBody{SegmentID: "z"}})
	late = subscribe(t, h, "CAx", 0)
	require.Equal(t, []string{bridge.TypeCallStarted, bridge.TypeCallEnded}, types(nextN(t, late, 2)), "other events after call.ended are still dropped")
	require.ErrorIs(t, nextErr(t, late), io.EOF)
}

// TestHubJoinBeforeReady: a one-call subscriber that joins, or resumes,
// between a call.ended marked More and recording.ready (another
// replica's ready events come a moment after its call.ended) stays until
// recording.ready instead of ending with the replay.
func TestHubJoinBeforeReady(t *testing.T) {
	h := newTestHub(t, HubConfig{})
	h.Publish(evStarted("CAj", "inbound"))
	h.Publish(evFinal("CAj", "s1", "hi"))
	ended := evEnded("CAj")
	ended.More = true
	h.Publish(ended)

	late := subscribe(t, h, "CAj", 0)
	resumed := subscribe(t, h, "CAj", 3)
	require.Equal(t, []string{bridge.TypeCallStarted, bridge.TypeTranscriptFinal, bridge.TypeCallEnded}, types(nextN(t, late, 3)))
	h.Publish(bridge.Event{Type: bridge.TypeTranscriptReady, CallID: "CAj", Body: bridge.TranscriptReadyBody{URL: "/api/calls/CAj/transcript"}})
	h.Publish(bridge.Event{Type: bridge.TypeRecordingReady, CallID: "CAj", Body: bridge.RecordingReadyBody{}})
	require.Equal(t, []string{bridge.TypeTranscriptReady, bridge.TypeRecordingReady}, types(nextN(t, late, 2)))
	require.ErrorIs(t, nextErr(t, late), io.EOF)
	got := nextN(t, resumed, 2)
	require.Equal(t, []uint64{4, 5}, seqs(got))
	require.ErrorIs(t, nextErr(t, resumed), io.EOF)
}

// TestHubReadyNeverComes: when recording.ready never follows a call.ended
// marked More (the call's replica was lost in between), its one-call
// subscribers end once the call is evicted, RetainEnded after call.ended.
func TestHubReadyNeverComes(t *testing.T) {
	var clock atomic.Pointer[time.Time]
	setClock := func(t time.Time) { clock.Store(&t) }
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	setClock(t0)
	h := newTestHub(t, HubConfig{RetainEnded: time.Minute})
	h.now = func() time.Time { return *clock.Load() }

	live := subscribe(t, h, "CAn", 0)
	h.Publish(evStarted("CAn", "inbound"))
	ended := evEnded("CAn")
	ended.More = true
	h.Publish(ended)
	require.Equal(t, []string{bridge.TypeCallStarted, bridge.TypeCallEnded}, types(nextN(t, live, 2)))
	setClock(t0.Add(59 * time.Second))
	h.Publish(evStarted("CAother", "inbound")) // evicts what is due
	requireIdle(t, live)

	setClock(t0.Add(time.Minute))
	h.Publish(evStarted("CAother2", "inbound"))
	require.ErrorIs(t, nextErr(t, live), io.EOF)
}
