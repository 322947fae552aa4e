package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/codec"
	"github.com/callcaptions/bridge/config"
)

// testConfig is the embedded default configuration on a random port and a
// temporary data directory. It serves the API anonymously: most tests are
// about other things; those about access set a token or turn it off.
func testConfig(t testing.TB) config.Config {
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.Data = t.TempDir()
	cfg.AllowAnonymous = true
	cfg.Limits.ReconnectGrace = 50 * time.Millisecond
	cfg.Limits.ShutdownTimeout = 5 * time.Second
	// Tests play audio much faster than real time; a provider never does.
	cfg.Limits.STTQueue = 5 * time.Minute
	return cfg
}

// startBridge runs a bridge until the test ends and returns its base URL.
func startBridge(t *testing.T, cfg config.Config) (*instance, string) {
	t.Helper()
	return startBridgeWith(t, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), nil)
}

// startBridgeWith runs a bridge logging to log; onStop runs after it has
// shut down, at the end of the test.
func startBridgeWith(t testing.TB, cfg config.Config, log zerolog.Logger, onStop func()) (*instance, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan *instance, 1)
	errc := make(chan error, 1)
	go func() { errc <- serve(ctx, cfg, log, io.Discard, started) }()
	var inst *instance
	select {
	case inst = <-started:
	case err := <-errc:
		t.Fatalf("bridge did not start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("bridge did not start within 10 s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("bridge did not shut down within 20 s")
		}
		if onStop != nil {
			onStop()
		}
	})
	return inst, "http://" + inst.addr
}

// dial opens a WebSocket to path on the bridge.
func dial(t *testing.T, base, path string, hdr http.Header) *websocket.Conn {
	t.Helper()
	u := "ws" + base[len("http"):] + path
	c, resp, err := websocket.DefaultDialer.Dial(u, hdr)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	require.NoError(t, err, "dial %s", u)
	t.Cleanup(func() { c.Close() })
	return c
}

// fixtureLines reads a JSONL session from testdata/providers.
func fixtureLines(t *testing.T, name string) [][]byte {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "testdata", "providers", name))
	require.NoError(t, err)
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if len(sc.Bytes()) > 0 {
			out = append(out, append([]byte(nil), sc.Bytes()...))
		}
	}
	require.NoError(t, sc.Err())
	return out
}

func send(t *testing.T, c *websocket.Conn, frames ...[]byte) {
	t.Helper()
	for _, f := range frames {
		require.NoError(t, c.WriteMessage(websocket.TextMessage, f))
	}
}

// httpResponse sends a request and returns the response, its body read
// and closed.
func httpResponse(tb testing.TB, method, u, body string, hdr map[string]string) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	require.NoError(tb, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return resp, b
}

// httpDo sends a request and returns the status and body.
func httpDo(tb testing.TB, method, u, body string, hdr map[string]string) (int, []byte) {
	tb.Helper()
	resp, b := httpResponse(tb, method, u, body, hdr)
	return resp.StatusCode, b
}

// bearer is the header that carries token; none when it is empty.
func bearer(token string) map[string]string {
	if token == "" {
		return nil
	}
	return map[string]string{"Authorization": "Bearer " + token}
}

// getJSONWith fetches path with token and decodes a 200's body into v (when
// not nil), returning the status code.
func getJSONWith(tb testing.TB, base, token, path string, v any) int {
	tb.Helper()
	code, b := httpDo(tb, http.MethodGet, base+path, "", bearer(token))
	if v != nil && code == http.StatusOK {
		require.NoError(tb, json.Unmarshal(b, v))
	}
	return code
}

// getJSON is getJSONWith without a token.
func getJSON(t *testing.T, base, path string, v any) int {
	t.Helper()
	return getJSONWith(t, base, "", path, v)
}

// apiGet is getJSONWith with authAPIToken.
func apiGet(t *testing.T, base, path string, v any) int {
	t.Helper()
	return getJSONWith(t, base, authAPIToken, path, v)
}

// authGet fetches path with token and returns the body of a 200.
func authGet(tb testing.TB, base, token, path string) []byte {
	tb.Helper()
	code, b := httpDo(tb, http.MethodGet, base+path, "", bearer(token))
	require.Equal(tb, http.StatusOK, code, "GET %s: %s", path, b)
	return b
}

// authMetric reads one series from /metrics ("name" or `name{label="v"}`)
// with token; an absent series is 0.
func authMetric(t *testing.T, base, token, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(string(authGet(t, base, token, "/metrics")), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	return 0
}

// metric is authMetric without a token.
func metric(t *testing.T, base, series string) float64 {
	t.Helper()
	return authMetric(t, base, "", series)
}

// playBursts sends the start of a one-track Twilio stream and n frames of
// a tone in bursts.
func playBursts(t *testing.T, c *websocket.Conn, callSid, streamSid string, n int) {
	t.Helper()
	send(t, c, twilioStart(callSid, streamSid, []string{"inbound"}, nil))
	gen := bursts(300, 8000, 0, 0.5, 1)
	for k := range n {
		send(t, c, twilioMedia(streamSid, "inbound", k+2, k+1, 20*k, mulawFrame(gen, 160*k, 160)))
	}
}

// waitEnded polls until the call has ended and returns its record.
func waitEnded(t *testing.T, base, id string) bridge.CallRecord {
	t.Helper()
	return waitEndedVia(t, getJSON, base, id)
}

// waitEndedVia is waitEnded reading the API with get (e.g. with a token).
func waitEndedVia(t *testing.T, get func(t *testing.T, base, path string, v any) int, base, id string) bridge.CallRecord {
	t.Helper()
	var rec bridge.CallRecord
	eventually(t, func() bool {
		rec = bridge.CallRecord{}
		return get(t, base, "/api/calls/"+url.PathEscape(id), &rec) == http.StatusOK && rec.Status == bridge.StatusEnded
	}, 15*time.Second, 20*time.Millisecond, "call %s did not end", id)
	return rec
}

// wavFile is a parsed PCM16 mono WAV.
type wavFile struct {
	rate    int
	samples []int16
	raw     []byte // the data chunk
}

// fetchWAV downloads a recording and parses it with an independent reader.
func fetchWAV(t *testing.T, base, id, track string) wavFile {
	t.Helper()
	resp, err := http.Get(base + "/api/calls/" + url.PathEscape(id) + "/recordings/" + track + ".wav")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "audio/wav", resp.Header.Get("Content-Type"))
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return parseWAV(t, b)
}

func parseWAV(t *testing.T, b []byte) wavFile {
	t.Helper()
	require.GreaterOrEqual(t, len(b), 44, "WAV shorter than its header")
	require.Equal(t, "RIFF", string(b[0:4]))
	require.Equal(t, "WAVE", string(b[8:12]))
	require.Equal(t, uint32(len(b)-8), binary.LittleEndian.Uint32(b[4:8]), "RIFF size must match the file")
	require.Equal(t, "fmt ", string(b[12:16]))
	require.Equal(t, uint16(1), binary.LittleEndian.Uint16(b[20:22]), "PCM")
	require.Equal(t, uint16(1), binary.LittleEndian.Uint16(b[22:24]), "mono")
	rate := int(binary.LittleEndian.Uint32(b[24:28]))
	require.Equal(t, uint16(16), binary.LittleEndian.Uint16(b[34:36]), "16-bit")
	require.Equal(t, "data", string(b[36:40]))
	size := int(binary.LittleEndian.Uint32(b[40:44]))
	require.Equal(t, len(b)-44, size, "data size must match the file")
	data := b[44:]
	s := make([]int16, len(data)/2)
	for i := range s {
		s[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
	}
	return wavFile{rate: rate, samples: s, raw: data}
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// expectedMedia reads the reference decode hashes.
type expectedMedia struct {
	Line    int    `json:"line"`
	Track   string `json:"track"`
	Samples int    `json:"samples"`
	SHA     string `json:"decoded_s16le_sha256"`
}

func expected(t *testing.T, fixture string) []expectedMedia {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "providers", "expected.json"))
	require.NoError(t, err)
	var all map[string]struct {
		Media []expectedMedia `json:"media"`
	}
	require.NoError(t, json.Unmarshal(b, &all))
	e, ok := all[fixture]
	require.True(t, ok, "no expectations for %s", fixture)
	return e.Media
}

// synth builds μ-law frames for a Twilio-style call: audio is a function of
// the sample index on the call clock.
func mulawFrame(gen func(i int) float64, start, n int) string {
	pcm := make([]byte, 2*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(int16(gen(start+i))))
	}
	out := make([]byte, n)
	codec.EncodeMulaw(out, pcm)
	return base64.StdEncoding.EncodeToString(out)
}

// bursts is speech-like audio: a tone of freq Hz in bursts of on seconds
// every period seconds, starting at offset seconds.
func bursts(freq, amp, offset, on, period float64) func(i int) float64 {
	return func(i int) float64 {
		t := float64(i)/8000 - offset
		if t < 0 || math.Mod(t, period) >= on {
			return 0
		}
		return amp * math.Sin(2*math.Pi*freq*float64(i)/8000)
	}
}

func twilioStart(callSid, streamSid string, tracks []string, params map[string]string) []byte {
	b, _ := json.Marshal(map[string]any{
		"event": "start", "sequenceNumber": "1", "streamSid": streamSid,
		"start": map[string]any{
			"accountSid": "AC00000000000000000000000000000000", "streamSid": streamSid, "callSid": callSid,
			"tracks": tracks, "customParameters": params,
			"mediaFormat": map[string]any{"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
		},
	})
	return b
}

func twilioMedia(streamSid, track string, seq, chunk, tsMs int, payload string) []byte {
	return []byte(fmt.Sprintf(`{"event":"media","sequenceNumber":"%d","streamSid":"%s","media":{"track":"%s","chunk":"%d","timestamp":"%d","payload":"%s"}}`,
		seq, streamSid, track, chunk, tsMs, payload))
}

func twilioStop(streamSid, callSid string, seq int) []byte {
	return []byte(fmt.Sprintf(`{"event":"stop","sequenceNumber":"%d","streamSid":"%s","stop":{"accountSid":"AC00000000000000000000000000000000","callSid":"%s"}}`, seq, streamSid, callSid))
}

// readEvents collects subscriber events until pred is satisfied.
func readEvents(t *testing.T, c *websocket.Conn, until func(ev map[string]any) bool) []map[string]any {
	t.Helper()
	var out []map[string]any
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, b, err := c.ReadMessage()
		require.NoError(t, err, "after %d events", len(out))
		var ev map[string]any
		require.NoError(t, json.Unmarshal(b, &ev))
		out = append(out, ev)
		if until(ev) {
			return out
		}
	}
}

func mustB64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
