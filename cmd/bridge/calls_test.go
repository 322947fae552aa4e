package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/cluster/clustertest"
	"github.com/callcaptions/bridge/config"
	"github.com/callcaptions/bridge/recorder/s3store/s3test"
)

// listed is the call's entry in base's call list (with query), if any.
func listed(t *testing.T, base, query, id string) (bridge.CallRecord, bool) {
	t.Helper()
	var page struct {
		Calls []bridge.CallRecord `json:"calls"`
		Total int                 `json:"total"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, base, "/api/calls"+query, &page))
	i := slices.IndexFunc(page.Calls, func(r bridge.CallRecord) bool { return r.CallID == id })
	if i < 0 {
		return bridge.CallRecord{}, false
	}
	return page.Calls[i], true
}

// sameCall checks that replica b serves the call as replica a does: its
// record, its transcript (JSON, VTT, SRT), its recording whole and a byte
// range of it; and returns what a served.
func sameCall(t *testing.T, a, b, id string) map[string][]byte {
	t.Helper()
	want := map[string][]byte{}
	paths := []string{"", "/transcript", "/transcript.vtt", "/transcript.srt", "/recordings/inbound.wav"}
	for _, p := range paths {
		u := "/api/calls/" + url.PathEscape(id) + p
		code, fromA := httpDo(t, http.MethodGet, a+u, "", nil)
		require.Equal(t, http.StatusOK, code, "%s from its replica: %s", u, fromA)
		code, fromB := httpDo(t, http.MethodGet, b+u, "", nil)
		require.Equal(t, http.StatusOK, code, "%s from the other replica: %s", u, fromB)
		require.Equal(t, string(fromA), string(fromB), "%s from either replica", u)
		want[p] = fromA
	}
	require.Greater(t, len(want["/recordings/inbound.wav"]), 5000)
	code, part := getRange(t, b, id, "inbound", "bytes=1000-4999")
	require.Equal(t, http.StatusPartialContent, code)
	require.Equal(t, want["/recordings/inbound.wav"][1000:5000], part, "a byte range through the other replica")
	code, tail := getRange(t, b, id, "inbound", "bytes=-100")
	require.Equal(t, http.StatusPartialContent, code)
	wav := want["/recordings/inbound.wav"]
	require.Equal(t, wav[len(wav)-100:], tail)
	return want
}

// TestCallListAcrossReplicas: without S3, a call played into A is listed
// by B as active while it runs and as ended after, and B serves its
// record, transcript and recording (byte ranges included) by asking A.
func TestCallListAcrossReplicas(t *testing.T) {
	srv := clustertest.Start(t)
	_, baseA := startReplica(t, srv.URL(), "replica-a")
	_, baseB := startReplica(t, srv.URL(), "replica-b")
	const callSid, streamSid = "CA8a000000000000000000000000000001", "MZ8a000000000000000000000000000001"

	media := dial(t, baseA, "/media", nil)
	playBursts(t, media, callSid, streamSid, 200)
	eventually(t, func() bool {
		rec, ok := listed(t, baseB, "?status=active", callSid)
		return ok && rec.Status == bridge.StatusActive
	}, 10*time.Second, 20*time.Millisecond, "B lists A's live call as active")
	var live bridge.CallRecord
	require.Equal(t, http.StatusOK, getJSON(t, baseB, "/api/calls/"+callSid, &live))
	require.Equal(t, bridge.StatusActive, live.Status)
	require.Equal(t, "twilio", live.Provider)

	send(t, media, twilioStop(streamSid, callSid, 202))
	waitEnded(t, baseA, callSid)
	waitEnded(t, baseB, callSid)
	// By id B asks A; the list follows the index, a moment later.
	var rec bridge.CallRecord
	eventually(t, func() bool {
		var ok bool
		rec, ok = listed(t, baseB, "?status=ended", callSid)
		return ok
	}, 10*time.Second, 20*time.Millisecond, "B lists A's call as ended")
	require.Equal(t, bridge.ReasonStop, rec.Reason)
	_, ok := listed(t, baseB, "?status=active", callSid)
	require.False(t, ok)

	// The last documents are written a moment after the call is listed
	// ended: compare once A's record and B's agree.
	eventually(t, func() bool {
		_, a := httpDo(t, http.MethodGet, baseA+"/api/calls/"+callSid, "", nil)
		_, b := httpDo(t, http.MethodGet, baseB+"/api/calls/"+callSid, "", nil)
		return string(a) == string(b)
	}, 10*time.Second, 20*time.Millisecond, "B's record of the call is A's")
	got := sameCall(t, baseA, baseB, callSid)
	require.Contains(t, string(got["/transcript.vtt"]), "WEBVTT")

	code, _ := httpDo(t, http.MethodGet, baseB+"/api/calls/CAnone/transcript", "", nil)
	require.Equal(t, http.StatusNotFound, code)
	code, _ = httpDo(t, http.MethodGet, baseB+"/api/calls/"+callSid+"/recordings/outbound.wav", "", nil)
	require.Equal(t, http.StatusNotFound, code, "a track the call does not have")
	require.Positive(t, metric(t, baseB, `bridge_nats_rpc_requests_total{result="ok"}`))
	require.Positive(t, metric(t, baseA, `bridge_nats_rpc_served_total{result="ok"}`))
	require.Positive(t, metric(t, baseA, `bridge_nats_index_puts_total{result="ok"}`))
	require.Zero(t, metric(t, baseA, `bridge_nats_index_puts_total{result="dropped"}`))
}

// TestCallListAcrossReplicasS3: with a shared bucket, B serves A's ended
// call as A does once it is uploaded, and still after A is gone (from the
// bucket).
func TestCallListAcrossReplicasS3(t *testing.T) {
	nsrv := clustertest.Start(t)
	s3 := s3test.Start(t)
	bucket := s3.Bucket("calls")
	start := func(node string) (*instance, string) {
		cfg := s3Config(t, s3, bucket)
		cfg.Limits.ResumeWindow = 0 // the spool copy goes right after the upload
		cfg.NATS = config.NATS{URL: nsrv.URL(), NodeID: node}
		inst, base := startBridge(t, cfg)
		select {
		case <-inst.cluster.Ready():
		case <-time.After(10 * time.Second):
			t.Fatalf("replica %s does not read the event stream after 10s", node)
		}
		return inst, base
	}
	instA, baseA := start("replica-a")
	_, baseB := start("replica-b")
	const callSid = "CA8b000000000000000000000000000001"
	endCall(t, baseA, callSid, 200)
	eventually(t, func() bool {
		return metric(t, baseA, `bridge_s3_uploads_total{result="ok"}`) == 1 && metric(t, baseA, "bridge_s3_upload_backlog") == 0
	}, 20*time.Second, 50*time.Millisecond, "A uploads the call")
	waitEnded(t, baseB, callSid)
	eventually(t, func() bool {
		_, a := httpDo(t, http.MethodGet, baseA+"/api/calls/"+callSid, "", nil)
		_, b := httpDo(t, http.MethodGet, baseB+"/api/calls/"+callSid, "", nil)
		return string(a) == string(b)
	}, 10*time.Second, 20*time.Millisecond, "B's record of the call is A's")
	want := sameCall(t, baseA, baseB, callSid)

	instA.cluster.Close() // A no longer answers: B reads the bucket
	for p, b := range want {
		code, got := httpDo(t, http.MethodGet, baseB+"/api/calls/"+callSid+p, "", nil)
		require.Equal(t, http.StatusOK, code, "%s from the bucket: %s", p, got)
		require.Equal(t, string(b), string(got), "%s from the bucket", p)
	}
	code, part := getRange(t, baseB, callSid, "inbound", "bytes=1000-4999")
	require.Equal(t, http.StatusPartialContent, code)
	require.Equal(t, want["/recordings/inbound.wav"][1000:5000], part)
	require.Positive(t, metric(t, baseB, `bridge_nats_rpc_requests_total{result="unreachable"}`))
}

// TestCallInterruptedWhenReplicaLost: a replica that stops heart-beating
// mid-call has its call shown interrupted (node_lost) in the other's call
// list within --node-timeout; its transcript is then unavailable there
// (503: no stored copy without a bucket).
func TestCallInterruptedWhenReplicaLost(t *testing.T) {
	srv := clustertest.Start(t)
	const timeout = 3 * time.Second // --node-timeout's least
	start := func(node string) (*instance, string) {
		cfg := testConfig(t)
		cfg.NATS = config.NATS{URL: srv.URL(), NodeID: node, NodeTimeout: timeout}
		inst, base := startBridge(t, cfg)
		select {
		case <-inst.cluster.Ready():
		case <-time.After(10 * time.Second):
			t.Fatalf("replica %s does not read the event stream after 10s", node)
		}
		return inst, base
	}
	instA, baseA := start("replica-a")
	_, baseB := start("replica-b")
	const callSid, streamSid = "CA8c000000000000000000000000000001", "MZ8c000000000000000000000000000001"
	media := dial(t, baseA, "/media", nil)
	playBursts(t, media, callSid, streamSid, 100)
	eventually(t, func() bool {
		_, ok := listed(t, baseB, "?status=active", callSid)
		return ok
	}, 10*time.Second, 20*time.Millisecond, "B lists A's live call")
	eventually(t, func() bool { return metric(t, baseB, "bridge_nats_nodes") == 2 }, 10*time.Second, 10*time.Millisecond, "B hears A")

	instA.cluster.Close() // A is gone for the cluster; its call was not ended
	gone := time.Now()
	var rec bridge.CallRecord
	eventually(t, func() bool {
		var ok bool
		rec, ok = listed(t, baseB, "?status=interrupted", callSid)
		return ok
	}, 4*timeout, 20*time.Millisecond, "B shows A's call interrupted")
	require.Less(t, time.Since(gone), 2*timeout, "within the node timeout and a sweep")
	require.Equal(t, bridge.ReasonNodeLost, rec.Reason)
	require.NotNil(t, rec.EndedAt)
	var byID bridge.CallRecord
	require.Equal(t, http.StatusOK, getJSON(t, baseB, "/api/calls/"+callSid, &byID))
	require.Equal(t, bridge.StatusInterrupted, byID.Status)
	code, body := httpDo(t, http.MethodGet, baseB+"/api/calls/"+callSid+"/transcript", "", nil)
	require.Equal(t, http.StatusServiceUnavailable, code, "%s", body)
	require.Contains(t, string(body), "does not answer")
	require.Equal(t, 1.0, metric(t, baseB, "bridge_nats_index_interrupted_total"))
}

// TestRepairedCallReachesTheIndex: a replica that starts on a data
// directory holding a call that was active when it stopped repairs the
// call, and the other replicas list it interrupted.
func TestRepairedCallReachesTheIndex(t *testing.T) {
	srv := clustertest.Start(t)
	const id = "CA8d000000000000000000000000000001"
	cfg := testConfig(t)
	cfg.NATS = config.NATS{URL: srv.URL(), NodeID: "replica-a"}
	dir := filepath.Join(cfg.Data, "calls", id)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	rec := bridge.CallRecord{CallID: id, Provider: "twilio", Status: bridge.StatusActive, StartedAt: time.Now().UTC().Add(-time.Minute),
		Tracks: []bridge.TrackRecord{}, Streams: []bridge.StreamRecord{}}
	b, err := json.Marshal(rec)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "call.json"), b, 0o644))

	_, baseB := startReplica(t, srv.URL(), "replica-b")
	inst, _ := startBridge(t, cfg)
	<-inst.cluster.Ready()
	eventually(t, func() bool {
		got, ok := listed(t, baseB, "?status=interrupted", id)
		return ok && got.Reason == bridge.ReasonError
	}, 10*time.Second, 20*time.Millisecond, "B lists the repaired call interrupted")
}
