package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
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

// The HTTP surface under fuzzing: two bridges with every credential
// configured, one with --public-url (signatures, instructions from the
// public URL) and one without (instructions from the request's own Host and
// X-Forwarded-* headers), each with a call streaming through a real media
// socket beside the fuzzed requests.
const (
	fuzzAPIToken = "fuzz-api-token-0123456789abcdef"
	fuzzSecret   = "fuzz-path-secret-0123456789"
	fuzzPlivo    = "fuzz-plivo-secret-0123456789"
	fuzzBearer   = "fuzz-bearer-token-0123456789"
	fuzzExotel   = "exo:exo-password"
)

// fuzzRoutes are every route of web.NewApp, with the ids, secrets and file
// names that reach their handlers; the fuzzer mutates from these.
var fuzzRoutes = []string{
	"/", "/index.html", "/app.js", "/app.css", "/favicon.svg", "/nope.js", "/?token=" + fuzzAPIToken,
	"/healthz", "/readyz", "/metrics",
	"/api/config", "/api/calls", "/api/calls?limit=1&offset=0&status=active", "/api/calls?limit=x", "/api/calls?offset=-1",
	"/api/calls/CAfuzzcall", "/api/calls/CAfuzzcall/transcript", "/api/calls/CAfuzzcall/transcript.vtt",
	"/api/calls/CAfuzzcall/transcript.srt", "/api/calls/CAfuzzcall/recordings/inbound.wav", "/api/calls/%zz",
	"/api/calls/..%2F..%2Fetc/recordings/inbound.wav",
	"/instructions/twilio", "/instructions/signalwire", "/instructions/swml?format=yaml", "/instructions/plivo/" + fuzzPlivo,
	"/instructions/vobiz/" + fuzzSecret, "/instructions/telnyx/" + fuzzSecret + "?mode=connect", "/instructions/exotel/" + fuzzSecret,
	"/instructions/vonage/" + fuzzSecret + "?uuid=u&from=1&to=2", "/instructions/twilio/" + fuzzSecret + "?dial=%2B15551234567&hold=5&param.a=b",
	"/instructions/signalwire/" + fuzzSecret + "?codec=L16@16000h", "/instructions/nope",
	"/callbacks/twilio/" + fuzzSecret, "/callbacks/signalwire", "/callbacks/plivo/" + fuzzPlivo, "/callbacks/vobiz/" + fuzzSecret,
	"/callbacks/telnyx/" + fuzzSecret, "/callbacks/exotel/" + fuzzSecret,
	"/media", "/media/twilio", "/media/exotel", "/media/s/" + fuzzSecret, "/media/twilio/" + fuzzSecret, "/media/nope/x",
	"/ws/captions", "/ws/captions?call=CAfuzzcall&after=1", "/ws/captions?after=x",
}

// fuzzHeaderSets are header blocks the fuzzer starts from: credentials of
// every kind, proxy headers, ranges, upgrades and malformed values.
var fuzzHeaderSets = []string{
	"",
	"Authorization: Bearer " + fuzzAPIToken + "\r\n",
	"Cookie: bridge_token=" + fuzzAPIToken + "\r\n",
	"Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(fuzzExotel)) + "\r\n",
	"Authorization: Basic !!!\r\n",
	"Authorization: Bearer " + fuzzBearer + "\r\n",
	"X-Forwarded-Host: [\r\n",
	"X-Forwarded-Host: ]:80\r\nX-Forwarded-Proto: https\r\n",
	"X-Forwarded-Proto: javascript\r\nX-Forwarded-Host: a b\r\n",
	"X-Forwarded-Port: -1\r\nX-Forwarded-For: ::::\r\n",
	"X-Twilio-Signature: AAAA\r\n",
	"X-Twilio-Signature: !!\r\nX-SignalWire-Signature: zz\r\n",
	"Authorization: Bearer " + fuzzAPIToken + "\r\nRange: bytes=0-1\r\n",
	"Authorization: Bearer " + fuzzAPIToken + "\r\nRange: bytes=-0\r\n",
	"Authorization: Bearer " + fuzzAPIToken + "\r\nRange: bytes=99999999999999999999-\r\n",
	"Authorization: Bearer " + fuzzAPIToken + "\r\nRange: bytes=5-1,2-3\r\n",
	"Accept: text/html\r\n",
	"Origin: http://evil.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
	"Authorization: Bearer " + fuzzAPIToken + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
	"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Version: 99\r\n",
	"Content-Type: application/x-www-form-urlencoded\r\n",
	"Content-Type: application/json\r\n",
	"Content-Type: application/json\r\nX-SignalWire-Signature: 00\r\n",
}

// fuzzBodies are request bodies the fuzzer starts from.
var fuzzBodies = []string{
	"", "CallSid=CAfuzzcall&StreamSid=MZ1&StreamEvent=stream-started", "CallSid=%zz", "From=%2B1&To=%2B2",
	`{"call":{"from":"+1","to":"+2"}}`, `{"call":`, `{"event_type":"calling.call.stream","params":{"call_id":"CAfuzzcall","state":"streaming"}}`,
	`[1,2,3]`, "\x00\xff\xfe",
}

var fuzzMethods = []string{"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "get", "G\x00T", ""}

// fuzzCall streams a Twilio call into a bridge over a real WebSocket and
// keeps the PCM its frames decode to.
type fuzzCall struct {
	id, sid string
	conn    *websocket.Conn
	n       int
	pcm     []byte
}

func newFuzzCall(tb testing.TB, base, id string) *fuzzCall {
	tb.Helper()
	u := "ws" + strings.TrimPrefix(base, "http") + "/media/twilio/" + fuzzSecret
	conn, resp, err := websocket.DefaultDialer.Dial(u, nil)
	require.NoError(tb, err)
	resp.Body.Close()
	c := &fuzzCall{id: id, sid: "MZ" + id, conn: conn}
	require.NoError(tb, conn.WriteMessage(websocket.TextMessage, twilioStart(id, c.sid, []string{"inbound"}, nil)))
	return c
}

// frame sends the next 20 ms: different bytes in every frame, so that a
// lost or misplaced frame shows in the recording.
func (c *fuzzCall) frame() error {
	payload := make([]byte, 160)
	for i := range payload {
		payload[i] = byte(c.n*37 + i*11)
	}
	pcm := make([]byte, 2*len(payload))
	codec.DecodeMulaw(pcm, payload)
	c.n++
	if err := c.conn.WriteMessage(websocket.TextMessage, twilioMedia(c.sid, "inbound", c.n+1, c.n, 20*(c.n-1), base64.StdEncoding.EncodeToString(payload))); err != nil {
		return err
	}
	c.pcm = append(c.pcm, pcm...)
	return nil
}

// finish stops the call and checks that its recording is byte-exact.
func (c *fuzzCall) finish(tb testing.TB, base string) {
	tb.Helper()
	require.NoError(tb, c.conn.WriteMessage(websocket.TextMessage, twilioStop(c.sid, c.id, c.n+2)))
	var rec bridge.CallRecord
	require.Eventually(tb, func() bool {
		rec = bridge.CallRecord{}
		code := getJSONWith(tb, base, fuzzAPIToken, "/api/calls/"+url.PathEscape(c.id), &rec)
		return code == http.StatusOK && rec.Status == bridge.StatusEnded
	}, 15*time.Second, 20*time.Millisecond, "call %s did not end", c.id)
	require.Equal(tb, bridge.ReasonStop, rec.Reason, "the streaming call ended badly: %s", rec.Error)
	b := authGet(tb, base, fuzzAPIToken, "/api/calls/"+url.PathEscape(c.id)+"/recordings/inbound.wav")
	require.GreaterOrEqual(tb, len(b), 44)
	require.Equal(tb, uint32(len(b)-44), uint32(b[40])|uint32(b[41])<<8|uint32(b[42])<<16|uint32(b[43])<<24, "WAV data size")
	require.True(tb, bytes.Equal(c.pcm, b[44:]), "the streaming call's recording is not byte-exact (%d bytes sent, %d recorded)", len(c.pcm), len(b)-44)
	require.NoError(tb, c.conn.Close())
}

// fuzzRequest assembles a raw HTTP/1.1 request. The fuzzed header block is
// sent as bytes, whatever it holds, except for framing headers: the request
// carries its own Content-Length so that every input gets an answer.
func fuzzRequest(method, path, headers string, body []byte) []byte {
	var b bytes.Buffer
	b.WriteString(method + " " + path + " HTTP/1.1\r\n")
	if !strings.Contains(strings.ToLower(headers), "host:") {
		b.WriteString("Host: 127.0.0.1\r\n")
	}
	for _, line := range strings.Split(headers, "\r\n") {
		l := strings.ToLower(strings.TrimSpace(line))
		if line == "" || strings.HasPrefix(l, "content-length") || strings.HasPrefix(l, "transfer-encoding") || strings.HasPrefix(l, "expect") {
			continue
		}
		b.WriteString(line + "\r\n")
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
	b.Write(body)
	return b.Bytes()
}

// exchange writes raw to a new connection and reads what comes back,
// within a bound; any answer (or none) is acceptable, what matters is that
// the bridge goes on.
func exchange(tb testing.TB, addr, method string, raw []byte) {
	tb.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(tb, err, "the bridge stopped accepting connections")
	defer conn.Close()
	require.NoError(tb, conn.SetDeadline(time.Now().Add(2*time.Second)))
	if _, err := conn.Write(raw); err != nil {
		return
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: strings.ToUpper(method)})
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}

// alive checks the bridge still answers, over a connection of its own.
func alive(tb testing.TB, addr string) {
	tb.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(tb, err, "the bridge stopped accepting connections")
	defer conn.Close()
	require.NoError(tb, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
	require.NoError(tb, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(tb, err, "the bridge stopped answering")
	resp.Body.Close()
	require.Equal(tb, http.StatusOK, resp.StatusCode)
}

// FuzzHTTPSurface sends every route, every method, random headers (Host,
// X-Forwarded-*, Range, Authorization, Cookie, Origin, Upgrade…) and
// bodies, as raw bytes over TCP, to two fully configured bridges while a
// call streams into each through a real WebSocket. No input may make a
// handler panic (each recovered panic is logged with its stack) or stop the
// bridge from serving, and at the end both calls' recordings are
// byte-exact.
func FuzzHTTPSurface(f *testing.F) {
	for i, r := range fuzzRoutes {
		f.Add(byte(i), fuzzMethods[i%3], r, fuzzHeaderSets[i%len(fuzzHeaderSets)], []byte(fuzzBodies[i%len(fuzzBodies)]))
	}
	for i, h := range fuzzHeaderSets {
		for _, r := range []string{"/instructions/exotel/" + fuzzSecret, "/instructions/twilio/" + fuzzSecret, "/api/calls/CAfuzzcall/recordings/inbound.wav", "/media/exotel", "/ws/captions?call=CAfuzzcall"} {
			f.Add(byte(i), "GET", r, h, []byte(nil))
		}
	}
	for i, body := range fuzzBodies {
		for _, r := range []string{"/callbacks/twilio/" + fuzzSecret, "/instructions/swml/" + fuzzSecret, "/callbacks/signalwire", "/instructions/twilio"} {
			for _, ct := range []string{"Content-Type: application/x-www-form-urlencoded\r\n", "Content-Type: application/json\r\nX-Twilio-Signature: AAAA\r\n"} {
				f.Add(byte(i), "POST", r, ct, []byte(body))
			}
		}
	}
	for i, m := range fuzzMethods {
		f.Add(byte(i), m, "/api/calls", "Authorization: Bearer "+fuzzAPIToken+"\r\n", []byte("x"))
	}
	// The request that used to end the process: Exotel instructions built
	// from an unparsable X-Forwarded-Host.
	f.Add(byte(1), "GET", "/instructions/exotel/"+fuzzSecret, "X-Forwarded-Host: [\r\n", []byte(nil))
	f.Add(byte(1), "POST", "/instructions/exotel/"+fuzzSecret, "Host: [\r\n", []byte(nil))
	f.Add(byte(1), "GET", "/instructions/exotel", "Authorization: Bearer "+fuzzAPIToken+"\r\nX-Forwarded-Proto: a b\r\n", []byte(nil))

	logs := &logBuffer{}
	log := zerolog.New(logs).Level(zerolog.WarnLevel)
	var bases [2]string
	var calls [2]*fuzzCall
	for i, public := range []bool{true, false} {
		cfg := fuzzConfig(f, public)
		_, base := startBridgeWith(f, cfg, log, nil)
		bases[i] = base
		calls[i] = newFuzzCall(f, base, fmt.Sprintf("CAfuzz-streaming-%d", i))
	}
	f.Cleanup(func() {
		if f.Failed() {
			return
		}
		for i, c := range calls {
			c.finish(f, bases[i])
		}
		require.Empty(f, logs.lines(`"stack":"goroutine `), "a handler panicked")
	})

	f.Fuzz(func(t *testing.T, target byte, method, path, headers string, body []byte) {
		if len(path) > 4096 || len(headers) > 8192 || len(body) > 64<<10 {
			return
		}
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		i := int(target) % len(bases)
		addr := strings.TrimPrefix(bases[i], "http://")
		exchange(t, addr, method, fuzzRequest(method, path, headers, body))
		alive(t, addr)
		require.NotContains(t, logs.String(), `"stack":"goroutine `, "a handler panicked")
		for _, c := range calls {
			require.NoError(t, c.frame(), "the streaming call's socket failed")
		}
	})
}

// fuzzConfig has every credential configured; public says whether
// --public-url (and with it the Twilio and SignalWire signatures) is set.
func fuzzConfig(tb testing.TB, public bool) config.Config {
	cfg := testConfig(tb)
	cfg.AllowAnonymous = false
	cfg.APIToken = fuzzAPIToken
	cfg.Providers.MediaBearerToken = fuzzBearer
	cfg.Providers.MediaPathSecret = fuzzSecret
	cfg.Providers.ProviderPathSecrets = map[string]string{"plivo": fuzzPlivo}
	cfg.Providers.ProviderBearerTokens = map[string]string{"signalwire": fuzzBearer + "-sw"}
	cfg.Providers.ExotelBasicAuth = fuzzExotel
	// With -fuzz, the coordinating process sets the bridges up but runs no
	// inputs, so its calls send no frames until the end.
	cfg.Limits.IdleTimeout = time.Hour
	if public {
		cfg.PublicURL = "https://bridge.example.com"
		cfg.Providers.TwilioAuthToken = "fuzz-twilio-token-0123456789"
		cfg.Providers.SignalWireSigningKey = "PSKfuzzsigningkey0123456789"
	}
	require.NoError(tb, cfg.Validate())
	return cfg
}
