package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/cluster"
	"github.com/callcaptions/bridge/bridge/cluster/clustertest"
	"github.com/callcaptions/bridge/config"
	"github.com/callcaptions/bridge/recorder"
	"github.com/callcaptions/bridge/recorder/s3store/s3test"
)

// plivoCall plays Plivo frames: each track on its own socket, placed by
// Unix-ms timestamps, so a track's samples sit at the same place on the
// call clock whichever replica its socket reached.
type plivoCall struct {
	callID string
	t0     int64 // ms
}

func (p plivoCall) start(stream, track string) []byte {
	return fmt.Appendf(nil, `{"event":"start","sequenceNumber":1,"start":{"callId":"%s","streamId":"%s","accountId":"MA0000000000000000000","tracks":["%s"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000}}}`,
		p.callID, stream, track)
}

func (p plivoCall) media(stream, track string, k int, offsetMs int64, gen func(int) float64) []byte {
	return fmt.Appendf(nil, `{"event":"media","sequenceNumber":%d,"streamId":"%s","media":{"track":"%s","timestamp":"%d","chunk":%d,"payload":"%s"}}`,
		k+2, stream, track, p.t0+offsetMs+int64(20*k), k+1, mulawFrame(gen, 160*k, 160))
}

func (p plivoCall) stop(stream string, seq int) []byte {
	return fmt.Appendf(nil, `{"event":"stop","sequenceNumber":%d,"streamId":"%s"}`, seq, stream)
}

// startReplicaTimed is startReplica with a node timeout and settings.
func startReplicaTimed(t *testing.T, url, node string, nodeTimeout time.Duration, set ...func(*config.Config)) (*instance, string) {
	t.Helper()
	cfg := testConfig(t)
	cfg.NATS = config.NATS{URL: url, NodeID: node, NodeTimeout: nodeTimeout}
	for _, f := range set {
		f(&cfg)
	}
	return startReplicaWith(t, cfg)
}

// requireFrames checks that w holds silence samples of silence, then
// exactly frames 20 ms frames of gen.
func requireFrames(t *testing.T, w wavFile, silence int, gen func(int) float64, frames int) {
	t.Helper()
	require.Len(t, w.samples, silence+160*frames)
	require.Equal(t, make([]int16, silence), w.samples[:silence], "leading silence")
	for k := range frames {
		at := silence + 160*k
		require.Equal(t, decodeFrame(mulawFrame(gen, 160*k, 160)), w.samples[at:at+160], "frame %d", k)
	}
}

// seqs lists the (seq, type) of a subscriber's events but partials (a
// slow subscriber may skip a partial for a newer one).
func seqs(evs []map[string]any) []string {
	var out []string
	for _, ev := range evs {
		if ev["type"] != bridge.TypeTranscriptPartial {
			out = append(out, fmt.Sprintf("%v %v", ev["seq"], ev["type"]))
		}
	}
	return out
}

// The split call of playSplit: inbound frames on A from the call's start,
// outbound frames on B from splitOffsetMs on.
const splitOffsetMs, splitIn, splitOut = 1000, 150, 100

// playSplit plays call with its inbound socket on replica A (which then
// holds the call) and its outbound socket on B, and stops both once both
// are on the call.
func playSplit(t *testing.T, baseA, baseB string, call plivoCall, inGen, outGen func(int) float64) {
	t.Helper()
	inStream, outStream := call.callID+"-in", call.callID+"-out"
	in := dial(t, baseA, "/media/plivo", nil)
	send(t, in, call.start(inStream, "inbound"))
	for k := range splitIn {
		send(t, in, call.media(inStream, "inbound", k, 0, inGen))
	}
	eventually(t, func() bool { return metric(t, baseA, `bridge_nats_owner_claims_total{result="created"}`) == 1 },
		10*time.Second, 5*time.Millisecond, "A holds the call")
	out := dial(t, baseB, "/media/plivo", nil)
	send(t, out, call.start(outStream, "outbound"))
	for k := range splitOut {
		send(t, out, call.media(outStream, "outbound", k, splitOffsetMs, outGen))
	}
	// Both streams are on the call before either stops.
	eventually(t, func() bool { return metric(t, baseA, "bridge_nats_relay_frames_received_total") == splitOut },
		10*time.Second, 5*time.Millisecond, "A records B's frames")
	send(t, out, call.stop(outStream, splitOut+2))
	send(t, in, call.stop(inStream, splitIn+2))
}

// TestCallSplitOverReplicas: a call whose inbound socket reaches replica A
// and whose outbound socket reaches replica B is one call, held by A (its
// first stream's replica): one record with both streams and tracks, both
// WAVs on A byte for byte, one seq order that subscribers on A and on B
// both see, and B's frames counted as relayed.
func TestCallSplitOverReplicas(t *testing.T) {
	srv := clustertest.Start(t)
	_, baseA := startReplica(t, srv.URL(), "replica-a")
	_, baseB := startReplica(t, srv.URL(), "replica-b")
	inGen, outGen := bursts(300, 8000, 0, 0.4, 1), bursts(500, 8000, 0.2, 0.6, 1.5)
	call := plivoCall{callID: "5a1b2c3d-1111-4222-8333-444455550001", t0: 1_764_900_000_000}

	onA := dial(t, baseA, "/ws/captions?call="+call.callID, nil)
	onB := dial(t, baseB, "/ws/captions?call="+call.callID, nil)
	playSplit(t, baseA, baseB, call, inGen, outGen)

	rec := waitEnded(t, baseA, call.callID)
	require.Len(t, rec.Streams, 2, "one record with both streams")
	require.Len(t, rec.Tracks, 2)
	requireFrames(t, fetchWAV(t, baseA, call.callID, "inbound"), 0, inGen, splitIn)
	requireFrames(t, fetchWAV(t, baseA, call.callID, "outbound"), splitOffsetMs*8, outGen, splitOut)

	isEnd := func(ev map[string]any) bool { return ev["type"] == bridge.TypeCallEnded }
	evA, evB := readEvents(t, onA, isEnd), readEvents(t, onB, isEnd)
	require.Equal(t, bridge.TypeCallStarted, evA[0]["type"])
	require.Positive(t, checkCall(t, evA, call.callID, 0))
	require.Equal(t, seqs(evA), seqs(evB), "subscribers on A and B see one seq order")
	tracks := map[any]bool{}
	for _, ev := range evA {
		if ev["type"] == bridge.TypeTranscriptFinal {
			tracks[ev["track"]] = true
		}
	}
	require.Equal(t, map[any]bool{"inbound": true, "outbound": true}, tracks, "finals of both tracks in that order")

	require.Equal(t, float64(splitOut), metric(t, baseB, "bridge_nats_relay_frames_sent_total"))
	require.Equal(t, float64(splitOut), metric(t, baseA, "bridge_nats_relay_frames_received_total"))
	require.Equal(t, 1.0, metric(t, baseB, "bridge_nats_relay_streams_sent_total"))
	require.Equal(t, 1.0, metric(t, baseA, "bridge_nats_relay_streams_received_total"))
	require.Equal(t, 1.0, metric(t, baseB, `bridge_nats_owner_claims_total{result="remote"}`))
	require.Zero(t, metric(t, baseB, "bridge_nats_relay_dropped_total"))
	require.Zero(t, metric(t, baseB, "bridge_media_frames_total"), "B records nothing of the call")
	require.Zero(t, metric(t, baseB, `bridge_calls_total{reason="stop"}`), "and holds no call")
	eventually(t, func() bool { return metric(t, baseA, `bridge_calls_total{reason="stop"}`) == 1 }, 10*time.Second, 10*time.Millisecond,
		"A holds the call")
}

// TestStreamsRacingOnTwoReplicas: both streams of a call start on two
// replicas at the same moment; one replica holds the call and the other
// relays, so the call has one record with both streams.
func TestStreamsRacingOnTwoReplicas(t *testing.T) {
	srv := clustertest.Start(t)
	_, baseA := startReplica(t, srv.URL(), "replica-a")
	_, baseB := startReplica(t, srv.URL(), "replica-b")
	gen := bursts(300, 8000, 0, 0.4, 1)
	for i := range 3 {
		call := plivoCall{callID: fmt.Sprintf("6a1b2c3d-1111-4222-8333-44445555000%d", i), t0: 1_764_900_000_000}
		streams := [2]string{fmt.Sprintf("6a1b2c3d-aaaa-4bbb-8ccc-00000000000%d", 2*i), fmt.Sprintf("6a1b2c3d-aaaa-4bbb-8ccc-00000000000%d", 2*i+1)}
		conns := [2]*websocket.Conn{dial(t, baseA, "/media/plivo", nil), dial(t, baseB, "/media/plivo", nil)}
		tracks := [2]string{"inbound", "outbound"}
		var wg sync.WaitGroup
		for j := range 2 {
			wg.Go(func() {
				_ = conns[j].WriteMessage(websocket.TextMessage, call.start(streams[j], tracks[j]))
				for k := range 50 {
					_ = conns[j].WriteMessage(websocket.TextMessage, call.media(streams[j], tracks[j], k, 0, gen))
				}
			})
		}
		wg.Wait()
		// Both streams are on the call before either stops.
		eventually(t, func() bool {
			return metric(t, baseA, "bridge_nats_relay_streams_received_total")+metric(t, baseB, "bridge_nats_relay_streams_received_total") == float64(i+1)
		}, 10*time.Second, 5*time.Millisecond, "call %d: one stream relayed to the other's replica", i)
		for j := range 2 {
			send(t, conns[j], call.stop(streams[j], 52))
		}
		rec := waitEnded(t, baseA, call.callID)
		require.Len(t, rec.Streams, 2, "both streams on the record of call %d", i)
		require.Len(t, rec.Tracks, 2)
	}
	ended := func() float64 {
		return metric(t, baseA, `bridge_calls_total{reason="stop"}`) + metric(t, baseB, `bridge_calls_total{reason="stop"}`)
	}
	eventually(t, func() bool { return ended() >= 3 }, 10*time.Second, 10*time.Millisecond, "the calls end")
	require.Equal(t, 3.0, ended(), "one call per call id, on one replica")
	created := metric(t, baseA, `bridge_nats_owner_claims_total{result="created"}`) + metric(t, baseB, `bridge_nats_owner_claims_total{result="created"}`)
	relayed := metric(t, baseA, "bridge_nats_relay_streams_sent_total") + metric(t, baseB, "bridge_nats_relay_streams_sent_total")
	require.Equal(t, 3.0, created, "one owner per call")
	require.Equal(t, 3.0, relayed, "the other stream of each call relayed")
}

// TestRelayOwnerLost: the owner of a split call (A) loses NATS mid-call.
// The relayed socket on B is closed with reason node_lost within the node
// timeout; the provider's next stream of the call on B takes the call
// over, and B's subscriber sees one seq order: A's part, call.ended
// (node_lost), then the continuation.
func TestRelayOwnerLost(t *testing.T) {
	srv := clustertest.Start(t)
	const timeout = 3 * time.Second // --node-timeout's least
	instA, baseA := startReplicaTimed(t, srv.URL(), "replica-a", timeout)
	_, baseB := startReplicaTimed(t, srv.URL(), "replica-b", timeout)
	gen := bursts(300, 8000, 0, 0.4, 1)
	call := plivoCall{callID: "7a1b2c3d-1111-4222-8333-444455550001", t0: 1_764_900_000_000}
	const inStream, outStream, again = "7a1b2c3d-aaaa-4bbb-8ccc-000000000001", "7a1b2c3d-aaaa-4bbb-8ccc-000000000002", "7a1b2c3d-aaaa-4bbb-8ccc-000000000003"

	onB := dial(t, baseB, "/ws/captions?call="+call.callID, nil)
	in := dial(t, baseA, "/media/plivo", nil)
	send(t, in, call.start(inStream, "inbound"))
	for k := range 100 {
		send(t, in, call.media(inStream, "inbound", k, 0, gen))
	}
	eventually(t, func() bool { return metric(t, baseA, `bridge_nats_owner_claims_total{result="created"}`) == 1 },
		10*time.Second, 5*time.Millisecond, "A holds the call")
	out := dial(t, baseB, "/media/plivo", nil)
	send(t, out, call.start(outStream, "outbound"))
	for k := range 50 {
		send(t, out, call.media(outStream, "outbound", k, 0, gen))
	}
	eventually(t, func() bool { return metric(t, baseA, "bridge_nats_relay_frames_received_total") == 50 },
		10*time.Second, 5*time.Millisecond, "A records B's frames")
	first := readEvents(t, onB, func(ev map[string]any) bool { return ev["type"] == bridge.TypeTranscriptFinal })

	instA.cluster.Close() // A is gone for the cluster
	gone := time.Now()
	ce := readClose(t, out)
	require.Less(t, time.Since(gone), 2*timeout, "closed within the node timeout and a heartbeat")
	require.Equal(t, websocket.CloseNormalClosure, ce.Code)
	require.Contains(t, ce.Text, bridge.ReasonNodeLost)

	// B's subscriber sees A's part end with node_lost, the next seq.
	rest := readEvents(t, onB, func(ev map[string]any) bool { return ev["type"] == bridge.TypeCallEnded })
	part := append(first, rest...)
	checkCall(t, part, call.callID, 0)
	lost := part[len(part)-1]
	require.Equal(t, bridge.ReasonNodeLost, lost["reason"])

	// The provider reconnects the track to B: B takes the call over and
	// continues its seq order.
	re := dial(t, baseB, "/media/plivo", nil)
	send(t, re, call.start(again, "outbound"))
	for k := range 50 {
		send(t, re, call.media(again, "outbound", k, 2000, gen))
	}
	eventually(t, func() bool { return metric(t, baseB, `bridge_nats_owner_claims_total{result="taken_over"}`) == 1 },
		10*time.Second, 5*time.Millisecond, "B takes the call over")
	cont := dial(t, baseB, "/ws/captions?call="+call.callID, nil)
	send(t, re, call.stop(again, 52))
	rec := waitEnded(t, baseB, call.callID)
	require.Len(t, rec.Streams, 1, "B's record holds the stream it ran")
	evs := readEvents(t, cont, func(ev map[string]any) bool { return ev["type"] == bridge.TypeCallEnded })
	require.Equal(t, bridge.TypeCallStarted, evs[0]["type"])
	require.Equal(t, lost["seq"].(float64)+1, evs[0]["seq"], "the continuation starts at the seq after node_lost")
	checkCall(t, evs, call.callID, lost["seq"].(float64))
	require.Equal(t, bridge.ReasonStop, evs[len(evs)-1]["reason"])
}

// TestRelayStoppedByOwner: the owner ends a split call (its maximum
// duration): the relayed socket on the other replica is closed with the
// owner's reason, as a local one is.
func TestRelayStoppedByOwner(t *testing.T) {
	srv := clustertest.Start(t)
	_, baseA := startReplicaTimed(t, srv.URL(), "replica-a", 0, func(c *config.Config) { c.Limits.MaxCallDuration = 2 * time.Second })
	_, baseB := startReplica(t, srv.URL(), "replica-b")
	gen := bursts(300, 8000, 0, 0.4, 1)
	call := plivoCall{callID: "8a1b2c3d-1111-4222-8333-444455550001", t0: 1_764_900_000_000}
	const inStream, outStream = "8a1b2c3d-aaaa-4bbb-8ccc-000000000001", "8a1b2c3d-aaaa-4bbb-8ccc-000000000002"
	in := dial(t, baseA, "/media/plivo", nil)
	send(t, in, call.start(inStream, "inbound"), call.media(inStream, "inbound", 0, 0, gen))
	eventually(t, func() bool { return metric(t, baseA, `bridge_nats_owner_claims_total{result="created"}`) == 1 },
		10*time.Second, 5*time.Millisecond, "A holds the call")
	out := dial(t, baseB, "/media/plivo", nil)
	send(t, out, call.start(outStream, "outbound"), call.media(outStream, "outbound", 0, 0, gen))

	for _, c := range []*websocket.Conn{out, in} {
		ce := readClose(t, c)
		require.Equal(t, websocket.CloseNormalClosure, ce.Code)
		require.Equal(t, "stream ended by the bridge: "+bridge.ReasonTimeout, ce.Text)
	}
	rec := waitEnded(t, baseA, call.callID)
	require.Equal(t, bridge.ReasonTimeout, rec.Reason)
	require.Len(t, rec.Streams, 2)
	require.Equal(t, 1.0, metric(t, baseA, "bridge_nats_relay_stopped_total"))
}

// TestRelayRefusedByOwner: a stream the owner refuses (another account's
// stream with the call's id) is answered on the relaying replica as a
// local refusal: closed with 1008 and the reason, counted there.
func TestRelayRefusedByOwner(t *testing.T) {
	srv := clustertest.Start(t)
	_, baseA := startReplica(t, srv.URL(), "replica-a")
	_, baseB := startReplica(t, srv.URL(), "replica-b")
	gen := bursts(300, 8000, 0, 0.4, 1)
	call := plivoCall{callID: "9a1b2c3d-1111-4222-8333-444455550001", t0: 1_764_900_000_000}
	in := dial(t, baseA, "/media/plivo", nil)
	send(t, in, call.start("9a1b2c3d-aaaa-4bbb-8ccc-000000000001", "inbound"), call.media("9a1b2c3d-aaaa-4bbb-8ccc-000000000001", "inbound", 0, 0, gen))
	eventually(t, func() bool { return metric(t, baseA, `bridge_nats_owner_claims_total{result="created"}`) == 1 },
		10*time.Second, 5*time.Millisecond, "A holds the call")

	other := dial(t, baseB, "/media/plivo", nil)
	send(t, other, fmt.Appendf(nil, `{"event":"start","sequenceNumber":1,"start":{"callId":"%s","streamId":"9a1b2c3d-aaaa-4bbb-8ccc-000000000002","accountId":"MA9999999999999999999","tracks":["outbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000}}}`, call.callID))
	ce := readClose(t, other)
	require.Equal(t, websocket.ClosePolicyViolation, ce.Code)
	require.Contains(t, ce.Text, "call belongs to another account")
	require.Equal(t, 1.0, metric(t, baseB, `bridge_streams_refused_total{reason="account_mismatch"}`))
	require.Zero(t, metric(t, baseB, "bridge_nats_relay_streams_sent_total"))
}

// TestCallSplitOverReplicasInS3: replicas sharing a bucket upload a split
// call once, from its owner: both WAVs, byte for byte, and one call.json
// listing both streams, under the call's prefix.
func TestCallSplitOverReplicasInS3(t *testing.T) {
	s3 := s3test.Start(t)
	bucket := s3.Bucket("split")
	srv := clustertest.Start(t)
	withS3 := func(c *config.Config) { c.S3 = s3Config(t, s3, bucket).S3 }
	_, baseA := startReplicaTimed(t, srv.URL(), "replica-a", 0, withS3)
	_, baseB := startReplicaTimed(t, srv.URL(), "replica-b", 0, withS3)
	inGen, outGen := bursts(300, 8000, 0, 0.4, 1), bursts(500, 8000, 0.2, 0.6, 1.5)
	call := plivoCall{callID: "5b1b2c3d-1111-4222-8333-444455550001", t0: 1_764_900_000_000}
	playSplit(t, baseA, baseB, call, inGen, outGen)
	waitEnded(t, baseA, call.callID)

	folder := "calls/" + recorder.FolderName(call.callID) + "/"
	eventually(t, func() bool { return len(s3.Keys(bucket, folder)) == len(callFileNames) }, 15*time.Second, 50*time.Millisecond,
		"the call's files in the bucket")
	require.ElementsMatch(t, callFileNames, trimKeys(s3.Keys(bucket, folder), folder))
	obj := func(name string) []byte {
		b, ok := s3.Object(bucket, folder+name)
		require.True(t, ok, name)
		return b
	}
	requireFrames(t, parseWAV(t, obj("inbound.wav")), 0, inGen, splitIn)
	requireFrames(t, parseWAV(t, obj("outbound.wav")), splitOffsetMs*8, outGen, splitOut)
	var rec bridge.CallRecord
	require.NoError(t, json.Unmarshal(obj("call.json"), &rec))
	require.Len(t, rec.Streams, 2)
	require.Len(t, rec.Tracks, 2)
	require.Equal(t, 1.0, metric(t, baseA, `bridge_s3_uploads_total{result="ok"}`))
	require.Zero(t, metric(t, baseB, `bridge_s3_uploads_total{result="ok"}`), "B uploads nothing of the call")
}

// TestRelayLost: the replica relaying a stream (B) loses NATS mid-call.
// The owner (A) ends the relayed stream (reason disconnect, the error
// naming B) within the node timeout, and the call goes on with its own
// stream until that stops.
func TestRelayLost(t *testing.T) {
	srv := clustertest.Start(t)
	const timeout = 3 * time.Second // --node-timeout's least
	_, baseA := startReplicaTimed(t, srv.URL(), "replica-a", timeout)
	instB, baseB := startReplicaTimed(t, srv.URL(), "replica-b", timeout)
	gen := bursts(300, 8000, 0, 0.4, 1)
	call := plivoCall{callID: "7b1b2c3d-1111-4222-8333-444455550001", t0: 1_764_900_000_000}
	const inStream, outStream = "7b1b2c3d-aaaa-4bbb-8ccc-000000000001", "7b1b2c3d-aaaa-4bbb-8ccc-000000000002"
	in := dial(t, baseA, "/media/plivo", nil)
	send(t, in, call.start(inStream, "inbound"), call.media(inStream, "inbound", 0, 0, gen))
	eventually(t, func() bool { return metric(t, baseA, `bridge_nats_owner_claims_total{result="created"}`) == 1 },
		10*time.Second, 5*time.Millisecond, "A holds the call")
	out := dial(t, baseB, "/media/plivo", nil)
	send(t, out, call.start(outStream, "outbound"))
	for k := range 20 {
		send(t, out, call.media(outStream, "outbound", k, 0, gen))
	}
	eventually(t, func() bool { return metric(t, baseA, "bridge_nats_relay_frames_received_total") == 20 },
		10*time.Second, 5*time.Millisecond, "A records B's frames")
	eventually(t, func() bool { return metric(t, baseA, "bridge_nats_nodes") == 2 }, 10*time.Second, 10*time.Millisecond, "A hears B")

	instB.cluster.Close() // B is gone for the cluster; its socket stays open
	gone := time.Now()
	eventually(t, func() bool {
		var rec bridge.CallRecord
		if getJSON(t, baseA, "/api/calls/"+url.PathEscape(call.callID), &rec) != http.StatusOK {
			return false
		}
		for _, s := range rec.Streams {
			if s.StreamID == outStream && s.EndedAt != nil {
				require.Equal(t, bridge.ReasonDisconnect, s.Reason)
				require.Contains(t, s.Error, "replica-b")
				return true
			}
		}
		return false
	}, 3*timeout, 20*time.Millisecond, "A ends the relayed stream")
	require.Less(t, time.Since(gone), 2*timeout, "within the node timeout and a heartbeat")

	send(t, in, call.media(inStream, "inbound", 1, 0, gen), call.stop(inStream, 3))
	rec := waitEnded(t, baseA, call.callID)
	require.Equal(t, bridge.ReasonStop, rec.Reason)
	require.Len(t, rec.Streams, 2)
}

// TestResumeOnAnotherReplica: a call that ended on A continues within the
// resume window on B (A released the call's key when it ended): B's part
// carries on the call's seq order after A's part's last event.
func TestResumeOnAnotherReplica(t *testing.T) {
	srv := clustertest.Start(t)
	_, baseA := startReplica(t, srv.URL(), "replica-a")
	_, baseB := startReplica(t, srv.URL(), "replica-b")
	const callSid = "CA7d000000000000000000000000000001"
	onB := dial(t, baseB, "/ws/captions?call="+callSid, nil)
	media := dial(t, baseA, "/media", nil)
	playBursts(t, media, callSid, "MZ7d000000000000000000000000000001", 60)
	send(t, media, twilioStop("MZ7d000000000000000000000000000001", callSid, 62))
	// A's call ends with call.ended, transcript.ready and recording.ready.
	first := readEvents(t, onB, func(ev map[string]any) bool { return ev["type"] == bridge.TypeRecordingReady })
	require.Equal(t, bridge.TypeCallEnded, first[len(first)-3]["type"])
	ended := first[len(first)-1]["seq"].(float64)

	nc, err := nats.Connect(srv.URL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	kv, err := js.KeyValue(context.Background(), cluster.DefaultOwnersBucket)
	require.NoError(t, err)
	eventually(t, func() bool {
		_, err := kv.Get(context.Background(), base64.RawURLEncoding.EncodeToString([]byte(callSid)))
		return errors.Is(err, jetstream.ErrKeyNotFound)
	}, 10*time.Second, 10*time.Millisecond, "A releases the key of its ended call")

	again := dial(t, baseB, "/media", nil)
	playBursts(t, again, callSid, "MZ7d000000000000000000000000000002", 60)
	eventually(t, func() bool { return metric(t, baseB, `bridge_nats_owner_claims_total{result="created"}`) == 1 },
		10*time.Second, 5*time.Millisecond, "B holds the continued call")
	cont := dial(t, baseB, "/ws/captions?call="+callSid, nil)
	send(t, again, twilioStop("MZ7d000000000000000000000000000002", callSid, 62))
	evs := readEvents(t, cont, func(ev map[string]any) bool { return ev["type"] == bridge.TypeCallEnded })
	require.Equal(t, bridge.TypeCallStarted, evs[0]["type"])
	require.Equal(t, ended+1, evs[0]["seq"], "the continuation starts after A's recording.ready")
	checkCall(t, evs, callSid, ended)
}

// TestTakeoverPartsInS3: the call's owner (A) is cut off from NATS and
// keeps running its part; B takes the call over and ends its part first;
// then A ends its own. Both parts reach the bucket byte-exact: B's, the
// later, in the call's folder, A's under parts/<its started_at>/.
func TestTakeoverPartsInS3(t *testing.T) {
	s3 := s3test.Start(t)
	bucket := s3.Bucket("takeover")
	srv := clustertest.Start(t)
	const timeout = 3 * time.Second // --node-timeout's least
	var dataA, dataB string
	withS3 := func(data *string) func(*config.Config) {
		return func(c *config.Config) { c.S3 = s3Config(t, s3, bucket).S3; *data = c.Data }
	}
	instA, baseA := startReplicaTimed(t, srv.URL(), "replica-a", timeout, withS3(&dataA))
	_, baseB := startReplicaTimed(t, srv.URL(), "replica-b", timeout, withS3(&dataB))
	gen := bursts(300, 8000, 0, 0.4, 1)
	call := plivoCall{callID: "7e1b2c3d-1111-4222-8333-444455550001", t0: 1_764_900_000_000}
	const inStream, again = "7e1b2c3d-aaaa-4bbb-8ccc-000000000001", "7e1b2c3d-aaaa-4bbb-8ccc-000000000003"

	in := dial(t, baseA, "/media/plivo", nil)
	send(t, in, call.start(inStream, "inbound"))
	for k := range 100 {
		send(t, in, call.media(inStream, "inbound", k, 0, gen))
	}
	eventually(t, func() bool { return metric(t, baseA, `bridge_nats_owner_claims_total{result="created"}`) == 1 },
		10*time.Second, 5*time.Millisecond, "A holds the call")
	eventually(t, func() bool { return metric(t, baseB, "bridge_nats_nodes") == 2 }, 10*time.Second, 10*time.Millisecond, "B hears A")

	instA.cluster.Close() // A is cut off from the cluster; its socket and call go on
	eventually(t, func() bool { return metric(t, baseB, "bridge_nats_nodes_lost_total") == 1 },
		3*timeout, 20*time.Millisecond, "B finds A lost")

	re := dial(t, baseB, "/media/plivo", nil)
	send(t, re, call.start(again, "outbound"))
	for k := range 50 {
		send(t, re, call.media(again, "outbound", k, 2000, gen))
	}
	eventually(t, func() bool { return metric(t, baseB, `bridge_nats_owner_claims_total{result="taken_over"}`) == 1 },
		10*time.Second, 5*time.Millisecond, "B takes the call over")
	send(t, re, call.stop(again, 52))
	later := waitEnded(t, baseB, call.callID)
	eventually(t, func() bool { return metric(t, baseB, `bridge_s3_uploads_total{result="ok"}`) == 1 },
		15*time.Second, 20*time.Millisecond, "B uploads its part")

	for k := 100; k < 150; k++ {
		send(t, in, call.media(inStream, "inbound", k, 0, gen))
	}
	send(t, in, call.stop(inStream, 152))
	earlier := waitEnded(t, baseA, call.callID)
	eventually(t, func() bool { return metric(t, baseA, `bridge_s3_uploads_total{result="ok"}`) == 1 },
		15*time.Second, 20*time.Millisecond, "A uploads its part")
	require.True(t, earlier.StartedAt.Before(later.StartedAt), "B's part is a new record, started later")

	folder := recorder.FolderName(call.callID)
	obj, parts := requireParts(t, s3, bucket, folder, dataA, dataB, earlier.StartedAt)
	requireFrames(t, parseWAV(t, obj(parts+"inbound.wav")), 0, gen, 150)
	prefix := "calls/" + folder + "/"
	require.ElementsMatch(t, []string{"call.json", "transcript.json", "outbound.wav",
		parts + "call.json", parts + "transcript.json", parts + "inbound.wav"}, trimKeys(s3.Keys(bucket, prefix), prefix))
	var top bridge.CallRecord
	require.NoError(t, json.Unmarshal(obj("call.json"), &top))
	require.True(t, top.StartedAt.Equal(later.StartedAt), "the call's folder holds the later part")
}

// requireParts checks a taken-over call's two parts in the bucket: B's
// (outbound, the later part) at the call's folder and A's (inbound, the
// earlier one, started at earlier) under parts/<earlier>/, each byte for
// byte as on its replica's disk. It returns a reader of the call folder's
// objects and the earlier part's prefix in it.
func requireParts(t *testing.T, s3 *s3test.Server, bucket, folder, dataA, dataB string, earlier time.Time) (func(string) []byte, string) {
	t.Helper()
	local := func(data, name string) []byte {
		b, err := os.ReadFile(filepath.Join(data, "calls", folder, name))
		require.NoError(t, err)
		return b
	}
	obj := func(name string) []byte {
		b, ok := s3.Object(bucket, "calls/"+folder+"/"+name)
		require.True(t, ok, name)
		return b
	}
	parts := "parts/" + earlier.UTC().Format("20060102T150405.000Z") + "/"
	for _, name := range []string{"call.json", "transcript.json", "outbound.wav"} {
		require.Equal(t, local(dataB, name), obj(name), "B's %s in the call's folder", name)
	}
	for _, name := range []string{"call.json", "transcript.json", "inbound.wav"} {
		require.Equal(t, local(dataA, name), obj(parts+name), "A's %s under %s", name, parts)
	}
	return obj, parts
}

// TestTakeoverOwnerComesBack: the call's owner (A, a process) is killed
// mid-call; B takes the call over, ends and uploads its part. A restarts
// on its data directory: its repaired part (interrupted) goes to the
// bucket under parts/<its started_at>/ and its record does not replace
// B's in the call index.
func TestTakeoverOwnerComesBack(t *testing.T) {
	s3 := s3test.Start(t)
	bucket := s3.Bucket("comeback")
	s3.Setenv(t)
	srv := clustertest.Start(t)
	bin := buildBridge(t, t.TempDir())
	const timeout = 3 * time.Second // --node-timeout's least
	dataA := t.TempDir()
	argsA := []string{"--nats-url", srv.URL(), "--node-id", "replica-a", "--node-timeout", timeout.String(),
		"--s3-bucket", bucket, "--s3-endpoint", s3.Endpoint(), "--s3-region", s3test.Region, "--s3-path-style"}
	a := startChild(t, bin, dataA, argsA...)
	var dataB string
	_, baseB := startReplicaTimed(t, srv.URL(), "replica-b", timeout, func(c *config.Config) {
		c.S3 = s3Config(t, s3, bucket).S3
		dataB = c.Data
	})
	eventually(t, func() bool { return metric(t, baseB, "bridge_nats_nodes") == 2 }, 10*time.Second, 10*time.Millisecond, "B hears A")
	gen := bursts(300, 8000, 0, 0.4, 1)
	call := plivoCall{callID: "7f1b2c3d-1111-4222-8333-444455550001", t0: 1_764_900_000_000}
	const inStream, again = "7f1b2c3d-aaaa-4bbb-8ccc-000000000001", "7f1b2c3d-aaaa-4bbb-8ccc-000000000003"

	in := dial(t, a.base, "/media/plivo", nil)
	send(t, in, call.start(inStream, "inbound"))
	for k := range 100 {
		send(t, in, call.media(inStream, "inbound", k, 0, gen))
	}
	eventually(t, func() bool { return metric(t, a.base, `bridge_nats_owner_claims_total{result="created"}`) == 1 },
		10*time.Second, 5*time.Millisecond, "A holds the call")
	folder := recorder.FolderName(call.callID)
	eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(dataA, "calls", folder, "call.json"))
		return err == nil && headerSamples(t, filepath.Join(dataA, "calls", folder, "inbound.wav")) > 0
	}, 10*time.Second, 10*time.Millisecond, "A's part on its disk")
	a.signal(t, syscall.SIGKILL) // a crash mid-call
	a.wait(t, 30*time.Second)
	eventually(t, func() bool { return metric(t, baseB, "bridge_nats_nodes_lost_total") == 1 },
		3*timeout, 20*time.Millisecond, "B finds A lost")

	re := dial(t, baseB, "/media/plivo", nil)
	send(t, re, call.start(again, "outbound"))
	for k := range 50 {
		send(t, re, call.media(again, "outbound", k, 2000, gen))
	}
	eventually(t, func() bool { return metric(t, baseB, `bridge_nats_owner_claims_total{result="taken_over"}`) == 1 },
		10*time.Second, 5*time.Millisecond, "B takes the call over")
	send(t, re, call.stop(again, 52))
	later := waitEnded(t, baseB, call.callID)
	eventually(t, func() bool { return metric(t, baseB, `bridge_s3_uploads_total{result="ok"}`) == 1 },
		15*time.Second, 20*time.Millisecond, "B uploads its part")

	a2 := startChild(t, bin, dataA, argsA...)
	eventually(t, func() bool { return metric(t, a2.base, `bridge_s3_uploads_total{result="ok"}`) == 1 },
		20*time.Second, 50*time.Millisecond, "A uploads its repaired part")
	earlier := readRecord(t, dataA, folder)
	require.Equal(t, bridge.StatusInterrupted, earlier.Status)
	require.True(t, earlier.StartedAt.Before(later.StartedAt))

	obj, parts := requireParts(t, s3, bucket, folder, dataA, dataB, earlier.StartedAt)
	require.NotEmpty(t, parseWAV(t, obj(parts+"inbound.wav")).raw, "A's audio before the crash")

	eventually(t, func() bool { return metric(t, a2.base, `bridge_nats_index_puts_total{result="superseded"}`) >= 1 },
		15*time.Second, 50*time.Millisecond, "A's repaired record is not put over B's")
	nc, err := nats.Connect(srv.URL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	kv, err := js.KeyValue(context.Background(), cluster.DefaultIndexBucket)
	require.NoError(t, err)
	e, err := kv.Get(context.Background(), cluster.Token(call.callID))
	require.NoError(t, err)
	var entry cluster.Entry
	require.NoError(t, json.Unmarshal(e.Value(), &entry))
	require.Equal(t, "replica-b", entry.Node)
	require.True(t, entry.Record.StartedAt.Equal(later.StartedAt), "the call index holds B's part")
}
