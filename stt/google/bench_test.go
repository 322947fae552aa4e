package google

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/stt"
	"github.com/callcaptions/bridge/stt/google/speechtest"
	"github.com/callcaptions/bridge/stt/session"
)

// countResults is a session.Handler that only counts.
type countResults struct{ results, gaps atomic.Int64 }

func (c *countResults) Result(stt.Result)     { c.results.Add(1) }
func (c *countResults) Notice(string, string) {}
func (c *countResults) Gap(_, n int64)        { c.gaps.Add(n) }

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTracks is the CPU of the whole Google path of a track, as the
// bridge runs it (a session.Session per track over the real client, fed
// 20 ms frames), against the fake Speech server in the same process, whose
// share is included. One op is one second of audio on every track, played
// ten times faster than real time. cpu-ms/track-s is process CPU per
// second of one track's audio; times 60, per call-minute of one track.
func BenchmarkTracks(b *testing.B) {
	const (
		tracks  = 20
		rate    = 8000
		speedup = 10
		frame   = rate / 50 // samples in 20 ms
	)
	_, addr := speechtest.Start(b, speechtest.Config{})
	cfg := Config{Endpoint: addr, Insecure: true, WordTimeOffsets: true, MaxStreams: tracks}
	r, err := New(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	// 20 s of speech, looped: words keep the hold from closing streams.
	const loop = 20 * time.Second
	pcm := synth(rate, loop, utterances(1, 200*time.Millisecond, loop))
	loopSamples := int64(len(pcm) / 2)

	h := &countResults{}
	sessions := make([]*session.Session, tracks)
	var run sync.WaitGroup
	for i := range sessions {
		sessions[i] = session.New(session.Config{Recognizer: r, Handler: h, Log: zerolog.Nop(),
			Stream: stt.StreamConfig{CallID: "CA" + strconv.Itoa(i), Track: "inbound", SampleRate: rate}})
		run.Go(func() { sessions[i].Run(context.Background()) })
	}
	// One writer for every track, as if their frames arrived together: the
	// pacing costs one wake-up per 20 ms of audio, not one per track.
	var pos int64 // samples written per track so far
	second := func() {
		tick := time.NewTicker(20 * time.Millisecond / speedup)
		defer tick.Stop()
		for p := pos; p < pos+rate; p += frame {
			off := 2 * (p % loopSamples)
			for _, s := range sessions {
				s.Write(p, pcm[off:off+2*frame])
			}
			<-tick.C
		}
		pos += rate
	}
	second() // warm up: streams open, buffers grow
	b.ResetTimer()
	cpu0 := cpuTime(b)
	n := 0
	for b.Loop() {
		second()
		n++
	}
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	b.ReportMetric(float64(cpu.Milliseconds())/float64(n*tracks), "cpu-ms/track-s")
	for _, s := range sessions {
		s.Close(context.Background())
	}
	run.Wait()
	if h.gaps.Load() > 0 {
		b.Fatalf("%d samples not transcribed", h.gaps.Load())
	}
	if h.results.Load() == 0 {
		b.Fatal("no results")
	}
}
