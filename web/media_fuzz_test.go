package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/recorder"
	"github.com/callcaptions/bridge/stt/mock"
)

// fuzzStore keeps calls in a recorder.Store, as the bridge does.
type fuzzStore struct{ *recorder.Store }

func (s fuzzStore) Open(id string) (bridge.CallFiles, error) {
	c, err := s.Store.Open(id)
	if err != nil {
		return nil, err
	}
	return fuzzFiles{c}, nil
}

type fuzzFiles struct{ *recorder.Call }

func (c fuzzFiles) CreateTrack(track string, rate int) (bridge.AudioSink, error) {
	return c.Call.CreateTrack(track, rate)
}

func (c fuzzFiles) AppendTrack(track string, rate int) (bridge.AudioSink, error) {
	return c.Call.AppendTrack(track, rate)
}

// fuzzLog collects the server's log lines.
type fuzzLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *fuzzLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *fuzzLog) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Contains(l.b.Bytes(), []byte(s))
}

// Frame scripts: the fuzzer's input is a sequence of frames, each a kind
// byte, a two-byte big-endian length and that many bytes. The kind's low
// bits pick a text or binary message; scriptDrop ends the script by
// dropping the connection without a close frame.
const (
	scriptText   = 0
	scriptBinary = 1
	scriptDrop   = 3
	maxScriptLen = 64 << 10 // bounds one run's memory; the read limit is what matters
)

type scriptFrame struct {
	kind byte
	data []byte
}

func encodeScript(frames ...scriptFrame) []byte {
	var b []byte
	for _, f := range frames {
		b = append(b, f.kind)
		b = binary.BigEndian.AppendUint16(b, uint16(len(f.data)))
		b = append(b, f.data...)
	}
	return b
}

func decodeScript(b []byte) (frames []scriptFrame) {
	for len(b) >= 3 {
		kind, n := b[0]&3, int(binary.BigEndian.Uint16(b[1:3]))
		b = b[3:]
		n = min(n, len(b))
		frames = append(frames, scriptFrame{kind, b[:n]})
		b = b[n:]
	}
	return frames
}

// fuzzPaths are the media endpoints a script may be played to.
var fuzzPaths = []string{"/media", "/media/twilio", "/media/signalwire", "/media/plivo", "/media/vobiz",
	"/media/telnyx", "/media/exotel", "/media/vonage"}

// FuzzMediaSocket plays arbitrary frame sequences into the media socket
// handler through real connections. Whatever arrives, the handler must not
// panic, must end every stream it started (no call or socket handler left
// behind), and must not disturb a call that goes on on another socket for
// the whole run.
func FuzzMediaSocket(f *testing.F) {
	// Seeds: every recorded provider session, and sessions broken in the
	// ways providers and attackers break them.
	fixtures, _ := filepath.Glob(filepath.Join("..", "testdata", "providers", "*.jsonl"))
	for _, path := range fixtures {
		file, err := os.Open(path)
		require.NoError(f, err)
		var frames []scriptFrame
		sc := bufio.NewScanner(file)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() && len(frames) < 40 {
			if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 && len(line) < 1<<16 {
				frames = append(frames, scriptFrame{scriptText, bytes.Clone(line)})
			}
		}
		file.Close()
		p := byte(0)
		for i, fp := range fuzzPaths {
			if strings.HasPrefix(filepath.Base(path), strings.TrimPrefix(fp, "/media/")) {
				p = byte(i)
			}
		}
		f.Add(p, encodeScript(frames...))
		if len(frames) > 4 { // the same session cut off mid-call
			f.Add(p, encodeScript(append(frames[:4:4], scriptFrame{kind: scriptDrop})...))
		}
	}
	start := []byte(`{"event":"start","streamSid":"MZfuzz","start":{"callSid":"CAfuzz","streamSid":"MZfuzz","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}`)
	media := func(chunk, ts int, payload string) []byte {
		return []byte(fmt.Sprintf(`{"event":"media","streamSid":"MZfuzz","media":{"track":"inbound","chunk":"%d","timestamp":"%d","payload":"%s"}}`, chunk, ts, payload))
	}
	ulaw := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x7f}, 160))
	for _, s := range [][]scriptFrame{
		{{scriptText, []byte("not json")}},
		{{scriptBinary, []byte{0, 1, 2, 3}}},
		{{scriptText, media(1, 0, ulaw)}},
		{{scriptText, start}, {scriptText, start}},
		{{scriptText, start}, {scriptText, media(1, 0, "!!")}, {scriptText, media(2, 20, ulaw)}, {scriptBinary, []byte{9}}},
		{{scriptText, start}, {scriptText, media(5, 100, ulaw)}, {scriptText, media(1, 0, ulaw)}, {scriptText, media(9_000_000, 180_000_000, ulaw)}},
		{{scriptText, start}, {scriptText, []byte(`{"event":"bogus"}`)}, {scriptDrop, nil}},
		{{scriptText, []byte(`{"event":"start","start":{"callSid":"../../x","mediaFormat":{"encoding":"audio/x-l16","sampleRate":12345}}}`)}},
	} {
		f.Add(byte(1), encodeScript(s...))
	}

	ignore := goleak.IgnoreCurrent()
	store, err := recorder.NewStore(f.TempDir())
	require.NoError(f, err)
	logs := &fuzzLog{}
	log := zerolog.New(logs)
	hub := NewHub(HubConfig{}, log)
	metrics := newPromSet(hub)
	reg := bridge.NewRegistry(bridge.Config{
		Store: fuzzStore{store}, Recognizer: mock.New(mock.Config{}), Publisher: hub, Metrics: metrics.bridge, Log: log,
		STTQueue: time.Second, DrainTimeout: time.Second,
	})
	app := NewApp(Config{MaxMessageBytes: 32 << 10, IdleTimeout: time.Hour}, Deps{Registry: reg, Hub: hub, Log: log, Metrics: metrics.web, Gatherer: metrics})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(f, err)
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	ws := "ws://" + ln.Addr().String()

	// The call that must not notice anything.
	const bystander = "CAbystander-fuzz-7d1c9f0e4b2a4f7d9c3e1a5b8f6d2c40"
	other, _, err := fws.DefaultDialer.Dial(ws+"/media/twilio", nil)
	require.NoError(f, err)
	otherStart := bytes.ReplaceAll(bytes.ReplaceAll(start, []byte("CAfuzz"), []byte(bystander)), []byte("MZfuzz"), []byte("MZbystander"))
	require.NoError(f, other.WriteMessage(fws.TextMessage, otherStart))
	var otherFrames int
	otherFrame := func() error {
		otherFrames++
		return other.WriteMessage(fws.TextMessage, bytes.ReplaceAll(media(otherFrames, 20*(otherFrames-1), ulaw), []byte("MZfuzz"), []byte("MZbystander")))
	}

	f.Cleanup(func() {
		// The bystander recorded every frame it sent, then ends cleanly.
		rec, ok := reg.Record(bystander)
		require.True(f, ok)
		require.Equal(f, int64(otherFrames), rec.Tracks[0].Frames, "the bystander call lost frames")
		require.NoError(f, other.Close())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		reg.Shutdown(ctx)
		hub.Close()
		require.NoError(f, app.ShutdownWithTimeout(5*time.Second))
		require.NoError(f, <-served)
		require.False(f, logs.contains("panicked"), "a socket handler panicked")
		goleak.VerifyNone(f, append([]goleak.Option{ignore}, leakOpts...)...)
	})

	f.Fuzz(func(t *testing.T, path byte, script []byte) {
		if len(script) > maxScriptLen {
			return
		}
		c, resp, err := fws.DefaultDialer.Dial(ws+fuzzPaths[int(path)%len(fuzzPaths)], nil)
		require.NoError(t, err)
		resp.Body.Close()
		dropped := false
		for _, fr := range decodeScript(script) {
			var werr error
			switch fr.kind {
			case scriptDrop:
				dropped = true
			case scriptBinary:
				werr = c.WriteMessage(fws.BinaryMessage, fr.data)
			default:
				werr = c.WriteMessage(fws.TextMessage, fr.data)
			}
			if werr != nil || dropped {
				break // the server closed the socket, or the script drops it
			}
		}
		if !dropped {
			_ = c.WriteControl(fws.CloseMessage, fws.FormatCloseMessage(fws.CloseNormalClosure, ""), time.Now().Add(time.Second))
		}
		_ = c.Close()

		// Every call the script started has ended and every handler
		// returned: only the bystander is left.
		require.Eventually(t, func() bool {
			var open dto.Metric
			// No require here: the condition runs on a goroutine of its
			// own. A gauge that cannot be read is never satisfied.
			return metrics.web.mediaSockets.Write(&open) == nil && reg.Active() == 1 && open.GetGauge().GetValue() == 1
		}, 10*time.Second, time.Millisecond, "a call or a socket handler was left behind")
		require.False(t, logs.contains("panicked"), "a socket handler panicked")

		// The bystander goes on.
		require.NoError(t, otherFrame())
		require.Eventually(t, func() bool {
			rec, ok := reg.Record(bystander)
			return ok && rec.Status == bridge.StatusActive && rec.Tracks[0].Frames == int64(otherFrames)
		}, 10*time.Second, time.Millisecond, "the bystander call stopped taking frames")
	})
}
