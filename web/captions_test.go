package web

import (
	"encoding/json"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
)

// serveCaptions serves the hub's socket on a random local port and returns
// its ws:// URL.
func serveCaptions(t *testing.T, hub *testHub) string {
	t.Helper()
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/ws/captions", websocket.New(hub.ServeWS))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	t.Cleanup(func() {
		require.NoError(t, app.Shutdown())
		<-served
	})
	return "ws://" + ln.Addr().String() + "/ws/captions"
}

func dialCaptions(t *testing.T, url string) *fws.Conn {
	t.Helper()
	d := fws.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.Dial(url, nil)
	require.NoError(t, err)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// readEvent reads one frame, which must be a JSON text frame with the three
// common fields.
func readEvent(t *testing.T, conn *fws.Conn) wire {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	typ, data, err := conn.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, fws.TextMessage, typ)
	var fields map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(data, &fields), "%s", data)
	for _, k := range []string{"type", "call_id", "seq"} {
		require.Contains(t, fields, k, "%s", data)
	}
	return decode(t, data)
}

// readClose reads until the server's close frame and returns its code and
// text.
func readClose(t *testing.T, conn *fws.Conn) (int, string) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	for {
		_, _, err := conn.ReadMessage()
		if err == nil {
			continue
		}
		var ce *fws.CloseError
		require.ErrorAs(t, err, &ce)
		return ce.Code, ce.Text
	}
}

// serveWSRunning counts goroutines running ServeWS or started by it.
func serveWSRunning() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "web.(*Hub).ServeWS")
		}
		buf = make([]byte, 2*len(buf))
	}
}

func requireHandlersDone(t *testing.T, h *testHub) {
	t.Helper()
	require.Eventually(t, func() bool {
		return serveWSRunning() == 0 && h.Stats().Subscribers == 0
	}, 10*time.Second, 5*time.Millisecond, "ServeWS (or a goroutine it started) still running")
}

func TestCaptionsSocketDeliversEvents(t *testing.T) {
	// started is a hub whose call CA1 has started, and its caption socket's URL.
	started := func(t *testing.T) (*testHub, string) {
		h := newTestHub(t, HubConfig{})
		h.Publish(evStarted("CA1", "inbound"))
		return h, serveCaptions(t, h)
	}
	t.Run("one call", func(t *testing.T) {
		h, url := started(t)
		h.Publish(evPartial("CA1", "s1", "hel"))
		h.Publish(evFinal("CA1", "s1", "hello"))

		conn := dialCaptions(t, url+"?call=CA1")
		got := []wire{readEvent(t, conn), readEvent(t, conn)}
		h.Publish(evPartial("CA1", "s2", "wor"))
		got = append(got, readEvent(t, conn))
		h.Publish(evFinal("CA1", "s2", "world"))
		h.Publish(evEnded("CA1"))
		got = append(got, readEvent(t, conn), readEvent(t, conn))

		require.Equal(t, []string{bridge.TypeCallStarted, bridge.TypeTranscriptFinal, bridge.TypeTranscriptPartial, bridge.TypeTranscriptFinal, bridge.TypeCallEnded}, types(got))
		require.Equal(t, []uint64{1, 3, 4, 5, 6}, seqs(got))
		code, text := readClose(t, conn)
		require.Equal(t, fws.CloseNormalClosure, code)
		require.Equal(t, "call ended", text)
		requireHandlersDone(t, h)
	})

	t.Run("all calls", func(t *testing.T) {
		h, url := started(t)
		h.Publish(evStarted("CA2", "outbound"))

		conn := dialCaptions(t, url)
		a, b := readEvent(t, conn), readEvent(t, conn)
		require.Equal(t, []string{"CA1", "CA2"}, []string{a.CallID, b.CallID})
		h.Publish(evFinal("CA2", "s1", "hi"))
		h.Publish(evFinal("CA1", "s1", "yo"))
		require.Equal(t, wire{Type: bridge.TypeTranscriptFinal, CallID: "CA2", Seq: 2, SegmentID: "s1", Text: "hi"}, readEvent(t, conn))
		require.Equal(t, wire{Type: bridge.TypeTranscriptFinal, CallID: "CA1", Seq: 2, SegmentID: "s1", Text: "yo"}, readEvent(t, conn))
	})

	t.Run("resume after", func(t *testing.T) {
		h, url := started(t)
		h.Publish(evFinal("CA1", "s1", "a"))
		h.Publish(evFinal("CA1", "s2", "b"))
		conn := dialCaptions(t, url+"?call=CA1&after=2")
		require.Equal(t, uint64(3), readEvent(t, conn).Seq)
	})
}

func TestCaptionsSocketClientCloseEndsHandler(t *testing.T) {
	tests := []struct {
		name  string
		leave func(t *testing.T, conn *fws.Conn)
	}{
		{"close frame", func(t *testing.T, conn *fws.Conn) {
			require.NoError(t, conn.WriteControl(fws.CloseMessage,
				fws.FormatCloseMessage(fws.CloseNormalClosure, "bye"), time.Now().Add(time.Second)))
			code, _ := readClose(t, conn) // the server answers the close
			require.Equal(t, fws.CloseNormalClosure, code)
			require.NoError(t, conn.Close())
		}},
		{"connection dropped", func(t *testing.T, conn *fws.Conn) {
			require.NoError(t, conn.Close())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHub(t, HubConfig{})
			url := serveCaptions(t, h)
			conn := dialCaptions(t, url+"?call=CA1")
			require.Eventually(t, func() bool { return h.Stats().Subscribers == 1 }, 5*time.Second, time.Millisecond)
			require.Positive(t, serveWSRunning())

			tt.leave(t, conn)
			requireHandlersDone(t, h)
		})
	}
}

func TestCaptionsSocketSlowConsumer(t *testing.T) {
	h := newTestHub(t, HubConfig{Outbox: 8})
	url := serveCaptions(t, h)
	conn := dialCaptions(t, url+"?call=CA1")
	require.Eventually(t, func() bool { return h.Stats().Subscribers == 1 }, 5*time.Second, time.Millisecond)
	h.Publish(evStarted("CA1", "inbound"))

	// The client reads nothing: socket buffers fill, the handler's write
	// blocks, the outbox overflows. Distinct segments so nothing coalesces.
	big := strings.Repeat("x", 64<<10)
	for i := 0; h.Stats().SlowDisconnects == 0; i++ {
		require.Less(t, i, 20_000, "never cut off")
		h.Publish(evPartial("CA1", fmt.Sprint("s", i), big))
	}

	// Reading again unblocks the handler, which then says why it closes.
	code, text := readClose(t, conn)
	require.Equal(t, CloseSlowConsumer, code)
	require.Equal(t, "slow consumer", text)
	requireHandlersDone(t, h)
}

func TestCaptionsSocketRefusals(t *testing.T) {
	tests := []struct {
		name     string
		cfg      HubConfig
		query    string
		setup    func(t *testing.T, h *testHub)
		after    func(t *testing.T, h *testHub) // once subscribed
		wantCode int
		wantText string
	}{
		{name: "after not a number", query: "?call=CA1&after=abc", wantCode: fws.ClosePolicyViolation, wantText: "invalid after"},
		{name: "after negative", query: "?call=CA1&after=-1", wantCode: fws.ClosePolicyViolation, wantText: "invalid after"},
		{name: "after without call", query: "?after=3", wantCode: fws.ClosePolicyViolation, wantText: "after needs call"},
		{
			name: "call never starts", cfg: HubConfig{WaitTimeout: 50 * time.Millisecond},
			query: "?call=CA-none", wantCode: CloseCallNotStarted, wantText: "call not started",
		},
		{
			name: "too many subscribers", cfg: HubConfig{MaxSubscribers: 1}, query: "?call=CA1",
			setup:    func(t *testing.T, h *testHub) { subscribe(t, h, "CA2", 0) },
			wantCode: fws.CloseTryAgainLater, wantText: "too many subscribers",
		},
		{
			name: "hub shutdown", query: "?call=CA1",
			after:    func(t *testing.T, h *testHub) { h.Close() },
			wantCode: fws.CloseGoingAway, wantText: "shutdown",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHub(t, tt.cfg)
			url := serveCaptions(t, h)
			if tt.setup != nil {
				tt.setup(t, h)
			}
			conn := dialCaptions(t, url+tt.query)
			if tt.after != nil {
				require.Eventually(t, func() bool { return h.Stats().Subscribers == 1 }, 5*time.Second, time.Millisecond)
				tt.after(t, h)
			}
			code, text := readClose(t, conn)
			require.Equal(t, tt.wantCode, code)
			require.Equal(t, tt.wantText, text)
			require.Eventually(t, func() bool { return serveWSRunning() == 0 }, 10*time.Second, 5*time.Millisecond)
		})
	}
}

func TestCaptionsSocketPings(t *testing.T) {
	h := newTestHub(t, HubConfig{})
	h.pingEvery = 10 * time.Millisecond
	url := serveCaptions(t, h)
	conn := dialCaptions(t, url+"?call=CA1")

	pinged := make(chan struct{}, 1)
	conn.SetPingHandler(func(string) error {
		select {
		case pinged <- struct{}{}:
		default:
		}
		return nil
	})
	readDone := make(chan error, 1)
	go func() {
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				readDone <- err
				return
			}
		}
	}()
	select {
	case <-pinged:
	case <-time.After(5 * time.Second):
		t.Fatal("no ping")
	}
	require.NoError(t, conn.Close())
	select {
	case err := <-readDone:
		require.Error(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("client reader did not end")
	}
	requireHandlersDone(t, h)
}
