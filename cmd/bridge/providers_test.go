package main

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/config"
)

// fixtureExpect is one entry of testdata/providers/expected*.json.
type fixtureExpect struct {
	WireCodec  string          `json:"wire_codec"`
	SampleRate int             `json:"sample_rate"`
	Media      []expectedMedia `json:"media"`
}

// allExpected reads the reference decodes of the shared sessions and of
// the generated variants.
func allExpected(t *testing.T) map[string]fixtureExpect {
	t.Helper()
	out := map[string]fixtureExpect{}
	for _, f := range []string{"expected.json", "expected-variants.json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "providers", f))
		require.NoError(t, err)
		var m map[string]fixtureExpect
		require.NoError(t, json.Unmarshal(b, &m))
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// providerCase is what a recorded session must produce end to end.
type providerCase struct {
	file      string
	provider  string
	callID    string
	tracks    []string
	params    map[string]string
	reason    string   // stop, or disconnect for providers that send none
	dtmf      []string // digits, in order
	byteOrder string   // "le"/"be" on L16 tracks
}

var providerCases = []providerCase{
	{"twilio.jsonl", "twilio", "CA3ae75ffe1c5d8847e478556c07d07103", []string{"inbound"},
		map[string]string{"FirstName": "Jane", "LastName": "Doe", "RemoteParty": "Bob"}, "stop", []string{"1"}, ""},
	{"twilio-both-tracks.jsonl", "twilio", "CA3ae75ffe1c5d8847e478556c07d07103", []string{"inbound", "outbound"}, nil, "stop", nil, ""},
	{"twilio-numbers.jsonl", "twilio", "CA3ae75ffe1c5d8847e478556c07d07103", []string{"inbound"},
		map[string]string{"Attempt": "2", "Vip": "true"}, "stop", []string{"1"}, ""},
	{"twilio-toplevel-ids.jsonl", "twilio", "CA0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", []string{"inbound"}, nil, "stop", nil, ""},
	{"signalwire-compat.jsonl", "signalwire", "76ac3c36-56da-4a3e-a0d6-b5f8df6da9ad", []string{"inbound"},
		map[string]string{"Cookie": "948f9938-299a-d43e-0df4-af3a7eccb0ac", "Type": "SIP"}, "stop", []string{"5"}, ""},
	{"signalwire-swml.jsonl", "signalwire", "e2d7b1c9-0a4f-4f6e-9b3d-7c8a1e2f3b4c", []string{"inbound", "outbound"},
		map[string]string{"caller_tier": "gold", "ticket": "T-1001"}, "stop", []string{"#"}, "le"},
	{"plivo.jsonl", "plivo", "12345678-1234-1234-1234-123456789abc", []string{"inbound"},
		map[string]string{"userId": "12345", "sessionId": "abc-xyz"}, "disconnect", []string{"5"}, ""},
	{"plivo-calluuid.jsonl", "plivo", "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", []string{"inbound"},
		map[string]string{"userId": "12345", "sessionId": "abc-xyz"}, "disconnect", nil, ""},
	{"plivo-l16.jsonl", "plivo", "12345678-1234-1234-1234-123456789abc", []string{"inbound"},
		map[string]string{"userId": "12345", "sessionId": "abc-xyz"}, "stop", nil, "le"},
	{"plivo-strings.jsonl", "plivo", "12345678-1234-1234-1234-123456789abc", []string{"inbound"},
		map[string]string{"userId": "12345"}, "disconnect", nil, ""},
	{"plivo-toplevel-ids.jsonl", "plivo", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", []string{"inbound"},
		map[string]string{"test1": "12", "test2": "123"}, "disconnect", nil, ""},
	{"vobiz.jsonl", "vobiz", "5401fd2e-6344-40df-a22c-c8ffea7a92e7", []string{"inbound"}, nil, "disconnect", nil, "be"},
	{"vobiz-mulaw.jsonl", "vobiz", "5401fd2e-6344-40df-a22c-c8ffea7a92e7", []string{"inbound"}, nil, "disconnect", nil, ""},
	{"telnyx.jsonl", "telnyx", "v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg", []string{"inbound"},
		map[string]string{"client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d"}, "stop", []string{"1"}, ""},
	{"telnyx-reordered.jsonl", "telnyx", "v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg", []string{"inbound"}, nil, "stop", nil, ""},
	{"exotel.jsonl", "exotel", "CA1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f", []string{"inbound"},
		map[string]string{"key1": "value1"}, "stop", []string{"5"}, "le"},
	{"exotel-16k.jsonl", "exotel", "CA9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d", []string{"inbound"},
		map[string]string{"key1": "value1", "key2": "value2"}, "stop", nil, "le"},
	{"exotel-numbers.jsonl", "exotel", "CA1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f", []string{"inbound"}, nil, "stop", []string{"9"}, "le"},
}

// TestEveryProviderFixture plays every recorded session in
// testdata/providers through a real socket into a real bridge, once on
// the auto-detecting /media and once on /media/<provider>, and checks the
// call id, provider, tracks, custom parameters, end reason, DTMF (in
// transcript.json and to subscribers) and every decoded frame against the
// reference decode, in chunk order.
func TestEveryProviderFixture(t *testing.T) {
	exp := allExpected(t)
	covered := map[string]bool{}
	for _, tc := range providerCases {
		covered[tc.file] = true
		for _, path := range []string{"/media", "/media/" + tc.provider} {
			t.Run(tc.file+path, func(t *testing.T) {
				e, ok := exp[tc.file]
				require.True(t, ok, "no reference decode for %s", tc.file)
				_, base := startBridge(t, testConfig(t))
				playFixture(t, base, path, tc, e)
			})
		}
	}
	for name := range exp {
		if !strings.HasPrefix(name, "vobiz-reconnect") {
			require.True(t, covered[name], "fixture %s is not played end to end", name)
		}
	}
}

func playFixture(t *testing.T, base, path string, tc providerCase, e fixtureExpect) {
	t.Helper()
	sub := dial(t, base, "/ws/captions?call="+url.QueryEscape(tc.callID), nil)
	lines := fixtureLines(t, tc.file)
	c := dial(t, base, path, nil)
	send(t, c, lines...)
	if tc.reason == bridge.ReasonDisconnect {
		// Plivo and Vobiz send no stop: the socket closing ends the stream.
		// Closing at once would race the frames still in flight on the
		// server side, so wait until the last one is recorded.
		waitFrames(t, base, tc.callID, len(e.Media))
		require.NoError(t, c.UnderlyingConn().Close())
	}
	rec := waitEnded(t, base, tc.callID)
	require.Equal(t, tc.provider, rec.Provider, "detected provider")
	require.Equal(t, tc.reason, rec.Reason)
	require.Empty(t, rec.Error)
	for k, v := range tc.params {
		require.Equal(t, v, rec.CustomParameters[k], "custom parameter %s", k)
	}
	var names []string
	for _, tr := range rec.Tracks {
		names = append(names, tr.Name)
		require.Equal(t, e.SampleRate, tr.SampleRate)
		require.Equal(t, tc.byteOrder, tr.ByteOrder, "byte order of %s", tr.Name)
		require.Empty(t, tr.Warning, "a correctly decoded tone raises no byte-order warning")
		require.Zero(t, tr.GapMs, "no gap in %s", tr.Name)
	}
	require.ElementsMatch(t, tc.tracks, names)
	checkFrames(t, base, tc.callID, tc.file, e, 0)

	var tr bridge.Transcript
	require.Equal(t, http.StatusOK, getJSON(t, base, "/api/calls/"+url.PathEscape(tc.callID)+"/transcript", &tr))
	var digits []string
	for _, ev := range tr.Events {
		if ev.Type == bridge.TypeDTMF {
			digits = append(digits, ev.Digit)
		}
	}
	require.Equal(t, tc.dtmf, digits, "DTMF in transcript.json")

	evs := readEvents(t, sub, func(ev map[string]any) bool { return ev["type"] == bridge.TypeCallEnded })
	digits = nil
	for _, ev := range evs {
		if ev["type"] == bridge.TypeDTMF {
			digits = append(digits, ev["digit"].(string))
		}
	}
	require.Equal(t, tc.dtmf, digits, "dtmf events to subscribers")
	require.Equal(t, bridge.TypeCallStarted, evs[0]["type"])
}

// waitFrames polls until the call has recorded n frames over its tracks.
func waitFrames(t *testing.T, base, id string, n int) {
	t.Helper()
	eventually(t, func() bool {
		var rec bridge.CallRecord
		if getJSON(t, base, "/api/calls/"+url.PathEscape(id), &rec) != http.StatusOK {
			return false
		}
		var got int64
		for _, tr := range rec.Tracks {
			got += tr.Frames + tr.Duplicates
		}
		return got >= int64(n)
	}, 10*time.Second, 10*time.Millisecond, "call %s did not receive %d frames", id, n)
}

// checkFrames compares each track's WAV with the reference frames of the
// fixture in chunk order, starting silence samples into the track.
func checkFrames(t *testing.T, base, id, file string, e fixtureExpect, silence int) {
	t.Helper()
	lines := fixtureLines(t, file)
	type frame struct {
		chunk int64
		m     expectedMedia
	}
	perTrack := map[string][]frame{}
	for _, m := range e.Media {
		perTrack[m.Track] = append(perTrack[m.Track], frame{chunkOf(t, lines[m.Line-1]), m})
	}
	for track, frames := range perTrack {
		sort.SliceStable(frames, func(i, j int) bool { return frames[i].chunk < frames[j].chunk })
		w := fetchWAV(t, base, id, track)
		require.Equal(t, e.SampleRate, w.rate)
		pos := 2 * silence
		require.Equal(t, make([]byte, pos), w.raw[:pos], "leading silence")
		for _, f := range frames {
			end := pos + 2*f.m.Samples
			require.LessOrEqual(t, end, len(w.raw), "line %d missing from the %s WAV", f.m.Line, track)
			require.Equal(t, f.m.SHA, sha(w.raw[pos:end]), "line %d (%s chunk %d) differs from the reference decode", f.m.Line, track, f.chunk)
			pos = end
		}
		require.Equal(t, pos, len(w.raw), "the %s WAV holds exactly its frames", track)
	}
}

// chunkOf reads media.chunk of a fixture line, string or number.
func chunkOf(t *testing.T, line []byte) int64 {
	var v struct {
		Media struct {
			Chunk json.RawMessage `json:"chunk"`
		} `json:"media"`
	}
	require.NoError(t, json.Unmarshal(line, &v))
	n, err := strconv.ParseInt(strings.Trim(string(v.Media.Chunk), `"`), 10, 64)
	require.NoError(t, err)
	return n
}

// TestVobizReconnect: Vobiz's maxRetries opens a new socket with a new
// streamId and the same callId; the call continues on one clock, the
// missing second filled with silence, and ends when the last socket does.
func TestVobizReconnect(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.ReconnectGrace = 5 * time.Second
	_, base := startBridge(t, cfg)
	exp := allExpected(t)
	const id = "7e6d5c4b-3a29-4817-a6b5-c4d3e2f1a0b9"

	first := dial(t, base, "/media", nil)
	send(t, first, fixtureLines(t, "vobiz-reconnect-1.jsonl")...)
	waitFrames(t, base, id, 2)
	require.NoError(t, first.UnderlyingConn().Close())
	eventually(t, func() bool {
		var rec bridge.CallRecord
		getJSON(t, base, "/api/calls/"+id, &rec)
		return len(rec.Streams) == 1 && rec.Streams[0].EndedAt != nil
	}, 10*time.Second, 10*time.Millisecond)

	second := dial(t, base, "/media/vobiz", nil)
	send(t, second, fixtureLines(t, "vobiz-reconnect-2.jsonl")...)
	waitFrames(t, base, id, 3)
	require.NoError(t, second.UnderlyingConn().Close())

	var rec bridge.CallRecord
	eventually(t, func() bool {
		rec = bridge.CallRecord{}
		getJSON(t, base, "/api/calls/"+id, &rec)
		return rec.Status == bridge.StatusEnded
	}, 15*time.Second, 20*time.Millisecond)
	require.Equal(t, bridge.ReasonDisconnect, rec.Reason)
	require.Len(t, rec.Streams, 2, "two sockets, one call")
	require.NotEqual(t, rec.Streams[0].StreamID, rec.Streams[1].StreamID)
	require.Len(t, rec.Tracks, 1)
	require.Equal(t, int64(1000), rec.Tracks[0].GapMs, "the second between the sockets: %+v", rec)

	// The WAV: two frames, a second of silence (the epoch timestamps say
	// so), then the reconnect's frame.
	w := fetchWAV(t, base, id, "inbound")
	one, two := exp["vobiz-reconnect-1.jsonl"].Media, exp["vobiz-reconnect-2.jsonl"].Media
	require.Len(t, w.samples, 160+160+8000+160)
	require.Equal(t, one[0].SHA, sha(w.raw[0:320]))
	require.Equal(t, one[1].SHA, sha(w.raw[320:640]))
	require.Equal(t, make([]byte, 16000), w.raw[640:16640])
	require.Equal(t, two[0].SHA, sha(w.raw[16640:]))
}

// TestVonageBinaryFrames: Vonage's text handshake, then binary L16 frames,
// then a DTMF text frame; the call id comes from the NCCO header the
// stream instructions set, or is made up when there is none.
func TestVonageBinaryFrames(t *testing.T) {
	_, base := startBridge(t, testConfig(t))
	frame := func(k int) []byte {
		b := make([]byte, 640) // 20 ms at 16 kHz
		for i := range 320 {
			v := int16(3000 * math.Sin(2*math.Pi*440*float64(320*k+i)/16000))
			binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
		}
		return b
	}
	for _, tc := range []struct {
		name, header, callID string
	}{
		{"call id from the NCCO header", `,"call_id":"vonage-uuid-1"`, "vonage-uuid-1"},
		{"no call id: one is made", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, base, "/media", nil)
			send(t, c, []byte(`{"event":"websocket:connected","content-type":"audio/l16;rate=16000","from":"447700900000"`+tc.header+`}`))
			var want []byte
			for k := range 5 {
				require.NoError(t, c.WriteMessage(websocket.BinaryMessage, frame(k)))
				want = append(want, frame(k)...)
			}
			send(t, c, []byte(`{"event":"websocket:dtmf","digit":"7","duration":260}`))
			id := tc.callID
			if id == "" {
				eventually(t, func() bool {
					var page struct{ Calls []bridge.CallRecord }
					getJSON(t, base, "/api/calls", &page)
					for _, r := range page.Calls {
						if strings.HasPrefix(r.CallID, "vonage-2") {
							id = r.CallID
							return true
						}
					}
					return false
				}, 10*time.Second, 10*time.Millisecond)
			}
			waitFrames(t, base, id, 5)
			require.NoError(t, c.UnderlyingConn().Close())
			rec := waitEnded(t, base, id)
			require.Equal(t, "vonage", rec.Provider)
			require.Equal(t, "447700900000", rec.CustomParameters["from"])
			require.Equal(t, "le", rec.Tracks[0].ByteOrder)
			w := fetchWAV(t, base, id, "inbound")
			require.Equal(t, 16000, w.rate)
			require.Equal(t, want, w.raw)
			var tr bridge.Transcript
			getJSON(t, base, "/api/calls/"+id+"/transcript", &tr)
			require.True(t, slices.ContainsFunc(tr.Events, func(e bridge.TranscriptEvent) bool {
				return e.Type == bridge.TypeDTMF && e.Digit == "7" && e.DurationMs == 260
			}), "the key press is in the transcript: %+v", tr.Events)
		})
	}
}

// readClose reads until the server closes the socket and returns its
// close frame.
func readClose(t *testing.T, c *websocket.Conn) *websocket.CloseError {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			require.ErrorAs(t, err, &ce, "the bridge closes with a close frame")
			return ce
		}
	}
}

func callCount(t *testing.T, base string) int {
	t.Helper()
	var page struct{ Total int }
	require.Equal(t, http.StatusOK, getJSON(t, base, "/api/calls", &page))
	return page.Total
}

// TestDetectionRefusals: first frames that name no provider, or two
// providers at once, close the socket with a reason and record nothing.
func TestDetectionRefusals(t *testing.T) {
	_, base := startBridge(t, testConfig(t))
	cases := []struct {
		name   string
		frames [][]byte
		binary bool
		reason string
	}{
		{"unknown event", [][]byte{[]byte(`{"event":"hello"}`)}, false, `first frame is "hello"`},
		{"not JSON", [][]byte{[]byte(`RIFF....WAVE`)}, false, "not JSON"},
		{"no event", [][]byte{[]byte(`{"streamSid":"MZ00000000000000000000000000000000"}`)}, false, "no event name"},
		{"binary first", [][]byte{make([]byte, 320)}, true, "binary"},
		{"Plivo or Vobiz, cannot tell", [][]byte{[]byte(`{"event":"start","sequenceNumber":5,"start":{"callId":"c-amb","streamId":"s-amb","accountId":"acct","mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000}}}`)}, false, "use /media/plivo or /media/vobiz"},
		{"Twilio SIDs mixed with UUIDs", [][]byte{[]byte(`{"event":"connected","protocol":"Call","version":"1.0.0"}`),
			[]byte(`{"event":"start","sequenceNumber":"1","start":{"streamSid":"MZ00000000000000000000000000000001","callSid":"76ac3c36-56da-4a3e-a0d6-b5f8df6da9ad","tracks":["inbound"]}}`)}, false, "neither all Twilio SIDs"},
		{"a start of no known provider", [][]byte{[]byte(`{"event":"start","start":{"id":"x"}}`)}, false, "no id of any known provider"},
		{"a Telnyx connected then a Twilio start", [][]byte{[]byte(`{"event":"connected","version":"1.0.0"}`),
			[]byte(`{"event":"start","sequenceNumber":"1","start":{"streamSid":"MZ00000000000000000000000000000001","callSid":"CA00000000000000000000000000000001","tracks":["inbound"]}}`)}, false, "looks like twilio but the connected frame does not"},
		{"connected and nothing else", [][]byte{[]byte(`{"event":"connected"}`), []byte(`{"event":"mark"}`), []byte(`{"event":"mark"}`)}, false, "no start frame"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, base, "/media", nil)
			for _, f := range tc.frames {
				typ := websocket.TextMessage
				if tc.binary {
					typ = websocket.BinaryMessage
				}
				require.NoError(t, c.WriteMessage(typ, f))
			}
			ce := readClose(t, c)
			require.Equal(t, websocket.ClosePolicyViolation, ce.Code)
			require.Contains(t, ce.Text, tc.reason)
		})
	}
	require.Zero(t, callCount(t, base), "nothing recorded")
}

// TestUnsupportedFormats: codecs the bridge cannot decode and bad sample
// rates end the stream with close code 1003 and a reason, and leave a call
// record that says why, with no recording.
func TestUnsupportedFormats(t *testing.T) {
	cfg := testConfig(t)
	_, base := startBridge(t, cfg)
	telnyx := func(id, format string) [][]byte {
		return [][]byte{[]byte(`{"event":"connected","version":"1.0.0"}`),
			[]byte(`{"event":"start","sequence_number":"1","start":{"call_control_id":"` + id + `","from":"+13122010094","to":"+13122123456","media_format":` + format + `},"stream_id":"s-` + id + `"}`)}
	}
	cases := []struct {
		name, callID string
		frames       [][]byte
		want         string
	}{
		{"Telnyx OPUS", "v3:opus", telnyx("v3:opus", `{"encoding":"OPUS","sample_rate":16000,"channels":1}`), `"OPUS"`},
		{"Telnyx G722", "v3:g722", telnyx("v3:g722", `{"encoding":"G722","sample_rate":16000,"channels":1}`), `"G722"`},
		{"Telnyx AMR-WB", "v3:amrwb", telnyx("v3:amrwb", `{"encoding":"AMR-WB","sample_rate":16000,"channels":1}`), `"AMR-WB"`},
		{"L16 at 11025 Hz", "v3:l16-11k", telnyx("v3:l16-11k", `{"encoding":"L16","sample_rate":11025,"channels":1}`), "sample rate 11025"},
		{"stereo", "v3:stereo", telnyx("v3:stereo", `{"encoding":"PCMU","sample_rate":8000,"channels":2}`), "2 channels"},
		{"Exotel 8-bit", "CAexotel8bit", [][]byte{[]byte(`{"event":"connected"}`),
			[]byte(`{"event":"start","sequence_number":"1","stream_sid":"MZx","start":{"stream_sid":"MZx","call_sid":"CAexotel8bit","media_format":{"encoding":"audio/x-raw","sample_rate":"8000","bit_rate":"8"}}}`)}, "bit_rate 8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sub := dial(t, base, "/ws/captions?call="+url.QueryEscape(tc.callID), nil)
			c := dial(t, base, "/media", nil)
			send(t, c, tc.frames...)
			ce := readClose(t, c)
			require.Equal(t, websocket.CloseUnsupportedData, ce.Code)
			require.Contains(t, ce.Text, "unsupported media format")

			var rec bridge.CallRecord
			require.Equal(t, http.StatusOK, getJSON(t, base, "/api/calls/"+url.PathEscape(tc.callID), &rec))
			require.Equal(t, bridge.StatusEnded, rec.Status)
			require.Equal(t, bridge.ReasonError, rec.Reason)
			require.Contains(t, rec.Error, "unsupported media format")
			require.Contains(t, rec.Error, tc.want)
			require.Empty(t, rec.Tracks, "no track, no WAV")
			require.Len(t, rec.Streams, 1)
			require.Equal(t, bridge.ReasonError, rec.Streams[0].Reason)
			resp, err := http.Get(base + "/api/calls/" + url.PathEscape(tc.callID) + "/recordings/inbound.wav")
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusNotFound, resp.StatusCode)

			evs := readEvents(t, sub, func(ev map[string]any) bool { return ev["type"] == bridge.TypeCallEnded })
			require.Equal(t, bridge.ReasonError, evs[len(evs)-1]["reason"])
		})
	}
	wavs, err := filepath.Glob(filepath.Join(cfg.Data, "calls", "*", "*.wav"))
	require.NoError(t, err)
	require.Empty(t, wavs, "no garbage WAV")

	t.Run("a refused second stream leaves the live call going", func(t *testing.T) {
		const id = "v3:live-call"
		ok := dial(t, base, "/media/telnyx", nil)
		send(t, ok, telnyx(id, `{"encoding":"PCMU","sample_rate":8000,"channels":1}`)...)
		send(t, ok, []byte(`{"event":"media","sequence_number":"2","media":{"track":"inbound","chunk":"1","timestamp":"0","payload":"`+mulawFrame(bursts(300, 4000, 0, 1, 1), 0, 160)+`"},"stream_id":"s-`+id+`"}`))
		waitFrames(t, base, id, 1) // the call is live before the second stream comes
		bad := dial(t, base, "/media/telnyx", nil)
		frames := telnyx(id, `{"encoding":"OPUS","sample_rate":48000,"channels":1}`)
		send(t, bad, frames[1])
		require.Equal(t, websocket.CloseUnsupportedData, readClose(t, bad).Code)
		send(t, ok, []byte(`{"event":"stop","sequence_number":"3","stream_id":"s-`+id+`"}`))
		rec := waitEnded(t, base, id)
		require.Equal(t, bridge.ReasonStop, rec.Reason)
		require.Len(t, rec.Streams, 2)
		require.Contains(t, rec.Streams[1].Error, `"OPUS"`)
		require.Len(t, rec.Tracks, 1)
		require.Len(t, fetchWAV(t, base, id, "inbound").samples, 160)
	})
}

// Credentials of the authenticated bridge in the tests below.
const (
	authPublic      = "https://bridge.example.com"
	authTwilioToken = "twilio-auth-token-0123456789abcdef"
	authBearer      = "shared-bearer-token-0123456789"
	authSWBearer    = "signalwire-bearer-token-0123456789"
	authSecret      = "shared-path-secret-0123456789"
	authPlivoSecret = "plivo-path-secret-0123456789"
	authSWKey       = "PSKsigningkey0123456789"
	authAPIToken    = "api-token-0123456789abcdef"
)

func authConfig(t testing.TB) config.Config {
	cfg := testConfig(t)
	cfg.PublicURL = authPublic
	cfg.AllowAnonymous = false
	cfg.APIToken = authAPIToken
	cfg.Providers.TwilioAuthToken = authTwilioToken
	cfg.Providers.SignalWireSigningKey = authSWKey
	cfg.Providers.MediaBearerToken = authBearer
	cfg.Providers.MediaPathSecret = authSecret
	cfg.Providers.ProviderPathSecrets = map[string]string{"plivo": authPlivoSecret}
	cfg.Providers.ProviderBearerTokens = map[string]string{"signalwire": authSWBearer}
	cfg.Providers.ExotelBasicAuth = "KEY:TOKEN"
	require.NoError(t, cfg.Validate())
	return cfg
}

// twilioSign is Twilio's signature, written out independently of the
// bridge's: base64 HMAC-SHA1 of the URL and the sorted form parameters.
func twilioSign(key, u string, form url.Values) string {
	m := hmac.New(sha1.New, []byte(key))
	m.Write([]byte(u))
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		m.Write([]byte(k + form.Get(k)))
	}
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// tryDial opens a media socket and returns the HTTP status of the
// handshake (101 when upgraded) and the socket.
func tryDial(t *testing.T, base, path string, hdr http.Header) (int, *websocket.Conn) {
	t.Helper()
	u := "ws" + base[len("http"):] + path
	c, resp, err := websocket.DefaultDialer.Dial(u, hdr)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		require.ErrorIs(t, err, websocket.ErrBadHandshake)
		return resp.StatusCode, nil
	}
	t.Cleanup(func() { c.Close() })
	return http.StatusSwitchingProtocols, c
}

// TestMediaAuthentication: every scheme, valid and not, is decided before
// the upgrade (the HTTP status of the handshake says so) and a refused
// socket records nothing.
func TestMediaAuthentication(t *testing.T) {
	_, base := startBridge(t, authConfig(t))
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	sig := func(u string) string { return twilioSign(authTwilioToken, u, nil) }
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	refused := []struct {
		name, path string
		hdr        http.Header
		status     int
	}{
		{"no credential", "/media/twilio", nil, http.StatusUnauthorized},
		{"no credential on /media", "/media", nil, http.StatusUnauthorized},
		{"Twilio signature over another URL", "/media/twilio", hdr("X-Twilio-Signature", sig("wss://elsewhere.example.com/media/twilio")), http.StatusForbidden},
		{"Twilio signature over the https URL", "/media/twilio", hdr("X-Twilio-Signature", sig(authPublic+"/media/twilio")), http.StatusForbidden},
		{"Twilio signature with another token", "/media/twilio", hdr("X-Twilio-Signature", twilioSign("other", "wss://bridge.example.com/media/twilio", nil)), http.StatusForbidden},
		{"Twilio signature for another path", "/media/twilio", hdr("X-Twilio-Signature", sig("wss://bridge.example.com/media")), http.StatusForbidden},
		{"wrong bearer", "/media/signalwire", hdr("Authorization", "Bearer not-the-token-0123456789"), http.StatusForbidden},
		{"SignalWire's bearer on another provider", "/media/telnyx", hdr("Authorization", "Bearer "+authSWBearer), http.StatusForbidden},
		{"wrong path secret", "/media/vobiz/not-the-secret-0123456789", nil, http.StatusForbidden},
		{"Plivo's secret on Vobiz", "/media/vobiz/" + authPlivoSecret, nil, http.StatusForbidden},
		{"wrong secret on /media/s", "/media/s/not-the-secret-0123456789", nil, http.StatusForbidden},
		{"wrong Basic password", "/media/exotel", hdr("Authorization", basic("KEY", "WRONG")), http.StatusForbidden},
		{"Basic for Twilio", "/media/twilio", hdr("Authorization", basic("KEY", "TOKEN")), http.StatusForbidden},
		{"garbled Basic", "/media/exotel", hdr("Authorization", "Basic !!!"), http.StatusForbidden},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			status, _ := tryDial(t, base, tc.path, tc.hdr)
			require.Equal(t, tc.status, status)
		})
	}
	var page struct{ Total int }
	require.Equal(t, http.StatusOK, apiGet(t, base, "/api/calls", &page))
	require.Zero(t, page.Total, "a refused socket records nothing")

	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, scheme := range []string{"none", "twilio-signature", "bearer", "path-secret", "basic"} {
		require.Contains(t, string(metrics), `bridge_auth_failures_total{scheme="`+scheme+`"}`)
	}

	accepted := []struct {
		name, path, fixture, callID string
		hdr                         http.Header
	}{
		{"Twilio signature", "/media/twilio", "twilio.jsonl", "CA3ae75ffe1c5d8847e478556c07d07103", hdr("X-Twilio-Signature", sig("wss://bridge.example.com/media/twilio"))},
		{"Twilio signature with :443 on /media", "/media", "twilio-toplevel-ids.jsonl", "CA0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", hdr("X-Twilio-Signature", sig("wss://bridge.example.com:443/media"))},
		{"SignalWire bearer", "/media/signalwire", "signalwire-compat.jsonl", "76ac3c36-56da-4a3e-a0d6-b5f8df6da9ad", hdr("Authorization", "Bearer "+authSWBearer)},
		{"shared bearer", "/media", "telnyx.jsonl", "v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg", hdr("Authorization", "Bearer "+authBearer)},
		{"Plivo path secret", "/media/plivo/" + authPlivoSecret, "plivo-l16.jsonl", "12345678-1234-1234-1234-123456789abc", nil},
		{"shared path secret on /media/s", "/media/s/" + authSecret, "vobiz-mulaw.jsonl", "5401fd2e-6344-40df-a22c-c8ffea7a92e7", nil},
		{"Exotel Basic", "/media/exotel", "exotel.jsonl", "CA1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f", hdr("Authorization", basic("KEY", "TOKEN"))},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			status, c := tryDial(t, base, tc.path, tc.hdr)
			require.Equal(t, http.StatusSwitchingProtocols, status)
			send(t, c, fixtureLines(t, tc.fixture)...)
			if !strings.Contains(tc.fixture, "plivo") && !strings.Contains(tc.fixture, "vobiz") {
				readClose(t, c) // stop
			} else {
				eventually(t, func() bool {
					var rec bridge.CallRecord
					return apiGet(t, base, "/api/calls/"+url.PathEscape(tc.callID), &rec) == http.StatusOK && len(rec.Tracks) > 0 && rec.Tracks[0].Frames >= 1
				}, 10*time.Second, 10*time.Millisecond)
				require.NoError(t, c.UnderlyingConn().Close())
			}
			eventually(t, func() bool {
				var rec bridge.CallRecord
				return apiGet(t, base, "/api/calls/"+url.PathEscape(tc.callID), &rec) == http.StatusOK && rec.Status == bridge.StatusEnded && len(rec.Tracks) > 0
			}, 15*time.Second, 20*time.Millisecond)
		})
	}

	t.Run("a credential that belongs to one provider cannot carry another's stream", func(t *testing.T) {
		status, c := tryDial(t, base, "/media", hdr("Authorization", basic("KEY", "TOKEN")))
		require.Equal(t, http.StatusSwitchingProtocols, status)
		send(t, c, fixtureLines(t, "twilio-toplevel-ids.jsonl")[:2]...)
		ce := readClose(t, c)
		require.Equal(t, websocket.ClosePolicyViolation, ce.Code)
		require.Contains(t, ce.Text, "authenticated as exotel but streams twilio")
	})

	t.Run("a refusal's answer names no secret", func(t *testing.T) {
		// (The log of every refusal is searched for secrets by
		// TestSecretsNeverLogged.)
		_, resp, err := websocket.DefaultDialer.Dial("ws"+base[len("http"):]+"/media/vobiz/"+authPlivoSecret, nil)
		require.ErrorIs(t, err, websocket.ErrBadHandshake)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusForbidden, resp.StatusCode, "%s", body)
		require.Contains(t, string(body), "wrong path secret", "the answer says why")
		require.NotContains(t, string(body), authPlivoSecret)
		for k, v := range resp.Header {
			require.NotContains(t, strings.Join(v, " "), authPlivoSecret, k)
		}
	})
}

func TestMediaOpenToAnyone(t *testing.T) {
	_, base := startBridge(t, testConfig(t))
	status, _ := tryDial(t, base, "/media/twilio", nil)
	require.Equal(t, http.StatusSwitchingProtocols, status)
	status, _ = tryDial(t, base, "/media/s/whatever-secret-0123456789", nil)
	require.Equal(t, http.StatusNotFound, status, "no path secret is configured")

	var out strings.Builder
	printBanner(&out, testConfig(t), "127.0.0.1:8080", "")
	require.Contains(t, out.String(), "OPEN TO ANYONE")
	out.Reset()
	printBanner(&out, authConfig(t), "127.0.0.1:8080", "")
	require.NotContains(t, out.String(), "OPEN TO ANYONE")
	for _, secret := range []string{authSecret, authPlivoSecret, authBearer, authSWBearer, authTwilioToken, "KEY:TOKEN"} {
		require.NotContains(t, out.String(), secret, "the banner shows no secret")
	}
	require.Contains(t, out.String(), "https://bridge.example.com/instructions/plivo/<secret>")
}

const formType = "application/x-www-form-urlencoded"

// xmlDoc is a parsed XML document: element names, attributes, text.
type xmlNode struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Nodes   []xmlNode  `xml:",any"`
}

func (n xmlNode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n xmlNode) child(name string) xmlNode {
	for _, c := range n.Nodes {
		if c.XMLName.Local == name {
			return c
		}
	}
	return xmlNode{}
}

func parseXML(t *testing.T, b []byte) xmlNode {
	t.Helper()
	require.True(t, strings.HasPrefix(string(b), "<?xml"), "an XML document: %s", b)
	var n xmlNode
	require.NoError(t, xml.Unmarshal(b, &n), "valid XML: %s", b)
	return n
}

// TestStreamInstructions: every provider's instructions are valid
// XML/JSON/YAML naming this bridge's public URL and the provider's
// credential, and are served only to the provider (signature or secret) or
// the operator (API token).
func TestStreamInstructions(t *testing.T) {
	_, base := startBridge(t, authConfig(t))
	caller := url.Values{"From": {"+14155550100"}, "To": {"+14155550199"}, "CallSid": {"CA11111111111111111111111111111111"}}
	// twilioPost posts form to path as Twilio does, signed with key over signed.
	twilioPost := func(t *testing.T, path, key string, signed, form url.Values) (int, []byte) {
		return httpDo(t, "POST", base+path, form.Encode(),
			map[string]string{"Content-Type": formType, "X-Twilio-Signature": twilioSign(key, authPublic+path, signed)})
	}

	t.Run("Twilio, signed", func(t *testing.T) {
		status, b := twilioPost(t, "/instructions/twilio?dial=%2B15551234567", authTwilioToken, caller, caller)
		require.Equal(t, http.StatusOK, status, "%s", b)
		doc := parseXML(t, b)
		require.Equal(t, "Response", doc.XMLName.Local)
		st := doc.child("Start").child("Stream")
		require.Equal(t, "wss://bridge.example.com/media/twilio", st.attr("url"), "a signature, no secret in the URL")
		require.Equal(t, "both_tracks", st.attr("track"))
		require.Equal(t, "https://bridge.example.com/callbacks/twilio", st.attr("statusCallback"))
		params := map[string]string{}
		for _, p := range st.Nodes {
			params[p.attr("name")] = p.attr("value")
		}
		require.Equal(t, map[string]string{"from": "+14155550100", "to": "+14155550199"}, params)
		require.Equal(t, "+15551234567", doc.child("Dial").child("Number").Text)
	})
	t.Run("Twilio, connect mode", func(t *testing.T) {
		status, b := twilioPost(t, "/instructions/twilio?mode=connect", authTwilioToken, caller, caller)
		require.Equal(t, http.StatusOK, status, "%s", b)
		doc := parseXML(t, b)
		require.Equal(t, "inbound_track", doc.child("Connect").child("Stream").attr("track"))
		require.Len(t, doc.Nodes, 1, "nothing after <Connect>")
	})
	t.Run("Twilio, bad signature", func(t *testing.T) {
		status, _ := twilioPost(t, "/instructions/twilio", "wrong", caller, caller)
		require.Equal(t, http.StatusForbidden, status)
	})
	t.Run("Twilio, tampered form", func(t *testing.T) {
		tampered := url.Values{"From": {"+19999999999"}, "To": caller["To"], "CallSid": caller["CallSid"]}
		status, _ := twilioPost(t, "/instructions/twilio", authTwilioToken, caller, tampered)
		require.Equal(t, http.StatusForbidden, status)
	})
	t.Run("SignalWire cXML with the path secret", func(t *testing.T) {
		status, b := httpDo(t, "POST", base+"/instructions/signalwire/"+authSecret+"?codec=L16@16000h&param.ticket=T-9", caller.Encode(),
			map[string]string{"Content-Type": formType})
		require.Equal(t, http.StatusOK, status, "%s", b)
		st := parseXML(t, b).child("Start").child("Stream")
		require.Equal(t, "wss://bridge.example.com/media/signalwire", st.attr("url"))
		require.Equal(t, authSWBearer, st.attr("authBearerToken"), "SignalWire's own bearer token")
		require.Equal(t, "L16@16000h", st.attr("codec"))
		require.Equal(t, "https://bridge.example.com/callbacks/signalwire", st.attr("statusCallback"), "signed with the signing key")
		require.Contains(t, string(b), `name="ticket" value="T-9"`)
	})
	t.Run("SWML JSON, signed with the signing key", func(t *testing.T) {
		body := `{"call":{"call_id":"c-1","from":"+14155550100","to":"+14155550199"},"vars":{}}`
		m := hmac.New(sha1.New, []byte(authSWKey))
		m.Write([]byte(authPublic + "/instructions/swml?dial=%2B15551234567" + body))
		status, b := httpDo(t, "POST", base+"/instructions/swml?dial=%2B15551234567", body,
			map[string]string{"Content-Type": "application/json", "X-SignalWire-Signature": hex.EncodeToString(m.Sum(nil))})
		require.Equal(t, http.StatusOK, status, "%s", b)
		var doc struct {
			Version  string
			Sections map[string][]map[string]map[string]any
		}
		require.NoError(t, json.Unmarshal(b, &doc), "%s", b)
		require.Equal(t, "1.0.0", doc.Version)
		main := doc.Sections["main"]
		require.Len(t, main, 3)
		require.Contains(t, main[0], "answer")
		st := main[1]["stream"]
		require.Equal(t, "wss://bridge.example.com/media/signalwire", st["url"])
		require.Equal(t, "both_tracks", st["track"])
		require.Equal(t, authSWBearer, st["authorization_bearer_token"])
		require.Equal(t, map[string]any{"from": "+14155550100", "to": "+14155550199"}, st["custom_parameters"])
		require.Equal(t, "+15551234567", main[2]["connect"]["to"])
	})
	t.Run("SWML YAML with the path secret", func(t *testing.T) {
		status, b := httpDo(t, "GET", base+"/instructions/swml/"+authSecret+"?format=yaml", "", nil)
		require.Equal(t, http.StatusOK, status, "%s", b)
		var doc struct {
			Version  string                                 `yaml:"version"`
			Sections map[string][]map[string]map[string]any `yaml:"sections"`
		}
		require.NoError(t, yaml.Unmarshal(b, &doc), "valid YAML: %s", b)
		require.Equal(t, "1.0.0", doc.Version)
		st := doc.Sections["main"][1]["stream"]
		require.Equal(t, "wss://bridge.example.com/media/signalwire", st["url"])
		require.Equal(t, authSWBearer, st["authorization_bearer_token"])
		require.Equal(t, "silence:3600", doc.Sections["main"][2]["play"]["url"])
	})
	t.Run("Plivo with its own secret", func(t *testing.T) {
		status, b := httpDo(t, "POST", base+"/instructions/plivo/"+authPlivoSecret, caller.Encode(), map[string]string{"Content-Type": formType})
		require.Equal(t, http.StatusOK, status, "%s", b)
		doc := parseXML(t, b)
		st := doc.child("Stream")
		require.Equal(t, "wss://bridge.example.com/media/plivo/"+authPlivoSecret, strings.TrimSpace(st.Text))
		require.Equal(t, "false", st.attr("bidirectional"))
		require.Equal(t, "both", st.attr("audioTrack"))
		require.Equal(t, "audio/x-mulaw;rate=8000", st.attr("contentType"))
		require.Equal(t, "https://bridge.example.com/callbacks/plivo/"+authPlivoSecret, st.attr("statusCallbackUrl"))
		require.Equal(t, "from=14155550100,to=14155550199", st.attr("extraHeaders"))
		require.Equal(t, "3600", doc.child("Wait").attr("length"))
	})
	t.Run("Plivo with the shared secret", func(t *testing.T) {
		status, b := httpDo(t, "GET", base+"/instructions/plivo/"+authSecret, "", nil)
		require.Equal(t, http.StatusOK, status, "%s", b)
		require.Contains(t, string(b), "/media/plivo/"+authPlivoSecret+"<", "the provider's own secret is preferred")
	})
	t.Run("Vobiz", func(t *testing.T) {
		status, b := httpDo(t, "POST", base+"/instructions/vobiz/"+authSecret+"?dial=sip:agent@pbx.example.com", caller.Encode(), map[string]string{"Content-Type": formType})
		require.Equal(t, http.StatusOK, status, "%s", b)
		doc := parseXML(t, b)
		st := doc.child("Stream")
		require.Equal(t, "wss://bridge.example.com/media/vobiz/"+authSecret, strings.TrimSpace(st.Text))
		require.Equal(t, "audio/x-mulaw;rate=8000", st.attr("contentType"))
		require.Empty(t, st.attr("extraHeaders"), "Vobiz does not pass them on")
		require.Equal(t, "sip:agent@pbx.example.com", doc.child("Dial").child("User").Text)
	})
	t.Run("Telnyx TeXML", func(t *testing.T) {
		status, b := httpDo(t, "POST", base+"/instructions/telnyx/"+authSecret, caller.Encode(), map[string]string{"Content-Type": formType})
		require.Equal(t, http.StatusOK, status, "%s", b)
		doc := parseXML(t, b)
		st := doc.child("Start").child("Stream")
		require.Equal(t, "wss://bridge.example.com/media/telnyx/"+authSecret, st.attr("url"))
		require.Equal(t, "both_tracks", st.attr("track"))
		require.Equal(t, "https://bridge.example.com/callbacks/telnyx/"+authSecret, st.attr("statusCallback"))
		require.Empty(t, st.Nodes, "no <Parameter> in TeXML")
		require.Equal(t, "3600", doc.child("Pause").attr("length"))
	})
	t.Run("Exotel guidance", func(t *testing.T) {
		status, b := httpDo(t, "GET", base+"/instructions/exotel/"+authSecret+"?param.campaign=spring", "", nil)
		require.Equal(t, http.StatusOK, status, "%s", b)
		var g struct {
			StreamURL      string `json:"stream_url"`
			StreamURL16k   string `json:"stream_url_16k"`
			Authentication string
			Steps          []string
		}
		require.NoError(t, json.Unmarshal(b, &g))
		require.Equal(t, "wss://KEY:TOKEN@bridge.example.com/media/exotel?campaign=spring", g.StreamURL)
		require.Equal(t, "wss://KEY:TOKEN@bridge.example.com/media/exotel?campaign=spring&sample-rate=16000", g.StreamURL16k)
		require.Equal(t, "basic", g.Authentication)
		require.NotEmpty(t, g.Steps)
	})
	t.Run("Vonage NCCO", func(t *testing.T) {
		status, b := httpDo(t, "GET", base+"/instructions/vonage/"+authSecret+"?uuid=abc-123&from=447700900000&to=447700900001", "", nil)
		require.Equal(t, http.StatusOK, status, "%s", b)
		var ncco []struct {
			Action   string
			Endpoint []map[string]any
		}
		require.NoError(t, json.Unmarshal(b, &ncco))
		require.Equal(t, "connect", ncco[0].Action)
		ep := ncco[0].Endpoint[0]
		require.Equal(t, "websocket", ep["type"])
		require.Equal(t, "wss://bridge.example.com/media/vonage/"+authSecret, ep["uri"])
		require.Equal(t, "audio/l16;rate=16000", ep["content-type"])
		require.Equal(t, map[string]any{"call_id": "abc-123", "from": "447700900000", "to": "447700900001"}, ep["headers"])
	})
	t.Run("the operator with the API token", func(t *testing.T) {
		status, b := httpDo(t, "GET", base+"/instructions/telnyx", "", map[string]string{"Authorization": "Bearer " + authAPIToken})
		require.Equal(t, http.StatusOK, status, "%s", b)
	})
	for _, tc := range []struct {
		name, path string
		status     int
	}{
		{"no credential", "/instructions/plivo", http.StatusUnauthorized},
		{"wrong secret", "/instructions/plivo/not-the-secret-0123456789", http.StatusForbidden},
		{"another provider's secret", "/instructions/vobiz/" + authPlivoSecret, http.StatusForbidden},
		{"wrong API token", "/instructions/telnyx?token=nope", http.StatusForbidden},
		{"unknown provider", "/instructions/acme/" + authSecret, http.StatusNotFound},
		{"bad dial", "/instructions/plivo/" + authSecret + "?dial=%3Cscript%3E", http.StatusBadRequest},
		{"connect mode on Plivo", "/instructions/plivo/" + authSecret + "?mode=connect", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, b := httpDo(t, "GET", base+tc.path, "", nil)
			require.Equal(t, tc.status, status, "%s", b)
			require.NotContains(t, string(b), authSecret)
			require.NotContains(t, string(b), authPlivoSecret)
		})
	}

	t.Run("the media URL of the instructions opens a socket", func(t *testing.T) {
		_, b := httpDo(t, "GET", base+"/instructions/vobiz/"+authSecret, "", nil)
		mediaURL := strings.TrimSpace(parseXML(t, b).child("Stream").Text)
		path := strings.TrimPrefix(mediaURL, "wss://bridge.example.com")
		status, c := tryDial(t, base, path, nil)
		require.Equal(t, http.StatusSwitchingProtocols, status)
		send(t, c, fixtureLines(t, "vobiz-mulaw.jsonl")[:2]...)
		eventually(t, func() bool {
			var rec bridge.CallRecord
			return apiGet(t, base, "/api/calls/5401fd2e-6344-40df-a22c-c8ffea7a92e7", &rec) == http.StatusOK && rec.Provider == "vobiz"
		}, 10*time.Second, 10*time.Millisecond)
	})
}

func TestStreamInstructionsOpen(t *testing.T) {
	cfg := testConfig(t)
	cfg.PublicURL = "https://open.example.com/bridge"
	_, base := startBridge(t, cfg)
	status, b := httpDo(t, "GET", base+"/instructions/plivo", "", nil)
	require.Equal(t, http.StatusOK, status, "%s", b)
	st := parseXML(t, b).child("Stream")
	require.Equal(t, "wss://open.example.com/bridge/media/plivo", strings.TrimSpace(st.Text), "the public URL with its path prefix")
	require.Equal(t, "https://open.example.com/bridge/callbacks/plivo", st.attr("statusCallbackUrl"))

	// Auth for some providers only: the others get a clear refusal.
	cfg = testConfig(t)
	cfg.PublicURL = authPublic
	cfg.AllowAnonymous = false
	cfg.APIToken = authAPIToken
	cfg.Providers.TwilioAuthToken = authTwilioToken
	_, base = startBridge(t, cfg)
	status, b = httpDo(t, "GET", base+"/instructions/plivo", "", map[string]string{"Authorization": "Bearer " + authAPIToken})
	require.Equal(t, http.StatusConflict, status, "%s", b)
	require.Contains(t, string(b), "--media-path-secret")
}

// TestStatusCallbacks: the providers' stream status callbacks land in the
// call record, whether they come before the media socket, during the call
// or after it; bad signatures and secrets are refused.
func TestStatusCallbacks(t *testing.T) {
	cfg := authConfig(t)
	_, base := startBridge(t, cfg)
	const callSid, streamSid = "CAcb000000000000000000000000000001", "MZcb000000000000000000000000000001"
	twilioCallback := func(event string) (int, []byte) {
		form := url.Values{"AccountSid": {"AC00000000000000000000000000000000"}, "CallSid": {callSid}, "StreamSid": {streamSid},
			"StreamName": {"captions"}, "StreamEvent": {event}, "Timestamp": {"2026-11-21T10:00:00Z"}}
		return httpDo(t, "POST", base+"/callbacks/twilio", form.Encode(), map[string]string{
			"Content-Type": formType, "X-Twilio-Signature": twilioSign(authTwilioToken, authPublic+"/callbacks/twilio", form)})
	}

	// Before the socket: held for the call.
	status, b := twilioCallback("stream-started")
	require.Equal(t, http.StatusOK, status, "%s", b)
	require.Contains(t, string(b), `"attached":"pending"`)

	c := dial(t, base, "/media/twilio", http.Header{"X-Twilio-Signature": {twilioSign(authTwilioToken, "wss://bridge.example.com/media/twilio", nil)}})
	send(t, c, twilioStart(callSid, streamSid, []string{"inbound"}, nil),
		twilioMedia(streamSid, "inbound", 2, 1, 0, mulawFrame(bursts(300, 4000, 0, 1, 1), 0, 160)))
	eventually(t, func() bool {
		var rec bridge.CallRecord
		return apiGet(t, base, "/api/calls/"+callSid, &rec) == http.StatusOK && len(rec.Callbacks) == 1
	}, 10*time.Second, 10*time.Millisecond, "the held callback joins the call")

	// During the call: SignalWire-style JSON is not Twilio's; a Plivo-style
	// callback with the shared secret names the call by CallUUID.
	plivoForm := url.Values{"CallUUID": {callSid}, "StreamID": {streamSid}, "Event": {"StartStream"}}
	status, b = httpDo(t, "POST", base+"/callbacks/plivo/"+authSecret, plivoForm.Encode(), map[string]string{"Content-Type": formType})
	require.Equal(t, http.StatusOK, status, "%s", b)
	require.Contains(t, string(b), `"attached":"live"`)

	send(t, c, twilioStop(streamSid, callSid, 3))
	rec := waitEndedAPI(t, base, callSid)

	// After the call: written into the stored call.json.
	status, b = twilioCallback("stream-stopped")
	require.Equal(t, http.StatusOK, status, "%s", b)
	require.Contains(t, string(b), `"attached":"stored"`)

	require.Equal(t, http.StatusOK, apiGet(t, base, "/api/calls/"+callSid, &rec))
	require.Len(t, rec.Callbacks, 3)
	require.Equal(t, "stream-started", rec.Callbacks[0]["event"])
	require.Equal(t, "twilio", rec.Callbacks[0]["provider"])
	require.Equal(t, streamSid, rec.Callbacks[0]["stream_id"])
	require.Equal(t, "StartStream", rec.Callbacks[1]["event"])
	require.Equal(t, "plivo", rec.Callbacks[1]["provider"])
	require.Equal(t, "stream-stopped", rec.Callbacks[2]["event"])

	onDisk, err := os.ReadFile(filepath.Join(cfg.Data, "calls", callSid, "call.json"))
	require.NoError(t, err)
	var stored bridge.CallRecord
	require.NoError(t, json.Unmarshal(onDisk, &stored))
	require.Len(t, stored.Callbacks, 3, "persisted in call.json")

	t.Run("SignalWire calling.call.stream, signed", func(t *testing.T) {
		const id = "e2d7b1c9-0a4f-4f6e-9b3d-7c8a1e2f3b4c"
		body := `{"event_type":"calling.call.stream","event_channel":"swml:x","timestamp":1700000000.1,"project_id":"p","space_id":"s","params":{"call_id":"` + id + `","control_id":"ctl-1","state":"streaming","url":"wss://bridge.example.com/media/signalwire","name":"captions"}}`
		m := hmac.New(sha1.New, []byte(authSWKey))
		m.Write([]byte(authPublic + "/callbacks/signalwire" + body))
		status, b := httpDo(t, "POST", base+"/callbacks/signalwire", body, map[string]string{
			"Content-Type": "application/json", "X-SignalWire-Signature": hex.EncodeToString(m.Sum(nil))})
		require.Equal(t, http.StatusOK, status, "%s", b)
		require.Contains(t, string(b), `"call_id":"`+id+`"`)

		c := dial(t, base, "/media/signalwire", http.Header{"Authorization": {"Bearer " + authSWBearer}})
		send(t, c, fixtureLines(t, "signalwire-swml.jsonl")...)
		rec := waitEndedAPI(t, base, id)
		require.Len(t, rec.Callbacks, 1)
		require.Equal(t, "streaming", rec.Callbacks[0]["event"])
		require.Equal(t, "ctl-1", rec.Callbacks[0]["stream_id"])
	})

	for _, tc := range []struct {
		name, path, body string
		hdr              map[string]string
		status           int
	}{
		{"Twilio, bad signature", "/callbacks/twilio", "CallSid=" + callSid + "&StreamEvent=stream-error",
			map[string]string{"Content-Type": formType, "X-Twilio-Signature": twilioSign("wrong", authPublic+"/callbacks/twilio", url.Values{"CallSid": {callSid}, "StreamEvent": {"stream-error"}})}, http.StatusForbidden},
		{"Twilio, unsigned", "/callbacks/twilio", "CallSid=" + callSid, map[string]string{"Content-Type": formType}, http.StatusUnauthorized},
		{"SignalWire, bad signature", "/callbacks/signalwire", `{"params":{"call_id":"x"}}`,
			map[string]string{"Content-Type": "application/json", "X-SignalWire-Signature": strings.Repeat("0", 40)}, http.StatusForbidden},
		{"Plivo, wrong secret", "/callbacks/plivo/not-the-secret-0123456789", "CallUUID=" + callSid, map[string]string{"Content-Type": formType}, http.StatusForbidden},
		{"no call named", "/callbacks/plivo/" + authSecret, "Event=StartStream", map[string]string{"Content-Type": formType}, http.StatusBadRequest},
		{"unknown provider", "/callbacks/acme/" + authSecret, "CallUUID=x", map[string]string{"Content-Type": formType}, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, b := httpDo(t, "POST", base+tc.path, tc.body, tc.hdr)
			require.Equal(t, tc.status, status, "%s", b)
		})
	}
	require.Equal(t, http.StatusOK, apiGet(t, base, "/api/calls/"+callSid, &rec))
	require.Len(t, rec.Callbacks, 3, "refused callbacks are not attached")
}

// waitEndedAPI is waitEnded on a bridge with an API token.
func waitEndedAPI(t *testing.T, base, id string) bridge.CallRecord {
	t.Helper()
	return waitEndedVia(t, apiGet, base, id)
}

// TestL16ByteOrderSetting: --l16-byte-order overrides a provider's
// documented byte order; read the wrong way, the audio looks like noise and
// the call record says so.
func TestL16ByteOrderSetting(t *testing.T) {
	vobizCall := func(t *testing.T, base, id string) {
		c := dial(t, base, "/media", nil)
		send(t, c, []byte(`{"sequenceNumber":0,"event":"start","start":{"callId":"`+id+`","streamId":"s-`+id+`","accountId":"500025","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-l16","sampleRate":16000}},"extra_headers":"{}"}`))
		const frames = 40
		for k := range frames {
			b := make([]byte, 640)
			for i := range 320 {
				v := int16(8000 * math.Sin(2*math.Pi*440*float64(320*k+i)/16000))
				binary.BigEndian.PutUint16(b[2*i:], uint16(v)) // Vobiz: network byte order
			}
			send(t, c, []byte(fmt.Sprintf(`{"sequenceNumber":%d,"streamId":"s-%s","event":"media","media":{"track":"inbound","timestamp":"%d","chunk":%d,"payload":"%s"},"extra_headers":"{}"}`,
				k+1, id, 1778597597071+20*k, k+1, base64.StdEncoding.EncodeToString(b))))
		}
		waitFrames(t, base, id, frames)
		require.NoError(t, c.UnderlyingConn().Close())
	}
	for _, tc := range []struct {
		name, override, order string
		warned                bool
	}{
		{"documented big-endian", "", "be", false},
		{"overridden to little-endian", "vobiz=le", "le", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			if tc.override != "" {
				k, v, _ := strings.Cut(tc.override, "=")
				cfg.Providers.L16ByteOrder = map[string]string{k: v}
			}
			_, base := startBridge(t, cfg)
			id := "vobiz-order-" + tc.order
			vobizCall(t, base, id)
			rec := waitEnded(t, base, id)
			require.Equal(t, tc.order, rec.Tracks[0].ByteOrder)
			if tc.warned {
				require.Contains(t, rec.Tracks[0].Warning, "byte-swapped")
			} else {
				require.Empty(t, rec.Tracks[0].Warning)
			}
		})
	}
}

// TestReorderWindowSetting: with --reorder-frames 0 the Telnyx frame that
// arrives late is dropped as behind the audio already recorded; the
// default window puts it back in place (TestEveryProviderFixture).
func TestReorderWindowSetting(t *testing.T) {
	cfg := testConfig(t)
	cfg.Providers.ReorderFrames = 0
	_, base := startBridge(t, cfg)
	c := dial(t, base, "/media/telnyx", nil)
	send(t, c, fixtureLines(t, "telnyx-reordered.jsonl")...)
	rec := waitEnded(t, base, "v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg")
	require.Equal(t, int64(1), rec.Tracks[0].Duplicates)
	require.Equal(t, int64(2*160), rec.Tracks[0].Samples)
}
