package web

import (
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
)

// TestHubClusterUnavailable: when other replicas' events stop reaching the
// hub, the subscribers that depend on them (another replica's live call,
// all calls) are cut off and new ones refused, while this replica's calls,
// ended calls and calls not started yet are served; once the events flow
// again a resume after the last seq gets exactly the rest.
func TestHubClusterUnavailable(t *testing.T) {
	h := newTestHub(t, HubConfig{})
	remote := bridge.NewSequencer(h.Remote(), 0, nil, zerolog.Nop())
	remote.Publish(evStarted("CAremote", "inbound"))   // 1
	remote.Publish(evFinal("CAremote", "s1", "hello")) // 2
	remote.Publish(evStarted("CAdone", "inbound"))
	remote.Publish(evEnded("CAdone"))
	h.Publish(evStarted("CAlocal", "inbound"))   // 1
	h.Publish(evFinal("CAlocal", "s1", "local")) // 2

	onRemote := subscribe(t, h, "CAremote", 0)
	onLocal := subscribe(t, h, "CAlocal", 0)
	all := subscribe(t, h, "", 0)
	waiting := subscribe(t, h, "CAlater", 0)
	require.Equal(t, []uint64{1, 2}, seqs(nextN(t, onRemote, 2)))
	require.Equal(t, []uint64{1, 2}, seqs(nextN(t, onLocal, 2)))
	nextN(t, all, 4)
	require.Equal(t, 4, h.Stats().Subscribers)

	h.Remote().Available(false)
	require.ErrorIs(t, nextErr(t, onRemote), DisconnectClusterUnavailable)
	require.ErrorIs(t, nextErr(t, all), DisconnectClusterUnavailable)
	require.Equal(t, 2, h.Stats().Subscribers, "the local call's and the waiting subscriber stay")
	_, err := h.Subscribe("CAremote", 2)
	require.ErrorIs(t, err, ErrClusterUnavailable, "a new subscriber of another replica's live call is refused")
	_, err = h.Subscribe("", 0)
	require.ErrorIs(t, err, ErrClusterUnavailable, "so is a new all-calls subscriber")
	code, text := closeFor(err)
	require.Equal(t, CloseClusterUnavailable, code)
	require.Equal(t, "cluster unavailable", text)
	done := subscribe(t, h, "CAdone", 0)
	require.Equal(t, []string{bridge.TypeCallStarted, bridge.TypeCallEnded}, types(nextN(t, done, 2)), "an ended call's replay is whole")
	require.Equal(t, uint64(4), h.clusterClosed.Load())

	h.Publish(evFinal("CAlocal", "s2", "still here"))
	require.Equal(t, uint64(3), next(t, onLocal).Seq, "this replica's call goes on")
	h.Publish(evStarted("CAlater", "inbound"))
	require.Equal(t, bridge.TypeCallStarted, next(t, waiting).Type, "a call that starts here reaches its waiting subscriber")

	// Back: what the remote call said meanwhile arrives, and a resume gets it.
	remote.Publish(evFinal("CAremote", "s2", "again")) // 3
	h.Remote().Available(true)
	remote.Publish(evEnded("CAremote")) // 4
	resumed := subscribe(t, h, "CAremote", 2)
	require.Equal(t, []uint64{3, 4}, seqs(nextN(t, resumed, 2)))
	require.Equal(t, []string{bridge.TypeTranscriptFinal, bridge.TypeCallEnded}, types(nextN(t, subscribe(t, h, "CAremote", 2), 2)))
	subscribe(t, h, "", 0)

	// A call id that starts again here is this replica's call.
	h.Publish(evStarted("CAremote", "inbound"))
	h.Remote().Available(false)
	again := subscribe(t, h, "CAremote", 0)
	require.Equal(t, bridge.TypeCallStarted, next(t, again).Type)
}
