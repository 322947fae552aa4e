package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/codec"
	"github.com/callcaptions/bridge/recorder"
	"github.com/callcaptions/bridge/stt"
	"github.com/callcaptions/bridge/stt/mock"
)

// Panic injection: test doubles that panic on one call only, so that the
// test can show the other call does not notice.

// panicRecognizer is the mock recognizer, whose streams for target panic
// in Write (on the track's feeder) or in Results (on its results reader).
type panicRecognizer struct {
	stt.Recognizer
	target, mode string
}

func (r panicRecognizer) Open(ctx context.Context, sc stt.StreamConfig) (stt.Stream, error) {
	st, err := r.Recognizer.Open(ctx, sc)
	if err != nil || sc.CallID != r.target {
		return st, err
	}
	return panicSTTStream{Stream: st, mode: r.mode}, nil
}

type panicSTTStream struct {
	stt.Stream
	mode string
}

func (s panicSTTStream) Write(pos int64, pcm []byte) error {
	if s.mode == "stt-write" {
		panic("test: recognizer write")
	}
	return s.Stream.Write(pos, pcm)
}

func (s panicSTTStream) Results() <-chan stt.Result {
	if s.mode == "stt-results" {
		panic("test: recognizer results")
	}
	return s.Stream.Results()
}

// panicStore is the real recorder, whose files for target panic: the
// recording's third write (on the media socket's read loop), or the next
// document write once armed (on the call's own goroutine).
type panicStore struct {
	fuzzStore
	target, mode string
	armed        *atomic.Bool
}

func (s panicStore) Open(id string) (bridge.CallFiles, error) {
	f, err := s.fuzzStore.Open(id)
	if err != nil || id != s.target {
		return f, err
	}
	return panicFiles{fuzzFiles: f.(fuzzFiles), s: s}, nil
}

type panicFiles struct {
	fuzzFiles
	s panicStore
}

func (f panicFiles) CreateTrack(track string, rate int) (bridge.AudioSink, error) {
	if f.s.mode == "create-track" {
		panic("test: create track")
	}
	k, err := f.fuzzFiles.CreateTrack(track, rate)
	if err != nil || f.s.mode != "recording" {
		return k, err
	}
	return &panicSink{AudioSink: k}, nil
}

func (f panicFiles) WriteJSON(name string, v any) error {
	if f.s.mode == "documents" && f.s.armed.CompareAndSwap(true, false) {
		panic("test: document write")
	}
	return f.fuzzFiles.WriteJSON(name, v)
}

func (f panicFiles) WriteJSONNoWait(name string, v any) error {
	if f.s.mode == "documents" && f.s.armed.CompareAndSwap(true, false) {
		panic("test: document write")
	}
	return f.fuzzFiles.WriteJSONNoWait(name, v)
}

type panicSink struct {
	bridge.AudioSink
	writes int
}

func (k *panicSink) Write(pcm []byte) (int, error) {
	if k.writes++; k.writes == 3 {
		panic("test: recording write")
	}
	return k.AudioSink.Write(pcm)
}

// eventLog is a publisher that keeps every event; it panics publishing
// call.started for panicOn.
type eventLog struct {
	panicOn string
	mu      sync.Mutex
	evs     []bridge.Event
}

func (l *eventLog) Publish(ev bridge.Event) {
	if ev.Type == bridge.TypeCallStarted && ev.CallID == l.panicOn {
		panic("test: publish call.started")
	}
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
}

func (l *eventLog) ended(id string) (bridge.CallEndedBody, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range l.evs {
		if ev.Type == bridge.TypeCallEnded && ev.CallID == id {
			b, ok := ev.Body.(bridge.CallEndedBody)
			return b, ok
		}
	}
	return bridge.CallEndedBody{}, false
}

// mulawCall plays a one-track Twilio call over a real media socket and
// keeps the PCM its frames decode to.
type mulawCall struct {
	id, sid string
	c       *fws.Conn
	n       int
	pcm     []byte
}

func newMulawCall(t *testing.T, ws, id string) *mulawCall {
	t.Helper()
	c, resp, err := fws.DefaultDialer.Dial(ws+"/media/twilio", nil)
	require.NoError(t, err)
	resp.Body.Close()
	t.Cleanup(func() { c.Close() })
	m := &mulawCall{id: id, sid: "MZ" + id, c: c}
	start := fmt.Sprintf(`{"event":"start","streamSid":%q,"start":{"callSid":%q,"streamSid":%q,"tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}`, m.sid, id, m.sid)
	require.NoError(t, c.WriteMessage(fws.TextMessage, []byte(start)))
	return m
}

// frame sends the next 20 ms: distinct bytes in every frame, so a lost or
// misplaced frame shows in the recording.
func (m *mulawCall) frame() error {
	payload := make([]byte, 160)
	for i := range payload {
		payload[i] = byte(m.n*31 + i*7)
	}
	pcm := make([]byte, 2*len(payload))
	codec.DecodeMulaw(pcm, payload)
	m.n++
	msg := fmt.Sprintf(`{"event":"media","streamSid":%q,"media":{"track":"inbound","chunk":"%d","timestamp":"%d","payload":%q}}`,
		m.sid, m.n, 20*(m.n-1), base64.StdEncoding.EncodeToString(payload))
	if err := m.c.WriteMessage(fws.TextMessage, []byte(msg)); err != nil {
		return err
	}
	m.pcm = append(m.pcm, pcm...)
	return nil
}

func (m *mulawCall) stop() error {
	return m.c.WriteMessage(fws.TextMessage, []byte(fmt.Sprintf(`{"event":"stop","streamSid":%q,"stop":{"callSid":%q}}`, m.sid, m.id)))
}

// readWAV reads a recording from disk and checks that it plays: a
// canonical PCM16 mono header whose sizes match the file.
func readWAV(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(b), 44, "WAV shorter than its header")
	require.Equal(t, "RIFF", string(b[0:4]))
	require.Equal(t, "WAVE", string(b[8:12]))
	require.Equal(t, uint32(len(b)-8), binary.LittleEndian.Uint32(b[4:8]), "RIFF size must match the file")
	require.Equal(t, uint16(1), binary.LittleEndian.Uint16(b[20:22]), "PCM")
	require.Equal(t, uint16(1), binary.LittleEndian.Uint16(b[22:24]), "mono")
	require.Equal(t, "data", string(b[36:40]))
	require.Equal(t, uint32(len(b)-44), binary.LittleEndian.Uint32(b[40:44]), "data size must match the file")
	return b[44:]
}

// scrape reads one series from GET /metrics over the real listener.
func scrape(t *testing.T, addr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	require.NoError(t, err)
	return v
}

// TestPanicEndsOnlyItsCall injects a panic into each goroutine that works
// for one call: the process goes on, the other call records every byte,
// and the call that panicked ends with reason error, its WAV playable, its
// call.json saying so and call.ended published; the panic is counted and
// logged once with its stack.
func TestPanicEndsOnlyItsCall(t *testing.T) {
	for _, tc := range []struct {
		name, mode, where string
		noTrack           bool // the call ends before it has a recording
	}{
		{"recognizer write on the feeder", "stt-write", "track", false},
		{"recognizer results on the results reader", "stt-results", "track", false},
		{"recording write on the media socket", "recording", "socket", false},
		{"document write on the call goroutine", "documents", "call", false},
		{"publishing call.started as the call is created", "publish-started", "call", true},
		{"opening the recording as the stream joins", "create-track", "call", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const boom, calm = "CAboom", "CAcalm"
			data := t.TempDir()
			store, err := recorder.NewStore(data)
			require.NoError(t, err)
			armed := &atomic.Bool{}
			logs := &fuzzLog{}
			log := zerolog.New(logs)
			events := &eventLog{}
			if tc.mode == "publish-started" {
				events.panicOn = boom
			}
			metrics := newPromSet(nil)
			reg := bridge.NewRegistry(bridge.Config{
				Store:      panicStore{fuzzStore: fuzzStore{store}, target: boom, mode: tc.mode, armed: armed},
				Recognizer: panicRecognizer{Recognizer: mock.New(mock.Config{}), target: boom, mode: tc.mode},
				Publisher:  events, Metrics: metrics.bridge, Log: log, DrainTimeout: 5 * time.Second,
			})
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				reg.Shutdown(ctx)
			})
			addr := listen(t, NewApp(Config{APIToken: "tok"}, Deps{Registry: reg, Log: log, Metrics: metrics.web, Gatherer: metrics}))
			ws := "ws://" + addr

			other := newMulawCall(t, ws, calm)
			victim := newMulawCall(t, ws, boom)
			for range 5 {
				require.NoError(t, other.frame())
				_ = victim.frame() // the victim's socket may be closed by now
			}
			if tc.mode == "documents" {
				require.Eventually(t, func() bool { // the call's goroutine runs: arm the store for it
					rec, ok := reg.Record(boom)
					return ok && len(rec.Tracks) == 1 && rec.Tracks[0].Frames == 5
				}, 10*time.Second, 5*time.Millisecond)
				armed.Store(true)
				require.NoError(t, victim.stop())
			}

			require.Eventually(t, func() bool {
				_, ok := events.ended(boom) // published once the documents are written
				return ok
			}, 10*time.Second, 5*time.Millisecond, "the call that panicked did not end: %s", logs)
			rec, _ := reg.Record(boom)
			require.Equal(t, bridge.ReasonError, rec.Reason)
			require.Contains(t, rec.Error, "internal error")

			// Its files: call.json says error, the WAV plays.
			var stored bridge.CallRecord
			require.NoError(t, store.ReadJSON(boom, "call.json", &stored))
			require.Equal(t, bridge.StatusEnded, stored.Status)
			require.Equal(t, bridge.ReasonError, stored.Reason)
			if !tc.noTrack {
				wav, err := store.TrackPath(boom, "inbound")
				require.NoError(t, err)
				readWAV(t, wav)
			}
			ended, _ := events.ended(boom)
			require.Equal(t, bridge.ReasonError, ended.Reason)

			require.Equal(t, 1.0, scrape(t, addr, `bridge_panics_total{where="`+tc.where+`"}`))
			require.Equal(t, 1, strings.Count(logs.String(), `"stack":"goroutine `), "the stack is logged once")

			// The other call never noticed: it goes on and records every byte.
			for range 5 {
				require.NoError(t, other.frame())
			}
			require.NoError(t, other.stop())
			require.Eventually(t, func() bool {
				_, ok := events.ended(calm)
				return ok
			}, 10*time.Second, 5*time.Millisecond)
			rec, _ = reg.Record(calm)
			require.Equal(t, bridge.ReasonStop, rec.Reason)
			require.Empty(t, rec.Error)
			calmWAV, err := store.TrackPath(calm, "inbound")
			require.NoError(t, err)
			require.Equal(t, other.pcm, readWAV(t, calmWAV), "the other call's recording is not byte-exact")
		})
	}
}

// TestPanicInHTTPHandlerIs500 makes a handler panic (a store that panics
// reading a call's record) on a plain route and on one with a path secret:
// the request gets a 500 with the usual JSON body, the panic is counted and
// logged once with the method and the redacted path, and the server goes on
// serving.
func TestPanicInHTTPHandlerIs500(t *testing.T) {
	data := t.TempDir()
	store, err := recorder.NewStore(data)
	require.NoError(t, err)
	logs := &fuzzLog{}
	log := zerolog.New(logs)
	metrics := newPromSet(nil)
	reg := bridge.NewRegistry(bridge.Config{Store: readPanicStore{fuzzStore{store}}, Metrics: metrics.bridge, Log: log})
	const secret = "cb-secret-0123456789"
	addr := listen(t, NewApp(Config{APIToken: "tok", Auth: Auth{PathSecret: secret}}, Deps{Registry: reg, Log: log, Metrics: metrics.web, Gatherer: metrics}))

	for i, tc := range []struct {
		name, raw, path string
	}{
		{"api", "GET /api/calls/CApanic HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer tok\r\n\r\n", "/api/calls/CApanic"},
		{"callback with a path secret", "POST /callbacks/twilio/" + secret + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 15\r\n\r\nCallSid=CApanic",
			"/callbacks/twilio/<secret>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := rawRequest(t, addr, tc.raw)
			require.Equal(t, http.StatusInternalServerError, status)
			require.JSONEq(t, `{"error":"internal error"}`, body)
			require.Equal(t, float64(i+1), scrape(t, addr, `bridge_panics_total{where="http"}`))
			lines := logs.lines(`"stack":"goroutine `)
			require.Len(t, lines, i+1, "the stack is logged once per panic")
			require.Contains(t, lines[i], `"path":"`+tc.path+`"`)
			require.Contains(t, lines[i], `"method":"`+strings.Fields(tc.raw)[0]+`"`)
			require.NotContains(t, logs.String(), secret)
			status, _ = rawRequest(t, addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
			require.Equal(t, http.StatusOK, status, "the server stopped serving")
		})
	}
}

// readPanicStore panics reading the record of CApanic.
type readPanicStore struct{ fuzzStore }

func (s readPanicStore) ReadJSON(id, name string, v any) error {
	if id == "CApanic" {
		panic("test: store read")
	}
	return s.fuzzStore.ReadJSON(id, name, v)
}

// rawRequest writes raw to a new connection to addr, as bytes (so that
// malformed headers reach the server as sent), and reads the response.
func rawRequest(t *testing.T, addr, raw string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = io.WriteString(conn, raw)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "no response (did the server die?)")
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(bytes.TrimSpace(b))
}

func (l *fuzzLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines are the log lines that contain sub.
func (l *fuzzLog) lines(sub string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return out
}

// TestSocketHelperPanicReachesHandler: a panic on a socket's helper
// goroutine (the caption reader) is carried to the handler's
// goroutine with its own stack, where the socket's RecoverHandler counts
// and logs it, instead of ending the process.
func TestSocketHelperPanicReachesHandler(t *testing.T) {
	var crash panicCatcher
	var wg sync.WaitGroup
	wg.Go(func() {
		defer crash.catch()
		panic("test: reader")
	})
	wg.Go(func() { defer crash.catch() }) // one that ends normally
	wg.Wait()

	logs := &fuzzLog{}
	ps := newPromSet(nil)
	s := &Server{log: zerolog.New(logs), metr: ps.web}
	func() {
		defer func() {
			v := recover()
			require.NotNil(t, v, "rethrow did not re-raise the helper's panic")
			s.panicked(PanicSocket, v, nil).Msg("socket handler panicked")
		}()
		crash.rethrow()
	}()
	require.Equal(t, 1.0, counterValue(t, ps, "bridge_panics_total", PanicSocket))
	line := logs.String()
	require.Contains(t, line, `"panic":"test: reader"`)
	require.Contains(t, line, "TestSocketHelperPanicReachesHandler.func1", "the stack is the helper's, where the panic happened")

	var none panicCatcher
	none.rethrow() // nothing caught: nothing raised
}
