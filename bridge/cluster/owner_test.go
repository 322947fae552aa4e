package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/cluster/clustertest"
	"github.com/callcaptions/bridge/bridge/provider"
)

// TestClaim: the first replica to claim a call holds it; it stays its
// own, the other replica is sent to it, and the key goes when the call
// ends here.
func TestClaim(t *testing.T) {
	srv := clustertest.Start(t)
	a, _ := start(t, srv.URL(), "node-a", Config{NodeTimeout: nodeTimeout})
	b, fromA := start(t, srv.URL(), "node-b", Config{NodeTimeout: nodeTimeout})
	ctx := context.Background()

	cl, err := a.Claim(ctx, "CA-claim")
	require.NoError(t, err)
	require.Equal(t, Claim{Owner: "node-a", Local: true}, withoutRev(cl), "created")
	cl, err = a.Claim(ctx, "CA-claim")
	require.NoError(t, err)
	require.Equal(t, Claim{Owner: "node-a", Local: true}, withoutRev(cl), "held here already")
	cl, err = b.Claim(ctx, "CA-claim")
	require.NoError(t, err)
	require.Equal(t, Claim{Owner: "node-a"}, withoutRev(cl), "held by the other, live replica")
	require.Equal(t, 1.0, testutil.ToFloat64(a.m.ownerClaims.WithLabelValues("created")))
	require.Equal(t, 1.0, testutil.ToFloat64(a.m.ownerClaims.WithLabelValues("local")))
	require.Equal(t, 1.0, testutil.ToFloat64(b.m.ownerClaims.WithLabelValues("remote")))

	// Another replica's call.ended does not release a key it does not hold.
	for _, ev := range events(t, "CA-claim", bridge.TypeCallStarted, bridge.TypeCallEnded) {
		b.Publish(ev)
	}
	kv, err := a.owners(ctx)
	require.NoError(t, err)
	require.Never(t, func() bool { _, err := kv.Get(ctx, Token("CA-claim")); return err != nil }, 300*time.Millisecond, 20*time.Millisecond)

	for _, ev := range events(t, "CA-claim", bridge.TypeCallStarted, bridge.TypeCallEnded) {
		a.Publish(ev)
	}
	require.Eventually(t, func() bool { _, err := kv.Get(ctx, Token("CA-claim")); return err != nil }, 10*time.Second, 10*time.Millisecond,
		"the owner's call.ended deletes the key")
	require.Eventually(t, func() bool { return len(fromA.events()) == 2 }, 10*time.Second, 10*time.Millisecond, "B has A's events")
	cl, err = b.Claim(ctx, "CA-claim")
	require.NoError(t, err)
	require.Equal(t, Claim{Owner: "node-b", Local: true, LastSeq: 2}, withoutRev(cl),
		"a later stream makes a new owner, which continues after A's call.ended")
}

func withoutRev(cl Claim) Claim { cl.rev = 0; return cl }

// TestClaimRace: replicas claiming the same calls at the same moment
// agree on one owner per call.
func TestClaimRace(t *testing.T) {
	srv := clustertest.Start(t)
	nodes := []*Cluster{}
	for i := range 3 {
		c, _ := start(t, srv.URL(), fmt.Sprintf("node-%d", i), Config{NodeTimeout: nodeTimeout})
		nodes = append(nodes, c)
	}
	const calls, tries = 10, 4
	owners := make([][]string, calls)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for k := range calls {
		for _, c := range nodes {
			for range tries {
				wg.Go(func() {
					cl, err := c.Claim(context.Background(), fmt.Sprintf("CA-race-%d", k))
					owner := cl.Owner
					if err != nil {
						owner = "error: " + err.Error()
					}
					mu.Lock()
					owners[k] = append(owners[k], owner)
					mu.Unlock()
				})
			}
		}
	}
	wg.Wait()
	created := 0.0
	for _, c := range nodes {
		created += testutil.ToFloat64(c.m.ownerClaims.WithLabelValues("created"))
	}
	require.Equal(t, float64(calls), created, "each call's key created once")
	for k, got := range owners {
		require.Len(t, got, len(nodes)*tries)
		for _, o := range got {
			require.Equal(t, got[0], o, "call %d: one owner for every claim", k)
		}
	}
}

// TestClaimTakeOver: the key of a lost replica's call is taken over, and
// the call's seq continues after the node_lost end.
func TestClaimTakeOver(t *testing.T) {
	srv := clustertest.Start(t)
	a, _ := start(t, srv.URL(), "node-a", Config{NodeTimeout: nodeTimeout})
	b, fromA := start(t, srv.URL(), "node-b", Config{NodeTimeout: nodeTimeout})
	ctx := context.Background()
	_, err := a.Claim(ctx, "CA-lost")
	require.NoError(t, err)
	for _, ev := range events(t, "CA-lost", bridge.TypeCallStarted, bridge.TypeTranscriptFinal) {
		a.Publish(ev)
	}
	require.Eventually(t, func() bool { return len(fromA.events()) == 2 }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return testutil.ToFloat64(b.m.nodes) == 2 }, 10*time.Second, 10*time.Millisecond)
	cl, err := b.Claim(ctx, "CA-lost")
	require.NoError(t, err)
	require.False(t, cl.Local, "A is alive")

	a.Close()
	require.Eventually(t, func() bool { return !b.alive("node-a") }, 3*nodeTimeout, 10*time.Millisecond)
	cl, err = b.Claim(ctx, "CA-lost")
	require.NoError(t, err)
	require.True(t, cl.Local)
	require.True(t, cl.TookOver)
	require.EqualValues(t, 3, cl.LastSeq, "after call.started, the final and the node_lost end")
	ends := ended(fromA.events(), "CA-lost")
	require.Len(t, ends, 1, "the lost call ended once for B's subscribers")
	require.EqualValues(t, 3, ends[0].Seq)
	cl, err = b.Claim(ctx, "CA-lost")
	require.NoError(t, err)
	require.Equal(t, Claim{Owner: "node-b", Local: true}, withoutRev(cl), "held by B from now on")
	require.Equal(t, 1.0, testutil.ToFloat64(b.m.ownerClaims.WithLabelValues("taken_over")))
}

// TestRelayRefused: a relayed stream the owner cannot take is refused
// with the owner's reason, as a local refusal would be.
func TestRelayRefused(t *testing.T) {
	srv := clustertest.Start(t)
	a, _ := start(t, srv.URL(), "node-a", Config{NodeTimeout: nodeTimeout})
	b, _ := start(t, srv.URL(), "node-b", Config{NodeTimeout: nodeTimeout})
	a.SetStreams(refusingStreams{bridge.ErrTooManyCalls})
	_, err := a.Claim(context.Background(), "CA-refused")
	require.NoError(t, err)
	rs, err := b.Route(provider.Plivo, &provider.Start{CallID: "CA-refused", StreamID: "s1", Tracks: []string{"outbound"}})
	require.Nil(t, rs)
	require.ErrorIs(t, err, bridge.ErrTooManyCalls)
	require.Equal(t, "max_calls", bridge.RefusalReason(err))
	require.Zero(t, testutil.ToFloat64(b.m.relayStreamsOut))
}

type refusingStreams struct{ err error }

func (r refusingStreams) StartStream(provider.Name, *provider.Start) (*bridge.Stream, error) {
	return nil, fmt.Errorf("refused: %w", r.err)
}
func (refusingStreams) ContinueAfter(string, uint64) {}
