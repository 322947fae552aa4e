package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/stt"
)

// resultsBuffer absorbs a burst of results (a drained stream's finals plus
// the partials of the next) while the bridge fans them out. Partials are
// dropped when it is full (a later one supersedes them); finals and status
// results wait for room.
const resultsBuffer = 64

// recvBuffer holds responses between an engine stream's receiver and the
// run loop; the run loop reads promptly, so a few suffice.
const recvBuffer = 8

// chunk is audio at a call-clock sample position. Its pcm is never
// modified once it leaves Write, so slices of it may be shared.
type chunk struct {
	pos   int64
	pcm   []byte
	quiet bool // RMS at or below SilenceLevel; set when the run loop takes it
}

func (c chunk) samples() int64 { return int64(len(c.pcm) / 2) }
func (c chunk) end() int64     { return c.pos + c.samples() }

// span is a stretch of call-clock samples [from, to).
type span struct{ from, to int64 }

// Stream transcribes one track with a sequence of engine streams. Write
// hands audio to the run goroutine through a bounded queue; the run
// goroutine owns everything else.
type Stream struct {
	eng   Engine
	cfg   Policy
	track string
	rate  int64
	log   zerolog.Logger

	results chan stt.Result
	wake    chan struct{} // cap 1: audio, Close or dropped audio to look at

	chunkSamples int64 // audio per Send: ChunkDuration within the engine's MaxChunkBytes

	mu        sync.Mutex
	q         []chunk // audio handed over by Write, not yet taken by run
	qSamples  int64
	head      int64 // position after the newest accepted sample; -1 before any
	drops     []span
	lastWrite time.Time
	closed    bool
	stopped   bool

	// Owned by the run goroutine.
	att        *attempt
	receivers  sync.WaitGroup
	pend       []chunk // audio to send on the next or current engine stream
	sent       []chunk // audio sent on the current engine stream since lastFinal
	bufSamples int64   // samples in pend and sent together
	lastFinal  int64   // call-clock position covered by the newest final
	sentFrom   int64   // sent holds all audio sent from here on
	nextSeg    int
	failures   int  // consecutive failed engine streams without transcript text
	resumed    bool // a failure happened; announce the next working stream
	waitSpeech bool // hold: no engine stream until a loud chunk arrives
	backoff    *time.Timer
	gap        *span
	gapReason  string
	zeros      []byte
}

// attempt is one engine stream (one StreamingRecognize call).
type attempt struct {
	cancel     context.CancelFunc
	gone       chan struct{} // closed when the run loop stops reading events
	cl         Conn
	events     chan recvEvent
	base       int64 // call-clock position of its first audio sample
	next       int64 // call-clock position of the next sample to send
	silentRun  int64 // quiet samples at the send head
	halfClosed bool
	broken     bool // a send failed; waiting for the receiver's status
	stalled    atomic.Bool
	responded  bool
	afterRetry bool
	drain      *time.Timer
}

type recvEvent struct {
	resp Response
	err  error // with done: nil for a clean end
	done bool
}

var (
	_ stt.Stream       = (*Stream)(nil)
	_ stt.InlineWriter = (*Stream)(nil)
)

// NewStream prepares the transcription of one track at rate Hz with eng's
// streams under policy p; the caller runs it with Run.
func NewStream(eng Engine, p Policy, track string, rate int, log zerolog.Logger) *Stream {
	lim := eng.Limits()
	s := &Stream{eng: eng, cfg: p.within(lim), track: track, rate: int64(rate), log: log,
		results: make(chan stt.Result, resultsBuffer), wake: make(chan struct{}, 1),
		head: -1, nextSeg: 1, lastFinal: -1, sentFrom: math.MinInt64}
	s.chunkSamples = s.samples(s.cfg.ChunkDuration)
	if lim.MaxChunkBytes > 0 {
		s.chunkSamples = min(s.chunkSamples, int64(lim.MaxChunkBytes/2))
	}
	s.zeros = make([]byte, s.chunkSamples*2)
	return s
}

// Write queues audio for the engine. It never blocks on the engine: when
// the queue is full the audio is dropped and reported as a gap.
func (s *Stream) Write(pos int64, pcm []byte) error {
	if len(pcm)%2 != 0 {
		return fmt.Errorf("stt stream write: odd PCM16 length %d", len(pcm))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return fmt.Errorf("stt stream write: %w", stt.ErrStopped)
	}
	if s.closed {
		return errors.New("stt stream write: stream closed")
	}
	s.lastWrite = time.Now()
	n := int64(len(pcm) / 2)
	if s.head > pos { // overlap with audio already accepted: keep the new part
		skip := s.head - pos
		if skip >= n {
			return nil
		}
		pcm, pos, n = pcm[skip*2:], s.head, n-skip
	}
	if n == 0 {
		return nil
	}
	if s.qSamples+n > s.samples(s.cfg.QueueDuration) {
		if k := len(s.drops); k > 0 && s.drops[k-1].to == pos {
			s.drops[k-1].to = pos + n
		} else {
			s.drops = append(s.drops, span{pos, pos + n})
		}
		s.head = pos + n
		notify(s.wake)
		return nil
	}
	ready := false
	for len(pcm) > 0 {
		k := len(s.q)
		if k > 0 && s.q[k-1].end() == pos && s.q[k-1].samples() < s.chunkSamples {
			last := &s.q[k-1]
			take := min(int64(len(pcm)/2), s.chunkSamples-last.samples())
			last.pcm = append(last.pcm, pcm[:take*2]...)
			pcm, pos = pcm[take*2:], pos+take
			ready = ready || last.samples() == s.chunkSamples
			continue
		}
		if k > 0 {
			ready = true // the previous chunk is complete: a jump follows it
		}
		take := min(int64(len(pcm)/2), s.chunkSamples)
		buf := make([]byte, take*2, s.chunkSamples*2)
		copy(buf, pcm[:take*2])
		s.q = append(s.q, chunk{pos: pos, pcm: buf})
		pcm, pos = pcm[take*2:], pos+take
		ready = ready || take == s.chunkSamples
	}
	s.qSamples += n
	s.head = pos
	if ready {
		notify(s.wake)
	}
	return nil
}

// TryWrite is Write, which never waits for the engine: the audio is
// copied into the send queue under a lock and the run goroutine is woken
// once per full chunk. See stt.InlineWriter.
func (s *Stream) TryWrite(pos int64, pcm []byte) (bool, error) { return true, s.Write(pos, pcm) }

// Results delivers the track's results; see stt.Stream.
func (s *Stream) Results() <-chan stt.Result { return s.results }

// Close says no more audio will come; see stt.Stream.
func (s *Stream) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	notify(s.wake)
	return nil
}

// take moves queued audio to pend: full chunks only, unless flush. partial
// is whether a chunk still being filled stays queued.
func (s *Stream) take(ctx context.Context, flush bool) (closed, partial bool) {
	s.mu.Lock()
	closed = s.closed
	n := len(s.q)
	if n > 0 && !flush && !closed && s.q[n-1].samples() < s.chunkSamples {
		n-- // keep filling the newest chunk up to a full request
	}
	taken := s.q[:n:n]
	s.q = append([]chunk(nil), s.q[n:]...)
	partial = len(s.q) > 0
	for _, c := range taken {
		s.qSamples -= c.samples()
	}
	drops := s.drops
	s.drops = nil
	s.mu.Unlock()

	for _, d := range drops {
		s.addGap(ctx, d, "send queue full")
	}
	for _, c := range taken {
		c.quiet = rms(c.pcm) <= float64(s.cfg.SilenceLevel)
		s.pend = append(s.pend, c)
		s.bufSamples += c.samples()
	}
	s.bound(ctx)
	return closed, partial
}

// bound keeps pend and sent within ReplayLimit: replay coverage goes
// first, then the oldest unsent audio, which becomes a gap.
func (s *Stream) bound(ctx context.Context) {
	for s.bufSamples > s.samples(s.cfg.ReplayLimit) {
		if len(s.sent) > 0 {
			s.bufSamples -= s.sent[0].samples()
			s.sentFrom = s.sent[0].end()
			s.sent = s.sent[1:]
			continue
		}
		if len(s.pend) == 0 {
			s.bufSamples = 0
			return
		}
		c := s.pend[0]
		s.dropPend(1)
		s.addGap(ctx, span{c.pos, c.end()}, "replay buffer full")
	}
}

func (s *Stream) addGap(ctx context.Context, g span, reason string) {
	if g.to <= g.from {
		return
	}
	if s.gap != nil && s.gap.to >= g.from && s.gapReason == reason {
		s.gap.to = max(s.gap.to, g.to)
		return
	}
	s.flushGap(ctx)
	s.gap, s.gapReason = &g, reason
}

func (s *Stream) flushGap(ctx context.Context) {
	if s.gap == nil {
		return
	}
	g := *s.gap
	s.gap = nil
	s.log.Warn().Int64("from_ms", s.ms(g.from)).Int64("to_ms", s.ms(g.to)).Str("reason", s.gapReason).Msg("audio not transcribed")
	s.status(ctx, g.from, g.to, stt.StatusInfo{Event: stt.EventGap, Message: s.gapReason})
}

// status emits a status result about call-clock samples [from, to).
func (s *Stream) status(ctx context.Context, from, to int64, info stt.StatusInfo) {
	from = max(from, 0)
	s.emit(ctx, stt.Result{Kind: stt.Status, Track: s.track, StartMs: s.ms(from), EndMs: s.ms(max(to, from)), Status: &info})
}

func (s *Stream) ms(pos int64) int64 { return pos * 1000 / s.rate }

// emit delivers a final or status result, waiting for room.
func (s *Stream) emit(ctx context.Context, r stt.Result) {
	select {
	case s.results <- r:
	case <-ctx.Done():
	}
}

// Run is the stream's goroutine: it owns the engine streams and all state
// below the handoff queue. It returns after closing Results.
func (s *Stream) Run(ctx context.Context) {
	defer func() {
		s.mu.Lock()
		s.stopped = true
		s.q, s.qSamples = nil, 0
		s.mu.Unlock()
		if s.att != nil {
			s.abandon(s.att)
		}
		s.receivers.Wait()
		if s.backoff != nil {
			s.backoff.Stop()
		}
		close(s.results)
	}()
	idle := time.NewTimer(s.cfg.IdleClose)
	defer idle.Stop()
	// pause sends a chunk still being filled once no audio has come for
	// ChunkDuration, so that audio is not held back while the track's
	// frames stop (the end of the call is flushed by Close). It runs only
	// while such a chunk waits: audio that keeps coming fills chunks and
	// wakes the loop once per chunk.
	pause := time.NewTimer(s.cfg.ChunkDuration)
	pause.Stop()
	defer pause.Stop()
	pausing := false
	for {
		var events <-chan recvEvent
		var drain, retry, paused <-chan time.Time
		if pausing {
			paused = pause.C
		}
		if s.att != nil {
			events = s.att.events
			if s.att.drain != nil {
				drain = s.att.drain.C
			}
		}
		if s.backoff != nil {
			retry = s.backoff.C
		}
		flush, partial := false, false
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case ev := <-events:
			if !s.handle(ctx, ev) {
				return
			}
		case <-drain:
			if !s.fail(ctx, Failure{Code: CodeDeadlineExceeded, Message: "no end of stream within drain-timeout", Retry: true}) {
				return
			}
		case <-retry:
			s.backoff = nil
		case <-paused:
			s.mu.Lock()
			left := s.cfg.ChunkDuration - time.Since(s.lastWrite)
			s.mu.Unlock()
			if left > 0 { // audio came meanwhile: wait from the last of it
				pause.Reset(left)
			} else {
				pausing, partial = false, true
			}
		case <-idle.C:
			s.mu.Lock()
			left := s.cfg.IdleClose - time.Since(s.lastWrite)
			s.mu.Unlock()
			flush = left <= 0
			if flush {
				left = s.cfg.IdleClose
			}
			idle.Reset(left)
		}
		closed, waiting := s.take(ctx, flush || partial)
		if waiting && !pausing {
			pause.Reset(s.cfg.ChunkDuration)
			pausing = true
		}
		if flush && s.att != nil && !s.att.halfClosed {
			s.pump(ctx)
			s.halfClose("no audio for idle-close")
			s.waitSpeech = s.cfg.Hold == HoldReopen
		}
		if !s.pump(ctx) {
			return
		}
		if closed && s.finished(ctx) {
			return
		}
	}
}

// finished reports whether a closed stream has nothing left to do.
func (s *Stream) finished(ctx context.Context) bool {
	s.mu.Lock()
	queued := len(s.q)
	s.mu.Unlock()
	if queued > 0 {
		return false
	}
	if s.att != nil {
		if !s.att.halfClosed && !s.att.broken && len(s.pend) == 0 {
			s.halfClose("end of audio")
		}
		return false
	}
	if s.backoff != nil {
		return false
	}
	if len(s.pend) > 0 {
		if !s.waitSpeech || !allQuiet(s.pend) {
			return false
		}
		s.pend, s.bufSamples = nil, 0 // only silence left while on hold
	}
	s.flushGap(ctx)
	return true
}

// pump opens engine streams and sends pending audio as far as it can. It
// returns false when the stream has stopped for good.
func (s *Stream) pump(ctx context.Context) bool {
	for len(s.pend) > 0 {
		if s.att == nil {
			if s.backoff != nil {
				return true
			}
			if s.waitSpeech {
				if allQuiet(s.pend) {
					s.trimPreRoll()
					return true
				}
				s.trimToSpeech()
				s.waitSpeech = false
			}
			if !s.open(ctx) {
				return false
			}
			continue
		}
		a := s.att
		if a.halfClosed || a.broken {
			return true
		}
		c := s.pend[0]
		if jump := c.pos - a.next; jump > 0 {
			if jump > s.samples(s.cfg.GapFill) {
				s.halfClose("audio resumes after a gap longer than gap-fill")
				return true
			}
			if !s.sendZeros(a, jump) {
				return true
			}
		}
		age := a.next - a.base
		switch {
		case age >= s.samples(s.cfg.RotateAfter) && a.silentRun >= s.samples(s.cfg.RotatePause),
			age+c.samples() > s.samples(s.cfg.StreamLimit):
			s.rotate(ctx)
			return true
		case s.cfg.Hold == HoldReopen && a.silentRun >= s.samples(s.cfg.SilenceClose):
			s.halfClose("silence")
			s.waitSpeech = true
			return true
		}
		if !s.send(a, c.pcm) {
			return true
		}
		s.pend = s.pend[1:]
		s.sent = append(s.sent, c)
		a.next = c.end()
		if c.quiet {
			a.silentRun += c.samples()
		} else {
			a.silentRun = 0
		}
	}
	if s.att != nil && !s.att.halfClosed && !s.att.broken {
		s.flushGap(ctx)
	}
	return true
}

func (s *Stream) samples(d time.Duration) int64 { return int64(d) * s.rate / int64(time.Second) }

// trimPreRoll keeps only the last PreRoll of quiet audio while waiting for
// speech; the rest is silence nobody needs transcribed.
func (s *Stream) trimPreRoll() {
	keep := s.samples(s.cfg.PreRoll)
	var total int64
	i := len(s.pend)
	for i > 0 && total < keep {
		i--
		total += s.pend[i].samples()
	}
	s.dropPend(i)
}

// trimToSpeech drops quiet audio more than PreRoll before the first loud
// chunk.
func (s *Stream) trimToSpeech() {
	loud := 0
	for loud < len(s.pend) && s.pend[loud].quiet {
		loud++
	}
	keep := s.samples(s.cfg.PreRoll)
	i := loud
	for i > 0 && s.pend[loud].pos-s.pend[i-1].pos <= keep {
		i--
	}
	s.dropPend(i)
}

// dropPend forgets the first i chunks of pending audio.
func (s *Stream) dropPend(i int) {
	s.forget(s.pend[:i])
	s.pend = s.pend[i:]
}

// forget takes cs, chunks leaving pend or sent, out of bufSamples.
func (s *Stream) forget(cs []chunk) {
	for _, c := range cs {
		s.bufSamples -= c.samples()
	}
}

func allQuiet(cs []chunk) bool {
	for _, c := range cs {
		if !c.quiet {
			return false
		}
	}
	return true
}

// open starts an engine stream whose audio begins at pend[0].
func (s *Stream) open(ctx context.Context) bool {
	base := s.pend[0].pos
	actx, cancel := context.WithCancel(ctx)
	cl, err := s.eng.Open(actx)
	if err != nil {
		cancel()
		return s.fail(ctx, s.eng.Failure(err))
	}
	s.cfg.Metrics.StreamOpened()
	a := &attempt{cancel: cancel, cl: cl, events: make(chan recvEvent, recvBuffer), gone: make(chan struct{}),
		base: base, next: base, afterRetry: s.resumed}
	s.att = a
	s.resumed = false
	s.sentFrom = base
	// Audio before base is transcribed already, skipped on purpose (hold)
	// or reported as a gap.
	s.lastFinal = max(s.lastFinal, base)
	s.receivers.Add(1)
	go s.receive(a)
	s.flushGap(ctx)
	s.log.Debug().Int64("base_ms", s.ms(base)).Msg("engine stream opened")
	return true
}

// abandon stops reading an engine stream and cancels it.
func (s *Stream) abandon(a *attempt) {
	a.cancel()
	close(a.gone)
}

// receive reads one engine stream until it ends. Its last event always
// reaches the run loop unless the run loop has given up on the stream.
func (s *Stream) receive(a *attempt) {
	defer s.receivers.Done()
	for {
		resp, err := a.cl.Recv()
		ev := recvEvent{resp: resp, done: err != nil}
		if !errors.Is(err, io.EOF) {
			ev.err = err
		}
		select {
		case a.events <- ev:
		case <-a.gone:
			return
		}
		if ev.done {
			return
		}
	}
}

// send sends one audio request, cancelling the engine stream if the send
// stays blocked (flow control towards a dead peer) beyond SendTimeout.
func (s *Stream) send(a *attempt, pcm []byte) bool {
	t := time.AfterFunc(s.cfg.SendTimeout, func() { a.stalled.Store(true); a.cancel() })
	defer t.Stop()
	if err := a.cl.Send(pcm); err != nil {
		s.broken(a) // the stream's status comes from Recv (grpc-go#1319)
		return false
	}
	return true
}

func (s *Stream) broken(a *attempt) {
	a.broken = true
	if a.drain == nil {
		a.drain = time.NewTimer(s.cfg.DrainTimeout)
	}
}

// sendZeros fills a jump in positions with silence so that engine time
// stays equal to call-clock time.
func (s *Stream) sendZeros(a *attempt, n int64) bool {
	for n > 0 {
		k := min(n, s.chunkSamples)
		if !s.send(a, s.zeros[:k*2]) {
			return false
		}
		a.next += k
		a.silentRun += k
		n -= k
	}
	return true
}

// halfClose tells the engine no more audio comes on this stream; it
// settles its finals and ends, and the next stream starts where it stopped.
func (s *Stream) halfClose(why string) {
	a := s.att
	if a == nil || a.halfClosed {
		return
	}
	a.halfClosed = true
	s.log.Debug().Str("reason", why).Int64("at_ms", s.ms(a.next)).Msg("half-closing engine stream")
	if err := a.cl.CloseSend(); err != nil {
		s.broken(a)
		return
	}
	a.drain = time.NewTimer(s.cfg.DrainTimeout)
}

// rotate replaces the current engine stream before the engine's limit.
func (s *Stream) rotate(ctx context.Context) {
	a := s.att
	s.cfg.Metrics.Rotation()
	s.status(ctx, a.next, 0, stt.StatusInfo{Event: stt.EventRollover})
	s.halfClose("rollover")
}

// handle processes one event of the current engine stream.
func (s *Stream) handle(ctx context.Context, ev recvEvent) bool {
	a := s.att
	if !ev.done {
		if !a.responded {
			a.responded = true
			if a.afterRetry {
				s.announceResumed(ctx, a)
			}
		}
		s.respond(ctx, a, ev.resp)
		return true
	}
	if a.drain != nil {
		a.drain.Stop()
	}
	if ev.err != nil || a.stalled.Load() {
		return s.fail(ctx, s.eng.Failure(ev.err))
	}
	if !a.halfClosed && !a.responded {
		// Ended unasked before saying anything: reopening at once would
		// spin on a server that does this to every stream. An outage.
		return s.fail(ctx, Failure{Code: CodeUnavailable, Message: "engine stream ended without a response", Retry: true})
	}
	// A clean end: the engine has settled everything it was sent.
	if a.afterRetry && !a.responded {
		s.announceResumed(ctx, a)
	}
	s.abandon(a)
	s.att = nil
	s.failures = 0
	s.lastFinal = max(s.lastFinal, a.next)
	s.forget(s.sent)
	s.sent = nil
	if !a.halfClosed {
		// The engine ended the stream on its own (e.g. END_OF_SINGLE_UTTERANCE
		// style ends): carry on with a fresh one.
		s.log.Debug().Msg("engine stream ended by the server")
	}
	return true
}

func (s *Stream) announceResumed(ctx context.Context, a *attempt) {
	s.log.Info().Int64("from_ms", s.ms(a.base)).Msg("transcription resumed")
	s.status(ctx, a.base, 0, stt.StatusInfo{Event: stt.EventResumed})
}

// fail handles the end of an engine stream with err (or a failed open):
// a permanent error stops the track, anything else reopens after a
// backoff with the unfinalized audio replayed. It returns false when the
// track has stopped for good.
func (s *Stream) fail(ctx context.Context, f Failure) bool {
	if ctx.Err() != nil {
		return false
	}
	a := s.att
	if a != nil && a.stalled.Load() {
		f = Failure{Code: CodeUnavailable, Message: "send blocked beyond send-timeout", Retry: true}
	}
	s.cfg.Metrics.Error(f.Code)
	at := s.lastFinal
	if a != nil {
		s.abandon(a)
		at = a.next
		s.att = nil
	} else if len(s.pend) > 0 {
		at = s.pend[0].pos
	}
	if !f.Retry {
		s.log.Error().Str("code", f.Code).Str("error", f.Message).Msg("transcription stopped")
		s.stop(ctx, at, f.Code, f.Message, true)
		return false
	}
	s.failures++
	if s.failures > s.cfg.MaxRetries {
		msg := fmt.Sprintf("gave up after %d failed streams: %s", s.failures, f.Message)
		s.log.Error().Str("code", f.Code).Str("error", f.Message).Int("attempts", s.failures).Msg("transcription stopped")
		s.stop(ctx, at, f.Code, msg, false)
		return false
	}
	s.log.Warn().Str("code", f.Code).Str("error", f.Message).Int("attempt", s.failures).Msg("engine stream failed; reopening")
	s.status(ctx, at, 0, stt.StatusInfo{Event: stt.EventRetry, Code: f.Code, Message: f.Message})
	s.replay(ctx)
	s.resumed = true
	s.waitSpeech = false
	s.backoff = time.NewTimer(s.delay(f.Slow))
	return true
}

// replay puts the audio sent since the newest final back in front of the
// pending audio, so the next engine stream transcribes it again.
func (s *Stream) replay(ctx context.Context) {
	from := s.lastFinal
	if s.sentFrom > from {
		s.addGap(ctx, span{from, s.sentFrom}, "unfinalized audio beyond replay-limit")
	}
	s.sentFrom = math.MinInt64
	var re []chunk
	for _, c := range s.sent {
		if c.end() <= from {
			s.bufSamples -= c.samples()
			continue
		}
		if c.pos < from {
			skip := from - c.pos
			s.bufSamples -= skip
			c = chunk{pos: from, pcm: c.pcm[skip*2:], quiet: c.quiet}
		}
		re = append(re, c)
	}
	s.sent = nil
	s.pend = append(re, s.pend...)
}

func (s *Stream) delay(slow bool) time.Duration {
	first, limit := s.cfg.BackoffInitial, s.cfg.BackoffMax
	if slow {
		first, limit = s.cfg.ExhaustedBackoff, 4*s.cfg.BackoffMax
	}
	d := first << min(s.failures-1, 20)
	if d <= 0 || d > limit {
		d = limit
	}
	// Full jitter on half the delay keeps many tracks from reopening in step.
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// stop ends transcription of the track for good. The recording is not
// affected: Write keeps accepting nothing and returns ErrStopped. permanent
// tells the caller that a new stream would fail the same way.
func (s *Stream) stop(ctx context.Context, at int64, code, msg string, permanent bool) {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.flushGap(ctx)
	s.status(ctx, at, 0, stt.StatusInfo{Event: stt.EventFailed, Code: code, Message: msg, Permanent: permanent})
}

// respond turns one response into partial and final results.
func (s *Stream) respond(ctx context.Context, a *attempt, resp Response) {
	var partial strings.Builder
	var stability float64
	var partialEnd int64 = -1
	for _, h := range resp {
		end := a.base + s.samples(h.End)
		if h.Final {
			s.final(ctx, a, h, end)
			continue
		}
		if partialEnd < 0 {
			stability = h.Stability
		}
		partial.WriteString(h.Text)
		partialEnd = max(partialEnd, end)
	}
	text := strings.TrimSpace(partial.String())
	if text == "" {
		return
	}
	s.failures = 0 // transcript text: the engine works again
	r := stt.Result{Kind: stt.Partial, Track: s.track, SegmentID: stt.SegmentID(s.track, s.nextSeg),
		Text: text, Stability: stability, StartMs: s.ms(s.segStart(a)), EndMs: s.ms(partialEnd)}
	select {
	case s.results <- r:
	default: // superseded by the next partial or the final
	}
}

func (s *Stream) segStart(a *attempt) int64 { return max(s.lastFinal, a.base) }

func (s *Stream) final(ctx context.Context, a *attempt, h Hypothesis, end int64) {
	start := s.segStart(a)
	defer func() {
		s.lastFinal = max(s.lastFinal, end)
		s.trimSent()
	}()
	text := strings.TrimSpace(h.Text)
	if text == "" {
		return
	}
	s.failures = 0 // transcript text: the engine works again
	var words []stt.Word
	for _, w := range h.Words {
		words = append(words, stt.Word{Word: w.Word, StartMs: s.ms(a.base + s.samples(w.Start)),
			EndMs: s.ms(a.base + s.samples(w.End)), Confidence: w.Confidence})
	}
	if len(words) > 0 {
		start = a.base + s.samples(h.Words[0].Start)
	}
	s.emit(ctx, stt.Result{Kind: stt.Final, Track: s.track, SegmentID: stt.SegmentID(s.track, s.nextSeg),
		Text: text, Confidence: h.Confidence, StartMs: s.ms(start), EndMs: s.ms(end), Words: words})
	s.nextSeg++
}

// trimSent forgets sent audio that a final has covered.
func (s *Stream) trimSent() {
	i := 0
	for i < len(s.sent) && s.sent[i].end() <= s.lastFinal {
		i++
	}
	if i > 0 {
		s.sentFrom = s.sent[i-1].end()
	}
	s.forget(s.sent[:i])
	s.sent = s.sent[i:]
}

// rms is the root-mean-square level of PCM16LE audio.
func rms(pcm []byte) float64 {
	n := len(pcm) / 2
	if n == 0 {
		return 0
	}
	var sum float64
	for i := 0; i < n; i++ {
		v := float64(int16(uint16(pcm[2*i]) | uint16(pcm[2*i+1])<<8))
		sum += v * v
	}
	return math.Sqrt(sum / float64(n))
}
