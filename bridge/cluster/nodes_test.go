package cluster

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/cluster/clustertest"
)

// nodeTimeout is short so that the tests wait a few of them.
const nodeTimeout = time.Second

// ended returns the call.ended events of callID in evs.
func ended(evs []bridge.Event, callID string) []bridge.Event {
	var out []bridge.Event
	for _, ev := range evs {
		if ev.CallID == callID && ev.Type == bridge.TypeCallEnded {
			out = append(out, ev)
		}
	}
	return out
}

func TestLostNodesCallsEnded(t *testing.T) {
	srv := clustertest.Start(t)
	a, _ := start(t, srv.URL(), "node-a", Config{NodeTimeout: nodeTimeout})
	b, fromA := start(t, srv.URL(), "node-b", Config{NodeTimeout: nodeTimeout})
	held := events(t, "held", bridge.TypeCallStarted, bridge.TypeTranscriptFinal, bridge.TypeTranscriptFinal, bridge.TypeTranscriptFinal)
	// done ended, then sent its transcript.ready and recording.ready.
	done := events(t, "done", bridge.TypeCallStarted, bridge.TypeCallEnded, bridge.TypeTranscriptReady, bridge.TypeRecordingReady)
	for _, ev := range append(append([]bridge.Event{}, held[:2]...), done...) {
		a.Publish(ev)
	}
	require.Eventually(t, func() bool { return len(fromA.events()) == 6 }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return testutil.ToFloat64(b.m.nodes) == 2 }, 10*time.Second, 10*time.Millisecond)

	// node-a goes away without ending its call.
	gone := time.Now()
	a.Close()
	require.Eventually(t, func() bool { return len(ended(fromA.events(), "held")) == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Less(t, time.Since(gone), 2*nodeTimeout, "the call was ended within the node timeout and a heartbeat")
	end := ended(fromA.events(), "held")[0]
	require.EqualValues(t, 3, end.Seq, "the seq after the last one handed on")
	require.Equal(t, bridge.KindDurable, end.Kind)
	var body struct {
		Type    string    `json:"type"`
		CallID  string    `json:"call_id"`
		Seq     uint64    `json:"seq"`
		Reason  string    `json:"reason"`
		EndedAt time.Time `json:"ended_at"`
	}
	require.NoError(t, json.Unmarshal(end.Data, &body))
	require.Equal(t, bridge.TypeCallEnded, body.Type)
	require.Equal(t, "held", body.CallID)
	require.EqualValues(t, 3, body.Seq)
	require.Equal(t, bridge.ReasonNodeLost, body.Reason)
	require.False(t, body.EndedAt.IsZero())
	require.Len(t, ended(fromA.events(), "done"), 1, "a call that ended is not ended again")
	require.EqualValues(t, 1, testutil.ToFloat64(b.m.nodesLost))
	require.EqualValues(t, 1, testutil.ToFloat64(b.m.nodes))

	// node-a comes back and publishes more of the call: its seq is behind
	// the call.ended, so the call stays ended here. A third node's event
	// after them shows they were read.
	js, ctx := jetStream(t, srv.URL())
	marker := events(t, "marker", bridge.TypeCallStarted)[0]
	for _, m := range []struct {
		node string
		ev   bridge.Event
	}{{"node-a", held[2]}, {"node-a", held[3]}, {"node-c", marker}} {
		msg := &nats.Msg{Subject: Subject(m.ev.CallID), Data: m.ev.Data, Header: nats.Header{}}
		msg.Header.Set(HeaderNode, m.node)
		msg.Header.Set(HeaderSeq, strconv.FormatUint(m.ev.Seq, 10))
		_, err := js.PublishMsg(ctx, msg)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		evs := fromA.events()
		return evs[len(evs)-1].CallID == "marker"
	}, 10*time.Second, 10*time.Millisecond)
	for _, ev := range fromA.events() {
		if ev.CallID == "held" {
			require.LessOrEqual(t, ev.Seq, uint64(3), "an event of a call ended as node_lost was handed on")
		}
	}
}

func TestLiveNodesNotLost(t *testing.T) {
	srv := clustertest.Start(t)
	a, fromB := start(t, srv.URL(), "node-a", Config{NodeTimeout: nodeTimeout})
	b, fromA := start(t, srv.URL(), "node-b", Config{NodeTimeout: nodeTimeout})
	a.Publish(events(t, "a-call", bridge.TypeCallStarted)[0])
	b.Publish(events(t, "b-call", bridge.TypeCallStarted)[0])
	require.Eventually(t, func() bool { return len(fromA.events()) == 1 && len(fromB.events()) == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Never(t, func() bool {
		return testutil.ToFloat64(a.m.nodesLost)+testutil.ToFloat64(b.m.nodesLost) > 0
	}, 4*nodeTimeout, 50*time.Millisecond, "a live node was declared lost")
	require.Empty(t, ended(fromA.events(), "a-call"))
	require.Empty(t, ended(fromB.events(), "b-call"))
	require.EqualValues(t, 2, testutil.ToFloat64(a.m.nodes))
	require.EqualValues(t, 2, testutil.ToFloat64(b.m.nodes))
}

func TestCutOffNodeDeclaresNobodyLost(t *testing.T) {
	// Longer than the clients' reconnect wait with its jitter (2s at
	// most), as --node-timeout's least is, so neither comes back too late
	// for the other.
	const timeout = 3 * time.Second
	srv := clustertest.Start(t)
	a, _ := start(t, srv.URL(), "node-a", Config{NodeTimeout: timeout})
	b, fromA := start(t, srv.URL(), "node-b", Config{NodeTimeout: timeout})
	a.Publish(events(t, "a-call", bridge.TypeCallStarted)[0])
	require.Eventually(t, func() bool { return len(fromA.events()) == 1 }, 10*time.Second, 10*time.Millisecond)

	// NATS itself goes away: every replica is cut off, none is lost.
	srv.Stop()
	require.Eventually(t, func() bool { return !b.Connected() }, 10*time.Second, 10*time.Millisecond)
	require.Never(t, func() bool { return testutil.ToFloat64(b.m.nodesLost) > 0 }, timeout+time.Second, 50*time.Millisecond)
	srv.Restart()
	require.Eventually(t, func() bool { return a.Connected() && b.Connected() }, 15*time.Second, 10*time.Millisecond)
	require.Never(t, func() bool { return testutil.ToFloat64(b.m.nodesLost) > 0 }, timeout+time.Second, 50*time.Millisecond,
		"a node was declared lost before it had a full timeout to be heard again")
	require.Empty(t, ended(fromA.events(), "a-call"))
}

// TestNodeIDConflict: two processes started with one node id (two
// replicas on one host that both default to its name) hear each other's
// heartbeats and count it; a replica alone with its id counts nothing.
func TestNodeIDConflict(t *testing.T) {
	srv := clustertest.Start(t)
	a, _ := start(t, srv.URL(), "same-host", Config{NodeTimeout: nodeTimeout})
	b, _ := start(t, srv.URL(), "same-host", Config{NodeTimeout: nodeTimeout})
	c, _ := start(t, srv.URL(), "other-host", Config{NodeTimeout: nodeTimeout})
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(a.m.conflicts) > 0 && testutil.ToFloat64(b.m.conflicts) > 0
	}, 10*time.Second, 20*time.Millisecond, "both processes with one node id hear the other")
	require.Eventually(t, func() bool { return testutil.ToFloat64(c.m.nodes) == 2 }, 10*time.Second, 20*time.Millisecond,
		"the other replica hears one node id")
	require.Zero(t, testutil.ToFloat64(c.m.conflicts), "a node id of its own: no conflict")
}
