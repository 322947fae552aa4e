package web

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
)

// Signed URLs, proxies' headers and cookies can make a request's header
// long: up to 16 KiB is served on every route, sockets included, and a
// socket upgraded from such a request carries a call end to end. Longer
// headers are refused with 431, not a crash.
func TestLongRequestHeaders(t *testing.T) {
	s := serveBounds(t, Config{}, bridge.Config{})
	// About 15.5 KiB of request header in all: a 12 KiB query and a 3 KiB cookie.
	query := "sig=" + strings.Repeat("S", 12<<10)
	cookie := "session=" + strings.Repeat("c", 3<<10)
	hdr := http.Header{"Authorization": {"Bearer " + boundsToken}, "Cookie": {cookie}}
	dial := func(t *testing.T, path string, h http.Header) (*fws.Conn, int) {
		t.Helper()
		d := fws.Dialer{HandshakeTimeout: 5 * time.Second}
		c, resp, err := d.Dial("ws://"+s.base+path, h)
		if resp != nil && resp.Body != nil {
			_ = resp.Body.Close()
		}
		if err != nil {
			require.NotNil(t, resp, "dial %.60s: %v", path, err)
			return nil, resp.StatusCode
		}
		t.Cleanup(func() { _ = c.Close() })
		return c, http.StatusSwitchingProtocols
	}

	t.Run("caption and media sockets", func(t *testing.T) {
		const callSid, streamSid = "CAlongheaders", "MZlongheaders"
		sub, code := dial(t, "/ws/captions?call="+callSid+"&"+query, hdr)
		require.Equal(t, http.StatusSwitchingProtocols, code)
		media, code := dial(t, "/media/twilio?"+query, hdr)
		require.Equal(t, http.StatusSwitchingProtocols, code)
		sendText(t, media, twStart(callSid, streamSid, "AC1", "audio/x-mulaw"))
		for k := range 5 {
			sendText(t, media, twMedia(streamSid, k, make([]byte, 160)))
		}
		sendText(t, media, twStop(callSid, streamSid, 7))
		var types []string
		require.NoError(t, sub.SetReadDeadline(time.Now().Add(10*time.Second)))
		for len(types) == 0 || types[len(types)-1] != bridge.TypeCallEnded {
			_, data, err := sub.ReadMessage()
			require.NoError(t, err, "after %v", types)
			var ev struct{ Type string }
			require.NoError(t, json.Unmarshal(data, &ev))
			types = append(types, ev.Type)
		}
		require.Equal(t, bridge.TypeCallStarted, types[0])
	})

	t.Run("REST", func(t *testing.T) {
		req, err := http.NewRequest("GET", "http://"+s.base+"/api/calls?"+query, nil)
		require.NoError(t, err)
		req.Header = hdr.Clone()
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	})

	t.Run("beyond 16 KiB", func(t *testing.T) {
		_, code := dial(t, "/media/twilio?sig="+strings.Repeat("S", 17<<10), nil)
		require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, code)
	})

	// A client still sending its header when the server has refused it
	// can finish sending and then read the 431: the connection closes
	// gently, not with a reset that fails the client's write (an HTTP
	// client reads no answer to a request it could not send).
	t.Run("beyond 16 KiB, sent slowly", func(t *testing.T) {
		c, err := net.Dial("tcp", s.base)
		require.NoError(t, err)
		defer c.Close()
		_, err = io.WriteString(c, "GET /media/twilio?sig=")
		require.NoError(t, err)
		for k := range 16 { // 64 KiB: the server answers after the first 16
			_, err = c.Write(bytes.Repeat([]byte("S"), 4<<10))
			require.NoError(t, err, "write %d", k)
			time.Sleep(5 * time.Millisecond)
		}
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
	})
}
