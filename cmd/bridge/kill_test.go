package main

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
)

// child is the bridge binary running as a child process.
type child struct {
	cmd    *exec.Cmd
	base   string
	stderr *logBuffer
	stdout *logBuffer // the start-up banner
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed
}

// buildBridge builds this command into dir.
func buildBridge(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "bridge")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// startChild runs the binary on a free loopback port with data in data and
// waits until it listens. It serves the API anonymously: these tests are
// about other things (startChildArgs is without that).
func startChild(t *testing.T, bin, data string, args ...string) *child {
	t.Helper()
	return startChildArgs(t, bin, data, append([]string{"--allow-anonymous"}, args...)...)
}

// startChildArgs is startChild with only the given settings besides the
// address, the data directory and the test timings.
func startChildArgs(t *testing.T, bin, data string, args ...string) *child {
	t.Helper()
	args = append([]string{"--addr", "127.0.0.1:0", "--data", data, "--log-format", "json",
		"--reconnect-grace", "0s", "--stt-queue", "5m"}, args...)
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BRIDGE_") { // only the flags above configure it
			cmd.Env = append(cmd.Env, kv)
		}
	}
	c := &child{cmd: cmd, stderr: &logBuffer{}, stdout: &logBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = c.stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	addr := make(chan string, 1)
	var drained sync.WaitGroup
	drained.Go(func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(c.stdout, sc.Text())
			if rest, ok := strings.CutPrefix(sc.Text(), "bridge listening on "); ok {
				addr <- strings.Fields(rest)[0]
			}
		}
	})
	go func() {
		drained.Wait() // Wait closes the pipe: read it to the end first
		c.err = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.exited
		if t.Failed() {
			t.Logf("bridge process log:\n%s", c.stderr.String())
		}
	})
	select {
	case a := <-addr:
		c.base = "http://" + a
	case <-c.exited:
		t.Fatalf("bridge exited at start: %v\n%s", c.err, c.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("bridge did not start within 30 s")
	}
	return c
}

func (c *child) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	require.NoError(t, c.cmd.Process.Signal(sig))
}

// wait waits for the process to exit and returns its exit code (-1 when a
// signal killed it).
func (c *child) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-c.exited:
	case <-time.After(within):
		t.Fatalf("bridge still running after %s", within)
	}
	var ee *exec.ExitError
	if errors.As(c.err, &ee) {
		return ee.ExitCode()
	}
	require.NoError(t, c.err)
	return 0
}

// l16Frame is 20 ms of 16 kHz little-endian L16, frame k of a sweep.
func l16Frame(k int) []byte {
	b := make([]byte, 640)
	for i := range 320 {
		n := 320*k + i
		v := int16(6000 * math.Sin(2*math.Pi*float64(200+n%4000/10)*float64(n)/16000))
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return b
}

// callerPlay is one call the tests play, with what its WAVs must hold.
type callerPlay struct {
	sid    string
	conn   *websocket.Conn
	rate   int
	tracks map[string][]int16 // expected audio per track, as sent
}

func playTwilio(t *testing.T, base, sid string, frames int) *callerPlay {
	t.Helper()
	stream := "MZ" + sid[2:]
	p := &callerPlay{sid: sid, rate: 8000, conn: dial(t, base, "/media/twilio", nil), tracks: map[string][]int16{}}
	send(t, p.conn, twilioStart(sid, stream, []string{"inbound", "outbound"}, nil))
	in, out := bursts(300, 8000, 0.2, 0.6, 1.5), bursts(500, 6000, 0.9, 0.4, 1.5)
	for k := range frames {
		send(t, p.conn, twilioMedia(stream, "inbound", 2*k+2, k+1, 20*k, mulawFrame(in, 160*k, 160)),
			twilioMedia(stream, "outbound", 2*k+3, k+1, 20*k, mulawFrame(out, 160*k, 160)))
		p.tracks["inbound"] = append(p.tracks["inbound"], decodeFrame(mulawFrame(in, 160*k, 160))...)
		p.tracks["outbound"] = append(p.tracks["outbound"], decodeFrame(mulawFrame(out, 160*k, 160))...)
	}
	return p
}

func playExotel16k(t *testing.T, base, sid string, frames int) *callerPlay {
	t.Helper()
	stream := "MZ" + sid[2:]
	p := &callerPlay{sid: sid, rate: 16000, conn: dial(t, base, "/media/exotel", nil), tracks: map[string][]int16{}}
	send(t, p.conn, []byte(fmt.Sprintf(`{"event":"start","sequence_number":"1","stream_sid":"%s","start":{"stream_sid":"%s","call_sid":"%s","media_format":{"encoding":"audio/x-raw","sample_rate":"16000","bit_rate":"16"}}}`, stream, stream, sid)))
	for k := range frames {
		b := l16Frame(k)
		send(t, p.conn, []byte(fmt.Sprintf(`{"event":"media","sequence_number":"%d","stream_sid":"%s","media":{"chunk":"%d","timestamp":"%d","payload":"%s"}}`,
			k+2, stream, k+1, 20*k, base64.StdEncoding.EncodeToString(b))))
		for i := 0; i < len(b); i += 2 {
			p.tracks["inbound"] = append(p.tracks["inbound"], int16(binary.LittleEndian.Uint16(b[i:])))
		}
	}
	return p
}

// waitReceived waits until the bridge has taken every frame sent so far.
func (p *callerPlay) waitReceived(t *testing.T, base string) {
	t.Helper()
	eventually(t, func() bool {
		rec, code := record(t, base, p.sid)
		if code != http.StatusOK || len(rec.Tracks) != len(p.tracks) {
			return false
		}
		for _, tr := range rec.Tracks {
			if tr.Frames*int64(p.rate/50) != int64(len(p.tracks[tr.Name])) {
				return false
			}
		}
		return true
	}, 15*time.Second, 10*time.Millisecond, "the bridge did not take every frame of %s", p.sid)
}

// callDir is the call's folder (the test ids are safe file names).
func callDir(data, sid string) string { return filepath.Join(data, "calls", sid) }

// headerSamples reads the data size a WAV's header claims, in samples.
func headerSamples(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var h [44]byte
	_, err = io.ReadFull(f, h[:])
	require.NoError(t, err)
	return int(binary.LittleEndian.Uint32(h[40:])) / 2
}

func readRecord(t *testing.T, data, sid string) bridge.CallRecord {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(callDir(data, sid), "call.json"))
	require.NoError(t, err)
	var rec bridge.CallRecord
	require.NoError(t, json.Unmarshal(b, &rec))
	return rec
}

// TestProcess runs the built binary as a child process: killed with
// SIGKILL mid-call and restarted, stopped with SIGTERM, and forced out by a
// second signal.
func TestProcess(t *testing.T) {
	bin := buildBridge(t, t.TempDir())

	t.Run("kill -9 mid-call", func(t *testing.T) {
		data := t.TempDir()
		b := startChild(t, bin, data)

		// A call that ended before the crash stays ended.
		done := playTwilio(t, b.base, "CAkill00000000000000000000000000done", 50)
		send(t, done.conn, twilioStop("MZkill00000000000000000000000000done", done.sid, 999))
		waitEndedWith(t, b.base, done.sid, bridge.ReasonStop)

		// Two live calls: 3.3 s of two-track μ-law and 2.7 s of 16 kHz L16.
		live := []*callerPlay{
			playTwilio(t, b.base, "CAkill00000000000000000000000000twil", 165),
			playExotel16k(t, b.base, "CAkill00000000000000000000000000exo", 135),
		}
		lastPatch := map[string]int{}
		for _, p := range live {
			p.waitReceived(t, b.base)
			for tr, want := range p.tracks {
				// What the header said at the moment of the kill: the
				// last patch, at most a second of audio behind.
				h := headerSamples(t, filepath.Join(callDir(data, p.sid), tr+".wav"))
				require.GreaterOrEqual(t, h, len(want)-p.rate, "%s/%s: header more than a second behind", p.sid, tr)
				lastPatch[p.sid+"/"+tr] = h
			}
		}
		b.signal(t, syscall.SIGKILL)
		require.Equal(t, -1, b.wait(t, 10*time.Second))

		// Restarted on the same data, the bridge repairs and marks them.
		b2 := startChild(t, bin, data)
		require.Eventually(t, func() bool {
			return len(b2.stderr.lines("calls interrupted by the last stop were repaired and marked interrupted", `"calls":2`)) == 1
		}, 5*time.Second, 5*time.Millisecond, "the repair is logged")
		var page struct {
			Calls []bridge.CallRecord `json:"calls"`
		}
		require.Equal(t, http.StatusOK, getJSON(t, b2.base, "/api/calls?status=interrupted", &page))
		var interrupted []string
		for _, rec := range page.Calls {
			interrupted = append(interrupted, rec.CallID)
		}
		require.ElementsMatch(t, []string{live[0].sid, live[1].sid}, interrupted)
		rec, _ := record(t, b2.base, done.sid)
		require.Equal(t, bridge.StatusEnded, rec.Status, "a call that ended before the crash is not touched")

		for _, p := range live {
			rec := readRecord(t, data, p.sid)
			require.Equal(t, bridge.StatusInterrupted, rec.Status, "call.json of %s", p.sid)
			require.NotEmpty(t, rec.Error)
			samples := map[string]int64{}
			for _, tr := range rec.Tracks {
				samples[tr.Name] = tr.Samples
			}
			for tr, want := range p.tracks {
				w := fetchWAV(t, b2.base, p.sid, tr) // parses only if the header matches the file: playable
				require.Equal(t, p.rate, w.rate)
				got := len(w.samples)
				require.GreaterOrEqual(t, got, lastPatch[p.sid+"/"+tr], "%s/%s: everything up to the last header patch", p.sid, tr)
				require.GreaterOrEqual(t, got, len(want)-p.rate, "%s/%s: at most a second lost", p.sid, tr)
				require.LessOrEqual(t, got, len(want))
				require.Equal(t, want[:got], w.samples, "%s/%s holds exactly the audio sent", p.sid, tr)
				require.Equal(t, int64(got), samples[tr], "%s/%s: call.json says what the WAV holds", p.sid, tr)
				require.GreaterOrEqual(t, rec.DurationMs, int64(got*1000/p.rate))
				t.Logf("%s/%s: sent %d samples, header said %d at the kill, %d kept (%d ms lost)",
					p.sid, tr, len(want), lastPatch[p.sid+"/"+tr], got, (len(want)-got)*1000/p.rate)
			}
		}
		b2.signal(t, syscall.SIGTERM)
		require.Equal(t, 0, b2.wait(t, 15*time.Second))
	})

	t.Run("SIGTERM drains live calls, then ends them with reason shutdown", func(t *testing.T) {
		data := t.TempDir()
		const deadline = 2 * time.Second
		b := startChild(t, bin, data, "--shutdown-timeout", deadline.String())

		// A long call streams in real time until the bridge closes it.
		long := playTwilio(t, b.base, "CAterm00000000000000000000000000long", 10)
		var mu sync.Mutex
		sent := 10
		closed := make(chan struct{})
		go func() {
			defer close(closed)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			stream := "MZ" + long.sid[2:]
			in, out := bursts(300, 8000, 0.2, 0.6, 1.5), bursts(500, 6000, 0.9, 0.4, 1.5)
			for range tick.C {
				mu.Lock()
				k := sent
				mu.Unlock()
				if long.conn.WriteMessage(websocket.TextMessage, twilioMedia(stream, "inbound", 2*k+2, k+1, 20*k, mulawFrame(in, 160*k, 160))) != nil ||
					long.conn.WriteMessage(websocket.TextMessage, twilioMedia(stream, "outbound", 2*k+3, k+1, 20*k, mulawFrame(out, 160*k, 160))) != nil {
					return
				}
				mu.Lock()
				long.tracks["inbound"] = append(long.tracks["inbound"], decodeFrame(mulawFrame(in, 160*k, 160))...)
				long.tracks["outbound"] = append(long.tracks["outbound"], decodeFrame(mulawFrame(out, 160*k, 160))...)
				sent++
				mu.Unlock()
			}
		}()
		closeCode := make(chan *websocket.CloseError, 1)
		go func() {
			_ = long.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			for {
				if _, _, err := long.conn.ReadMessage(); err != nil {
					var ce *websocket.CloseError
					errors.As(err, &ce)
					closeCode <- ce
					return
				}
			}
		}()
		// A short call that finishes by itself during the drain.
		short := playTwilio(t, b.base, "CAterm0000000000000000000000000short", 20)
		short.waitReceived(t, b.base)
		eventually(t, func() bool {
			rec, _ := record(t, b.base, long.sid)
			return len(rec.Tracks) == 2 && rec.Tracks[0].Frames > 20
		},
			10*time.Second, 10*time.Millisecond)

		termAt := time.Now()
		mu.Lock()
		sentAtTerm := sent
		mu.Unlock()
		b.signal(t, syscall.SIGTERM)

		// Not ready, and new calls are refused before the upgrade.
		eventually(t, func() bool { return getJSON(t, b.base, "/readyz", nil) == http.StatusServiceUnavailable },
			5*time.Second, 5*time.Millisecond)
		require.Equal(t, http.StatusOK, getJSON(t, b.base, "/healthz", nil), "alive while draining")
		require.Equal(t, http.StatusServiceUnavailable, dialRefused(t, b.base, "/media/twilio").StatusCode)

		// The short call goes on and ends normally.
		for k := 20; k < 40; k++ {
			send(t, short.conn, twilioMedia("MZ"+short.sid[2:], "inbound", 2*k+2, k+1, 20*k, mulawFrame(tone, 160*k, 160)),
				twilioMedia("MZ"+short.sid[2:], "outbound", 2*k+3, k+1, 20*k, mulawFrame(tone, 160*k, 160)))
			short.tracks["inbound"] = append(short.tracks["inbound"], decodeFrame(mulawFrame(tone, 160*k, 160))...)
			short.tracks["outbound"] = append(short.tracks["outbound"], decodeFrame(mulawFrame(tone, 160*k, 160))...)
		}
		send(t, short.conn, twilioStop("MZ"+short.sid[2:], short.sid, 999))
		code, text := closeOf(t, short.conn)
		require.Equal(t, websocket.CloseNormalClosure, code)
		require.Equal(t, "stream stopped", text)

		// The long call is ended by the bridge at the deadline.
		var ce *websocket.CloseError
		select {
		case ce = <-closeCode:
		case <-time.After(20 * time.Second):
			t.Fatal("the long call was never closed")
		}
		require.NotNil(t, ce, "closed with a close frame")
		require.Equal(t, websocket.CloseGoingAway, ce.Code)
		require.Equal(t, "stream ended by the bridge: shutdown", ce.Text)
		require.GreaterOrEqual(t, time.Since(termAt), deadline-100*time.Millisecond, "live calls may drain until the deadline")
		<-closed
		require.Equal(t, 0, b.wait(t, 15*time.Second))

		// Every record, transcript and WAV is complete on disk.
		for _, tc := range []struct {
			p      *callerPlay
			reason string
		}{{long, bridge.ReasonShutdown}, {short, bridge.ReasonStop}} {
			rec := readRecord(t, data, tc.p.sid)
			require.Equal(t, bridge.StatusEnded, rec.Status)
			require.Equal(t, tc.reason, rec.Reason, "%s", tc.p.sid)
			require.NotNil(t, rec.EndedAt)
			var tr bridge.Transcript
			doc, err := os.ReadFile(filepath.Join(callDir(data, tc.p.sid), "transcript.json"))
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(doc, &tr))
			require.Equal(t, tc.p.sid, tr.CallID)
			for _, trk := range rec.Tracks {
				raw, err := os.ReadFile(filepath.Join(callDir(data, tc.p.sid), trk.Name+".wav"))
				require.NoError(t, err)
				w := parseWAV(t, raw) // the header is final: sizes match the file
				require.Equal(t, trk.Samples, int64(len(w.samples)), "call.json and the WAV agree")
				require.Equal(t, trk.Frames*160, int64(len(w.samples)), "every frame taken is in the WAV")
				mu.Lock()
				want := tc.p.tracks[trk.Name]
				mu.Unlock()
				require.LessOrEqual(t, len(w.samples), len(want))
				require.Equal(t, want[:len(w.samples)], w.samples)
			}
		}
		rec := readRecord(t, data, long.sid)
		require.Greater(t, rec.Tracks[0].Frames, int64(sentAtTerm)+25, "the long call kept recording while it drained")
	})

	t.Run("a second signal forces the exit", func(t *testing.T) {
		data := t.TempDir()
		b := startChild(t, bin, data, "--shutdown-timeout", "1m")
		p := playTwilio(t, b.base, "CAforce000000000000000000000000live", 10)
		p.waitReceived(t, b.base)
		b.signal(t, syscall.SIGTERM)
		eventually(t, func() bool { return getJSON(t, b.base, "/readyz", nil) == http.StatusServiceUnavailable },
			5*time.Second, 5*time.Millisecond)
		began := time.Now()
		b.signal(t, syscall.SIGTERM)
		require.Equal(t, 1, b.wait(t, 10*time.Second))
		require.Less(t, time.Since(began), 5*time.Second, "without waiting for the drain")
		require.NotEmpty(t, b.stderr.lines("forced exit on second signal"))
	})
}
