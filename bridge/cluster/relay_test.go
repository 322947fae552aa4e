package cluster

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge/provider"
)

// TestRelayQueueFullDrops: with nobody publishing, frames beyond the relay
// queue are dropped and counted, and Media never blocks; the end message
// is dropped the same way.
func TestRelayQueueFullDrops(t *testing.T) {
	const size = 8
	c := &Cluster{relay: newRelays(size), m: NewMetrics(nil)}
	rs := &RelayStream{c: c, id: "relay-1", subj: RelaySubject("node-a"), stopCh: make(chan struct{}), done: make(chan struct{})}
	ev := &provider.Event{Kind: provider.KindMedia, Track: "inbound", Payload: make([]byte, 160)}
	for range size + 5 {
		require.NoError(t, rs.Media(ev))
	}
	require.Len(t, c.relay.queue, size)
	require.Equal(t, 5.0, testutil.ToFloat64(c.m.relayDropped))
	rs.End("stop", nil)
	rs.End("stop", nil) // idempotent
	require.Equal(t, 6.0, testutil.ToFloat64(c.m.relayDropped))

	// What was queued is the stream's frames, in order.
	for range size {
		m := <-c.relay.queue
		kind, id, rest, err := parseHead(*m.buf)
		require.NoError(t, err)
		require.Equal(t, byte(kindMedia), kind)
		require.Equal(t, "relay-1", string(id))
		md, err := parseMedia(rest)
		require.NoError(t, err)
		require.Equal(t, "inbound", trackOf(md.flags))
		require.Len(t, md.payload, 160)
		require.Equal(t, RelaySubject("node-a"), m.subj)
	}
}
