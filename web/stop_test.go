package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/recorder"
)

// recordingServer is a server on 127.0.0.1 whose registry records to a
// store on disk, stopped when the test ends; ws is its ws:// base URL.
func recordingServer(t *testing.T) (*recorder.Store, *bridge.Registry, string) {
	t.Helper()
	store, err := recorder.NewStore(t.TempDir())
	require.NoError(t, err)
	metrics := newPromSet(nil)
	reg := bridge.NewRegistry(bridge.Config{Store: fuzzStore{store}, Metrics: metrics.bridge, Log: zerolog.Nop()})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		reg.Shutdown(ctx)
	})
	ws := "ws://" + listen(t, NewApp(Config{APIToken: "tok"}, Deps{Registry: reg, Log: zerolog.Nop(), Metrics: metrics.web, Gatherer: metrics}))
	return store, reg, ws
}

// TestStopAnsweredWithTheAudioInTheWAV: when a provider's stop is answered
// with the close frame, the stream's audio is already in its WAV file,
// under a header that counts it, although the call is still live (its
// other stream goes on) and has finalized nothing.
func TestStopAnsweredWithTheAudioInTheWAV(t *testing.T) {
	store, reg, ws := recordingServer(t)

	const id = "CAtwostreams"
	in := newMulawCall(t, ws, id)
	out, resp, err := fws.DefaultDialer.Dial(ws+"/media/twilio", nil)
	require.NoError(t, err)
	resp.Body.Close()
	t.Cleanup(func() { out.Close() })
	require.NoError(t, out.WriteMessage(fws.TextMessage, fmt.Appendf(nil,
		`{"event":"start","streamSid":"MZout","start":{"callSid":%q,"streamSid":"MZout","tracks":["outbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}`, id)))
	require.Eventually(t, func() bool {
		rec, ok := reg.Record(id)
		return ok && len(rec.Streams) == 2
	}, 10*time.Second, time.Millisecond)

	for range 20 { // 0.4 s: less than the WAV's write buffer
		require.NoError(t, in.frame())
	}
	require.NoError(t, in.stop())
	_ = in.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = in.c.ReadMessage()
	var ce *fws.CloseError
	require.True(t, errors.As(err, &ce), "the stop is answered with a close frame: %v", err)
	require.Equal(t, fws.CloseNormalClosure, ce.Code)

	path, err := store.TrackPath(id, "inbound")
	require.NoError(t, err)
	require.Equal(t, in.pcm, readWAV(t, path), "the stream's audio is in its WAV when the stop is answered")
	rec, _ := reg.Record(id)
	require.Equal(t, bridge.StatusActive, rec.Status, "the call goes on")
}

// TestStopClosesCleanly: after answering a stop with its close frame, the
// bridge waits for the provider's own close frame before it closes the
// connection, so that the provider's reply does not reach a closed socket
// (which the kernel answers with a reset) and the provider sees the
// connection end in order.
func TestStopClosesCleanly(t *testing.T) {
	_, _, ws := recordingServer(t)

	in := newMulawCall(t, ws, "CAcleanclose")
	for range 5 {
		require.NoError(t, in.frame())
	}
	require.NoError(t, in.stop())
	_ = in.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := in.c.ReadMessage() // answers the close frame with its own
	var ce *fws.CloseError
	require.True(t, errors.As(err, &ce), "the stop is answered with a close frame: %v", err)
	require.Equal(t, fws.CloseNormalClosure, ce.Code)

	n, err := in.c.NetConn().Read(make([]byte, 64))
	require.Equal(t, 0, n)
	require.ErrorIs(t, err, io.EOF, "the connection ends in order, not with a reset")
}
