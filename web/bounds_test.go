package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	fws "github.com/fasthttp/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/provider"
	"github.com/callcaptions/bridge/recorder"
)

// boundsToken is the API token of the bounds tests' servers.
const boundsToken = "bounds-api-token-0123456789"

type boundsServer struct {
	base string // host:port
	reg  *bridge.Registry
	data string
	log  *fuzzLog
}

// serveBounds runs the whole app on a loopback port, with the registry
// counting into the app's metrics and logging into log.
func serveBounds(t *testing.T, cfg Config, bcfg bridge.Config) *boundsServer {
	t.Helper()
	data := t.TempDir()
	store, err := recorder.NewStore(data)
	require.NoError(t, err)
	logs := &fuzzLog{}
	log := zerolog.New(logs)
	hub := NewHub(HubConfig{}, log)
	m := newPromSet(hub)
	bcfg.Store, bcfg.Publisher, bcfg.Metrics, bcfg.Log = fuzzStore{store}, hub, m.bridge, log
	reg := bridge.NewRegistry(bcfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		reg.Shutdown(ctx)
		hub.Close()
	})
	if cfg.APIToken == "" {
		cfg.APIToken = boundsToken
	}
	app := NewApp(cfg, Deps{Registry: reg, Hub: hub, Metrics: m.web, Gatherer: m, Log: log})
	return &boundsServer{base: listen(t, app), reg: reg, data: data, log: logs}
}

// metric is the value of one series on /metrics (0 when absent).
func (s *boundsServer) metric(t *testing.T, series string) float64 {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+s.base+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+boundsToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	return 0
}

func (s *boundsServer) post(t *testing.T, path, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", "http://"+s.base+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// dialMedia opens a media socket; on a refused upgrade it returns the
// HTTP status instead.
func (s *boundsServer) dialMedia(t *testing.T, path string) (*fws.Conn, int) {
	t.Helper()
	d := fws.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.Dial("ws://"+s.base+path, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		require.ErrorIs(t, err, fws.ErrBadHandshake)
		return nil, resp.StatusCode
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn, http.StatusSwitchingProtocols
}

func twStart(callSid, streamSid, account, encoding string) []byte {
	return twStartTrack(callSid, streamSid, account, encoding, "inbound")
}

func twStartTrack(callSid, streamSid, account, encoding, track string) []byte {
	return []byte(fmt.Sprintf(`{"event":"start","sequenceNumber":"1","start":{"accountSid":%q,"streamSid":%q,"callSid":%q,"tracks":[%q],"mediaFormat":{"encoding":%q,"sampleRate":8000,"channels":1}},"streamSid":%q}`,
		account, streamSid, callSid, track, encoding, streamSid))
}

func twMedia(streamSid string, k int, payload []byte) []byte {
	return []byte(fmt.Sprintf(`{"event":"media","sequenceNumber":"%d","media":{"track":"inbound","chunk":"%d","timestamp":"%d","payload":%q},"streamSid":%q}`,
		k+2, k+1, 20*k, base64.StdEncoding.EncodeToString(payload), streamSid))
}

func twStop(callSid, streamSid string, seq int) []byte {
	return []byte(fmt.Sprintf(`{"event":"stop","sequenceNumber":"%d","stop":{"callSid":%q},"streamSid":%q}`, seq, callSid, streamSid))
}

func sendText(t *testing.T, c *fws.Conn, frames ...[]byte) {
	t.Helper()
	for _, f := range frames {
		require.NoError(t, c.WriteMessage(fws.TextMessage, f))
	}
}

// TestCallbackFlood: callbacks with big bodies for calls that never start
// keep only the fields a record uses, and what they may hold is bounded
// per call and in total; what is dropped is counted.
func TestCallbackFlood(t *testing.T) {
	s := serveBounds(t, Config{}, bridge.Config{}) // media sockets open: so are callbacks, bounded
	junk := strings.Repeat("j", 60<<10-200)
	t.Run("big bodies keep only the allowed fields, cut short", func(t *testing.T) {
		for i := range 200 {
			form := url.Values{"CallSid": {fmt.Sprintf("CAflood%03d", i%100)}, "StreamEvent": {"stream-started"},
				"StreamError": {strings.Repeat("e", 1000)}, "Junk": {junk}}
			status, body := s.post(t, "/callbacks/twilio", form.Encode(), nil)
			require.Equal(t, http.StatusOK, status, body)
		}
		calls, cbs, bytes := s.reg.PendingCallbacks()
		require.Equal(t, 100, calls)
		require.Equal(t, 200, cbs)
		require.Less(t, bytes, 200*1024, "about 12 MiB were posted; only the allowed fields, cut short, are held")
	})
	t.Run("one call's share", func(t *testing.T) {
		refused := 0
		for range bridge.MaxCallbacksPerCall + 20 {
			status, _ := s.post(t, "/callbacks/twilio", url.Values{"CallSid": {"CAone"}, "StreamEvent": {"stream-error"}}.Encode(), nil)
			if status == http.StatusTooManyRequests {
				refused++
			} else {
				require.Equal(t, http.StatusOK, status)
			}
		}
		require.Equal(t, 20, refused)
		require.Equal(t, float64(20), s.metric(t, `bridge_callbacks_dropped_total{reason="call_full"}`))
	})
	t.Run("calls that never start", func(t *testing.T) {
		for i := range 1200 {
			status, _ := s.post(t, "/callbacks/plivo", url.Values{"CallUUID": {fmt.Sprintf("never-%d", i)}, "Event": {"StartStream"}}.Encode(), nil)
			require.Equal(t, http.StatusOK, status)
		}
		calls, cbs, bytes := s.reg.PendingCallbacks()
		require.LessOrEqual(t, calls, 1024)
		require.LessOrEqual(t, cbs, 4096)
		require.LessOrEqual(t, bytes, 1<<20)
		require.Greater(t, s.metric(t, `bridge_callbacks_dropped_total{reason="pending_evicted"}`), float64(0))
	})
	t.Run("a call id no provider sends", func(t *testing.T) {
		status, _ := s.post(t, "/callbacks/twilio", url.Values{"CallSid": {strings.Repeat("C", 10_000)}}.Encode(), nil)
		require.Equal(t, http.StatusBadRequest, status)
	})
}

// TestCallbackNeedsMediaCredential: with media authentication configured,
// a status callback needs what the provider's media sockets need (or its
// signature, or the API token).
func TestCallbackNeedsMediaCredential(t *testing.T) {
	const bearer = "media-bearer-0123456789"
	s := serveBounds(t, Config{Auth: Auth{BearerToken: bearer}}, bridge.Config{})
	form := url.Values{"CallSid": {"CAcred"}, "StreamEvent": {"stream-started"}}.Encode()
	cases := []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"no credential", nil, http.StatusUnauthorized},
		{"wrong bearer", map[string]string{"Authorization": "Bearer not-it"}, http.StatusForbidden},
		{"the media bearer token", map[string]string{"Authorization": "Bearer " + bearer}, http.StatusOK},
		{"the API token", map[string]string{"Authorization": "Bearer " + boundsToken}, http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := s.post(t, "/callbacks/twilio", form, tc.hdr)
			require.Equal(t, tc.want, status, body)
		})
	}
	_, cbs, _ := s.reg.PendingCallbacks()
	require.Equal(t, 2, cbs, "only the authenticated callbacks are held")
}

// callFolders lists what the store holds under data.
func callFolders(t *testing.T, data string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(data, "calls"))
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestRefusalFlood: streams refused at their start frame with 100 KB call
// ids write nothing and log bounded lines.
func TestRefusalFlood(t *testing.T) {
	s := serveBounds(t, Config{}, bridge.Config{})
	const n = 200
	for i := range n {
		c, status := s.dialMedia(t, "/media/twilio")
		require.Equal(t, http.StatusSwitchingProtocols, status)
		id := fmt.Sprintf("CA%03d%s", i, strings.Repeat("x", 100_000))
		sendText(t, c, twStart(id, "MZ"+strings.Repeat("s", 1000), "AC1", "audio/opus"))
		code, reason := readClose(t, c)
		require.Equal(t, closePolicy, code)
		require.Contains(t, reason, "call id")
		_ = c.Close()
	}
	require.Empty(t, callFolders(t, s.data), "nothing written for refused ids")
	require.Equal(t, float64(n), s.metric(t, `bridge_streams_refused_total{reason="call_id"}`))
	s.log.mu.Lock()
	logs := bytes.Clone(s.log.b.Bytes())
	s.log.mu.Unlock()
	lines := bytes.Split(bytes.TrimSpace(logs), []byte("\n"))
	for _, l := range lines {
		require.Less(t, len(l), 1000, "a bounded log line: %.300s", l)
	}
	require.Less(t, len(logs), n*1000, "the log grew by %d bytes", len(logs))
}

// TestHijackRefused: a second stream naming a live call's id from another
// account or provider is closed with 1008, and the call's record and
// recording hold only the owner's stream.
func TestHijackRefused(t *testing.T) {
	s := serveBounds(t, Config{}, bridge.Config{})
	const callSid, owner = "CAhijack0000000000000000000000001", "MZowner"
	c, _ := s.dialMedia(t, "/media/twilio")
	sendText(t, c, twStart(callSid, owner, "AC1", "audio/x-mulaw"))
	frame := bytes.Repeat([]byte{0x55}, 160)
	for k := range 25 {
		sendText(t, c, twMedia(owner, k, frame))
	}
	require.Eventually(t, func() bool {
		rec, ok := s.reg.Record(callSid)
		return ok && len(rec.Tracks) == 1 && rec.Tracks[0].Frames == 25
	}, 10*time.Second, 5*time.Millisecond)

	intruders := []struct {
		name, path, start, reason string
	}{
		// The outbound track is free: only the account keeps the stream out.
		{"another account", "/media/twilio", string(twStartTrack(callSid, "MZintruder1", "AC2", "audio/x-mulaw", "outbound")), "account_mismatch"},
		{"another provider", "/media/signalwire", string(twStartTrack(callSid, "MZintruder2", "AC1", "audio/x-mulaw", "outbound")), "provider_mismatch"},
		{"another account, unsupported codec", "/media/twilio", string(twStart(callSid, "MZintruder3", "AC2", "audio/opus")), "unsupported"},
	}
	for _, in := range intruders {
		t.Run(in.name, func(t *testing.T) {
			x, _ := s.dialMedia(t, in.path)
			sendText(t, x, []byte(in.start))
			code, _ := readClose(t, x)
			require.Contains(t, []int{closePolicy, closeUnsupported}, code)
			require.Equal(t, float64(1), s.metric(t, `bridge_streams_refused_total{reason="`+in.reason+`"}`))
		})
	}
	for k := 25; k < 50; k++ {
		sendText(t, c, twMedia(owner, k, frame))
	}
	sendText(t, c, twStop(callSid, owner, 60))
	var rec bridge.CallRecord
	require.Eventually(t, func() bool {
		var ok bool
		rec, ok = s.reg.Record(callSid)
		return ok && rec.Status == bridge.StatusEnded
	}, 10*time.Second, 5*time.Millisecond)
	require.Len(t, rec.Streams, 1, "only the owner's stream: %+v", rec.Streams)
	require.Equal(t, owner, rec.Streams[0].StreamID)
	require.Len(t, rec.Tracks, 1)
	require.Equal(t, int64(50*160), rec.Tracks[0].Samples)
	store, err := recorder.NewStore(s.data)
	require.NoError(t, err)
	path, err := store.TrackPath(callSid, "inbound")
	require.NoError(t, err)
	_, samples, err := recorder.ReadWAVInfo(path)
	require.NoError(t, err)
	require.Equal(t, int64(50*160), samples, "the recording holds the owner's audio only")
	files, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	for _, f := range files {
		require.NotContains(t, f.Name(), "outbound")
	}
}

// TestSocketsWithoutStart: media sockets that send no start frame are
// closed after the start timeout (1008) and bounded in number (503 before
// the upgrade); a stream that started is not affected.
func TestSocketsWithoutStart(t *testing.T) {
	const timeout = 400 * time.Millisecond
	s := serveBounds(t, Config{StartTimeout: timeout, MaxPendingStreams: 3}, bridge.Config{})
	const callSid, streamSid = "CAstarted00000000000000000000001", "MZstarted"
	started, _ := s.dialMedia(t, "/media/twilio")
	sendText(t, started, twStart(callSid, streamSid, "AC1", "audio/x-mulaw"))
	require.Eventually(t, func() bool {
		_, ok := s.reg.Record(callSid)
		return ok && s.metric(t, "bridge_media_sockets_pending") == 0
	}, 10*time.Second, 5*time.Millisecond)

	var idle []*fws.Conn
	for range 3 {
		c, status := s.dialMedia(t, "/media")
		require.Equal(t, http.StatusSwitchingProtocols, status)
		idle = append(idle, c)
	}
	require.Eventually(t, func() bool { return s.metric(t, "bridge_media_sockets_pending") == 3 }, 5*time.Second, 5*time.Millisecond)
	_, status := s.dialMedia(t, "/media")
	require.Equal(t, http.StatusServiceUnavailable, status, "a fourth socket waiting for its start is refused before the upgrade")
	require.Equal(t, float64(1), s.metric(t, `bridge_media_sockets_unstarted_closed_total{reason="pending_full"}`))

	for _, c := range idle {
		code, reason := readClose(t, c)
		require.Equal(t, closePolicy, code)
		require.Equal(t, "no start frame within 400ms", reason)
	}
	require.Equal(t, float64(3), s.metric(t, `bridge_media_sockets_unstarted_closed_total{reason="start_timeout"}`))
	require.Eventually(t, func() bool { return s.metric(t, "bridge_media_sockets_pending") == 0 }, 5*time.Second, 5*time.Millisecond)
	c, status := s.dialMedia(t, "/media")
	require.Equal(t, http.StatusSwitchingProtocols, status, "room again")
	_ = c.Close()

	// The started stream outlived the start timeout of sockets opened after it.
	for k := range 10 {
		sendText(t, started, twMedia(streamSid, k, bytes.Repeat([]byte{0x55}, 160)))
	}
	sendText(t, started, twStop(callSid, streamSid, 20))
	require.Eventually(t, func() bool {
		rec, _ := s.reg.Record(callSid)
		return rec.Status == bridge.StatusEnded && len(rec.Tracks) == 1 && rec.Tracks[0].Frames == 10 && rec.Reason == bridge.ReasonStop
	}, 10*time.Second, 5*time.Millisecond)
}

// TestSocketsPerAddress: one remote address may hold so many media sockets
// and so many caption sockets; one more is refused with 429 before the
// upgrade, counted, and admitted again once one closes.
func TestSocketsPerAddress(t *testing.T) {
	s := serveBounds(t, Config{MaxSocketsPerAddress: 2, StartTimeout: time.Minute}, bridge.Config{})
	for _, kind := range []struct{ name, path, gauge string }{
		{kindMedia, "/media", "bridge_media_streams_active"},
		{kindCaptions, "/ws/captions?token=" + boundsToken, "bridge_subscribers"},
	} {
		t.Run(kind.name, func(t *testing.T) {
			var open []*fws.Conn
			for range 2 {
				c, status := s.dialMedia(t, kind.path)
				require.Equal(t, http.StatusSwitchingProtocols, status)
				open = append(open, c)
			}
			// Both handlers hold their place once they are counted as open.
			require.Eventually(t, func() bool { return s.metric(t, kind.gauge) == 2 }, 5*time.Second, 5*time.Millisecond)
			_, status := s.dialMedia(t, kind.path)
			require.Equal(t, http.StatusTooManyRequests, status)
			require.Equal(t, float64(1), s.metric(t, `bridge_sockets_refused_per_address_total{kind="`+kind.name+`"}`))
			require.NoError(t, open[0].Close())
			require.Eventually(t, func() bool {
				c, status := s.dialMedia(t, kind.path)
				if c != nil {
					open[0] = c
				}
				return status == http.StatusSwitchingProtocols
			}, 10*time.Second, 10*time.Millisecond)
			for _, c := range open {
				_ = c.Close()
			}
		})
	}
}

// TestCallbackFieldsOwnTheirMemory: the fields a callback keeps do not
// share the request body's memory (a 10-byte call id parsed from a 60 KiB
// body would otherwise keep the whole body alive in the pending list).
func TestCallbackFieldsOwnTheirMemory(t *testing.T) {
	body := url.Values{"CallSid": {"CAmemory"}, "StreamEvent": {"stream-started"}, "Junk": {strings.Repeat("j", 60<<10)}}.Encode()
	form, err := url.ParseQuery(body)
	require.NoError(t, err)
	raw := map[string]any{}
	for k, vs := range form {
		raw[k] = vs
	}
	lo := uintptr(unsafe.Pointer(unsafe.StringData(body)))
	hi := lo + uintptr(len(body))
	inBody := func(s string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		return p >= lo && p < hi
	}
	require.True(t, inBody(form.Get("CallSid")), "the parsed form shares the body (the premise of this test)")
	kept := keepFields(provider.Twilio, raw, false)
	require.Equal(t, map[string]any{"CallSid": "CAmemory", "StreamEvent": "stream-started"}, kept)
	for k, v := range kept {
		require.False(t, inBody(k), "key %s shares the body", k)
		require.False(t, inBody(v.(string)), "value of %s shares the body", k)
	}
}
