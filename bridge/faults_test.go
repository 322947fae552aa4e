package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/callcaptions/bridge/bridge/codec"
	"github.com/callcaptions/bridge/bridge/provider"
	"github.com/callcaptions/bridge/stt"
	"github.com/callcaptions/bridge/stt/mock"
)

// memStore keeps calls in memory. A call's folder or a track's recording
// can be made not to open, and a recording to fail after some bytes, the
// way a full disk fails a write.
type memStore struct {
	mu         sync.Mutex
	calls      map[string]*memFiles
	failOpen   map[string]error // call id → error of Open
	failCreate map[string]error // "call/track" → error of CreateTrack
	failAfter  map[string]int   // "call/track" → bytes written before writes fail
	failAppend int              // how many journal appends fail (of any call) before they work
}

var _ Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{calls: map[string]*memFiles{}, failOpen: map[string]error{}, failCreate: map[string]error{}, failAfter: map[string]int{}}
}

func (s *memStore) Open(id string) (CallFiles, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failOpen[id]; err != nil {
		return nil, err
	}
	f := s.calls[id]
	if f == nil {
		f = &memFiles{s: s, id: id, docs: map[string][]byte{}, sinks: map[string]*memSink{}}
		s.calls[id] = f
	}
	return f, nil
}

func (s *memStore) ReadJSON(id, name string, v any) error {
	s.mu.Lock()
	f := s.calls[id]
	s.mu.Unlock()
	if f == nil {
		return fmt.Errorf("read %s: %w", name, errNotStored)
	}
	f.mu.Lock()
	b, ok := f.docs[name]
	f.mu.Unlock()
	if !ok {
		return fmt.Errorf("read %s: %w", name, errNotStored)
	}
	return json.Unmarshal(b, v)
}

func (s *memStore) OpenTrack(string, string) (io.ReadSeekCloser, error) { return nil, errNotStored }

// Journals are kept for the tests to read (memFiles.journal) but not read
// back: a memStore has no crash to recover from.
func (s *memStore) ReadJSONLines(string, string, func([]byte) error) error { return nil }

func (s *memStore) Scan(func([]byte, func() (map[string]int64, error))) error { return nil }

// sink is the recording of a track, nil when there is none.
func (s *memStore) sink(id, track string) *memSink {
	s.mu.Lock()
	f := s.calls[id]
	s.mu.Unlock()
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sinks[track]
}

var errNotStored = fmt.Errorf("in memory: %w", fs.ErrNotExist)

type memFiles struct {
	s     *memStore
	id    string
	mu    sync.Mutex
	docs  map[string][]byte
	sinks map[string]*memSink
	lines map[string][]string // journal → its lines, as JSON
}

func (f *memFiles) CreateTrack(track string, _ int) (AudioSink, error) {
	key := f.id + "/" + track
	f.s.mu.Lock()
	err := f.s.failCreate[key]
	limit, hasLimit := f.s.failAfter[key]
	f.s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	k := &memSink{limit: -1}
	if hasLimit {
		k.limit = limit
	}
	f.mu.Lock()
	f.sinks[track] = k
	f.mu.Unlock()
	return k, nil
}

func (f *memFiles) AppendTrack(track string, rate int) (AudioSink, error) {
	return f.CreateTrack(track, rate)
}

func (f *memFiles) WriteJSON(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.docs[name] = b
	f.mu.Unlock()
	return nil
}

func (f *memFiles) WriteJSONNoWait(name string, v any) error { return f.WriteJSON(name, v) }

func (f *memFiles) AppendJSON(name string, vs ...any) error {
	f.s.mu.Lock()
	fail := f.s.failAppend > 0
	if fail {
		f.s.failAppend--
	}
	f.s.mu.Unlock()
	if fail {
		return fmt.Errorf("append %s: %w", name, syscall.ENOSPC)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lines == nil {
		f.lines = map[string][]string{}
	}
	for _, v := range vs {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		f.lines[name] = append(f.lines[name], string(b))
	}
	return nil
}

func (f *memFiles) journal(name string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.lines[name])
}

func (f *memFiles) Remove(string) error { return nil }

// memSink is a recording in memory; limit >= 0 makes writes past that many
// bytes fail with ENOSPC after keeping what fits.
type memSink struct {
	mu     sync.Mutex
	data   []byte
	limit  int
	closed bool
}

var errDiskFull = fmt.Errorf("write wav: %w", syscall.ENOSPC)

func (k *memSink) Write(pcm []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.limit >= 0 && len(k.data)+len(pcm) > k.limit {
		n := k.limit - len(k.data)
		k.data = append(k.data, pcm[:n]...)
		return n, errDiskFull
	}
	k.data = append(k.data, pcm...)
	return len(pcm), nil
}

func (k *memSink) WriteSilence(samples int64) error {
	_, err := k.Write(make([]byte, 2*samples))
	return err
}

func (k *memSink) Samples() int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return int64(len(k.data) / 2)
}

func (k *memSink) Flush() error { return nil }

// Resume: a memSink that failed stays failed.
func (k *memSink) Resume() (int64, error) { return 0, errors.ErrUnsupported }

func (k *memSink) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.closed = true
	return nil
}

func (k *memSink) bytes() []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return bytes.Clone(k.data)
}

// eventLog is a Publisher that keeps every event.
type eventLog struct {
	mu  sync.Mutex
	evs []Event
}

func (l *eventLog) Publish(ev Event) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
}

func (l *eventLog) of(callID, typ string) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Event
	for _, ev := range l.evs {
		if ev.CallID == callID && (typ == "" || ev.Type == typ) {
			out = append(out, ev)
		}
	}
	return out
}

// countingMetrics counts what the fault tests look at.
// sttCount is how many speech-to-text events of one kind m counted,
// whatever their code.
func sttCount(t *testing.T, m *Metrics, event string) int {
	t.Helper()
	ch := make(chan prometheus.Metric, 64)
	m.sttEvents.Collect(ch)
	close(ch)
	n := 0.0
	for pm := range ch {
		var d dto.Metric
		require.NoError(t, pm.Write(&d))
		for _, l := range d.GetLabel() {
			if l.GetName() == "event" && l.GetValue() == event {
				n += d.GetCounter().GetValue()
			}
		}
	}
	return int(n)
}

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// utterances is speech-like audio at 8 kHz: a 300 Hz tone during each
// [from, to) second interval, silence elsewhere.
func utterances(spans ...[2]float64) func(i int) int16 {
	return func(i int) int16 {
		t := float64(i) / 8000
		for _, s := range spans {
			if t >= s[0] && t < s[1] {
				return int16(8000 * math.Sin(2*math.Pi*300*t))
			}
		}
		return 0
	}
}

// ulawFrame is 20 ms frame k of gen, μ-law encoded.
func ulawFrame(gen func(int) int16, k int) []byte {
	pcm := make([]byte, 320)
	for i := range 160 {
		v := gen(160*k + i)
		pcm[2*i], pcm[2*i+1] = byte(v), byte(uint16(v)>>8)
	}
	out := make([]byte, 160)
	codec.EncodeMulaw(out, pcm)
	return out
}

// decoded is what the recording of frames [0, n) of gen must hold.
func decoded(gen func(int) int16, n int) []byte {
	var out []byte
	pcm := make([]byte, 320)
	for k := range n {
		codec.DecodeMulaw(pcm, ulawFrame(gen, k))
		out = append(out, pcm...)
	}
	return out
}

// play sends frames [from, to) of gen as Twilio-like media with chunk
// numbers and timestamps.
func play(t *testing.T, s *Stream, gen func(int) int16, from, to int) {
	t.Helper()
	for k := from; k < to; k++ {
		ev := provider.Event{Kind: provider.KindMedia, Track: "inbound", Payload: ulawFrame(gen, k),
			Chunk: int64(k + 1), HasChunk: true, TimestampMs: int64(20 * k), HasTimestamp: true}
		require.NoError(t, s.Media(&ev))
	}
}

// queued is how much audio waits for the recognizer on the stream's track.
func queued(s *Stream) int {
	return s.tracks[0].stt.Queued()
}

func startCall(t *testing.T, reg *Registry, id string) *Stream {
	t.Helper()
	s, err := reg.StartStream(provider.Twilio, &provider.Start{
		CallID: id, StreamID: "MZ-" + id, Tracks: []string{"inbound"},
		Format: provider.Format{Encoding: provider.PCMU, SampleRate: 8000, Channels: 1},
	})
	require.NoError(t, err)
	return s
}

func waitCallEnded(t *testing.T, reg *Registry, id string) CallRecord {
	t.Helper()
	var rec CallRecord
	require.Eventually(t, func() bool {
		var ok bool
		rec, ok = reg.Record(id)
		// The record says ended while the call writes its last documents;
		// it leaves the live calls once they are written.
		reg.mu.Lock()
		_, live := reg.active[id]
		reg.mu.Unlock()
		return ok && rec.Status == StatusEnded && !live
	}, 20*time.Second, 5*time.Millisecond, "call %s did not end", id)
	return rec
}

func finalStarts(evs []Event) []int64 {
	var out []int64
	for _, ev := range evs {
		out = append(out, ev.Body.(Segment).StartMs)
	}
	return out
}

// TestRecordingFailureKeepsTranscribing: when a recording cannot be written
// (a full disk) or opened, the call is still transcribed and captioned, the
// error is in its record and the metrics (once, not per frame), and another
// call is unaffected.
// A journal append that fails is not lost: its lines go again with the
// next change, and the journal ends up with every final and event once.
func TestFailedJournalAppendIsRetried(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	gen := utterances([2]float64{0.3, 1.3}, [2]float64{2.5, 3.5}, [2]float64{4.0, 4.7})
	store := newMemStore()
	store.failAppend = 1
	reg := NewRegistry(Config{
		Store: store, Recognizer: mock.New(mock.Config{}), Publisher: &eventLog{}, Metrics: NewMetrics(nil),
		Log: zerolog.Nop(), STTQueue: 5 * time.Minute,
	})
	s := startCall(t, reg, "CA-journal")
	// The first utterance's final is the first journal line: its append
	// fails. The rest of the call appends again.
	play(t, s, gen, 0, 120) // 2.4 s: the first final comes at 1.8 s
	require.Eventually(t, func() bool {
		store.mu.Lock()
		defer store.mu.Unlock()
		return store.failAppend == 0
	}, 5*time.Second, time.Millisecond, "an append failed")
	for k := 120; k < 250; k += 10 {
		play(t, s, gen, k, k+10)
	}
	s.End(ReasonStop, nil)
	waitCallEnded(t, reg, "CA-journal")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reg.Shutdown(ctx)

	store.mu.Lock()
	files := store.calls["CA-journal"]
	store.mu.Unlock()
	tr, ok, err := reg.Transcript("CA-journal")
	require.NoError(t, err)
	require.True(t, ok)
	require.Len(t, tr.Segments, 3)
	var segs []Segment
	evs := []TranscriptEvent{}
	for _, line := range files.journal(journalName) {
		var l journalLine
		require.NoError(t, json.Unmarshal([]byte(line), &l))
		if l.Segment != nil {
			segs = append(segs, *l.Segment)
		} else {
			evs = append(evs, *l.Event)
		}
	}
	require.Equal(t, tr.Segments, segs)
	require.Equal(t, tr.Events, evs)
}

func TestRecordingFailureKeepsTranscribing(t *testing.T) {
	// Three utterances in 5 s; the first ends before the disk fills at 1.5 s.
	gen := utterances([2]float64{0.3, 1.3}, [2]float64{2.0, 3.0}, [2]float64{3.7, 4.7})
	const frames = 250
	wantStarts := []int64{300, 2000, 3700}
	tests := []struct {
		name      string
		setup     func(s *memStore)
		wantBytes int // what the failing call's recording holds; -1: no recording
		wantErr   string
	}{
		{
			name:      "disk full mid-call",
			setup:     func(s *memStore) { s.failAfter["CA-victim/inbound"] = 24000 },
			wantBytes: 24000, wantErr: "no space left on device",
		},
		{
			name:      "recording cannot be created",
			setup:     func(s *memStore) { s.failCreate["CA-victim/inbound"] = fmt.Errorf("create track: %w", syscall.ENOSPC) },
			wantBytes: -1, wantErr: "no space left on device",
		},
		{
			name:      "call folder cannot be opened",
			setup:     func(s *memStore) { s.failOpen["CA-victim"] = fmt.Errorf("open call: %w", syscall.EACCES) },
			wantBytes: -1, wantErr: "permission denied",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			store := newMemStore()
			tt.setup(store)
			pub := &eventLog{}
			metrics := NewMetrics(nil)
			var logs syncBuffer
			reg := NewRegistry(Config{
				Store: store, Recognizer: mock.New(mock.Config{}), Publisher: pub, Metrics: metrics,
				Log: zerolog.New(&logs), STTQueue: 5 * time.Minute,
			})
			victim, bystander := startCall(t, reg, "CA-victim"), startCall(t, reg, "CA-bystander")
			for k := 0; k < frames; k += 10 {
				play(t, victim, gen, k, k+10)
				play(t, bystander, gen, k, k+10)
			}
			victim.End(ReasonStop, nil)
			bystander.End(ReasonStop, nil)
			rec := waitCallEnded(t, reg, "CA-victim")
			other := waitCallEnded(t, reg, "CA-bystander")

			// Transcription and captions went on past the failure.
			require.Equal(t, wantStarts, finalStarts(pub.of("CA-victim", TypeTranscriptFinal)))
			if _, noFolder := store.failOpen["CA-victim"]; !noFolder {
				tr, ok, err := reg.Transcript("CA-victim")
				require.NoError(t, err)
				require.True(t, ok)
				require.Len(t, tr.Segments, 3)
			}

			// The error is in the record, the metrics and the log, once.
			require.Equal(t, ReasonStop, rec.Reason)
			require.Len(t, rec.Tracks, 1)
			require.Contains(t, rec.Tracks[0].Error+rec.Error, tt.wantErr)
			require.Positive(t, testutil.ToFloat64(metrics.recordErrors))
			require.LessOrEqual(t, testutil.ToFloat64(metrics.recordErrors), 2.0, "counted once per failure, not per frame")
			require.Contains(t, logs.String(), tt.wantErr)
			require.LessOrEqual(t, strings.Count(logs.String(), `"level":"error"`), 2, "logged once, not per frame:\n%s", logs.String())
			require.Contains(t, logs.String(), `"call_id":"CA-victim"`)

			// The record says what the recording holds.
			sink := store.sink("CA-victim", "inbound")
			if tt.wantBytes < 0 {
				require.Nil(t, sink)
				require.Zero(t, rec.Tracks[0].Samples)
			} else {
				require.Equal(t, decoded(gen, frames)[:tt.wantBytes], sink.bytes())
				require.Equal(t, int64(tt.wantBytes/2), rec.Tracks[0].Samples)
			}

			// The other call recorded and transcribed everything.
			require.Empty(t, other.Error)
			require.Empty(t, other.Tracks[0].Error)
			require.Equal(t, int64(frames*160), other.Tracks[0].Samples)
			require.Equal(t, decoded(gen, frames), store.sink("CA-bystander", "inbound").bytes())
			require.Equal(t, wantStarts, finalStarts(pub.of("CA-bystander", TypeTranscriptFinal)))

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			reg.Shutdown(ctx)
		})
	}
}

// flakyEngine is a recognizer that can be taken down: while down, Open
// fails; fail makes the streams it opened stop for good, as an engine does
// when it gives up. Only the victim call's streams are affected.
type flakyEngine struct {
	inner  stt.Recognizer
	victim string
	up     atomic.Bool
	// inline makes the victim's streams take audio inline, as the inner
	// recognizer's do, through stt.InlineWriter.
	inline bool

	mu      sync.Mutex
	streams []*flakyStream
	opens   int
}

var errEngineDown = errors.New("rpc error: code = Unavailable desc = engine down")

func (e *flakyEngine) Open(ctx context.Context, sc stt.StreamConfig) (stt.Stream, error) {
	if sc.CallID != e.victim {
		return e.inner.Open(ctx, sc)
	}
	e.mu.Lock()
	e.opens++
	e.mu.Unlock()
	if !e.up.Load() {
		return nil, errEngineDown
	}
	ictx, cancel := context.WithCancel(ctx)
	in, err := e.inner.Open(ictx, sc)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &flakyStream{inner: in, cancel: cancel, track: sc.Track, out: make(chan stt.Result), failed: make(chan struct{})}
	go s.forward()
	e.mu.Lock()
	e.streams = append(e.streams, s)
	e.mu.Unlock()
	if e.inline {
		return flakyInlineStream{s}, nil
	}
	return s, nil
}

// fail makes every stream opened so far stop for good.
func (e *flakyEngine) fail() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.streams {
		s.once.Do(func() { close(s.failed) })
	}
}

type flakyStream struct {
	inner  stt.Stream
	cancel context.CancelFunc
	track  string
	out    chan stt.Result
	failed chan struct{}
	once   sync.Once
}

func (s *flakyStream) Write(pos int64, pcm []byte) error {
	select {
	case <-s.failed:
		return fmt.Errorf("flaky: %w", stt.ErrStopped)
	default:
		return s.inner.Write(pos, pcm)
	}
}

func (s *flakyStream) Results() <-chan stt.Result { return s.out }

// flakyInlineStream is a flakyStream that takes audio inline.
type flakyInlineStream struct{ *flakyStream }

func (s flakyInlineStream) TryWrite(pos int64, pcm []byte) (bool, error) {
	select {
	case <-s.failed:
		return true, fmt.Errorf("flaky: %w", stt.ErrStopped)
	default:
		return s.inner.(stt.InlineWriter).TryWrite(pos, pcm)
	}
}

func (s *flakyStream) Close() error { return s.inner.Close() }

func (s *flakyStream) forward() {
	defer close(s.out)
	defer s.cancel()
	in := s.inner.Results()
	for {
		select {
		case r, ok := <-in:
			if !ok {
				return
			}
			s.out <- r
		case <-s.failed:
			s.cancel()
			for range in { //nolint:revive // drain the abandoned stream
			}
			s.out <- stt.Result{Kind: stt.Status, Track: s.track, Status: &stt.StatusInfo{Event: stt.EventFailed, Code: "Unavailable", Message: "engine went away"}}
			return
		}
	}
}

// TestSTTOutageRecovers: when speech-to-text fails for good or cannot be
// opened, the recording is intact, the track is transcribed again by
// itself once the engine is back, the audio of the outage is an stt gap
// event, segment ids never repeat, and another call is unaffected.
func TestSTTOutageRecovers(t *testing.T) {
	defer func(lo, hi time.Duration) { sttReopenMin, sttReopenMax = lo, hi }(sttReopenMin, sttReopenMax)
	sttReopenMin, sttReopenMax = 10*time.Millisecond, 80*time.Millisecond

	tests := []outageCase{
		{name: "engine fails mid-call", upAtStart: true, wantStarts: []int64{300, 5300}, lost: [2]int64{2300, 3300}},
		{name: "engine down when the call starts", wantStarts: []int64{5300}, lost: [2]int64{300, 3300}},
	}
	for _, tt := range tests {
		for _, inline := range []bool{false, true} {
			name := tt.name
			if inline {
				name += ", streams written inline"
			}
			t.Run(name, func(t *testing.T) { testSTTOutage(t, tt, inline) })
		}
	}
}

type outageCase struct {
	name       string
	upAtStart  bool
	wantStarts []int64 // finals of the victim
	lost       [2]int64
}

func testSTTOutage(t *testing.T, tt outageCase, inline bool) {
	// A: 0.3–1.3 s, B: 2.3–3.3 s (during the outage), C: 5.3–6.3 s.
	gen := utterances([2]float64{0.3, 1.3}, [2]float64{2.3, 3.3}, [2]float64{5.3, 6.3})
	const outageFrom, outageTo, frames = 100, 240, 350 // 2.0 s, 4.8 s, 7.0 s
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	store := newMemStore()
	pub := &eventLog{}
	metrics := NewMetrics(nil)
	engine := &flakyEngine{inner: mock.New(mock.Config{}), victim: "CA-victim", inline: inline}
	engine.up.Store(tt.upAtStart)
	reg := NewRegistry(Config{
		Store: store, Recognizer: engine, Publisher: pub, Metrics: metrics,
		Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), STTQueue: time.Second,
	})
	victim, bystander := startCall(t, reg, "CA-victim"), startCall(t, reg, "CA-bystander")
	// Play no faster than the recognizer takes the audio (the test
	// plays much faster than real time; a provider never does),
	// except into the victim's queue during the outage.
	outage := false
	both := func(from, to int) {
		for k := from; k < to; k += 5 {
			play(t, victim, gen, k, min(k+5, to))
			play(t, bystander, gen, k, min(k+5, to))
			require.Eventually(t, func() bool { return (outage || queued(victim) == 0) && queued(bystander) == 0 },
				10*time.Second, 100*time.Microsecond)
		}
	}

	outage = !tt.upAtStart
	both(0, outageFrom)
	if tt.upAtStart {
		require.Eventually(t, func() bool { return len(pub.of("CA-victim", TypeTranscriptFinal)) == 1 },
			10*time.Second, time.Millisecond, "the first utterance is transcribed before the outage")
		engine.up.Store(false)
		engine.fail()
	}
	outage = true
	both(outageFrom, outageTo)
	// The test plays far faster than real time, and the bystander's
	// recognizer keeps up at once: the engine stays down until the victim
	// has tried to open it again during the outage.
	require.Eventually(t, func() bool {
		engine.mu.Lock()
		defer engine.mu.Unlock()
		return engine.opens >= 2
	}, 10*time.Second, time.Millisecond, "a reopen is tried during the outage")
	engine.up.Store(true)
	require.Eventually(t, func() bool { return len(pub.of("CA-victim", TypeSTTPrefix+stt.EventResumed)) > 0 },
		10*time.Second, time.Millisecond, "transcription resumes by itself")
	outage = false
	both(outageTo, frames)
	victim.End(ReasonStop, nil)
	bystander.End(ReasonStop, nil)
	rec := waitCallEnded(t, reg, "CA-victim")
	other := waitCallEnded(t, reg, "CA-bystander")

	// The recording is intact.
	require.Equal(t, decoded(gen, frames), store.sink("CA-victim", "inbound").bytes())
	require.Equal(t, int64(frames*160), rec.Tracks[0].Samples)
	require.Empty(t, rec.Tracks[0].Error)

	// Transcription came back; segment ids are never reused.
	finals := pub.of("CA-victim", TypeTranscriptFinal)
	require.Equal(t, tt.wantStarts, finalStarts(finals))
	ids := map[string]bool{}
	for _, ev := range finals {
		id := ev.Body.(Segment).SegmentID
		require.False(t, ids[id], "segment id %s repeated", id)
		ids[id] = true
	}

	// The outage is in the transcript: a failure notice, the
	// reopening, and stt gaps covering the lost utterance.
	tr, _, err := reg.Transcript("CA-victim")
	require.NoError(t, err)
	var failed, resumed int
	var covered int64
	for _, ev := range tr.Events {
		switch {
		case ev.Type == TypeSTTPrefix+stt.EventFailed:
			failed++
		case ev.Type == TypeSTTPrefix+stt.EventResumed:
			resumed++
		case ev.Type == TypeGap && ev.Kind == "stt":
			lo, hi := max(ev.AtMs, tt.lost[0]), min(ev.AtMs+ev.DurationMs, tt.lost[1])
			covered += max(0, hi-lo)
		}
	}
	require.Positive(t, failed)
	require.Equal(t, 1, resumed)
	require.InDelta(t, tt.lost[1]-tt.lost[0], covered, 20, "stt gaps cover the untranscribed speech:\n%+v", tr.Events)
	require.Equal(t, 1, sttCount(t, metrics, stt.EventResumed))
	engine.mu.Lock()
	require.Greater(t, engine.opens, 2, "reopened after failures")
	engine.mu.Unlock()

	// The other call never noticed.
	require.Equal(t, decoded(gen, frames), store.sink("CA-bystander", "inbound").bytes())
	require.Equal(t, []int64{300, 2300, 5300}, finalStarts(pub.of("CA-bystander", TypeTranscriptFinal)))
	require.Empty(t, pub.of("CA-bystander", TypeSTTPrefix+stt.EventFailed))
	require.Empty(t, other.Error)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reg.Shutdown(ctx)
}
