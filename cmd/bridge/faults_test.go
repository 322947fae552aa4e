package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/config"
)

// logBuffer collects a bridge's log lines for a test to search.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines are the JSON log lines that contain every one of subs.
func (l *logBuffer) lines(subs ...string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		ok := line != ""
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// startBridgeLogs is startBridge with every log line (debug and up) kept.
func startBridgeLogs(t *testing.T, cfg config.Config) (*instance, string, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	log := zerolog.New(logs).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	inst, base := startBridgeWith(t, cfg, log, func() {
		if t.Failed() {
			t.Logf("bridge log:\n%s", logs.String())
		}
	})
	return inst, base, logs
}

// closeOf reads until the server's close frame and returns its code and
// text.
func closeOf(t *testing.T, c *websocket.Conn) (int, string) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(15*time.Second)))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		require.ErrorAs(t, err, &ce, "the server closed without a close frame")
		return ce.Code, ce.Text
	}
}

// dialRefused dials path and expects the HTTP refusal status before any
// upgrade.
func dialRefused(t *testing.T, base, path string) *http.Response {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+path, nil)
	if c != nil {
		c.Close()
	}
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	require.NotNil(t, resp)
	resp.Body.Close()
	return resp
}

func record(t *testing.T, base, id string) (bridge.CallRecord, int) {
	t.Helper()
	var rec bridge.CallRecord
	code := getJSON(t, base, "/api/calls/"+url.PathEscape(id), &rec)
	return rec, code
}

// waitEndedWith polls until the call ended and checks its reason.
func waitEndedWith(t *testing.T, base, id, reason string) bridge.CallRecord {
	t.Helper()
	rec := waitEnded(t, base, id)
	require.Equal(t, reason, rec.Reason, "end reason of %s (error %q)", id, rec.Error)
	return rec
}

// tone is the audio of every synthetic call here: speech-like bursts.
var tone = bursts(300, 8000, 0.1, 0.4, 1)

func twilioMediaTS(streamSid string, seq, tsMs int, payload string) []byte {
	return []byte(fmt.Sprintf(`{"event":"media","sequenceNumber":"%d","streamSid":"%s","media":{"track":"inbound","timestamp":"%d","payload":"%s"}}`,
		seq, streamSid, tsMs, payload))
}

// steadyCall is a call that keeps going while something else misbehaves:
// every tick it sends frames and waits until the bridge has recorded them.
type steadyCall struct {
	base, sid, stream string
	c                 *websocket.Conn
	sent              int
}

func newSteadyCall(t *testing.T, base, sid string) *steadyCall {
	t.Helper()
	b := &steadyCall{base: base, sid: sid, stream: "MZ" + sid[2:], c: dial(t, base, "/media/twilio", nil)}
	send(t, b.c, twilioStart(sid, b.stream, []string{"inbound"}, nil))
	b.tick(t)
	return b
}

func (b *steadyCall) tick(t *testing.T) {
	t.Helper()
	for range 5 {
		send(t, b.c, twilioMedia(b.stream, "inbound", b.sent+2, b.sent+1, 20*b.sent, mulawFrame(tone, 160*b.sent, 160)))
		b.sent++
	}
	eventually(t, func() bool {
		rec, code := record(t, b.base, b.sid)
		return code == http.StatusOK && len(rec.Tracks) == 1 && rec.Tracks[0].Frames == int64(b.sent)
	}, 10*time.Second, 5*time.Millisecond, "call %s stopped taking frames", b.sid)
}

// finish stops the call and checks that it recorded exactly its audio.
func (b *steadyCall) finish(t *testing.T) {
	t.Helper()
	send(t, b.c, twilioStop(b.stream, b.sid, b.sent+2))
	rec := waitEndedWith(t, b.base, b.sid, bridge.ReasonStop)
	require.Empty(t, rec.Error)
	w := fetchWAV(t, b.base, b.sid, "inbound")
	require.Len(t, w.samples, 160*b.sent)
	for k := range b.sent {
		require.Equal(t, decodeFrame(mulawFrame(tone, 160*k, 160)), w.samples[160*k:160*(k+1)], "frame %d of %s", k, b.sid)
	}
}

var safeName = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$`)

// requireDataContained checks that the data directory holds nothing but
// call folders with safe names.
func requireDataContained(t *testing.T, data string) {
	t.Helper()
	top, err := os.ReadDir(data)
	require.NoError(t, err)
	for _, e := range top {
		require.Equal(t, "calls", e.Name(), "only calls/ at the top of the data directory")
	}
	calls, err := os.ReadDir(filepath.Join(data, "calls"))
	require.NoError(t, err)
	for _, e := range calls {
		require.True(t, e.IsDir(), "%s", e.Name())
		require.Regexp(t, safeName, e.Name())
	}
}

// TestBadInput sends each kind of bad input a provider (or anyone who can
// open a media socket) can send. Each is logged with the call id where
// there is one, closes the socket with a code and reason where it must,
// is counted, and leaves the bridge and another live call untouched.
func TestBadInput(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.MaxMessageBytes = 64 << 10
	cfg.Limits.MaxGap = time.Second
	cfg.Limits.SubscriberWait = 300 * time.Millisecond
	_, base, logs := startBridgeLogs(t, cfg)
	other := newSteadyCall(t, base, "CAbad0000000000000000000000000other")

	// A call that opens normally with n frames; the test then misbehaves.
	open := func(t *testing.T, sid string, n int) *websocket.Conn {
		c := dial(t, base, "/media/twilio", nil)
		stream := "MZ" + sid[2:]
		send(t, c, twilioStart(sid, stream, []string{"inbound"}, nil))
		for k := range n {
			send(t, c, twilioMedia(stream, "inbound", k+2, k+1, 20*k, mulawFrame(tone, 160*k, 160)))
		}
		return c
	}
	// finishWith sends frames [from, to) of the call, stops it, and checks
	// the recording holds want frames' worth of samples.
	finish := func(t *testing.T, c *websocket.Conn, sid string, from, to, want int) bridge.CallRecord {
		stream := "MZ" + sid[2:]
		for k := from; k < to; k++ {
			send(t, c, twilioMedia(stream, "inbound", k+2, k+1, 20*k, mulawFrame(tone, 160*k, 160)))
		}
		send(t, c, twilioStop(stream, sid, to+2))
		code, text := closeOf(t, c)
		require.Equal(t, websocket.CloseNormalClosure, code)
		require.Equal(t, "stream stopped", text)
		rec := waitEndedWith(t, base, sid, bridge.ReasonStop)
		require.Len(t, fetchWAV(t, base, sid, "inbound").samples, 160*want)
		return rec
	}
	dropped := func(t *testing.T, sid string, bad []byte, binary bool) {
		before := metric(t, base, `bridge_media_bad_frames_total{provider="twilio"}`)
		c := open(t, sid, 5)
		typ := websocket.TextMessage
		if binary {
			typ = websocket.BinaryMessage
		}
		require.NoError(t, c.WriteMessage(typ, bad))
		finish(t, c, sid, 5, 10, 10)
		require.Equal(t, before+1, metric(t, base, `bridge_media_bad_frames_total{provider="twilio"}`))
		require.NotEmpty(t, logs.lines(`"call_id":"`+sid+`"`, "malformed media frame dropped"))
	}

	t.Run("non-JSON text", func(t *testing.T) {
		dropped(t, "CAbad00000000000000000000000000json", []byte("this is {not json"), false)
	})
	t.Run("binary frame where JSON is expected", func(t *testing.T) {
		dropped(t, "CAbad000000000000000000000000binary", []byte{0x7f, 0x00, 0xff, 0x10}, true)
	})
	t.Run("invalid base64", func(t *testing.T) {
		sid := "CAbad0000000000000000000000000base64"
		dropped(t, sid, twilioMedia("MZ"+sid[2:], "inbound", 99, 6, 100, "!!not*base64!!"), false)
	})
	t.Run("odd-length L16", func(t *testing.T) {
		const sid, stream = "CAbad00000000000000000000000000oddl16", "MZbad00000000000000000000000000oddl16"
		before := metric(t, base, `bridge_media_bad_frames_total{provider="exotel"}`)
		c := dial(t, base, "/media/exotel", nil)
		start := fmt.Sprintf(`{"event":"start","sequence_number":"1","stream_sid":"%s","start":{"stream_sid":"%s","call_sid":"%s","media_format":{"encoding":"audio/x-raw","sample_rate":"8000","bit_rate":"16"}}}`, stream, stream, sid)
		frame := func(chunk int, payload []byte) []byte {
			return []byte(fmt.Sprintf(`{"event":"media","sequence_number":"%d","stream_sid":"%s","media":{"chunk":"%d","timestamp":"%d","payload":"%s"}}`,
				chunk+1, stream, chunk, 20*(chunk-1), base64.StdEncoding.EncodeToString(payload)))
		}
		send(t, c, []byte(start), frame(1, make([]byte, 320)), frame(2, make([]byte, 321)), frame(3, make([]byte, 320)),
			[]byte(fmt.Sprintf(`{"event":"stop","sequence_number":"9","stream_sid":"%s"}`, stream)))
		code, _ := closeOf(t, c)
		require.Equal(t, websocket.CloseNormalClosure, code)
		rec := waitEndedWith(t, base, sid, bridge.ReasonStop)
		require.Equal(t, int64(2), rec.Tracks[0].Frames, "the odd frame is dropped")
		require.Len(t, fetchWAV(t, base, sid, "inbound").samples, 3*160, "its place is silence")
		require.Equal(t, before+1, metric(t, base, `bridge_media_bad_frames_total{provider="exotel"}`))
		require.NotEmpty(t, logs.lines(`"call_id":"`+sid+`"`, "odd number of bytes"))
	})
	t.Run("media before start", func(t *testing.T) {
		before := metric(t, base, `bridge_media_sockets_refused_total{provider="twilio"}`)
		c := dial(t, base, "/media/twilio", nil)
		send(t, c, twilioMedia("MZbad000000000000000000000000nostart", "inbound", 1, 1, 0, mulawFrame(tone, 0, 160)))
		code, text := closeOf(t, c)
		require.Equal(t, websocket.ClosePolicyViolation, code)
		require.Equal(t, "media before start", text)
		require.Equal(t, before+1, metric(t, base, `bridge_media_sockets_refused_total{provider="twilio"}`))
		require.NotEmpty(t, logs.lines("media socket refused", "media before start"))
	})
	t.Run("start twice", func(t *testing.T) {
		const sid = "CAbad000000000000000000000000twice"
		before := metric(t, base, `bridge_media_sockets_refused_total{provider="twilio"}`)
		c := open(t, sid, 5)
		send(t, c, twilioStart(sid, "MZbad000000000000000000000000twice", []string{"inbound"}, nil))
		code, text := closeOf(t, c)
		require.Equal(t, websocket.ClosePolicyViolation, code)
		require.Equal(t, "second start frame on one stream", text)
		rec := waitEndedWith(t, base, sid, bridge.ReasonError)
		require.Contains(t, rec.Error, "second start frame")
		require.Len(t, fetchWAV(t, base, sid, "inbound").samples, 5*160, "what came before is kept")
		require.Equal(t, before+1, metric(t, base, `bridge_media_sockets_refused_total{provider="twilio"}`))
		require.NotEmpty(t, logs.lines(`"call_id":"`+sid+`"`, "media socket refused"))
	})
	t.Run("unknown event", func(t *testing.T) {
		const sid = "CAbad00000000000000000000000unknown"
		before := metric(t, base, `bridge_media_ignored_frames_total{provider="twilio"}`)
		c := open(t, sid, 5)
		send(t, c, []byte(`{"event":"teleport","sequenceNumber":"50","streamSid":"MZbad00000000000000000000000unknown","teleport":{"to":"mars"}}`))
		finish(t, c, sid, 5, 10, 10)
		require.Equal(t, before+1, metric(t, base, `bridge_media_ignored_frames_total{provider="twilio"}`))
		require.NotEmpty(t, logs.lines(`"call_id":"`+sid+`"`, `"event":"teleport"`, "media event ignored"))
	})
	t.Run("frame over the read limit", func(t *testing.T) {
		const sid = "CAbad0000000000000000000000000large"
		c := open(t, sid, 5)
		big := []byte(`{"event":"media","media":{"payload":"` + strings.Repeat("A", 80<<10) + `"}}`)
		require.NoError(t, c.WriteMessage(websocket.TextMessage, big))
		code, _ := closeOf(t, c) // the WebSocket library sends 1009 itself, without a text
		require.Equal(t, websocket.CloseMessageTooBig, code)
		rec := waitEndedWith(t, base, sid, bridge.ReasonError)
		require.Contains(t, rec.Error, "limit")
		require.Len(t, fetchWAV(t, base, sid, "inbound").samples, 5*160)
		require.NotEmpty(t, logs.lines(`"call_id":"`+sid+`"`, "media message too large"))
	})
	t.Run("timestamps that go backwards", func(t *testing.T) {
		const sid, stream = "CAbad00000000000000000000000backwards", "MZbad00000000000000000000000backwards"
		before := metric(t, base, "bridge_media_frames_dropped_total")
		c := dial(t, base, "/media/twilio", nil)
		send(t, c, twilioStart(sid, stream, []string{"inbound"}, nil))
		for k := range 10 {
			send(t, c, twilioMediaTS(stream, k+2, 20*k, mulawFrame(tone, 160*k, 160)))
		}
		send(t, c, twilioMediaTS(stream, 12, 40, mulawFrame(tone, 0, 160))) // 140 ms back
		for k := 10; k < 15; k++ {
			send(t, c, twilioMediaTS(stream, k+3, 20*k, mulawFrame(tone, 160*k, 160)))
		}
		send(t, c, twilioStop(stream, sid, 30))
		rec := waitEndedWith(t, base, sid, bridge.ReasonStop)
		require.Equal(t, int64(1), rec.Tracks[0].Duplicates)
		w := fetchWAV(t, base, sid, "inbound")
		require.Len(t, w.samples, 15*160)
		for k := range 15 {
			require.Equal(t, decodeFrame(mulawFrame(tone, 160*k, 160)), w.samples[160*k:160*(k+1)], "frame %d in place", k)
		}
		require.Equal(t, before+1, metric(t, base, "bridge_media_frames_dropped_total"))
		require.NotEmpty(t, logs.lines(`"call_id":"`+sid+`"`, "media frame dropped"))
	})
	t.Run("a gap of an hour", func(t *testing.T) {
		const sid, stream = "CAbad000000000000000000000000hourgap", "MZbad000000000000000000000000hourgap"
		before := metric(t, base, `bridge_gap_milliseconds_total{kind="media"}`)
		c := open(t, sid, 10)
		const hourFrames = 3600 * 50
		for k := 10 + hourFrames; k < 15+hourFrames; k++ {
			send(t, c, twilioMedia(stream, "inbound", k+2, k+1, 20*k, mulawFrame(tone, 160*k, 160)))
		}
		send(t, c, twilioStop(stream, sid, 99))
		rec := waitEndedWith(t, base, sid, bridge.ReasonStop)
		w := fetchWAV(t, base, sid, "inbound")
		require.Len(t, w.samples, 10*160+8000+5*160, "the fill is capped at --max-gap")
		require.Equal(t, make([]int16, 8000), w.samples[1600:9600])
		require.Equal(t, int64(3600_000), rec.Tracks[0].GapMs)
		var tr bridge.Transcript
		require.Equal(t, http.StatusOK, getJSON(t, base, "/api/calls/"+sid+"/transcript", &tr))
		require.Contains(t, tr.Events, bridge.TranscriptEvent{Type: bridge.TypeGap, Track: "inbound", AtMs: 200, DurationMs: 3600_000, Kind: "media"},
			"the whole gap is an event")
		require.Equal(t, before+3600_000, metric(t, base, `bridge_gap_milliseconds_total{kind="media"}`))
		require.NotEmpty(t, logs.lines(`"call_id":"`+sid+`"`, "media gap longer than the maximum gap"))
	})
	t.Run("call ids that are not file names", func(t *testing.T) {
		for _, id := range []string{"../../../../tmp/escaped", "CA/with/slashes", "nul\x00byte", "..", ".hidden", "back\\slash"} {
			c := dial(t, base, "/media/twilio", nil)
			start, err := json.Marshal(map[string]any{"event": "start", "streamSid": "MZpath", "start": map[string]any{
				"callSid": id, "streamSid": "MZpath", "tracks": []string{"inbound"},
				"mediaFormat": map[string]any{"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
			}})
			require.NoError(t, err)
			send(t, c, start, twilioMedia("MZpath", "inbound", 2, 1, 0, mulawFrame(tone, 0, 160)), twilioStop("MZpath", "x", 3))
			rec := waitEndedWith(t, base, id, bridge.ReasonStop)
			require.Equal(t, id, rec.CallID, "the id is kept as it is")
			require.Len(t, fetchWAV(t, base, id, "inbound").samples, 160)
		}
		requireDataContained(t, cfg.Data)
		_, err := os.Stat("/tmp/escaped")
		require.ErrorIs(t, err, os.ErrNotExist)
	})
	t.Run("a call id of 10 KB", func(t *testing.T) {
		id := "CA" + strings.Repeat("x", 10<<10)
		c := dial(t, base, "/media/twilio", nil)
		send(t, c, twilioStart(id, "MZlong", []string{"inbound"}, nil))
		code, text := closeOf(t, c)
		require.Equal(t, websocket.ClosePolicyViolation, code)
		require.Contains(t, text, "call id of 10242 bytes")
		_, status := record(t, base, id)
		require.Equal(t, http.StatusNotFound, status)
		requireDataContained(t, cfg.Data)
		require.NotEmpty(t, logs.lines("media socket refused", "call id of 10242 bytes"))
		require.Empty(t, logs.lines(strings.Repeat("x", 300)), "the id itself is never logged")
	})
	t.Run("thousands of custom parameters", func(t *testing.T) {
		const sid = "CAbad0000000000000000000000000params"
		params := map[string]string{}
		for i := range 3000 {
			params[fmt.Sprintf("k%04d", i)] = "v"
		}
		before := metric(t, base, "bridge_custom_parameters_dropped_total")
		c := dial(t, base, "/media/twilio", nil)
		send(t, c, twilioStart(sid, "MZbad0000000000000000000000000params", []string{"inbound"}, params))
		finish(t, c, sid, 0, 5, 5)
		rec, _ := record(t, base, sid)
		require.Len(t, rec.CustomParameters, 64)
		require.Equal(t, before+3000-64, metric(t, base, "bridge_custom_parameters_dropped_total"))
		require.NotEmpty(t, logs.lines(`"call_id":"`+sid+`"`, "custom parameters over the limits dropped", `"dropped":2936`))
	})
	t.Run("subscriber for a call that never starts", func(t *testing.T) {
		const sid = "CAbad000000000000000000000000never"
		sub := dial(t, base, "/ws/captions?call="+sid, nil)
		began := time.Now()
		code, text := closeOf(t, sub)
		require.Equal(t, 4004, code)
		require.Equal(t, "call not started", text)
		require.Less(t, time.Since(began), 5*time.Second, "the wait is bounded by --subscriber-wait")
		require.Eventually(t, func() bool { return len(logs.lines(`"call_id":"`+sid+`"`, "call_not_started")) > 0 },
			5*time.Second, 5*time.Millisecond)
	})

	// Nothing above touched the call that went on meanwhile.
	other.tick(t)
	other.finish(t)
	require.Equal(t, http.StatusOK, getJSON(t, base, "/healthz", nil))
}

// waitSubscribers waits until the hub has n subscribers (a socket is
// subscribed a moment after its upgrade).
func waitSubscribers(t *testing.T, base string, n int) {
	t.Helper()
	eventually(t, func() bool { return metric(t, base, "bridge_subscribers") == float64(n) }, 5*time.Second, 5*time.Millisecond)
}

// TestLimits: each limit is a setting and is enforced before the thing it
// bounds costs anything.
func TestLimits(t *testing.T) {
	const sid, stream = "CAlim00000000000000000000000000001", "MZlim00000000000000000000000000001"
	// timedOut plays a frame and waits for the bridge to close the socket
	// with text and end the call with a timeout.
	timedOut := func(t *testing.T, base, text string) bridge.CallRecord {
		c := dial(t, base, "/media/twilio", nil)
		send(t, c, twilioStart(sid, stream, []string{"inbound"}, nil), twilioMedia(stream, "inbound", 2, 1, 0, mulawFrame(tone, 0, 160)))
		code, got := closeOf(t, c)
		require.Equal(t, websocket.CloseNormalClosure, code)
		require.Equal(t, text, got)
		return waitEndedWith(t, base, sid, bridge.ReasonTimeout)
	}
	tests := []struct {
		name string
		set  func(l *config.Limits)
		run  func(t *testing.T, base string)
	}{
		{
			name: "concurrent calls: 503 before the upgrade",
			set:  func(l *config.Limits) { l.MaxCalls = 1 },
			run: func(t *testing.T, base string) {
				c := dial(t, base, "/media/twilio", nil)
				send(t, c, twilioStart(sid, stream, []string{"inbound"}, nil))
				eventually(t, func() bool { _, code := record(t, base, sid); return code == http.StatusOK }, 5*time.Second, 5*time.Millisecond)
				resp := dialRefused(t, base, "/media/twilio")
				require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
				require.Equal(t, "5", resp.Header.Get("Retry-After"))
				send(t, c, twilioStop(stream, sid, 2))
				waitEndedWith(t, base, sid, bridge.ReasonStop)
				require.Eventually(t, func() bool {
					d, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/media/twilio", nil)
					if err == nil {
						d.Close()
						return true
					}
					if resp != nil {
						resp.Body.Close()
					}
					return false
				}, 5*time.Second, 10*time.Millisecond, "a call ending makes room")
			},
		},
		{
			name: "streams per call",
			set:  func(l *config.Limits) { l.MaxStreamsPerCall = 1 },
			run: func(t *testing.T, base string) {
				in := dial(t, base, "/media/twilio", nil)
				send(t, in, twilioStart(sid, stream, []string{"inbound"}, nil))
				eventually(t, func() bool { _, code := record(t, base, sid); return code == http.StatusOK }, 5*time.Second, 5*time.Millisecond)
				out := dial(t, base, "/media/twilio", nil)
				send(t, out, twilioStart(sid, "MZlim00000000000000000000000000002", []string{"outbound"}, nil))
				code, text := closeOf(t, out)
				require.Equal(t, websocket.ClosePolicyViolation, code)
				require.Contains(t, text, "too many streams")
				send(t, in, twilioMedia(stream, "inbound", 2, 1, 0, mulawFrame(tone, 0, 160)), twilioStop(stream, sid, 3))
				rec := waitEndedWith(t, base, sid, bridge.ReasonStop)
				require.Len(t, rec.Tracks, 1, "the refused stream created no track")
				require.Empty(t, rec.Streams[0].Error)
			},
		},
		{
			name: "message size",
			set:  func(l *config.Limits) { l.MaxMessageBytes = 4096 },
			run: func(t *testing.T, base string) {
				c := dial(t, base, "/media/twilio", nil)
				send(t, c, twilioStart(sid, stream, []string{"inbound"}, nil))
				require.NoError(t, c.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte(" "), 5000)))
				code, _ := closeOf(t, c)
				require.Equal(t, websocket.CloseMessageTooBig, code)
				rec := waitEndedWith(t, base, sid, bridge.ReasonError)
				require.Contains(t, rec.Error, "4096-byte limit")
			},
		},
		{
			name: "maximum call duration",
			set:  func(l *config.Limits) { l.MaxCallDuration = 700 * time.Millisecond },
			run: func(t *testing.T, base string) {
				rec := timedOut(t, base, "stream ended by the bridge: timeout")
				require.GreaterOrEqual(t, rec.DurationMs, int64(700))
			},
		},
		{
			name: "idle timeout",
			set:  func(l *config.Limits) { l.IdleTimeout = 300 * time.Millisecond },
			run: func(t *testing.T, base string) {
				rec := timedOut(t, base, "idle timeout")
				require.Equal(t, "no frames for 300ms", rec.Streams[0].Error)
			},
		},
		{
			name: "subscribers in total",
			set:  func(l *config.Limits) { l.MaxSubscribers = 2 },
			run: func(t *testing.T, base string) {
				dial(t, base, "/ws/captions", nil)
				dial(t, base, "/ws/captions?call=CAany", nil)
				waitSubscribers(t, base, 2)
				code, text := closeOf(t, dial(t, base, "/ws/captions?call=CAother", nil))
				require.Equal(t, websocket.CloseTryAgainLater, code)
				require.Equal(t, "too many subscribers", text)
			},
		},
		{
			name: "subscribers per call",
			set:  func(l *config.Limits) { l.MaxSubscribersCall = 1 },
			run: func(t *testing.T, base string) {
				first := dial(t, base, "/ws/captions?call="+sid, nil)
				waitSubscribers(t, base, 1)
				code, text := closeOf(t, dial(t, base, "/ws/captions?call="+sid, nil))
				require.Equal(t, websocket.CloseTryAgainLater, code)
				require.Equal(t, "too many subscribers", text)
				// Another call's subscriber and the first one are fine.
				dial(t, base, "/ws/captions?call=CAother", nil)
				c := dial(t, base, "/media/twilio", nil)
				send(t, c, twilioStart(sid, stream, []string{"inbound"}, nil))
				evs := readEvents(t, first, func(ev map[string]any) bool { return ev["type"] == bridge.TypeCallStarted })
				require.Len(t, evs, 1)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			tt.set(&cfg.Limits)
			_, base := startBridge(t, cfg)
			tt.run(t, base)
			require.Equal(t, http.StatusOK, getJSON(t, base, "/healthz", nil))
		})
	}
}

// TestSocketDroppedMidFrame: a provider socket that dies in the middle of a
// message, without stop, ends its call with reason disconnect; every whole
// frame before it is recorded, and subscribers learn why the call ended.
func TestSocketDroppedMidFrame(t *testing.T) {
	const sid, stream = "CAdrop0000000000000000000000000001", "MZdrop0000000000000000000000000001"
	_, base := startBridge(t, testConfig(t))
	sub := dial(t, base, "/ws/captions?call="+sid, nil)
	c := dial(t, base, "/media/twilio", nil)
	send(t, c, twilioStart(sid, stream, []string{"inbound", "outbound"}, nil))
	for k := range 50 {
		send(t, c, twilioMedia(stream, "inbound", 2*k+2, k+1, 20*k, mulawFrame(tone, 160*k, 160)),
			twilioMedia(stream, "outbound", 2*k+3, k+1, 20*k, mulawFrame(tone, 160*k, 160)))
	}
	// Half a WebSocket frame: a masked text frame header promising 1000
	// bytes, then 10 of them, then the connection is gone.
	raw := c.UnderlyingConn()
	_, err := raw.Write(append([]byte{0x81, 0x80 | 126, 0x03, 0xe8, 1, 2, 3, 4}, bytes.Repeat([]byte("x"), 10)...))
	require.NoError(t, err)
	require.NoError(t, raw.Close())

	rec := waitEndedWith(t, base, sid, bridge.ReasonDisconnect)
	for _, tr := range []string{"inbound", "outbound"} {
		require.Len(t, fetchWAV(t, base, sid, tr).samples, 50*160, "%s holds every whole frame", tr)
	}
	require.Equal(t, bridge.ReasonDisconnect, rec.Streams[0].Reason)
	evs := readEvents(t, sub, func(ev map[string]any) bool { return ev["type"] == bridge.TypeCallEnded })
	require.Equal(t, bridge.ReasonDisconnect, evs[len(evs)-1]["reason"])
}

// TestSubscriberThatNeverReads: a caption subscriber that stops reading is
// cut off with a reason once its queue overflows, while calls go on being
// recorded and another subscriber gets every event.
func TestSubscriberThatNeverReads(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.SubscriberQueue = 8
	_, base := startBridge(t, cfg)

	// The stuck subscriber's socket buffer is small, so the bridge's writes
	// to it block soon.
	d := websocket.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
		c, err := net.Dial(network, addr)
		if err == nil {
			_ = c.(*net.TCPConn).SetReadBuffer(64 << 10)
		}
		return c, err
	}}
	stuck, resp, err := d.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws/captions", nil)
	require.NoError(t, err)
	resp.Body.Close()
	t.Cleanup(func() { stuck.Close() })
	reader := dial(t, base, "/ws/captions", nil)
	var got []map[string]any
	readDone := make(chan struct{})
	go func() { // the reading subscriber keeps up on its own goroutine
		defer close(readDone)
		for {
			_ = reader.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, b, err := reader.ReadMessage()
			if err != nil {
				return
			}
			var ev map[string]any
			if json.Unmarshal(b, &ev) == nil {
				got = append(got, ev)
			}
		}
	}()
	long := newSteadyCall(t, base, "CAslow000000000000000000000000long")

	// Short calls whose call.started carry 64 KB of custom parameters fill
	// the stuck subscriber's socket quickly.
	params := map[string]string{}
	for i := range 64 {
		params[fmt.Sprintf("p%02d", i)] = strings.Repeat("v", 1000)
	}
	var ids []string
	for i := 0; metric(t, base, "bridge_subscribers_slow_disconnects_total") == 0; i++ {
		require.Less(t, i, 400, "the stuck subscriber was never cut off")
		id := fmt.Sprintf("CAslow%028d", i)
		c := dial(t, base, "/media/twilio", nil)
		send(t, c, twilioStart(id, "MZ"+id[2:], []string{"inbound"}, params),
			twilioMedia("MZ"+id[2:], "inbound", 2, 1, 0, mulawFrame(tone, 0, 160)), twilioStop("MZ"+id[2:], id, 3))
		waitEndedWith(t, base, id, bridge.ReasonStop)
		ids = append(ids, id)
		long.tick(t) // ingest never waits for the stuck subscriber
	}
	long.tick(t)
	long.finish(t)

	code, text := closeOf(t, stuck)
	require.Equal(t, 4008, code)
	require.Equal(t, "slow consumer", text)

	require.NoError(t, reader.Close())
	<-readDone
	ended := map[string]bool{}
	for _, ev := range got {
		if ev["type"] == bridge.TypeCallEnded {
			ended[ev["call_id"].(string)] = true
		}
	}
	for _, id := range append(ids, long.sid) {
		require.True(t, ended[id], "the reading subscriber saw %s end", id)
	}
}
