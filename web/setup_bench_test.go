package web

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gofiber/contrib/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/provider"
	"github.com/callcaptions/bridge/recorder"
	"github.com/callcaptions/bridge/stt/mock"
)

// The cost of a call's set-up and of its end, measured without the socket
// but through everything behind it: the admission check, the start frame
// through mediaConn.handle (parse, registry, call folder, documents, WAVs,
// recognizer streams, metrics, loggers) and the first media frame; then the
// stream's end until call.ended is published. The real recorder writes to
// t.TempDir(), with a Syncer as serve runs it.

// endedSignal is a publisher that says when a call has ended.
type endedSignal chan string

func (e endedSignal) Publish(ev bridge.Event) {
	if ev.Type == bridge.TypeCallEnded {
		e <- ev.CallID
	}
}

// callBench is one registry whose calls a benchmark starts and ends.
type callBench struct {
	reg   *bridge.Registry
	s     *Server
	c     framePathCase
	fs    *frameSet
	ended endedSignal
	n     int
}

func newCallBench(tb testing.TB) *callBench {
	tb.Helper()
	store, err := recorder.NewStore(tb.TempDir())
	require.NoError(tb, err)
	syncer := recorder.NewSyncer(time.Second, nil)
	store.SyncWith(syncer)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { syncer.Run(ctx); close(done) }()
	metrics := newPromSet(nil)
	ended := make(endedSignal, 1024)
	reg := bridge.NewRegistry(bridge.Config{
		Store: fuzzStore{store}, Recognizer: mock.New(mock.Config{}), Publisher: ended,
		Metrics: metrics.bridge, Log: zerolog.Nop(), MaxCalls: 1 << 20, DrainTimeout: time.Second,
	})
	tb.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		reg.Shutdown(sctx)
		cancel()
		<-done
	})
	c := framePathCases[0] // Twilio, two tracks: the common case
	return &callBench{reg: reg, s: &Server{reg: reg, metr: metrics.web, log: zerolog.Nop()}, c: c, fs: newFrameSet(c, 1), ended: ended}
}

// start admits and starts one new call and hands it its first frame.
func (cb *callBench) start(tb testing.TB) *mediaConn {
	if err := cb.reg.Admit(); err != nil {
		tb.Fatal(err)
	}
	cb.n++
	m := &mediaConn{s: cb.s, log: zerolog.Nop(), name: cb.c.provider, parser: provider.NewParser(cb.c.provider), endReason: bridge.ReasonDisconnect}
	if m.handle(websocket.TextMessage, fmt.Appendf(nil, cb.c.start, fmt.Sprintf("CAbench%08d", cb.n))) || m.stream == nil {
		tb.Fatal("start refused")
	}
	if m.handle(websocket.TextMessage, cb.fs.frame(cb.c, 0)) {
		tb.Fatal("frame refused")
	}
	return m
}

// end ends the calls of ms and waits until each has published call.ended.
func (cb *callBench) end(ms []*mediaConn) {
	for _, m := range ms {
		m.stream.End(bridge.ReasonStop, nil)
	}
	for range ms {
		<-cb.ended
	}
}

// BenchmarkCallSetup is one call's admission, start and first frame.
func BenchmarkCallSetup(b *testing.B) {
	cb := newCallBench(b)
	const batch = 100 // calls live at once; each holds two WAVs open
	live := make([]*mediaConn, 0, batch)
	b.ReportAllocs()
	for b.Loop() {
		live = append(live, cb.start(b))
		if len(live) == batch {
			b.StopTimer()
			cb.end(live)
			live = live[:0]
			b.StartTimer()
		}
	}
	b.StopTimer()
	cb.end(live)
}

// BenchmarkCallEnd is one call's end: its stream ends, the call is
// finalized (transcription settles, WAVs closed, documents written) and
// call.ended is published.
func BenchmarkCallEnd(b *testing.B) {
	cb := newCallBench(b)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		m := cb.start(b)
		b.StartTimer()
		cb.end([]*mediaConn{m})
	}
}
