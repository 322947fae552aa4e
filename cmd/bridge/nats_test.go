package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/cluster/clustertest"
	"github.com/callcaptions/bridge/config"
)

// startReplica runs a bridge in cluster mode as node and waits until it
// reads the event stream.
func startReplica(t *testing.T, url, node string) (*instance, string) {
	t.Helper()
	cfg := testConfig(t)
	cfg.NATS = config.NATS{URL: url, NodeID: node}
	return startReplicaWith(t, cfg)
}

// startReplicaWith runs a bridge with cfg, which sets cfg.NATS, and waits
// until it reads the event stream.
func startReplicaWith(t *testing.T, cfg config.Config) (*instance, string) {
	t.Helper()
	inst, base := startBridge(t, cfg)
	require.NotNil(t, inst.cluster)
	select {
	case <-inst.cluster.Ready():
	case <-time.After(10 * time.Second):
		t.Fatalf("replica %s does not read the event stream after 10s", cfg.NATS.NodeID)
	}
	return inst, base
}

// checkCall checks a subscriber's events of one call: call.started first,
// call.ended last, seq strictly increasing, every seq above after, and
// returns how many finals they hold.
func checkCall(t *testing.T, evs []map[string]any, callID string, after float64) int {
	t.Helper()
	require.Equal(t, bridge.TypeCallEnded, evs[len(evs)-1]["type"])
	finals := 0
	last := after
	for _, ev := range evs {
		require.Equal(t, callID, ev["call_id"])
		s := ev["seq"].(float64)
		require.Greater(t, s, last, "seq strictly increasing, above %v", after)
		last = s
		if ev["type"] == bridge.TypeTranscriptFinal {
			finals++
		}
	}
	return finals
}

// TestCaptionsFromAnotherReplica plays a call into replica A and follows
// its captions on replica B, which shares A's NATS server: live (B's
// subscriber waits for the call before it starts), late join, resume and
// all calls.
func TestCaptionsFromAnotherReplica(t *testing.T) {
	srv := clustertest.Start(t)
	_, baseA := startReplica(t, srv.URL(), "replica-a")
	_, baseB := startReplica(t, srv.URL(), "replica-b")
	const callSid, streamSid = "CA7a000000000000000000000000000001", "MZ7a000000000000000000000000000001"

	live := dial(t, baseB, "/ws/captions?call="+callSid, nil)
	all := dial(t, baseB, "/ws/captions", nil)
	var ready map[string]any
	require.Equal(t, http.StatusOK, getJSON(t, baseB, "/readyz", &ready))
	require.Equal(t, "connected", ready["nats"])

	media := dial(t, baseA, "/media", nil)
	playBursts(t, media, callSid, streamSid, 200)
	send(t, media, twilioStop(streamSid, callSid, 202))

	isEnd := func(ev map[string]any) bool { return ev["type"] == bridge.TypeCallEnded }
	evs := readEvents(t, live, isEnd)
	require.Equal(t, bridge.TypeCallStarted, evs[0]["type"])
	finals := checkCall(t, evs, callSid, 0)
	require.Positive(t, finals, "finals of A's call reach B")

	allEvs := readEvents(t, all, isEnd)
	require.Equal(t, bridge.TypeCallStarted, allEvs[0]["type"])
	require.Equal(t, finals, checkCall(t, allEvs, callSid, 0), "the all-calls subscriber on B sees A's call")

	late := readEvents(t, dial(t, baseB, "/ws/captions?call="+callSid, nil), isEnd)
	require.Equal(t, bridge.TypeCallStarted, late[0]["type"], "a late subscriber on B first gets call.started")
	require.Equal(t, finals, checkCall(t, late, callSid, 0), "and every final")
	for _, ev := range late {
		require.NotEqual(t, bridge.TypeTranscriptPartial, ev["type"], "replay holds no partials")
	}

	var firstFinal float64
	for _, ev := range late {
		if ev["type"] == bridge.TypeTranscriptFinal {
			firstFinal = ev["seq"].(float64)
			break
		}
	}
	resumed := readEvents(t, dial(t, baseB, fmt.Sprintf("/ws/captions?call=%s&after=%d", callSid, int(firstFinal)), nil), isEnd)
	require.Equal(t, finals-1, checkCall(t, resumed, callSid, firstFinal), "a resume on B gets what follows its seq")

	waitEnded(t, baseA, callSid)
	require.Positive(t, metric(t, baseA, "bridge_nats_published_total"))
	require.Zero(t, metric(t, baseA, "bridge_nats_publish_dropped_total"))
	require.Equal(t, 1.0, metric(t, baseB, "bridge_nats_connected"))
	eventually(t, func() bool {
		return metric(t, baseB, "bridge_nats_received_total") == metric(t, baseA, "bridge_nats_published_total")
	}, 10*time.Second, 10*time.Millisecond, "B receives every event A published, once")
	require.Zero(t, metric(t, baseA, "bridge_nats_received_total"), "A does not take its own events back")
}

// TestReplicaStartedMidCall starts replica B while A's call runs: B's
// subscriber gets the call whole, from call.started on, once the call's
// next event brings B to its history.
func TestReplicaStartedMidCall(t *testing.T) {
	srv := clustertest.Start(t)
	_, baseA := startReplica(t, srv.URL(), "replica-a")
	const callSid, streamSid = "CA7b000000000000000000000000000001", "MZ7b000000000000000000000000000001"
	onA := dial(t, baseA, "/ws/captions?call="+callSid, nil)
	media := dial(t, baseA, "/media", nil)
	playBursts(t, media, callSid, streamSid, 100)
	readEvents(t, onA, func(ev map[string]any) bool { return ev["type"] == bridge.TypeTranscriptFinal })

	_, baseB := startReplica(t, srv.URL(), "replica-b")
	onB := dial(t, baseB, "/ws/captions?call="+callSid, nil)
	gen := bursts(300, 8000, 0, 0.5, 1)
	for k := 100; k < 200; k++ {
		send(t, media, twilioMedia(streamSid, "inbound", k+2, k+1, 20*k, mulawFrame(gen, 160*k, 160)))
	}
	send(t, media, twilioStop(streamSid, callSid, 202))
	isEnd := func(ev map[string]any) bool { return ev["type"] == bridge.TypeCallEnded }
	want := readEvents(t, onA, isEnd)
	got := readEvents(t, onB, isEnd)
	require.Equal(t, bridge.TypeCallStarted, got[0]["type"])
	require.Equal(t, checkCall(t, readEvents(t, dial(t, baseA, "/ws/captions?call="+callSid, nil), isEnd), callSid, 0),
		checkCall(t, got, callSid, 0), "B has every final A has")
	require.Positive(t, checkCall(t, want, callSid, 0))
}

// TestReplicaLostMidCall: replica A stops heart-beating (its NATS
// connection closes) while its call runs; B's subscriber to that call gets
// call.ended with reason node_lost and the call's next seq within
// --node-timeout.
func TestReplicaLostMidCall(t *testing.T) {
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
	const callSid, streamSid = "CA7c000000000000000000000000000001", "MZ7c000000000000000000000000000001"

	live := dial(t, baseB, "/ws/captions?call="+callSid, nil)
	media := dial(t, baseA, "/media", nil)
	playBursts(t, media, callSid, streamSid, 100)
	first := readEvents(t, live, func(ev map[string]any) bool { return ev["type"] == bridge.TypeTranscriptFinal })
	require.Equal(t, bridge.TypeCallStarted, first[0]["type"])
	eventually(t, func() bool { return metric(t, baseB, "bridge_nats_nodes") == 2 }, 10*time.Second, 10*time.Millisecond, "B hears A")

	instA.cluster.Close() // A is gone for the cluster; its call was not ended
	gone := time.Now()
	rest := readEvents(t, live, func(ev map[string]any) bool { return ev["type"] == bridge.TypeCallEnded })
	require.Less(t, time.Since(gone), 2*timeout, "ended within the node timeout and a heartbeat")
	evs := append(first, rest...)
	checkCall(t, evs, callSid, 0)
	end := evs[len(evs)-1]
	require.Equal(t, bridge.ReasonNodeLost, end["reason"])
	require.Equal(t, evs[len(evs)-2]["seq"].(float64)+1, end["seq"], "the seq after the last one B had")
	require.NotEmpty(t, end["ended_at"])
	require.Equal(t, 1.0, metric(t, baseB, "bridge_nats_nodes_lost_total"))
	require.Equal(t, 1.0, metric(t, baseB, "bridge_nats_nodes"))
}

// TestReadyEventsOnAnotherReplica: a one-call subscriber on replica B to a
// call held by A gets transcript.ready and recording.ready after
// call.ended and ends with recording.ready, as on A; so do a late joiner
// and a resume on B.
func TestReadyEventsOnAnotherReplica(t *testing.T) {
	srv := clustertest.Start(t)
	_, baseA := startReplica(t, srv.URL(), "replica-a")
	_, baseB := startReplica(t, srv.URL(), "replica-b")
	const callSid, streamSid = "CA7e000000000000000000000000000001", "MZ7e000000000000000000000000000001"

	onA := dial(t, baseA, "/ws/captions?call="+callSid, nil)
	onB := dial(t, baseB, "/ws/captions?call="+callSid, nil)
	media := dial(t, baseA, "/media", nil)
	playBursts(t, media, callSid, streamSid, 100)
	send(t, media, twilioStop(streamSid, callSid, 102))

	isLast := func(ev map[string]any) bool { return ev["type"] == bridge.TypeRecordingReady }
	tail := func(evs []map[string]any) []string {
		require.GreaterOrEqual(t, len(evs), 3)
		var out []string
		for _, ev := range evs[len(evs)-3:] {
			out = append(out, ev["type"].(string))
		}
		return out
	}
	wantTail := []string{bridge.TypeCallEnded, bridge.TypeTranscriptReady, bridge.TypeRecordingReady}
	fromA := readEvents(t, onA, isLast)
	fromB := readEvents(t, onB, isLast)
	require.Equal(t, wantTail, tail(fromB), "B's subscriber gets the ready events after call.ended")
	durable := func(evs []map[string]any) []map[string]any {
		var out []map[string]any
		for _, ev := range evs {
			if ev["type"] != bridge.TypeTranscriptPartial { // partials may be skipped for newer ones
				out = append(out, ev)
			}
		}
		return out
	}
	fromA, fromB = durable(fromA), durable(fromB)
	require.Equal(t, len(fromA), len(fromB))
	for i := range fromA {
		require.Equal(t, fromA[i]["seq"], fromB[i]["seq"])
		require.Equal(t, fromA[i]["type"], fromB[i]["type"])
	}
	require.Equal(t, fromA[len(fromA)-1], fromB[len(fromB)-1], "the same recording.ready")
	closed := func(c *websocket.Conn) {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		require.ErrorAs(t, err, &ce, "the subscription ends after recording.ready")
	}
	closed(onB)

	late := dial(t, baseB, "/ws/captions?call="+callSid, nil)
	got := readEvents(t, late, isLast)
	require.Equal(t, bridge.TypeCallStarted, got[0]["type"])
	require.Equal(t, wantTail, tail(got), "a late joiner on B gets them from the replay")
	closed(late)

	endSeq := int(fromB[len(fromB)-3]["seq"].(float64))
	resumed := dial(t, baseB, fmt.Sprintf("/ws/captions?call=%s&after=%d", callSid, endSeq), nil)
	got = readEvents(t, resumed, isLast)
	require.Equal(t, wantTail[1:], []string{got[0]["type"].(string), got[1]["type"].(string)}, "a resume after call.ended gets the two")
	require.Len(t, got, 2)
	closed(resumed)
}
