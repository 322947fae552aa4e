package web

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"syscall"
	"testing"
	"time"

	"github.com/gofiber/contrib/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/codec"
	"github.com/callcaptions/bridge/bridge/provider"
	"github.com/callcaptions/bridge/recorder"
	"github.com/callcaptions/bridge/stt/mock"
)

// The per-frame path of a media socket, measured without the socket: one
// text frame goes through mediaConn.handle exactly as serveMedia hands it
// over (parse → decode → media clock → WAV → STT), with the real recorder
// writing to a file, the mock recognizer taking the audio inline (or from
// the STT queue on its own goroutine when it falls behind) and delivering
// results on its own, and the Prometheus metrics counting.

// framePathCase is one provider's steady state: a start frame and a media
// frame template per track whose counters are rewritten in place.
type framePathCase struct {
	name     string
	provider provider.Name
	start    string
	// media is a printf template with three %s slots: sequence number,
	// chunk and timestamp, in that order; every slot gets a fixed-width
	// run of digits that patch rewrites.
	media    string
	tracks   []string
	encoding provider.Encoding
	order    provider.ByteOrder
	rate     int
	frameMs  int
	epochTs  bool // timestamps are Unix ms (Plivo, Vobiz)
}

var framePathCases = []framePathCase{
	{
		name: "twilio-pcmu-8k-2tracks", provider: provider.Twilio,
		start:  `{"event":"start","sequenceNumber":"1","streamSid":"MZ00000000000000000000000000000001","start":{"accountSid":"AC00000000000000000000000000000001","streamSid":"MZ00000000000000000000000000000001","callSid":"%s","tracks":["inbound","outbound"],"customParameters":{},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}`,
		media:  `{"event":"media","sequenceNumber":"%s","streamSid":"MZ00000000000000000000000000000001","media":{"track":"%%s","chunk":"%s","timestamp":"%s","payload":"%%s"}}`,
		tracks: []string{"inbound", "outbound"}, encoding: provider.PCMU, rate: 8000, frameMs: 20,
	},
	{
		name: "plivo-l16-16k", provider: provider.Plivo,
		start:  `{"event":"start","sequenceNumber":1,"start":{"callId":"%s","streamId":"87654321-4321-4321-4321-cba987654321","accountId":"MAXXXXXXXXXXXXXXXXXX","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-l16;rate=16000","sampleRate":16000}},"extra_headers":"userId=12345"}`,
		media:  `{"event":"media","sequenceNumber":%s,"streamId":"87654321-4321-4321-4321-cba987654321","media":{"track":"%%s","chunk":%s,"timestamp":"%s","payload":"%%s"},"extra_headers":"userId=12345"}`,
		tracks: []string{"inbound"}, encoding: provider.L16, order: provider.LittleEndian, rate: 16000, frameMs: 20, epochTs: true,
	},
	{
		name: "vobiz-l16be-16k", provider: provider.Vobiz,
		start:  `{"sequenceNumber":0,"event":"start","start":{"callId":"%s","streamId":"c4dfd815-a92a-4140-ab85-5ff28c004116","accountId":"500025","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-l16","sampleRate":16000}},"extra_headers":"{}"}`,
		media:  `{"sequenceNumber":%s,"streamId":"c4dfd815-a92a-4140-ab85-5ff28c004116","event":"media","media":{"track":"%%s","timestamp":"%s","chunk":%s,"payload":"%%s"},"extra_headers":"{}"}`,
		tracks: []string{"inbound"}, encoding: provider.L16, order: provider.BigEndian, rate: 16000, frameMs: 20, epochTs: true,
	},
	{
		name: "exotel-l16-8k-100ms", provider: provider.Exotel,
		start:  `{"event":"start","sequence_number":"1","stream_sid":"MZ4f0c1e1b2a3d4c5b6a79887766554433","start":{"stream_sid":"MZ4f0c1e1b2a3d4c5b6a79887766554433","call_sid":"%s","account_sid":"exotel-acct-sid","custom_parameters":{},"media_format":{"encoding":"audio/x-raw","sample_rate":"8000","bit_rate":"16"}}}`,
		media:  `{"event":"media","sequence_number":"%s","stream_sid":"MZ4f0c1e1b2a3d4c5b6a79887766554433","media":{"chunk":"%s","timestamp":"%s","payload":"%%s"}}`,
		tracks: []string{""}, encoding: provider.L16, order: provider.LittleEndian, rate: 8000, frameMs: 100,
	},
	{
		name: "telnyx-pcmu-8k", provider: provider.Telnyx,
		start:  `{"event":"start","sequence_number":"1","start":{"user_id":"3e6f995f","call_control_id":"%s","media_format":{"encoding":"PCMU","sample_rate":8000,"channels":1}},"stream_id":"32de0dea-53cb-4b21-89a4-9e1819c043bc"}`,
		media:  `{"event":"media","sequence_number":"%s","media":{"track":"%%s","chunk":"%s","timestamp":"%s","payload":"%%s"},"stream_id":"32de0dea-53cb-4b21-89a4-9e1819c043bc"}`,
		tracks: []string{"inbound"}, encoding: provider.PCMU, rate: 8000, frameMs: 20,
	},
}

// digitsWidth is the width of a patched counter: enough for a 30-hour
// call's epoch-ms timestamps.
const digitsWidth = 13

// patchSlot marks a counter in a template until it is located.
const patchSlot = "9999999999999"

// frameSet is a ring of media frames whose counters are rewritten in place
// before each use.
type frameSet struct {
	frames [][]byte
	tracks []int   // the track index of each frame
	offs   [][]int // offsets of seq, chunk, timestamp digits in each frame
}

// newFrameSet renders n frames per track of a tone (loud enough to be
// speech for the mock recognizer) in the case's codec.
func newFrameSet(c framePathCase, n int) *frameSet {
	samples := c.rate * c.frameMs / 1000
	fs := &frameSet{}
	for i := 0; i < n; i++ {
		for ti, track := range c.tracks {
			pcm := make([]byte, 2*samples)
			for j := 0; j < samples; j++ {
				pos := i*samples + j
				v := 8000 * math.Sin(2*math.Pi*float64(300+100*ti)*float64(pos)/float64(c.rate))
				binary.LittleEndian.PutUint16(pcm[2*j:], uint16(int16(v)))
			}
			var wire []byte
			switch {
			case c.encoding == provider.PCMU:
				wire = make([]byte, samples)
				codec.EncodeMulaw(wire, pcm)
			case c.order == provider.BigEndian:
				wire = make([]byte, len(pcm))
				for j := 0; j+1 < len(pcm); j += 2 {
					wire[j], wire[j+1] = pcm[j+1], pcm[j]
				}
			default:
				wire = pcm
			}
			tmpl := fmt.Sprintf(c.media, patchSlot, patchSlot, patchSlot)
			var frame string
			if track == "" {
				frame = fmt.Sprintf(tmpl, base64.StdEncoding.EncodeToString(wire))
			} else {
				frame = fmt.Sprintf(tmpl, track, base64.StdEncoding.EncodeToString(wire))
			}
			b := []byte(frame)
			var offs []int
			for k := 0; k+digitsWidth <= len(b); k++ {
				if string(b[k:k+digitsWidth]) == patchSlot {
					offs = append(offs, k)
					k += digitsWidth - 1
				}
			}
			if len(offs) != 3 {
				panic(fmt.Sprintf("%s: %d counters in the media template", c.name, len(offs)))
			}
			fs.frames = append(fs.frames, b)
			fs.tracks = append(fs.tracks, ti)
			fs.offs = append(fs.offs, offs)
		}
	}
	return fs
}

// putDigits writes v as zero-padded decimal into b[:digitsWidth].
func putDigits(b []byte, v int64) {
	for i := digitsWidth - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
}

// frame returns frame k of the call (k counts frames of every track),
// its counters set for that position.
func (fs *frameSet) frame(c framePathCase, k int64) []byte {
	i := int(k % int64(len(fs.frames)))
	b := fs.frames[i]
	perTrack := k / int64(len(c.tracks)) // index of this frame in its track
	ts := perTrack * int64(c.frameMs)
	if c.epochTs {
		ts += 1_700_000_000_000
	}
	o := fs.offs[i]
	// The template's order of seq, chunk and timestamp varies (Vobiz puts
	// the timestamp before the chunk): find which slot is which once.
	seqAt, chunkAt, tsAt := o[0], o[1], o[2]
	if c.provider == provider.Vobiz {
		chunkAt, tsAt = o[2], o[1]
	}
	putDigits(b[seqAt:], k+2)
	putDigits(b[chunkAt:], perTrack+1)
	putDigits(b[tsAt:], ts)
	return b
}

// framePath is one started stream, ready for media frames.
type framePath struct {
	reg *bridge.Registry
	m   *mediaConn
	fs  *frameSet
	c   framePathCase
	k   int64
	// sent counts the frames handled per track name.
	sent map[string]int64
}

func newFramePath(tb testing.TB, c framePathCase, dir string) *framePath {
	tb.Helper()
	store, err := recorder.NewStore(dir)
	require.NoError(tb, err)
	metrics := newPromSet(nil)
	reg := bridge.NewRegistry(bridge.Config{
		Store: fuzzStore{store}, Recognizer: mock.New(mock.Config{}), Metrics: metrics.bridge, Log: zerolog.Nop(),
		// Benchmarks run far faster than real time: a queue long enough
		// that a recognizer that keeps up on average never drops audio.
		STTQueue: time.Minute,
	})
	s := &Server{reg: reg, metr: metrics.web, log: zerolog.Nop()}
	m := &mediaConn{s: s, log: zerolog.Nop(), name: c.provider, parser: provider.NewParser(c.provider), endReason: bridge.ReasonDisconnect}
	callID := fmt.Sprintf("bench-%s-%d", c.name, time.Now().UnixNano())
	require.False(tb, m.handle(websocket.TextMessage, []byte(fmt.Sprintf(c.start, callID))), "start refused")
	require.NotNil(tb, m.stream, "no stream after start")
	return &framePath{reg: reg, m: m, fs: newFrameSet(c, 250), c: c, sent: map[string]int64{}}
}

// next handles the next media frame.
func (p *framePath) next() bool {
	f := p.fs.frame(p.c, p.k)
	track := p.c.tracks[p.fs.tracks[int(p.k%int64(len(p.fs.frames)))]]
	if track == "" {
		track = provider.TrackInbound
	}
	p.sent[track]++
	p.k++
	return !p.m.handle(websocket.TextMessage, f)
}

// end ends the stream and waits until the call is finalized.
func (p *framePath) end(tb testing.TB) bridge.CallRecord {
	tb.Helper()
	id := p.m.stream.CallID()
	p.m.stream.End(bridge.ReasonStop, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p.reg.Shutdown(ctx)
	rec, ok := p.reg.Record(id)
	require.True(tb, ok)
	return rec
}

// TestMediaFramePathAllocations proves that in steady state a media frame
// costs no allocation anywhere in the process: parsing, decoding, placing,
// recording, queueing for and running the recognizer, counting.
func TestMediaFramePathAllocations(t *testing.T) {
	for _, c := range framePathCases {
		t.Run(c.name, func(t *testing.T) {
			p := newFramePath(t, c, t.TempDir())
			// Warm up past the mock's partials (a steady tone is one long
			// utterance whose partials stop after five words) and the
			// growth of every buffer.
			warm := int(3*time.Second/(time.Duration(c.frameMs)*time.Millisecond)) * len(c.tracks)
			for range warm {
				require.True(t, p.next())
			}
			allocs := testing.AllocsPerRun(500, func() {
				if !p.next() {
					t.Fatal("frame refused")
				}
			})
			rec := p.end(t)
			require.Zero(t, allocs, "allocations per media frame")
			for _, tr := range rec.Tracks {
				require.Zero(t, tr.Duplicates, "track %s", tr.Name)
				require.Zero(t, tr.GapMs, "track %s", tr.Name)
				require.Equal(t, p.sent[tr.Name], tr.Frames, "track %s", tr.Name)
			}
		})
	}
}

// BenchmarkMediaFrame is the cost of one media frame through the whole
// per-frame path. Bytes are the frame's bytes on the wire.
func BenchmarkMediaFrame(b *testing.B) {
	for _, c := range framePathCases {
		b.Run(c.name, func(b *testing.B) {
			p := newFramePath(b, c, b.TempDir())
			for range 200 {
				p.next()
			}
			b.SetBytes(int64(len(p.fs.frames[0])))
			b.ReportAllocs()
			cpu0, n := processCPU(b), 0
			for b.Loop() {
				if !p.next() {
					b.Fatal("frame refused")
				}
				n++
			}
			// ns/op is the read loop's time only; the recognizer's
			// goroutines run beside it. cpu-ns/frame is all of the
			// process's CPU per frame.
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(n), "cpu-ns/frame")
			b.StopTimer()
			rec := p.end(b)
			for _, tr := range rec.Tracks {
				if tr.Duplicates != 0 || tr.GapMs != 0 {
					b.Fatalf("track %s: %d duplicates, %d ms of gaps", tr.Name, tr.Duplicates, tr.GapMs)
				}
			}
		})
	}
}

// processCPU is the user and system CPU time of the process so far.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
