package web

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
)

// replayAll reads a subscription's replay: every event queued for it,
// stopping when nothing more comes.
func replayAll(t *testing.T, s *Subscription) (evs [][]byte) {
	t.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		data, err := s.Next(ctx)
		cancel()
		if err != nil {
			require.ErrorIs(t, err, context.DeadlineExceeded)
			return evs
		}
		evs = append(evs, data)
		require.Less(t, len(evs), 100_000, "runaway replay")
	}
}

// TestHubReplayCappedInBytes: a call with many large finals keeps at most
// MaxReplayBytes of replay. call.started is always replayed first, the
// oldest finals are the ones dropped (and counted), and a late joiner or a
// resume that misses some is told so with replay.truncated, whose seq
// resumes exactly after what was dropped.
func TestHubReplayCappedInBytes(t *testing.T) {
	const maxBytes, finals = 64 << 10, 400
	h := newTestHub(t, HubConfig{MaxReplayBytes: maxBytes})
	h.Publish(evStarted("CA1", "inbound")) // seq 1
	text := strings.Repeat("word ", 200)   // about 1 KiB per final
	for i := range finals {
		h.Publish(evFinal("CA1", fmt.Sprintf("inbound-%d", i+1), text)) // seq i+2
	}

	type marker struct {
		Type    string `json:"type"`
		CallID  string `json:"call_id"`
		Seq     uint64 `json:"seq"`
		Dropped uint64 `json:"dropped"`
	}
	for _, call := range []string{"CA1", ""} {
		t.Run("late joiner call="+call, func(t *testing.T) {
			evs := replayAll(t, subscribe(t, h, call, 0))
			size := 0
			for _, e := range evs {
				if decode(t, e).Type != TypeReplayTruncated {
					size += len(e)
				}
			}
			require.LessOrEqual(t, size, maxBytes, "replay within the cap")
			require.Greater(t, size, maxBytes*3/4, "the cap is used, not emptied")
			require.Equal(t, bridge.TypeCallStarted, decode(t, evs[0]).Type, "call.started first")
			require.Equal(t, uint64(1), decode(t, evs[0]).Seq)

			var m marker
			require.NoError(t, json.Unmarshal(evs[1], &m))
			kept := len(evs) - 2
			require.Equal(t, TypeReplayTruncated, m.Type, "the late joiner is told")
			require.Equal(t, "CA1", m.CallID)
			require.Equal(t, uint64(finals-kept), m.Dropped)
			require.Equal(t, uint64(finals-kept+1), m.Seq, "seq of the newest final dropped")
			// The finals kept are the newest, in seq order after the marker.
			for i, e := range evs[2:] {
				w := decode(t, e)
				require.Equal(t, bridge.TypeTranscriptFinal, w.Type)
				require.Equal(t, m.Seq+1+uint64(i), w.Seq)
			}
			require.Equal(t, uint64(finals+1), decode(t, evs[len(evs)-1]).Seq)
		})
	}
	require.Equal(t, h.Stats().ReplayDropped, uint64(finals)-uint64(len(replayAll(t, subscribe(t, h, "CA1", 0)))-2))

	t.Run("resume that missed dropped events", func(t *testing.T) {
		evs := replayAll(t, subscribe(t, h, "CA1", 5))
		w := decode(t, evs[0])
		require.Equal(t, TypeReplayTruncated, w.Type, "no call.started (seq 1 <= after), but told")
		require.Greater(t, w.Seq, uint64(5))
		require.Equal(t, w.Seq+1, decode(t, evs[1]).Seq)
	})
	t.Run("resume after the dropped events", func(t *testing.T) {
		all := replayAll(t, subscribe(t, h, "CA1", 0))
		var m marker
		require.NoError(t, json.Unmarshal(all[1], &m))
		evs := replayAll(t, subscribe(t, h, "CA1", m.Seq))
		require.Len(t, evs, len(all)-2, "exactly the kept finals, nothing about drops")
		require.Equal(t, bridge.TypeTranscriptFinal, decode(t, evs[0]).Type)
	})
	t.Run("call.started survives and updates", func(t *testing.T) {
		h.Publish(bridge.Event{Type: bridge.TypeCallUpdated, CallID: "CA1", Body: bridge.CallStartedBody{Tracks: []string{"outbound"}}})
		for range 200 {
			h.Publish(evFinal("CA1", "x", text))
		}
		evs := replayAll(t, subscribe(t, h, "CA1", 0))
		first := decode(t, evs[0])
		require.Equal(t, bridge.TypeCallStarted, first.Type)
		require.Equal(t, []string{"inbound", "outbound"}, first.Tracks)
	})
}

// TestHubReplayEventLargerThanCap: an event that alone exceeds the cap is
// not kept for replay (it was delivered live), and call.started still is.
func TestHubReplayEventLargerThanCap(t *testing.T) {
	h := newTestHub(t, HubConfig{MaxReplayBytes: 1 << 10})
	h.Publish(evStarted("CA1", "inbound"))
	h.Publish(evFinal("CA1", "s1", "small"))
	h.Publish(evFinal("CA1", "s2", strings.Repeat("x", 4<<10)))
	got := types(nextN(t, subscribe(t, h, "CA1", 0), 2))
	require.Equal(t, []string{bridge.TypeCallStarted, TypeReplayTruncated}, got)
	require.Equal(t, uint64(2), h.Stats().ReplayDropped)
}

// TestCaptionsSocketTellsTruncatedReplay: over a real caption socket, a late
// joiner of a call whose replay log overflowed gets call.started, then
// replay.truncated, then the newest finals.
func TestCaptionsSocketTellsTruncatedReplay(t *testing.T) {
	h := newTestHub(t, HubConfig{MaxReplayBytes: 64 << 10})
	url := serveCaptions(t, h)
	h.Publish(evStarted("CA1", "inbound"))
	text := strings.Repeat("word ", 200)
	for i := range 200 {
		h.Publish(evFinal("CA1", fmt.Sprintf("inbound-%d", i+1), text))
	}
	conn := dialCaptions(t, url+"?call=CA1")
	require.Equal(t, bridge.TypeCallStarted, readEvent(t, conn).Type)
	m := readEvent(t, conn)
	require.Equal(t, TypeReplayTruncated, m.Type)
	f := readEvent(t, conn)
	require.Equal(t, bridge.TypeTranscriptFinal, f.Type)
	require.Equal(t, m.Seq+1, f.Seq)
}

// TestPerCallBoundMetrics: what the per-call bounds drop is in /metrics.
func TestPerCallBoundMetrics(t *testing.T) {
	h := newTestHub(t, HubConfig{MaxReplayBytes: 1 << 10})
	m := newPromSet(h.Hub)
	h.Publish(evStarted("CA1", "inbound"))
	h.Publish(evFinal("CA1", "s1", strings.Repeat("x", 4<<10)))
	m.bridge.EventsDropped(3)
	families, err := m.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			if c := mt.GetCounter(); c != nil {
				got[f.GetName()] = c.GetValue()
			}
		}
	}
	require.Equal(t, 1.0, got["bridge_replay_dropped_total"])
	require.Equal(t, 3.0, got["bridge_call_events_dropped_total"])
}

// TestHubReplayKeepsSeqOrder: call.started is kept apart from the bounded
// log, yet a replay stays in seq order, also for a publisher that sent an
// event before call.started.
func TestHubReplayKeepsSeqOrder(t *testing.T) {
	h := newTestHub(t, HubConfig{})
	h.Publish(bridge.Event{Type: bridge.TypeDTMF, CallID: "CA1", Body: bridge.DTMFBody{Digit: "1"}}) // 1
	h.Publish(evStarted("CA1", "inbound"))                                                           // 2
	h.Publish(evFinal("CA1", "s1", "hi"))                                                            // 3
	got := nextN(t, subscribe(t, h, "CA1", 0), 3)
	require.Equal(t, []uint64{1, 2, 3}, seqs(got))
	require.Equal(t, []string{bridge.TypeDTMF, bridge.TypeCallStarted, bridge.TypeTranscriptFinal}, types(got))
}
