package main

import (
	"encoding/binary"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/config"
)

// TestFixturesRecordReferenceAudio plays recorded provider sessions through
// a real socket and checks every recorded frame against the reference
// decode, at the position its timestamp gives it.
func TestFixturesRecordReferenceAudio(t *testing.T) {
	_, base := startBridge(t, testConfig(t))
	cases := []struct {
		fixture, path, callID string
		tracks                []string
		params                map[string]string
	}{
		{"twilio-both-tracks.jsonl", "/media", "CA3ae75ffe1c5d8847e478556c07d07103", []string{"inbound", "outbound"}, nil},
		{"signalwire-compat.jsonl", "/media", "76ac3c36-56da-4a3e-a0d6-b5f8df6da9ad", []string{"inbound"},
			map[string]string{"Cookie": "948f9938-299a-d43e-0df4-af3a7eccb0ac", "Type": "SIP"}},
		{"twilio.jsonl", "/media/twilio", "CA3ae75ffe1c5d8847e478556c07d07103-x", []string{"inbound"}, nil},
		{"signalwire-compat.jsonl", "/media/signalwire", "", []string{"inbound"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.fixture+tc.path, func(t *testing.T) {
			lines := fixtureLines(t, tc.fixture)
			if tc.callID == "" || tc.fixture == "twilio.jsonl" {
				// Give the replay its own call id so cases do not share a call.
				tc.callID = fmt.Sprintf("replay-%s-%d", tc.path[len("/media"):], time.Now().UnixNano())
				for i, l := range lines {
					lines[i] = []byte(replaceCallID(string(l), tc.callID))
				}
			}
			c := dial(t, base, tc.path, nil)
			send(t, c, lines...)
			rec := waitEnded(t, base, tc.callID)
			require.Equal(t, bridge.ReasonStop, rec.Reason)
			for k, v := range tc.params {
				require.Equal(t, v, rec.CustomParameters[k])
			}
			var names []string
			for _, tr := range rec.Tracks {
				names = append(names, tr.Name)
			}
			require.ElementsMatch(t, tc.tracks, names)

			exp := expected(t, tc.fixture)
			perTrack := map[string]int{}
			wavs := map[string]wavFile{}
			for _, tr := range tc.tracks {
				wavs[tr] = fetchWAV(t, base, tc.callID, tr)
				require.Equal(t, 8000, wavs[tr].rate)
			}
			for _, e := range exp {
				w := wavs[e.Track]
				i := perTrack[e.Track]
				perTrack[e.Track]++
				from, to := 2*i*e.Samples, 2*(i+1)*e.Samples
				require.LessOrEqual(t, to, len(w.raw), "frame %d of %s missing from the WAV", i, e.Track)
				require.Equal(t, e.SHA, sha(w.raw[from:to]), "line %d (%s frame %d) differs from the reference decode", e.Line, e.Track, i)
			}
			for tr, n := range perTrack {
				require.Equal(t, n*160, len(wavs[tr].samples), "track %s has exactly its frames", tr)
			}
		})
	}
}

func replaceCallID(line, id string) string {
	for _, old := range []string{"CA3ae75ffe1c5d8847e478556c07d07103", "76ac3c36-56da-4a3e-a0d6-b5f8df6da9ad"} {
		for {
			i := indexOf(line, old)
			if i < 0 {
				break
			}
			line = line[:i] + id + line[i+len(old):]
		}
	}
	return line
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// TestSyntheticCall plays 10 s of two-track speech-like audio with two
// frames missing, while two subscribers watch (one joining mid-call).
func TestSyntheticCall(t *testing.T) {
	_, base := startBridge(t, testConfig(t))
	const callSid, streamSid = "CA5e000000000000000000000000000001", "MZ5e000000000000000000000000000001"
	sub1 := dial(t, base, "/ws/captions?call="+callSid, nil)

	inGen := bursts(300, 8000, 0.5, 1.2, 3)     // caller speaks at 0.5, 3.5, 6.5, 9.5 s
	outGen := bursts(500, 6000, 2.0, 0.8, 3)    // agent at 2.0, 5.0, 8.0 s
	dropped := map[int]bool{30: true, 31: true} // inbound chunks 30 and 31: 0.58–0.62 s, inside the first burst
	c := dial(t, base, "/media", nil)
	send(t, c, []byte(`{"event":"connected","protocol":"Call","version":"1.0.0"}`),
		twilioStart(callSid, streamSid, []string{"inbound", "outbound"}, map[string]string{"script": "hello there|how can I help"}))
	seq := 2
	const frames = 500 // 10 s of 20 ms frames
	play := func(from, to int) {
		for k := from; k < to; k++ {
			chunk := k + 1
			if !dropped[chunk] {
				send(t, c, twilioMedia(streamSid, "inbound", seq, chunk, 20*k, mulawFrame(inGen, 160*k, 160)))
				seq++
			}
			send(t, c, twilioMedia(streamSid, "outbound", seq, chunk, 20*k, mulawFrame(outGen, 160*k, 160)))
			seq++
		}
	}
	play(0, 250)
	// Mid-call: the first subscriber has finals; a second one joins and
	// must get the finals so far.
	evs1 := readEvents(t, sub1, func(ev map[string]any) bool {
		return ev["type"] == bridge.TypeTranscriptFinal && ev["track"] == "outbound"
	})
	finalsSoFar := 0
	for _, ev := range evs1 {
		if ev["type"] == bridge.TypeTranscriptFinal {
			finalsSoFar++
		}
	}
	sub2 := dial(t, base, "/ws/captions?call="+callSid, nil)
	late := readEvents(t, sub2, func(ev map[string]any) bool {
		return ev["type"] == bridge.TypeTranscriptFinal && ev["track"] == "outbound"
	})
	require.Equal(t, bridge.TypeCallStarted, late[0]["type"], "a late subscriber first gets call.started")
	for _, ev := range late {
		require.NotEqual(t, bridge.TypeTranscriptPartial, ev["type"], "replay holds no partials")
	}

	play(250, frames)
	send(t, c, twilioStop(streamSid, callSid, seq))
	evs1 = append(evs1, readEvents(t, sub1, func(ev map[string]any) bool { return ev["type"] == bridge.TypeCallEnded })...)

	// Subscriber: call.started first, seq strictly increasing, partials
	// before the final of their segment, call.ended last.
	require.Equal(t, bridge.TypeCallStarted, evs1[0]["type"])
	require.Equal(t, bridge.TypeCallEnded, evs1[len(evs1)-1]["type"])
	last := 0.0
	finalSeen := map[string]bool{}
	partials := 0
	for _, ev := range evs1 {
		s := ev["seq"].(float64)
		require.Greater(t, s, last, "seq strictly increasing")
		last = s
		require.Equal(t, callSid, ev["call_id"])
		switch ev["type"] {
		case bridge.TypeTranscriptPartial:
			partials++
			require.False(t, finalSeen[ev["segment_id"].(string)], "partial after its final")
		case bridge.TypeTranscriptFinal:
			finalSeen[ev["segment_id"].(string)] = true
		}
	}
	require.Positive(t, partials)

	rec := waitEnded(t, base, callSid)
	require.Equal(t, bridge.ReasonStop, rec.Reason)
	in := fetchWAV(t, base, callSid, "inbound")
	out := fetchWAV(t, base, callSid, "outbound")
	require.Equal(t, frames*160, len(in.samples), "inbound WAV is exactly 10 s, the two missing frames filled")
	require.Equal(t, frames*160, len(out.samples))
	for k := range 500 {
		frame := in.samples[160*k : 160*(k+1)]
		if dropped[k+1] {
			require.Equal(t, make([]int16, 160), frame, "missing frame %d is silence", k+1)
			continue
		}
		want := make([]int16, 160)
		raw := decodeFrame(mulawFrame(inGen, 160*k, 160))
		copy(want, raw)
		require.Equal(t, want, frame, "inbound frame %d", k+1)
	}
	for _, tr := range rec.Tracks {
		if tr.Name == "inbound" {
			require.Equal(t, int64(40), tr.GapMs)
		}
	}

	var tr bridge.Transcript
	require.Equal(t, 200, getJSON(t, base, "/api/calls/"+callSid+"/transcript", &tr))
	require.Len(t, tr.Segments, 4+3, "four caller and three agent utterances")
	byTrack := map[string][]bridge.Segment{}
	for _, s := range tr.Segments {
		byTrack[s.Track] = append(byTrack[s.Track], s)
		require.GreaterOrEqual(t, s.StartMs, int64(0))
		require.LessOrEqual(t, s.EndMs, int64(10000), "segment inside the WAV")
		require.Less(t, s.StartMs, s.EndMs)
	}
	require.Equal(t, "hello there", byTrack["inbound"][0].Text)
	require.Equal(t, "how can I help", byTrack["inbound"][1].Text)
	starts := []int64{500, 3500, 6500, 9500}
	for i, s := range byTrack["inbound"] {
		require.InDelta(t, starts[i], s.StartMs, 40, "caller utterance %d starts where its audio was", i+1)
		if i > 0 {
			require.Greater(t, s.StartMs, byTrack["inbound"][i-1].EndMs, "in order")
		}
	}
	for i, s := range byTrack["outbound"] {
		require.InDelta(t, 2000+3000*int64(i), s.StartMs, 40, "agent utterance %d", i+1)
	}
	hasGap := false
	for _, ev := range tr.Events {
		if ev.Type == bridge.TypeGap && ev.Track == "inbound" {
			hasGap = true
			require.Equal(t, int64(580), ev.AtMs)
			require.Equal(t, int64(40), ev.DurationMs)
		}
	}
	require.True(t, hasGap, "the missing frames are a gap event")
}

func decodeFrame(b64 string) []int16 {
	raw := mustB64(b64)
	out := make([]int16, len(raw))
	for i, b := range raw {
		out[i] = mulaw(b)
	}
	return out
}

// mulaw is the reference G.711 μ-law decode (ITU-T G.711, Sun g711.c).
func mulaw(b byte) int16 {
	u := ^b
	t := (int(u&0x0F) << 3) + 0x84
	t <<= (u & 0x70) >> 4
	if u&0x80 != 0 {
		return int16(0x84 - t)
	}
	return int16(t - 0x84)
}

// TestDisconnectWithoutStop: a socket that just closes ends the call with
// reason disconnect, and both recordings are complete and playable.
func TestDisconnectWithoutStop(t *testing.T) {
	_, base := startBridge(t, testConfig(t))
	const callSid, streamSid = "CAd1000000000000000000000000000001", "MZd1000000000000000000000000000001"
	c := dial(t, base, "/media/twilio", nil)
	send(t, c, twilioStart(callSid, streamSid, []string{"inbound", "outbound"}, nil))
	gen := bursts(300, 8000, 0, 0.5, 1)
	for k := range 100 {
		send(t, c, twilioMedia(streamSid, "inbound", 2*k+2, k+1, 20*k, mulawFrame(gen, 160*k, 160)),
			twilioMedia(streamSid, "outbound", 2*k+3, k+1, 20*k, mulawFrame(gen, 160*k, 160)))
	}
	require.NoError(t, c.UnderlyingConn().Close()) // no stop, no close frame
	rec := waitEnded(t, base, callSid)
	require.Equal(t, bridge.ReasonDisconnect, rec.Reason)
	for _, tr := range []string{"inbound", "outbound"} {
		w := fetchWAV(t, base, callSid, tr)
		require.Equal(t, 100*160, len(w.samples), "%s holds every frame", tr)
	}
}

// TestTwoCallsAtOnce: concurrent calls never mix audio or events.
func TestTwoCallsAtOnce(t *testing.T) {
	_, base := startBridge(t, testConfig(t))
	type call struct {
		sid, stream string
		gen         func(int) float64
	}
	calls := []call{
		{"CA20000000000000000000000000000a0a", "MZ20000000000000000000000000000a0a", bursts(300, 8000, 0.2, 0.6, 1.5)},
		{"CA20000000000000000000000000000b0b", "MZ20000000000000000000000000000b0b", bursts(700, 4000, 0.4, 0.3, 1.0)},
	}
	subs := make([]*websocket.Conn, len(calls))
	for i, cl := range calls {
		subs[i] = dial(t, base, "/ws/captions?call="+cl.sid, nil)
	}
	var wg sync.WaitGroup
	for _, cl := range calls {
		c := dial(t, base, "/media", nil)
		wg.Go(func() {
			send(t, c, twilioStart(cl.sid, cl.stream, []string{"inbound"}, nil))
			for k := range 150 {
				send(t, c, twilioMedia(cl.stream, "inbound", k+2, k+1, 20*k, mulawFrame(cl.gen, 160*k, 160)))
			}
			send(t, c, twilioStop(cl.stream, cl.sid, 200))
		})
	}
	wg.Wait()
	for i, cl := range calls {
		evs := readEvents(t, subs[i], func(ev map[string]any) bool { return ev["type"] == bridge.TypeCallEnded })
		for _, ev := range evs {
			require.Equal(t, cl.sid, ev["call_id"], "only this call's events")
		}
		waitEnded(t, base, cl.sid)
		w := fetchWAV(t, base, cl.sid, "inbound")
		require.Equal(t, 150*160, len(w.samples))
		for k := range 150 {
			require.Equal(t, decodeFrame(mulawFrame(cl.gen, 160*k, 160)), w.samples[160*k:160*(k+1)], "call %s frame %d is its own audio", cl.sid, k)
		}
	}
}

// TestTracksOnTwoSockets: a call whose tracks arrive on two sockets is one
// call record with both tracks, and a track whose socket starts later sits
// where it belongs on the call clock: its WAV starts with silence up to
// its first frame, then holds its audio byte for byte, and its transcript
// times are on the call clock, not its own.
func TestTracksOnTwoSockets(t *testing.T) {
	inGen, outGen := bursts(300, 8000, 0, 0.4, 1), bursts(500, 8000, 0.2, 0.6, 1.5)
	// The API is read with a token, as every deployment needs one.
	cfg := func(t *testing.T) config.Config {
		c := testConfig(t)
		c.APIToken = "two-sockets-" + randomHex(t)
		return c
	}
	var token string
	get := func(t *testing.T, base, path string, v any) int {
		t.Helper()
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		return getJSON(t, base, path+sep+"token="+url.QueryEscape(token), v)
	}
	wav := func(t *testing.T, base, id, track string) wavFile {
		t.Helper()
		return parseWAV(t, authGet(t, base, token, "/api/calls/"+url.PathEscape(id)+"/recordings/"+track+".wav"))
	}

	// trackRecorded waits until the call has recorded frames of track.
	trackRecorded := func(t *testing.T, base, id, track string, frames int64) {
		t.Helper()
		eventually(t, func() bool {
			var rec bridge.CallRecord
			if get(t, base, "/api/calls/"+url.PathEscape(id), &rec) != http.StatusOK {
				return false
			}
			for _, tr := range rec.Tracks {
				if tr.Name == track && tr.Frames >= frames {
					return true
				}
			}
			return false
		}, 10*time.Second, 5*time.Millisecond, "%s: %d frames of %s", id, frames, track)
	}
	// requireTrack checks that w holds silence, then exactly the frames
	// of gen from sample 0 of the track's own audio.
	requireTrack := func(t *testing.T, w wavFile, silence int, gen func(int) float64, frames int) {
		t.Helper()
		require.Len(t, w.samples, silence+160*frames)
		require.Equal(t, make([]int16, silence), w.samples[:silence], "leading silence")
		for k := range frames {
			at := silence + 160*k
			require.Equal(t, decodeFrame(mulawFrame(gen, 160*k, 160)), w.samples[at:at+160], "frame %d", k)
		}
	}

	// Plivo's timestamps are Unix milliseconds, the same clock on both
	// streams: the outbound track starts exactly where its first timestamp
	// says, to the sample.
	t.Run("placed by the provider's timestamps", func(t *testing.T) {
		c := cfg(t)
		token = c.APIToken
		_, base := startBridge(t, c)
		const callID = "0a1b2c3d-1111-4222-8333-444455556666"
		const t0 = int64(1_764_900_000_000) // ms
		const offsetMs, inFrames, outFrames = 1000, 150, 100
		start := func(stream, track string) []byte {
			return []byte(fmt.Sprintf(`{"event":"start","sequenceNumber":1,"start":{"callId":"%s","streamId":"%s","accountId":"MA0000000000000000000","tracks":["%s"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000}}}`,
				callID, stream, track))
		}
		media := func(stream, track string, k int, ts int64, payload string) []byte {
			return []byte(fmt.Sprintf(`{"event":"media","sequenceNumber":%d,"streamId":"%s","media":{"track":"%s","timestamp":"%d","chunk":%d,"payload":"%s"}}`,
				k+2, stream, track, ts, k+1, payload))
		}
		stop := func(stream string, seq int) []byte {
			return []byte(fmt.Sprintf(`{"event":"stop","sequenceNumber":%d,"streamId":"%s"}`, seq, stream))
		}
		const inStream, outStream = "11111111-aaaa-4bbb-8ccc-000000000001", "11111111-aaaa-4bbb-8ccc-000000000002"

		in := dial(t, base, "/media/plivo", nil)
		send(t, in, start(inStream, "inbound"))
		for k := range inFrames {
			send(t, in, media(inStream, "inbound", k, t0+int64(20*k), mulawFrame(inGen, 160*k, 160)))
		}
		// The inbound stream is on the call before the outbound one opens.
		trackRecorded(t, base, callID, "inbound", 1)
		out := dial(t, base, "/media/plivo", nil)
		send(t, out, start(outStream, "outbound"))
		for k := range outFrames {
			send(t, out, media(outStream, "outbound", k, t0+offsetMs+int64(20*k), mulawFrame(outGen, 160*k, 160)))
		}
		send(t, in, stop(inStream, inFrames+2))
		send(t, out, stop(outStream, outFrames+2))
		rec := waitEndedVia(t, get, base, callID)
		require.Len(t, rec.Streams, 2)
		require.Len(t, rec.Tracks, 2)

		requireTrack(t, wav(t, base, callID, "inbound"), 0, inGen, inFrames)
		requireTrack(t, wav(t, base, callID, "outbound"), offsetMs*8, outGen, outFrames)

		// The mock hears the outbound bursts 0.2 s into its own audio
		// (0.6 s long, every 1.5 s): on the call clock, offset later.
		var tr bridge.Transcript
		require.Equal(t, http.StatusOK, get(t, base, "/api/calls/"+callID+"/transcript", &tr))
		var outbound, inbound [][2]int64
		for _, seg := range tr.Segments {
			switch seg.Track {
			case "outbound":
				outbound = append(outbound, [2]int64{seg.StartMs, seg.EndMs})
			case "inbound":
				inbound = append(inbound, [2]int64{seg.StartMs, seg.EndMs})
			}
		}
		require.Equal(t, [][2]int64{{offsetMs + 200, offsetMs + 800}, {offsetMs + 1700, offsetMs + 2000}}, outbound,
			"outbound segments on the call clock (the second is cut by the end of the stream)")
		require.Equal(t, [][2]int64{{0, 400}, {1000, 1400}, {2000, 2400}}, inbound)
	})

	// Twilio's timestamps count from each stream's own start, so a later
	// stream is anchored by when its first frame arrived: its leading
	// silence lies between the earliest and the latest that arrival could
	// have been measured, and its audio follows byte for byte.
	t.Run("anchored by arrival", func(t *testing.T) {
		c := cfg(t)
		token = c.APIToken
		_, base := startBridge(t, c)
		const callSid = "CA25000000000000000000000000000a0a"
		const inSid, outSid = "MZ25000000000000000000000000000001", "MZ25000000000000000000000000000002"
		const inFrames, outFrames = 100, 50
		in := dial(t, base, "/media", nil)
		out := dial(t, base, "/media", nil)
		send(t, in, twilioStart(callSid, inSid, []string{"inbound"}, nil))
		sentFirst := time.Now() // the call clock starts after this
		for k := range inFrames {
			send(t, in, twilioMedia(inSid, "inbound", k+2, k+1, 20*k, mulawFrame(inGen, 160*k, 160)))
		}
		trackRecorded(t, base, callSid, "inbound", 1)
		inSeen := time.Now() // and before this
		// The outbound stream opens a while later: the gap in wall time is
		// what is measured here, so it is made on purpose, not waited out.
		<-time.After(200 * time.Millisecond)
		send(t, out, twilioStart(callSid, outSid, []string{"outbound"}, nil))
		outSent := time.Now() // the outbound's first frame arrives after this
		send(t, out, twilioMedia(outSid, "outbound", 2, 1, 0, mulawFrame(outGen, 0, 160)))
		trackRecorded(t, base, callSid, "outbound", 1)
		outSeen := time.Now() // and before this
		for k := 1; k < outFrames; k++ {
			send(t, out, twilioMedia(outSid, "outbound", k+2, k+1, 20*k, mulawFrame(outGen, 160*k, 160)))
		}
		send(t, in, twilioStop(inSid, callSid, inFrames+2))
		// The call goes on while the outbound stream lives.
		var rec bridge.CallRecord
		require.Equal(t, http.StatusOK, get(t, base, "/api/calls/"+url.PathEscape(callSid), &rec))
		require.Equal(t, bridge.StatusActive, rec.Status)
		send(t, out, twilioStop(outSid, callSid, outFrames+2))
		rec = waitEndedVia(t, get, base, callSid)
		require.Len(t, rec.Streams, 2)
		require.Len(t, rec.Tracks, 2)

		requireTrack(t, wav(t, base, callSid, "inbound"), 0, inGen, inFrames)
		w := wav(t, base, callSid, "outbound")
		silence := len(w.samples) - 160*outFrames
		lo := int(outSent.Sub(inSeen).Milliseconds()) * 8
		hi := int(outSeen.Sub(sentFirst).Milliseconds()+1) * 8
		require.GreaterOrEqual(t, lo, 200*8)
		require.True(t, silence >= lo && silence <= hi, "leading silence %d samples, want %d to %d", silence, lo, hi)
		requireTrack(t, w, silence, outGen, outFrames)

		var tr bridge.Transcript
		require.Equal(t, http.StatusOK, get(t, base, "/api/calls/"+callSid+"/transcript", &tr))
		var outbound []int64
		for _, seg := range tr.Segments {
			if seg.Track == "outbound" {
				outbound = append(outbound, seg.StartMs)
			}
		}
		require.NotEmpty(t, outbound)
		// 0.2 s into the outbound audio, to the 20 ms window the mock hears in.
		want := int64(silence/8) + 200
		require.InDelta(t, want, outbound[0], 20, "outbound segment on the call clock (silence %d ms)", silence/8)
	})
}

var _ = binary.LittleEndian

// TestCallIDComesBack: a stream for a call that already ended continues it:
// the recording keeps the old audio and the new follows, segment ids go on.
func TestCallIDComesBack(t *testing.T) {
	_, base := startBridge(t, testConfig(t))
	const callSid = "CAc0000000000000000000000000000a0a"
	// Two utterances per part with 0.7 s between them: well clear of the
	// mock's 0.5 s end-of-utterance silence wherever the second part lands.
	gen := bursts(300, 8000, 0.1, 0.5, 1.2)
	play := func(streamSid string, frames int) {
		c := dial(t, base, "/media", nil)
		send(t, c, twilioStart(callSid, streamSid, []string{"inbound"}, nil))
		for k := range frames {
			send(t, c, twilioMedia(streamSid, "inbound", k+2, k+1, 20*k, mulawFrame(gen, 160*k, 160)))
		}
		send(t, c, twilioStop(streamSid, callSid, frames+2))
	}
	play("MZc0000000000000000000000000000001", 100) // 2 s
	first := waitEnded(t, base, callSid)
	require.Equal(t, int64(16000), first.Tracks[0].Samples)

	play("MZc0000000000000000000000000000002", 100)
	var rec bridge.CallRecord
	eventually(t, func() bool {
		rec = bridge.CallRecord{}
		return getJSON(t, base, "/api/calls/"+callSid, &rec) == 200 && rec.Status == bridge.StatusEnded && len(rec.Streams) == 2
	}, 15*time.Second, 20*time.Millisecond)
	require.Equal(t, first.StartedAt.Unix(), rec.StartedAt.Unix(), "the same call")
	w := fetchWAV(t, base, callSid, "inbound")
	// The second stream is placed by when it arrived: right after the kept
	// audio, give or take the milliseconds the reconnect took.
	n := len(w.samples)
	require.True(t, n >= 32000 && n <= 32000+8*100, "old audio kept, new audio after it: %d samples", n)
	second := n - 16000
	for k := range 100 {
		want := decodeFrame(mulawFrame(gen, 160*k, 160))
		require.Equal(t, want, w.samples[160*k:160*(k+1)], "first part, frame %d", k)
		require.Equal(t, want, w.samples[second+160*k:second+160*(k+1)], "second part, frame %d", k)
	}
	var tr bridge.Transcript
	require.Equal(t, 200, getJSON(t, base, "/api/calls/"+callSid+"/transcript", &tr))
	ids := map[string]bool{}
	for _, s := range tr.Segments {
		require.False(t, ids[s.SegmentID], "segment id %s used twice", s.SegmentID)
		ids[s.SegmentID] = true
	}
	require.Len(t, tr.Segments, 4, "two utterances in each part")
	require.GreaterOrEqual(t, tr.Segments[2].StartMs, int64(2000), "the second part is after the first on the call clock")
}

// TestTrackNamedOnlyByMedia: Telnyx's start frame lists no tracks; a
// both-tracks stream still records both, each from its own frames.
func TestTrackNamedOnlyByMedia(t *testing.T) {
	_, base := startBridge(t, testConfig(t))
	const callID, streamID = "v3:telnyx-both-tracks", "32de0dea-53cb-4b21-89a4-9e1819c04300"
	sub := dial(t, base, "/ws/captions?call="+url.QueryEscape(callID), nil)
	c := dial(t, base, "/media/telnyx", nil)
	send(t, c, []byte(`{"event":"connected","version":"1.0.0"}`),
		[]byte(`{"event":"start","sequence_number":"1","start":{"call_control_id":"`+callID+`","media_format":{"encoding":"PCMU","sample_rate":8000,"channels":1}},"stream_id":"`+streamID+`"}`))
	in, out := bursts(300, 8000, 0, 0.4, 1), bursts(700, 5000, 0, 0.4, 1)
	media := func(track string, chunk int, gen func(int) float64) []byte {
		k := chunk - 1
		return []byte(fmt.Sprintf(`{"event":"media","sequence_number":"%d","media":{"track":"%s","chunk":"%d","timestamp":"%d","payload":"%s"},"stream_id":"%s"}`,
			2*chunk, track, chunk, 20*k, mulawFrame(gen, 160*k, 160), streamID))
	}
	for chunk := 1; chunk <= 50; chunk++ {
		send(t, c, media("inbound", chunk, in), media("outbound", chunk, out))
	}
	send(t, c, []byte(`{"event":"stop","sequence_number":"200","stop":{"call_control_id":"`+callID+`"},"stream_id":"`+streamID+`"}`))
	rec := waitEnded(t, base, callID)
	require.Len(t, rec.Tracks, 2)
	for _, tr := range []struct {
		name string
		gen  func(int) float64
	}{{"inbound", in}, {"outbound", out}} {
		w := fetchWAV(t, base, callID, tr.name)
		require.Equal(t, 50*160, len(w.samples), tr.name)
		for k := range 50 {
			require.Equal(t, decodeFrame(mulawFrame(tr.gen, 160*k, 160)), w.samples[160*k:160*(k+1)], "%s frame %d", tr.name, k)
		}
	}
	evs := readEvents(t, sub, func(ev map[string]any) bool { return ev["type"] == bridge.TypeCallEnded })
	updated := false
	for _, ev := range evs {
		if ev["type"] == bridge.TypeCallUpdated {
			updated = true
			require.ElementsMatch(t, []any{"inbound", "outbound"}, ev["tracks"])
		}
	}
	require.True(t, updated, "subscribers learn of the second track")
}

// TestRecordingByteRanges: an ended call's recording is served whole or
// as one byte range, byte for byte, with the headers a player seeking in
// it relies on.
func TestRecordingByteRanges(t *testing.T) {
	_, base := startBridge(t, testConfig(t))
	const callSid, streamSid = "CAr1000000000000000000000000000001", "MZr1000000000000000000000000000001"
	c := dial(t, base, "/media/twilio", nil)
	playBursts(t, c, callSid, streamSid, 50)
	send(t, c, twilioStop(streamSid, callSid, 52))
	waitEnded(t, base, callSid)

	path := base + "/api/calls/" + url.PathEscape(callSid) + "/recordings/inbound.wav"
	fetch := func(t *testing.T, method, rng string) (*http.Response, []byte) {
		t.Helper()
		var hdr map[string]string
		if rng != "" {
			hdr = map[string]string{"Range": rng}
		}
		return httpResponse(t, method, path, "", hdr)
	}
	resp, whole := fetch(t, http.MethodGet, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, whole, 44+50*160*2)
	parseWAV(t, whole)
	size := fmt.Sprint(len(whole))

	cases := []struct {
		name, method, rng string
		status            int
		contentRange      string
		from, to          int // the bytes expected, [from, to)
	}{
		{"header", http.MethodGet, "bytes=0-43", 206, "bytes 0-43/" + size, 0, 44},
		{"middle", http.MethodGet, "bytes=1000-2999", 206, "bytes 1000-2999/" + size, 1000, 3000},
		{"to the end", http.MethodGet, "bytes=16000-", 206, "bytes 16000-" + fmt.Sprint(len(whole)-1) + "/" + size, 16000, len(whole)},
		{"suffix", http.MethodGet, "bytes=-10", 206, "bytes " + fmt.Sprint(len(whole)-10) + "-" + fmt.Sprint(len(whole)-1) + "/" + size, len(whole) - 10, len(whole)},
		{"head of a range", http.MethodHead, "bytes=100-199", 206, "bytes 100-199/" + size, 0, 0},
		{"head", http.MethodHead, "", 200, "", 0, 0},
		{"not satisfiable", http.MethodGet, "bytes=" + size + "-", 416, "bytes */" + size, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := fetch(t, tc.method, tc.rng)
			require.Equal(t, tc.status, resp.StatusCode)
			require.Equal(t, tc.contentRange, resp.Header.Get("Content-Range"))
			if tc.status == http.StatusRequestedRangeNotSatisfiable {
				return
			}
			require.Equal(t, "audio/wav", resp.Header.Get("Content-Type"))
			require.Equal(t, "bytes", resp.Header.Get("Accept-Ranges"))
			if tc.method == http.MethodHead {
				require.Empty(t, b)
				return
			}
			require.Equal(t, fmt.Sprint(tc.to-tc.from), resp.Header.Get("Content-Length"))
			require.Equal(t, whole[tc.from:tc.to], b)
		})
	}
}
