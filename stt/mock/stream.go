package mock

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/callcaptions/bridge/stt"
)

// queueSize bounds the results waiting for the consumer. A second of speech
// yields about five results (four partials and a share of a final), so 64
// rides out a consumer stalled, or results held back by Latency, for more
// than ten seconds of continuous speech before Write pushes back.
const queueSize = 64

// windowsPerSecond makes the detector's windows 20 ms long, the usual
// telephony frame.
const windowsPerSecond = 50

// pending is a result waiting in the queue until it is due.
type pending struct {
	r   stt.Result
	due time.Time
}

// Stream is one mock transcription stream. See the package comment for its
// behaviour.
type Stream struct {
	track   string
	rate    int64
	script  [][]string
	latency time.Duration
	failFor time.Duration // FailAfter as configured, for the message

	// Sample counts and the speech limit, fixed at Open.
	window     int64   // samples in a 20 ms window
	limit      float64 // sum of squares over a window above which it is speech
	minSilence int64
	minSpeech  int64
	wordEvery  int64
	failAfter  int64 // 0 = never

	results chan stt.Result // unbuffered: the queue below is the buffer
	done    chan struct{}   // closed when delivery has ended for good
	room    chan struct{}   // 1 slot: the queue has room again
	// ctx is Open's: delivery ends when it is cancelled. stopAfter
	// unregisters the kick that cancelling it gives.
	ctx       context.Context
	stopAfter func() bool
	timer     *time.Timer // the delivering goroutine's, with Latency

	mu sync.Mutex
	// ring holds the queue, a circle grown on demand (most streams never
	// hold more than a few results) up to queueSize, and one slot more
	// for the final that Close queues without waiting.
	ring        []pending
	head, count int
	delivering  bool  // a delivering goroutine runs
	delivered   bool  // delivery has ended for good: Results is closed
	writing     bool  // the detector state below is in use by Write or Close
	closed      bool  // Close was called
	failed      bool  // FailAfter was reached
	cancelled   error // the cause, once the context given to Open was cancelled

	// Detector state, used only by the goroutine that set writing.
	started  bool
	flushing bool      // settling at Close: no partials, queue without waiting
	now      time.Time // wall time of the current Write, when Latency is set
	next     int64     // position of the next sample expected
	sum      int64     // sum of squares of the current window so far
	written  int64     // samples written, gaps excluded

	// The utterance in progress.
	active    bool
	confirmed bool     // at least MinSpeech long: it has a segment and text
	start     int64    // first sample of the first speech window
	end       int64    // end of the last speech window
	silence   int64    // samples of silence since end
	shown     int      // words in the last partial
	words     []string // script words; nil means a description
	segment   int      // segments so far, the current one included
	cursor    int      // next script line
}

var (
	_ stt.Stream       = (*Stream)(nil)
	_ stt.InlineWriter = (*Stream)(nil)
)

// newStream starts a stream of track at rate with cfg (the per-call
// parameters applied) that gives utterances the script's lines in order.
func newStream(ctx context.Context, cfg Config, track string, rate int64, script [][]string) *Stream {
	n := func(d time.Duration) int64 { return max(samples(d, rate), 1) }
	s := &Stream{track: track, rate: rate, script: script, latency: cfg.Latency, failFor: cfg.FailAfter,
		window: rate / windowsPerSecond, minSilence: n(cfg.MinSilence), minSpeech: n(cfg.MinSpeech), wordEvery: n(cfg.WordEvery),
		results: make(chan stt.Result), done: make(chan struct{}), room: make(chan struct{}, 1), ctx: ctx}
	s.limit = cfg.Threshold * cfg.Threshold * float64(s.window)
	if cfg.FailAfter > 0 {
		s.failAfter = n(cfg.FailAfter)
	}
	s.stopAfter = context.AfterFunc(ctx, s.kick)
	return s
}

// samples converts a duration to a count of samples at rate, to the
// microsecond so that long durations do not overflow.
func samples(d time.Duration, rate int64) int64 {
	return int64(d/time.Microsecond) * rate / 1_000_000
}

// ms converts a sample position to call-clock milliseconds.
func (s *Stream) ms(pos int64) int64 { return pos * 1000 / s.rate }

// Results implements stt.Stream.
func (s *Stream) Results() <-chan stt.Result { return s.results }

// Write implements stt.Stream. It runs the detector over pcm and queues the
// results, blocking while the queue is full.
func (s *Stream) Write(pos int64, pcm []byte) error {
	_, err := s.take(pos, pcm, 0)
	return err
}

// TryWrite implements stt.InlineWriter: it is Write when the queue has
// room for every result pcm could produce, so that Write cannot wait, and
// takes nothing otherwise. Only the delivering goroutine takes from the
// queue meanwhile, which makes room, never less.
func (s *Stream) TryWrite(pos int64, pcm []byte) (bool, error) {
	// A window boundary in pcm yields at most one result; the windows
	// around a jump in positions two; a failure one more.
	return s.take(pos, pcm, len(pcm)/2/int(s.window)+4)
}

// take is Write, refusing pcm (false) when the queue has room for fewer
// than room results; room 0 takes it whatever the queue holds.
func (s *Stream) take(pos int64, pcm []byte, room int) (bool, error) {
	if len(pcm)%2 != 0 {
		return true, fmt.Errorf("mock stt: write %d bytes at sample %d: PCM16 comes in whole 2-byte samples", len(pcm), pos)
	}
	s.mu.Lock()
	switch {
	case s.cancelled != nil:
		s.mu.Unlock()
		return true, s.stopped()
	case s.failed:
		s.mu.Unlock()
		return true, fmt.Errorf("mock stt: write after failure: %w", stt.ErrStopped)
	case s.closed:
		s.mu.Unlock()
		return true, fmt.Errorf("mock stt: write after close: %w", stt.ErrStopped)
	case s.writing:
		s.mu.Unlock()
		return true, errors.New("mock stt: concurrent write: one goroutine must write")
	case s.started && pos < s.next:
		next := s.next
		s.mu.Unlock()
		return true, fmt.Errorf("mock stt: write at sample %d: positions must not go backwards (next is %d)", pos, next)
	case queueSize-s.count < room:
		s.mu.Unlock()
		return false, nil
	}
	s.writing = true
	s.mu.Unlock()

	err := s.write(pos, pcm)

	s.mu.Lock()
	closedMeanwhile := s.closed
	if !closedMeanwhile {
		s.writing = false
	}
	s.mu.Unlock()
	if closedMeanwhile {
		// Close came while this Write ran and left the settling to it.
		if err == nil {
			err = s.finish()
		}
		s.mu.Lock()
		s.writing = false
		s.mu.Unlock()
		s.kick()
	}
	return true, err
}

func (s *Stream) write(pos int64, pcm []byte) error {
	if s.latency > 0 {
		s.now = time.Now()
	}
	switch {
	case !s.started:
		s.started, s.next = true, pos
	case pos > s.next:
		if err := s.skip(pos); err != nil {
			return err
		}
	}
	for len(pcm) > 0 {
		n := min(s.window-s.next%s.window, int64(len(pcm)/2))
		if s.failAfter > 0 {
			n = min(n, s.failAfter-s.written)
		}
		sum := s.sum
		b := pcm[:2*n]
		for i := 0; i+1 < len(b); i += 2 {
			v := int64(int16(uint16(b[i]) | uint16(b[i+1])<<8))
			sum += v * v
		}
		s.sum = sum
		pcm = pcm[2*n:]
		s.next += n
		s.written += n
		if s.next%s.window == 0 {
			if err := s.endWindow(); err != nil {
				return err
			}
		}
		if s.failAfter > 0 && s.written >= s.failAfter {
			return s.fail()
		}
	}
	return nil
}

// skip moves over audio that will never arrive, as silence.
func (s *Stream) skip(pos int64) error {
	if off := s.next % s.window; off != 0 {
		windowEnd := s.next - off + s.window
		if pos < windowEnd {
			s.next = pos // the missing samples add nothing to the sum
			return nil
		}
		if err := s.endWindow(); err != nil {
			return err
		}
		s.next = windowEnd
	}
	whole := (pos - s.next) / s.window
	s.next = pos
	return s.silent(whole * s.window)
}

// endWindow classifies the window holding the samples up to s.next and
// starts the next one.
func (s *Stream) endWindow() error {
	start := (s.next - 1) / s.window * s.window
	speech := float64(s.sum) > s.limit
	s.sum = 0
	if !speech {
		return s.silent(s.window)
	}
	if !s.active {
		s.active, s.confirmed, s.start, s.shown = true, false, start, 0
	}
	s.end, s.silence = s.next, 0
	return s.progress()
}

// silent counts n samples of silence against the utterance in progress.
func (s *Stream) silent(n int64) error {
	if !s.active {
		return nil
	}
	s.silence += n
	if s.silence < s.minSilence {
		return nil
	}
	return s.endUtterance()
}

// progress confirms the utterance once it is MinSpeech long and queues a
// partial whenever it has earned another word.
func (s *Stream) progress() error {
	span := s.end - s.start
	if !s.confirmed {
		if span < s.minSpeech {
			return nil
		}
		s.confirmed = true
		s.segment++
		s.words = nil
		if s.cursor < len(s.script) {
			s.words = s.script[s.cursor]
			s.cursor++
		}
	}
	if s.flushing {
		return nil
	}
	total := len(s.words)
	if s.words == nil {
		total = describeWords
	}
	k := int(min(span/s.wordEvery, int64(total)))
	if k <= s.shown {
		return nil
	}
	s.shown = k
	return s.push(stt.Result{Kind: stt.Partial, Track: s.track, SegmentID: stt.SegmentID(s.track, s.segment),
		Text: strings.Join(s.text()[:k], " "), Stability: maxStability * float64(k) / float64(k+1),
		StartMs: s.ms(s.start), EndMs: s.ms(s.end)})
}

// endUtterance queues the final of the utterance in progress, if it was long
// enough to count, and forgets it.
func (s *Stream) endUtterance() error {
	s.active = false
	if !s.confirmed {
		return nil
	}
	words := s.text()
	startMs, endMs := s.ms(s.start), s.ms(s.end)
	span, n := endMs-startMs, int64(len(words))
	ws := make([]stt.Word, len(words))
	for i, w := range words {
		ws[i] = stt.Word{Word: w, StartMs: startMs + span*int64(i)/n, EndMs: startMs + span*int64(i+1)/n, Confidence: confidence}
	}
	return s.push(stt.Result{Kind: stt.Final, Track: s.track, SegmentID: stt.SegmentID(s.track, s.segment),
		Text: strings.Join(words, " "), Confidence: confidence, StartMs: startMs, EndMs: endMs, Words: ws})
}

// text is the utterance's words: its script line's, or a description.
func (s *Stream) text() []string {
	if s.words == nil {
		return s.describe()
	}
	return s.words
}

// describeWords is how many words describe returns.
const describeWords = 5

// describe returns the words of the text given to an utterance when the
// script has none left: "inbound utterance 2 (1.4 s)", the duration so far
// rounded to a tenth of a second.
func (s *Stream) describe() []string {
	// describeWords must match the length of the slice below.
	tenths := ((s.ms(s.end) - s.ms(s.start)) + 50) / 100
	secs := strconv.FormatInt(tenths/10, 10) + "." + strconv.FormatInt(tenths%10, 10)
	return []string{s.track, "utterance", strconv.Itoa(s.segment), "(" + secs, "s)"}
}

// fail stops the stream for good once FailAfter of audio has been written.
func (s *Stream) fail() error {
	s.active = false
	pos := s.ms(s.next)
	err := s.push(stt.Result{Kind: stt.Status, Track: s.track, StartMs: pos, EndMs: pos, Status: &stt.StatusInfo{
		Event: stt.EventFailed, Code: "Unavailable", Message: fmt.Sprintf("mock stt: failing as configured after %s of audio", s.failFor)}})
	s.mu.Lock()
	s.failed = true
	s.mu.Unlock()
	s.kick()
	if err != nil {
		return err
	}
	return fmt.Errorf("mock stt: failed after %s of audio: %w", s.failFor, stt.ErrStopped)
}

// finish settles the utterance in progress at Close. It queues at most one
// result, the final, without waiting for room.
func (s *Stream) finish() error {
	if !s.started {
		return nil
	}
	s.flushing = true
	if s.latency > 0 {
		s.now = time.Now()
	}
	if s.next%s.window != 0 {
		if err := s.endWindow(); err != nil {
			return err
		}
	}
	if s.active {
		return s.endUtterance()
	}
	return nil
}

// push queues r, waiting for room unless the stream is settling at Close.
func (s *Stream) push(r stt.Result) error {
	p := pending{r: r}
	if s.latency > 0 {
		p.due = s.now.Add(s.latency)
	}
	for {
		s.mu.Lock()
		limit := queueSize
		if s.flushing {
			limit++
		}
		if s.count < limit {
			if s.count == len(s.ring) {
				s.grow(limit)
			}
			s.ring[(s.head+s.count)%len(s.ring)] = p
			s.count++
			s.mu.Unlock()
			s.kick()
			return nil
		}
		s.mu.Unlock()
		select {
		case <-s.room:
		case <-s.done: // abandoned: the context was cancelled
			return s.stopped()
		}
	}
}

// grow doubles the ring, to at most limit slots, keeping every queued
// result at the same position modulo the new length and head where it is.
// The caller holds mu.
func (s *Stream) grow(limit int) {
	ring := make([]pending, min(max(2*len(s.ring), 4), limit))
	for i := s.head; i < s.head+s.count; i++ {
		ring[i%len(ring)] = s.ring[i%len(s.ring)]
	}
	s.ring = ring
}

// Close implements stt.Stream. It queues the final of the utterance in
// progress and returns without waiting for its delivery.
func (s *Stream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if s.writing || s.failed {
		// A running Write settles the stream when it returns; a failed one
		// has nothing to settle.
		s.mu.Unlock()
		s.kick()
		return nil
	}
	s.writing = true
	s.mu.Unlock()

	err := s.finish()

	s.mu.Lock()
	s.writing = false
	cancelled := s.cancelled != nil
	s.mu.Unlock()
	s.kick()
	if err != nil && !cancelled {
		return err
	}
	return nil
}

// kick starts a delivering goroutine unless one runs or delivery has
// ended: something changed that it must act on (a result queued, the
// stream closed or failed, ctx cancelled). A stream whose queue is empty
// has no goroutine.
func (s *Stream) kick() {
	s.mu.Lock()
	start := !s.delivering && !s.delivered
	if start {
		s.delivering = true
	}
	s.mu.Unlock()
	if start {
		go s.deliver()
	}
}

// deliver moves queued results to Results once they are due. It returns
// when the queue is empty, and ends delivery for good (closing Results)
// when the stream has finished or ctx is cancelled.
func (s *Stream) deliver() {
	for {
		s.mu.Lock()
		if s.ctx.Err() != nil || (s.count == 0 && (s.failed || (s.closed && !s.writing))) {
			s.mu.Unlock()
			s.endDelivery()
			return
		}
		if s.count == 0 {
			s.delivering = false // the next kick starts another
			s.mu.Unlock()
			return
		}
		p := s.ring[s.head]
		s.ring[s.head] = pending{}
		s.head = (s.head + 1) % len(s.ring)
		s.count--
		s.mu.Unlock()
		notify(s.room)

		if d := time.Until(p.due); s.latency > 0 && d > 0 {
			if s.timer == nil {
				s.timer = time.NewTimer(d)
			} else {
				s.timer.Reset(d)
			}
			select {
			case <-s.timer.C:
			case <-s.ctx.Done():
				s.timer.Stop()
				s.endDelivery()
				return
			}
		}
		if s.ctx.Err() != nil {
			s.endDelivery()
			return
		}
		select {
		case s.results <- p.r:
		case <-s.ctx.Done():
			s.endDelivery()
			return
		}
	}
}

// endDelivery ends delivery for good, on the delivering goroutine.
func (s *Stream) endDelivery() {
	s.mu.Lock()
	s.delivered = true
	if s.ctx.Err() != nil {
		s.cancelled = context.Cause(s.ctx)
	}
	s.mu.Unlock()
	s.stopAfter()
	close(s.results)
	close(s.done)
}

// stopped is the error for a Write or push after the context was cancelled.
func (s *Stream) stopped() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Errorf("mock stt: %w: %w", stt.ErrStopped, s.cancelled)
}

// notify leaves a token in a one-slot signal channel without blocking.
func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
