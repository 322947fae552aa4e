package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/config"
)

// BenchmarkCallMemory holds calls open on a real bridge on 127.0.0.1 (mock
// STT, recording on) — each a two-track Twilio stream that has played
// 3 s of speech-like audio, with one caption subscriber — and reports what
// one call costs after a forced collection: live heap, heap in use plus
// goroutine stacks, and goroutines; and, before that collection, resident
// memory per call (where GOGC lets the heap grow) and the CPU seconds the
// process, and its garbage collector, used for the whole run (the
// client's garbage included: an upper bound for the collector). The client's two sockets per call are
// in the same process and counted (small buffers, no goroutines). Run it
// alone, once; BRIDGE_BENCH_HEAP=file writes a heap profile of the calls:
//
//	go test -run '^$' -bench BenchmarkCallMemory -benchtime 1x ./cmd/bridge/
func BenchmarkCallMemory(b *testing.B) {
	const calls = 100
	const frames = 150 // 3 s of 20 ms frames per track
	in, out := bursts(300, 8000, 0.5, 1.2, 3), bursts(500, 6000, 2.0, 0.8, 3)
	payloads := make([][2]string, frames)
	for k := range payloads {
		payloads[k] = [2]string{mulawFrame(in, 160*k, 160), mulawFrame(out, 160*k, 160)}
	}
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 256, WriteBufferSize: 256}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		cfg := testConfig(b)
		cfg.Limits.STTQueue = config.Default().Limits.STTQueue // the default queue, as in production
		_, base := startBridgeWith(b, cfg, zerolog.New(io.Discard), nil)
		ws := "ws" + base[len("http"):]
		dialOne := func(path string) *websocket.Conn {
			c, resp, err := dialer.Dial(ws+path, nil)
			if resp != nil && resp.Body != nil {
				resp.Body.Close()
			}
			require.NoError(b, err, "dial %s", path)
			b.Cleanup(func() { c.Close() })
			return c
		}
		if os.Getenv("BRIDGE_BENCH_HEAP") != "" {
			runtime.MemProfileRate = 512
		}
		before := memNow()
		b.StartTimer()
		type call struct {
			sid, stream string
			sub, media  *websocket.Conn
		}
		cs := make([]call, calls)
		for n := range cs {
			c := call{sid: fmt.Sprintf("CAmem%029d", n), stream: fmt.Sprintf("MZmem%029d", n)}
			c.sub = dialOne("/ws/captions?call=" + c.sid)
			c.media = dialOne("/media/twilio")
			require.NoError(b, c.media.WriteMessage(websocket.TextMessage, twilioStart(c.sid, c.stream, []string{"inbound", "outbound"}, nil)))
			cs[n] = c
		}
		// The audio goes out in real time, as a provider sends it: a
		// burst would sit in the STT queues and be counted.
		tick := time.NewTicker(20 * time.Millisecond)
		for k, p := range payloads {
			<-tick.C
			for _, c := range cs {
				for t, track := range []string{"inbound", "outbound"} {
					require.NoError(b, c.media.WriteMessage(websocket.TextMessage, twilioMedia(c.stream, track, 2+2*k+t, k+1, 20*k, p[t])))
				}
			}
		}
		tick.Stop()
		// Resident memory before any forced collection: the heap where
		// GOGC lets it grow between collections, and CPU spent so far.
		rss, cpu, gcCPU := rssNow(), cpuNow(), gcCPUNow()
		for _, c := range cs { // each subscriber is attached: it has its first event
			_ = c.sub.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, _, err := c.sub.ReadMessage()
			require.NoError(b, err)
		}
		b.StopTimer()
		// Let the recognizers deliver what they hold for the last audio.
		time.Sleep(time.Second)
		after := memNow()
		if path := os.Getenv("BRIDGE_BENCH_HEAP"); path != "" { // a heap profile of the calls, for go tool pprof
			f, err := os.Create(path)
			require.NoError(b, err)
			require.NoError(b, pprof.Lookup("heap").WriteTo(f, 0))
			require.NoError(b, f.Close())
		}
		b.ReportMetric(float64(after.heap-before.heap)/calls, "heap-B/call")
		b.ReportMetric(float64(after.inuse-before.inuse)/calls, "inuse+stack-B/call")
		b.ReportMetric(float64(after.stack-before.stack)/calls, "stack-B/call")
		b.ReportMetric(float64(after.goroutines-before.goroutines)/calls, "goroutines/call")
		if rss > 0 && before.rss > 0 {
			b.ReportMetric(float64(rss-before.rss)/calls, "rss-B/call")
		}
		b.ReportMetric((cpu - before.cpu).Seconds(), "cpu-s")
		b.ReportMetric(gcCPU-before.gcCPU, "gc-cpu-s")
		b.StartTimer()
	}
}

type memSample struct {
	heap, inuse, stack, rss uint64
	goroutines              int
	cpu                     time.Duration
	gcCPU                   float64 // seconds
}

// gcCPUNow is the CPU time the garbage collector has used, an estimate
// of the runtime's.
func gcCPUNow() float64 {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64 {
		return 0
	}
	return s[0].Value.Float64()
}

// rssNow is the process's resident set in bytes (0 where /proc is not).
func rssNow() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

// cpuNow is the user and system CPU time the process has used.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memNow is the process's memory after two forced collections (the
// second frees what the first left to finalizers and sync.Pools' victim
// caches).
func memNow() memSample {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memSample{heap: m.HeapAlloc, inuse: m.HeapInuse + m.StackInuse, stack: m.StackInuse, rss: rssNow(),
		goroutines: runtime.NumGoroutine(), cpu: cpuNow(), gcCPU: gcCPUNow()}
}
