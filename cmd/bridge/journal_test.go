package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/recorder"
)

// TestTranscriptJournal: finals reach the journal as they happen, even
// while transcript.json is rewritten only now and then, and the journal is
// gone once the call ends with a whole transcript.json.
func TestTranscriptJournal(t *testing.T) {
	cfg := testConfig(t)
	_, base := startBridge(t, cfg)
	store, err := recorder.NewStore(cfg.Data)
	require.NoError(t, err)
	const callSid, streamSid = "CAa1000000000000000000000000000a0a", "MZa1000000000000000000000000000a0a"
	journal := filepath.Join(store.Dir(callSid), "transcript.jsonl")

	c := dial(t, base, "/media", nil)
	send(t, c, twilioStart(callSid, streamSid, []string{"inbound"}, map[string]string{"script": "first words|second words"}))
	gen := bursts(300, 8000, 0.1, 0.5, 1.2)
	for k := range 60 { // 1.2 s: the first utterance and its end
		send(t, c, twilioMedia(streamSid, "inbound", k+2, k+1, 20*k, mulawFrame(gen, 160*k, 160)))
	}
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(journal)
		return err == nil && strings.Contains(string(b), `"text":"first words"`)
	}, 10*time.Second, 20*time.Millisecond, "the final is in the journal while the call runs")

	for k := 60; k < 120; k++ {
		send(t, c, twilioMedia(streamSid, "inbound", k+2, k+1, 20*k, mulawFrame(gen, 160*k, 160)))
	}
	send(t, c, twilioStop(streamSid, callSid, 200))
	waitEnded(t, base, callSid)
	// The record says ended a moment before the last documents are on
	// disk and the journal goes.
	require.Eventually(t, func() bool {
		_, err := os.Stat(journal)
		return errors.Is(err, os.ErrNotExist)
	}, 10*time.Second, time.Millisecond, "the journal goes once transcript.json is whole")
	var tr bridge.Transcript
	require.NoError(t, store.ReadJSON(callSid, "transcript.json", &tr))
	require.Len(t, tr.Segments, 2)
}

// TestTranscriptRecoveredFromJournal: after a crash, start-up completes
// transcript.json from the journal, without duplicates, and marks the call
// interrupted.
func TestTranscriptRecoveredFromJournal(t *testing.T) {
	dir := t.TempDir()
	store, err := recorder.NewStore(dir)
	require.NoError(t, err)
	const id = "CAcrash"
	call, err := store.Open(id)
	require.NoError(t, err)
	started := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	require.NoError(t, call.WriteJSON("call.json", bridge.CallRecord{CallID: id, Provider: "twilio", Status: bridge.StatusActive, StartedAt: started}))
	seg := func(n int, text string) bridge.Segment {
		return bridge.Segment{Track: "inbound", SegmentID: "inbound-" + string(rune('0'+n)), StartMs: int64(1000 * n), EndMs: int64(1000*n + 500), Text: text}
	}
	require.NoError(t, call.WriteJSON("transcript.json", bridge.Transcript{CallID: id, Tracks: []string{"inbound"},
		Segments: []bridge.Segment{seg(1, "one")}, Events: []bridge.TranscriptEvent{}}))
	line := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	dtmf := bridge.TranscriptEvent{Type: bridge.TypeDTMF, Track: "inbound", AtMs: 2200, Digit: "5"}
	j := strings.Join([]string{
		line(map[string]any{"segment": seg(1, "one")}), // already in transcript.json
		line(map[string]any{"segment": seg(2, "two")}),
		line(map[string]any{"event": dtmf}),
		line(map[string]any{"segment": seg(3, "three")}),
		`{"segment":{"track":"inbound","segm`, // cut by the crash
	}, "\n")
	require.NoError(t, os.WriteFile(filepath.Join(store.Dir(id), "transcript.jsonl"), []byte(j), 0o644))

	reg := bridge.NewRegistry(bridge.Config{Store: fileStore{store}, Log: zerolog.Nop()})
	interrupted, err := reg.Load()
	require.NoError(t, err)
	require.Equal(t, 1, interrupted)
	rec, ok := reg.Record(id)
	require.True(t, ok)
	require.Equal(t, bridge.StatusInterrupted, rec.Status)
	tr, ok, err := reg.Transcript(id)
	require.NoError(t, err)
	require.True(t, ok)
	var texts []string
	for _, s := range tr.Segments {
		texts = append(texts, s.Text)
	}
	require.Equal(t, []string{"one", "two", "three"}, texts)
	require.Equal(t, []bridge.TranscriptEvent{dtmf}, tr.Events)
	_, err = os.Stat(filepath.Join(store.Dir(id), "transcript.jsonl"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestIndexIsBounded: the in-memory index of ended calls keeps the newest
// calls; older ones are still found by id, from disk.
func TestIndexIsBounded(t *testing.T) {
	store, err := recorder.NewStore(t.TempDir())
	require.NoError(t, err)
	base := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 25 {
		id := "CAidx" + string(rune('a'+i))
		ids = append(ids, id)
		call, err := store.Open(id)
		require.NoError(t, err)
		require.NoError(t, call.WriteJSON("call.json", bridge.CallRecord{CallID: id, Provider: "twilio",
			Status: bridge.StatusEnded, StartedAt: base.Add(time.Duration(i) * time.Minute)}))
	}
	reg := bridge.NewRegistry(bridge.Config{Store: fileStore{store}, Log: zerolog.Nop(), MaxIndexed: 10})
	_, err = reg.Load()
	require.NoError(t, err)
	listed := reg.Calls()
	require.LessOrEqual(t, len(listed), 10, "the index holds at most MaxIndexed calls")
	require.GreaterOrEqual(t, len(listed), 9)
	require.Equal(t, ids[24], listed[0].CallID, "the newest calls are the ones kept")
	rec, ok := reg.Record(ids[0])
	require.True(t, ok, "an evicted call is still found by id")
	require.Equal(t, ids[0], rec.CallID)
	_, ok, err = reg.Transcript(ids[0])
	require.NoError(t, err)
	require.True(t, ok)
	_, ok = reg.Record("CAnever")
	require.False(t, ok)
}
