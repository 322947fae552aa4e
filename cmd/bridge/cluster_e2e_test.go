package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/cluster/clustertest"
	"github.com/callcaptions/bridge/recorder/s3store/s3test"
	"github.com/callcaptions/bridge/web"
)

// clusterEnv is what the replicas of TestClusterProcesses share: the
// built binary, one NATS server with JetStream and one bucket.
type clusterEnv struct {
	bin     string
	natsURL string
	nats    *clustertest.Server
	s3      *s3test.Server
	bucket  string
}

// clusterPrefix is the replicas' --s3-prefix.
const clusterPrefix = "cluster/"

// nodeTimeout is the replicas' --node-timeout.
const nodeTimeout = 3 * time.Second

// replica runs `bridge serve` with the public cluster and bucket flags
// (credentials from the AWS environment) on its own data directory and
// waits until it is connected to NATS.
func (e *clusterEnv) replica(t *testing.T, node, data string) *child {
	t.Helper()
	c := startChildArgs(t, e.bin, data, "--allow-anonymous",
		"--nats-url", e.natsURL, "--node-id", node, "--node-timeout", nodeTimeout.String(),
		"--s3-bucket", e.bucket, "--s3-endpoint", e.s3.Endpoint(), "--s3-region", s3test.Region, "--s3-path-style",
		"--s3-prefix", clusterPrefix, "--resume-window", "0")
	eventually(t, func() bool { return natsOf(t, c.base) == "connected" }, 15*time.Second, 20*time.Millisecond,
		"replica %s is not connected to NATS", node)
	return c
}

// natsOf is what /readyz says of NATS.
func natsOf(t *testing.T, base string) string {
	t.Helper()
	var ready map[string]any
	getJSON(t, base, "/readyz", &ready)
	s, _ := ready["nats"].(string)
	return s
}

// object is a call file in the bucket; ok is false while there is none.
func (e *clusterEnv) object(sid, name string) ([]byte, bool) {
	return e.s3.Object(e.bucket, clusterPrefix+"calls/"+sid+"/"+name)
}

// wavOf is the WAV the bridge must write for samples at rate: the
// 44-byte header of PCM16 mono, then the samples, little-endian.
func wavOf(rate int, samples []int16) []byte {
	b := make([]byte, 44+2*len(samples))
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-8))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1) // PCM
	binary.LittleEndian.PutUint16(b[22:], 1) // mono
	binary.LittleEndian.PutUint32(b[24:], uint32(rate))
	binary.LittleEndian.PutUint32(b[28:], uint32(2*rate))
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(2*len(samples)))
	for i, s := range samples {
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(s))
	}
	return b
}

// getWAV fetches a whole recording from base.
func getWAV(t *testing.T, base, sid, track string) []byte {
	t.Helper()
	code, b := getRange(t, base, sid, track, "bytes=0-")
	require.Equal(t, http.StatusPartialContent, code)
	return b
}

// moreTwilio sends frames [from, to) of p's two tracks, the same audio
// playTwilio sends, and adds them to what p's WAVs must hold.
func moreTwilio(t *testing.T, p *callerPlay, from, to int) {
	t.Helper()
	stream := "MZ" + p.sid[2:]
	in, out := bursts(300, 8000, 0.2, 0.6, 1.5), bursts(500, 6000, 0.9, 0.4, 1.5)
	for k := from; k < to; k++ {
		send(t, p.conn, twilioMedia(stream, "inbound", 2*k+2, k+1, 20*k, mulawFrame(in, 160*k, 160)),
			twilioMedia(stream, "outbound", 2*k+3, k+1, 20*k, mulawFrame(out, 160*k, 160)))
		p.tracks["inbound"] = append(p.tracks["inbound"], decodeFrame(mulawFrame(in, 160*k, 160))...)
		p.tracks["outbound"] = append(p.tracks["outbound"], decodeFrame(mulawFrame(out, 160*k, 160))...)
	}
}

// stopTwilio ends p's stream with stop.
func stopTwilio(t *testing.T, p *callerPlay, frames int) {
	t.Helper()
	send(t, p.conn, twilioStop("MZ"+p.sid[2:], p.sid, 2*frames+2))
}

// finalsOf lists the finals among evs as "seq segment text".
func finalsOf(evs []map[string]any) []string {
	var out []string
	for _, ev := range evs {
		if ev["type"] == bridge.TypeTranscriptFinal {
			out = append(out, fmt.Sprintf("%v %v %v", ev["seq"], ev["segment_id"], ev["text"]))
		}
	}
	return out
}

// seqsOf lists the seq of evs.
func seqsOf(evs []map[string]any) []float64 {
	out := make([]float64, len(evs))
	for i, ev := range evs {
		out[i] = ev["seq"].(float64)
	}
	return out
}

func isEnded(ev map[string]any) bool { return ev["type"] == bridge.TypeCallEnded }

func isFinal(ev map[string]any) bool { return ev["type"] == bridge.TypeTranscriptFinal }

// readToClose reads a caption socket until the server closes it and
// returns the events before the close frame and its code and text.
func readToClose(t *testing.T, c *websocket.Conn) ([]map[string]any, int, string) {
	t.Helper()
	var evs []map[string]any
	require.NoError(t, c.SetReadDeadline(time.Now().Add(15*time.Second)))
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			require.ErrorAs(t, err, &ce, "closed without a close frame after %d events", len(evs))
			return evs, ce.Code, ce.Text
		}
		evs = append(evs, decodeEvent(t, b))
	}
}

func decodeEvent(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var ev map[string]any
	require.NoError(t, json.Unmarshal(b, &ev))
	return ev
}

// TestClusterProcesses runs two `bridge serve` processes per scenario with
// one NATS server and one bucket (versitygw): captions and recordings
// across replicas, a replica killed mid-call, NATS restarted mid-call and
// the bucket down and back.
func TestClusterProcesses(t *testing.T) {
	e := &clusterEnv{nats: clustertest.Start(t), s3: s3test.Start(t)}
	e.natsURL = e.nats.URL()
	e.bucket = e.s3.Bucket("cluster-e2e")
	e.s3.Setenv(t) // the replicas' AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
	e.bin = buildBridge(t, t.TempDir())

	t.Run("captions and recordings across replicas", func(t *testing.T) {
		a, b := e.replica(t, "ab-a", t.TempDir()), e.replica(t, "ab-b", t.TempDir())
		const sid = "CAclab0000000000000000000000000001"
		early := dial(t, b.base, "/ws/captions?call="+sid, nil)
		own := dial(t, a.base, "/ws/captions?call="+sid, nil)
		p := playTwilio(t, a.base, sid, 150) // 3 s, two tracks
		p.waitReceived(t, a.base)
		stopTwilio(t, p, 150)

		want := readEvents(t, own, isEnded)
		got := readEvents(t, early, isEnded)
		require.Equal(t, bridge.TypeCallStarted, got[0]["type"], "B's early subscriber gets call.started first")
		checkCall(t, got, sid, 0) // seq increasing, call.ended last
		require.NotEmpty(t, finalsOf(want))
		require.Equal(t, finalsOf(want), finalsOf(got), "every final A's own subscriber got, same seq")
		require.Equal(t, want[len(want)-1]["seq"], got[len(got)-1]["seq"], "the same call.ended")
		require.Equal(t, bridge.ReasonStop, got[len(got)-1]["reason"])

		late := readEvents(t, dial(t, b.base, "/ws/captions?call="+sid, nil), isEnded)
		require.Equal(t, bridge.TypeCallStarted, late[0]["type"], "B's late subscriber gets call.started first")
		checkCall(t, late, sid, 0)
		require.Equal(t, finalsOf(want), finalsOf(late))
		for _, k := range []int{0, len(late) / 2, len(late) - 2} {
			after := late[k]["seq"].(float64)
			rest := readEvents(t, dial(t, b.base, fmt.Sprintf("/ws/captions?call=%s&after=%d", sid, int(after)), nil), isEnded)
			require.Equal(t, seqsOf(late[k+1:]), seqsOf(rest), "a resume on B after %v gets exactly the rest", after)
		}

		// The recordings, uploaded by A, served byte for byte from the
		// bucket by replicas that never held the call, once A is gone: B,
		// which learnt of the call from the call index, and C, started
		// after the upload.
		waitEnded(t, a.base, sid)
		eventually(t, func() bool {
			_, ok := e.object(sid, "call.json")
			return ok && metric(t, a.base, "bridge_s3_upload_backlog") == 0
		}, 20*time.Second, 50*time.Millisecond, "A did not upload the call")
		a.signal(t, syscall.SIGTERM)
		require.Equal(t, 0, a.wait(t, 20*time.Second))
		c := e.replica(t, "ab-c", t.TempDir())
		for _, tr := range []string{"inbound", "outbound"} {
			wav := wavOf(8000, p.tracks[tr])
			obj, ok := e.object(sid, tr+".wav")
			require.True(t, ok)
			require.Equal(t, wav, obj, "%s.wav in the bucket holds exactly the audio sent", tr)
			for name, r := range map[string]*child{"B": b, "C": c} {
				require.Equal(t, wav, getWAV(t, r.base, sid, tr), "%s.wav through %s", tr, name)
				code, part := getRange(t, r.base, sid, tr, "bytes=1000-4999")
				require.Equal(t, http.StatusPartialContent, code)
				require.Equal(t, wav[1000:5000], part, "a byte range of %s.wav through %s", tr, name)
			}
		}
	})

	t.Run("kill -9 of the replica holding a call", func(t *testing.T) {
		dataA := t.TempDir()
		a, b := e.replica(t, "kill-a", dataA), e.replica(t, "kill-b", t.TempDir())
		const sid = "CAclkill000000000000000000000000001"
		sub := dial(t, b.base, "/ws/captions?call="+sid, nil)
		p := playTwilio(t, a.base, sid, 150)
		p.waitReceived(t, a.base)
		first := readEvents(t, sub, isFinal)
		require.Equal(t, bridge.TypeCallStarted, first[0]["type"])
		lastPatch := map[string]int{}
		for tr, want := range p.tracks {
			h := headerSamples(t, filepath.Join(callDir(dataA, sid), tr+".wav"))
			require.GreaterOrEqual(t, h, len(want)-p.rate, "%s: header more than a second behind", tr)
			lastPatch[tr] = h
		}

		a.signal(t, syscall.SIGKILL)
		killed := time.Now()
		require.Equal(t, -1, a.wait(t, 10*time.Second))
		rest := readEvents(t, sub, isEnded)
		require.Less(t, time.Since(killed), nodeTimeout+nodeTimeout/3+time.Second, "ended within --node-timeout and a heartbeat")
		evs := append(first, rest...)
		checkCall(t, evs, sid, 0)
		end := evs[len(evs)-1]
		require.Equal(t, bridge.ReasonNodeLost, end["reason"])
		require.Equal(t, evs[len(evs)-2]["seq"].(float64)+1, end["seq"], "the seq after the last one B had")

		// A again, on the same data: the call is repaired and uploaded.
		a2 := e.replica(t, "kill-a", dataA)
		var rec bridge.CallRecord
		eventually(t, func() bool {
			b, ok := e.object(sid, "call.json")
			return ok && json.Unmarshal(b, &rec) == nil && metric(t, a2.base, "bridge_s3_upload_backlog") == 0
		}, 20*time.Second, 50*time.Millisecond, "the repaired call was not uploaded")
		require.Equal(t, bridge.StatusInterrupted, rec.Status)
		samples := map[string]int64{}
		for _, tr := range rec.Tracks {
			samples[tr.Name] = tr.Samples
		}
		for tr, want := range p.tracks {
			obj, ok := e.object(sid, tr+".wav")
			require.True(t, ok)
			w := parseWAV(t, obj) // playable: the header matches the object
			got := len(w.samples)
			require.GreaterOrEqual(t, got, lastPatch[tr], "%s: everything up to the last header patch", tr)
			require.GreaterOrEqual(t, got, len(want)-p.rate, "%s: at most a second lost", tr)
			require.LessOrEqual(t, got, len(want))
			require.Equal(t, wavOf(8000, want[:got]), obj, "%s.wav holds exactly the audio A took", tr)
			require.Equal(t, int64(got), samples[tr], "call.json says what %s.wav holds", tr)
			require.Equal(t, obj, getWAV(t, a2.base, sid, tr), "A serves the repaired %s.wav from the bucket", tr)
		}
	})

	t.Run("NATS restarted mid-call", func(t *testing.T) {
		a, b := e.replica(t, "nats-a", t.TempDir()), e.replica(t, "nats-b", t.TempDir())
		const sid = "CAclnats000000000000000000000000001"
		onB := dial(t, b.base, "/ws/captions?call="+sid, nil)
		onA := dial(t, a.base, "/ws/captions?call="+sid, nil)
		all := dial(t, b.base, "/ws/captions", nil)
		p := playTwilio(t, a.base, sid, 100)
		p.waitReceived(t, a.base)
		firstB := readEvents(t, onB, isFinal)
		require.Equal(t, bridge.TypeCallStarted, firstB[0]["type"])
		readEvents(t, all, func(ev map[string]any) bool { return ev["call_id"] == sid && isFinal(ev) }) // B's all-calls subscriber follows it
		// Quiet: B has every event A published (nothing is in flight).
		eventually(t, func() bool {
			pub := metric(t, a.base, "bridge_nats_published_total")
			time.Sleep(300 * time.Millisecond)
			return pub == metric(t, a.base, "bridge_nats_published_total") && pub == metric(t, b.base, "bridge_nats_received_total")
		}, 15*time.Second, 10*time.Millisecond, "B did not receive what A published")
		published := metric(t, a.base, "bridge_nats_published_total")

		e.nats.Stop()
		eventually(t, func() bool { return natsOf(t, a.base) == "disconnected" }, 10*time.Second, 20*time.Millisecond,
			"/readyz on A does not say NATS is disconnected")
		require.Equal(t, 0.0, metric(t, a.base, "bridge_nats_connected"))
		more, code, text := readToClose(t, onB)
		require.Equal(t, web.CloseClusterUnavailable, code, "B's subscriber of A's call")
		require.Equal(t, "cluster unavailable", text)
		_, code, _ = readToClose(t, all)
		require.Equal(t, web.CloseClusterUnavailable, code, "B's all-calls subscriber")
		before := append(firstB, more...)
		last := before[len(before)-1]["seq"].(float64)
		_, code, _ = readToClose(t, dial(t, b.base, fmt.Sprintf("/ws/captions?call=%s&after=%d", sid, int(last)), nil))
		require.Equal(t, web.CloseClusterUnavailable, code, "a new subscriber of A's call on B is refused at once")
		// Or it goes to the replica holding the call, which serves it.
		toA := dial(t, a.base, fmt.Sprintf("/ws/captions?call=%s&after=%d", sid, int(last)), nil)

		moreTwilio(t, p, 100, 200) // the call goes on while NATS is away
		p.waitReceived(t, a.base)
		e.nats.Restart()
		eventually(t, func() bool { return natsOf(t, a.base) == "connected" && natsOf(t, b.base) == "connected" },
			15*time.Second, 20*time.Millisecond, "/readyz does not say NATS is connected again")
		moreTwilio(t, p, 200, 250)
		stopTwilio(t, p, 250)

		want := readEvents(t, onA, isEnded) // A's own subscriber was never closed
		require.Equal(t, bridge.TypeCallStarted, want[0]["type"])
		checkCall(t, want, sid, 0)

		// B's subscriber reconnects, with backoff while B is not reading the
		// stream yet, and gets the rest.
		var rest []map[string]any
		eventually(t, func() bool {
			c := dial(t, b.base, fmt.Sprintf("/ws/captions?call=%s&after=%d", sid, int(last)), nil)
			evs, code, _ := readToClose(t, c)
			rest = evs
			return code == websocket.CloseNormalClosure
		}, 20*time.Second, 200*time.Millisecond, "B's subscriber cannot resume")
		// It ends after the ready events that follow call.ended, as on A.
		require.GreaterOrEqual(t, len(rest), 3)
		require.Equal(t, []any{bridge.TypeTranscriptReady, bridge.TypeRecordingReady}, []any{rest[len(rest)-2]["type"], rest[len(rest)-1]["type"]})
		rest = rest[:len(rest)-2]
		checkCall(t, rest, sid, last)
		require.Equal(t, finalsOf(want), finalsOf(append(before, rest...)), "B's subscriber lost no final")
		restA := readEvents(t, toA, isEnded)
		checkCall(t, restA, sid, last)
		require.Equal(t, finalsOf(want), finalsOf(append(before, restA...)), "resumed on A while NATS was away, nothing lost")
		require.Equal(t, want[len(want)-1]["seq"], rest[len(rest)-1]["seq"])

		// A's own subscriber has every final of the call's transcript.
		waitEnded(t, a.base, sid)
		var tr bridge.Transcript
		require.Equal(t, http.StatusOK, getJSON(t, a.base, "/api/calls/"+sid+"/transcript", &tr))
		var segments, finals []string
		for _, seg := range tr.Segments {
			segments = append(segments, seg.SegmentID+" "+seg.Text)
		}
		for _, ev := range want {
			if isFinal(ev) {
				finals = append(finals, fmt.Sprintf("%v %v", ev["segment_id"], ev["text"]))
			}
		}
		require.NotEmpty(t, segments)
		require.ElementsMatch(t, segments, finals, "A's subscriber lost no final")

		require.Greater(t, metric(t, a.base, "bridge_nats_published_total"), published, "publishing resumed")
		require.Zero(t, metric(t, a.base, "bridge_nats_publish_dropped_total"))
		require.GreaterOrEqual(t, metric(t, b.base, "bridge_subscribers_cluster_unavailable_total"), 3.0)

		eventually(t, func() bool {
			_, ok := e.object(sid, "call.json")
			return ok && metric(t, a.base, "bridge_s3_upload_backlog") == 0
		}, 20*time.Second, 50*time.Millisecond, "A did not upload the call")
		for _, tr := range []string{"inbound", "outbound"} {
			obj, ok := e.object(sid, tr+".wav")
			require.True(t, ok)
			require.Equal(t, wavOf(8000, p.tracks[tr]), obj, "%s.wav holds every frame, NATS or not", tr)
		}
	})

	t.Run("bucket down and back", func(t *testing.T) {
		dataA := t.TempDir()
		a := e.replica(t, "s3-a", dataA)
		const sid = "CAcls3000000000000000000000000000001"
		e.s3.Stop()
		p := playTwilio(t, a.base, sid, 100)
		p.waitReceived(t, a.base)
		stopTwilio(t, p, 100)
		waitEnded(t, a.base, sid)
		eventually(t, func() bool {
			return metric(t, a.base, "bridge_s3_upload_backlog") > 0 && metric(t, a.base, `bridge_s3_uploads_total{result="failed"}`) >= 1
		}, 20*time.Second, 50*time.Millisecond, "the failed upload is not in the backlog")
		local := readCallFiles(t, callDir(dataA, sid))
		for _, tr := range []string{"inbound", "outbound"} {
			require.Equal(t, wavOf(8000, p.tracks[tr]), local[tr+".wav"], "the spool keeps %s.wav whole", tr)
		}

		e.s3.Restart()
		eventually(t, func() bool { return gone(callDir(dataA, sid)) && metric(t, a.base, "bridge_s3_upload_backlog") == 0 },
			40*time.Second, 50*time.Millisecond, "the backlog did not drain once the bucket was back")
		for name, want := range local {
			obj, ok := e.object(sid, name)
			require.True(t, ok, name)
			require.Equal(t, want, obj, "%s in the bucket as it was in the spool", name)
		}
		require.Equal(t, local["inbound.wav"], getWAV(t, a.base, sid, "inbound"), "A serves it from the bucket")
	})
}
