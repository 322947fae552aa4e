package session

import (
	"cmp"
	"context"
	"errors"
	"math/rand/v2"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/stt"
)

// chunkMs is how much audio the feeder hands a stream per Write at most:
// 100 ms is what Google recommends and keeps caption latency low.
const chunkMs = 100

// Defaults for the zero values of Config.
const (
	DefaultQueue     = 2 * time.Second
	DefaultReopenMin = time.Second
	DefaultReopenMax = 30 * time.Second
)

// Handler receives what a session reports. Its methods are called from
// the session's goroutines, one at a time per method, and may block them.
type Handler interface {
	// Result is an engine result, in the order the stream delivered it.
	Result(r stt.Result)
	// Notice is the session's own news about the track's transcription:
	// stt.EventFailed when a stream cannot be opened (it is retried),
	// stt.EventResumed when a stream was reopened. It comes before the
	// reopened stream's first result.
	Notice(event, msg string)
	// Gap is audio at sample position pos that will never be transcribed.
	Gap(pos, samples int64)
}

// Config configures a Session. A zero field means the documented default.
type Config struct {
	Recognizer stt.Recognizer
	Stream     stt.StreamConfig
	Handler    Handler
	// Queue bounds the audio waiting for the engine (DefaultQueue);
	// ReopenMin and ReopenMax the backoff between reopen attempts
	// (DefaultReopenMin, DefaultReopenMax).
	Queue, ReopenMin, ReopenMax time.Duration
	// Log gets the session's warnings; it should name the call and track.
	Log zerolog.Logger
	// Panicked, if set, is told of a panic on one of the session's
	// goroutines (the Handler's included) after the session recovered it
	// and abandoned the stream. Run then returns.
	Panicked func(v any, stack []byte)
}

// Session transcribes one track: Write audio, Run it, Close it.
type Session struct {
	cfg   Config
	queue *queue
	done  chan struct{} // closed when Run returns

	mu      sync.Mutex
	cancel  context.CancelFunc // Run's; nil before Run
	aborted bool
}

// New prepares a session. Audio written before Run waits in the queue.
func New(cfg Config) *Session {
	cfg.Queue = cmp.Or(max(cfg.Queue, 0), DefaultQueue)
	cfg.ReopenMin = cmp.Or(max(cfg.ReopenMin, 0), DefaultReopenMin)
	cfg.ReopenMax = cmp.Or(max(cfg.ReopenMax, 0), DefaultReopenMax)
	return &Session{
		cfg:   cfg,
		queue: newQueue(int(cfg.Queue.Seconds() * float64(2*cfg.Stream.SampleRate))),
		done:  make(chan struct{}),
	}
}

// Write queues PCM16LE audio whose first sample is at sample position pos,
// or hands it to the open stream on the caller's goroutine when the stream
// takes audio inline (stt.InlineWriter) and nothing is queued. It never
// blocks and does not retain pcm.
func (s *Session) Write(pos int64, pcm []byte) { s.queue.push(pos, pcm) }

// Queued is how many bytes of audio wait for the engine.
func (s *Session) Queued() int {
	s.queue.mu.Lock()
	defer s.queue.mu.Unlock()
	return s.queue.size
}

// Close says no more audio will come and waits for the last stream to
// deliver its results, or until ctx ends: then the stream is abandoned and
// what it had not taken is reported as a gap. Run must have been started.
// Safe to call more than once.
func (s *Session) Close(ctx context.Context) {
	s.queue.close()
	select {
	case <-s.done:
	case <-ctx.Done():
		s.abort()
		<-s.done
	}
}

// abort cancels Run's streams, also when Run has not got that far yet.
func (s *Session) abort() {
	s.mu.Lock()
	s.aborted = true
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// Run opens a stream, feeds it from the queue and hands its results to the
// Handler (on a second goroutine, since Write may block), and opens a new
// stream after a backoff when one stops. It returns when the queue is
// closed and the last stream has delivered its results, when a stream
// failed for good, or when ctx is cancelled.
func (s *Session) Run(ctx context.Context) {
	defer close(s.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.cancel = cancel
	if s.aborted {
		cancel()
	}
	s.mu.Unlock()

	var results sync.WaitGroup
	defer func() {
		if v := recover(); v != nil {
			stack := debug.Stack()
			cancel() // abandons the engine stream: its results reader returns
			results.Wait()
			s.panicked(v, stack)
		}
	}()
	defer s.discardQueued()
	h, log := s.cfg.Handler, s.cfg.Log
	delay := s.cfg.ReopenMin
	failing := false // the last attempt failed: notices are not repeated
	for streams := 0; ; {
		stream, err := s.cfg.Recognizer.Open(ctx, s.cfg.Stream)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				h.Notice(stt.EventFailed, "speech-to-text unavailable; recording continues, retrying: "+err.Error())
				log.Error().Err(err).Msg("speech-to-text unavailable for this track; recording continues")
			}
			failing = true
		} else {
			if streams > 0 || failing {
				h.Notice(stt.EventResumed, "speech-to-text stream reopened")
				log.Info().Int("streams", streams+1).Msg("speech-to-text stream reopened")
			}
			streams++
			var out outcome
			results.Go(func() { out = s.results(stream, cancel) })
			finished := s.feed(ctx, stream)
			results.Wait()
			if finished || ctx.Err() != nil {
				return
			}
			if out.permanent {
				log.Error().Msg("speech-to-text failed for good on this track; recording continues without transcription")
				return
			}
			if out.progress {
				delay = s.cfg.ReopenMin // it worked for a while: this is a new outage
			}
			failing = false
			log.Warn().Dur("retry_in", delay).Msg("speech-to-text stream stopped; recording continues, reopening")
		}
		if !s.waitReopen(ctx, delay/2+rand.N(delay/2+1)) {
			return
		}
		delay = min(2*delay, s.cfg.ReopenMax)
	}
}

func (s *Session) panicked(v any, stack []byte) {
	if s.cfg.Panicked != nil {
		s.cfg.Panicked(v, stack)
	}
}

// waitReopen waits d before the next attempt; false when the track ended
// meanwhile. Audio arriving meanwhile does not wake it: during an outage
// of every track's engine, that would be a wake-up per frame per track.
func (s *Session) waitReopen(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.queue.done:
		return false
	}
}

// reportDropped reports audio the queue dropped since the last report.
func (s *Session) reportDropped() {
	if pos, n := s.queue.takeDroppedSpan(); n > 0 {
		s.cfg.Handler.Gap(pos, n/2)
	}
}

// discardQueued reports what will never be transcribed when transcription
// ends early (the engine was down at the end of the call, or the drain
// timed out): what the queue dropped and what it still holds.
func (s *Session) discardQueued() {
	s.queue.close()
	s.reportDropped()
	buf := s.chunkBuf()
	var from, n int64 = 0, 0
	for {
		pos, m, ok := s.queue.pop(buf)
		if ok && n > 0 && pos == from+n {
			n += int64(m / 2)
			continue
		}
		if n > 0 {
			s.cfg.Handler.Gap(from, n)
		}
		if !ok {
			return
		}
		from, n = pos, int64(m/2)
	}
}

// chunkBuf holds the audio of one Write to a stream, chunkMs at most.
func (s *Session) chunkBuf() []byte { return make([]byte, 2*s.cfg.Stream.SampleRate*chunkMs/1000) }

// feed moves audio from the queue to the stream, which may block. A
// stream that can take audio inline gets it straight from Write while the
// queue is empty; the feeder then only wakes when Write gave it back
// audio (the stream refused it or failed) or the queue closed. It returns
// true when the queue was closed and drained (the stream is then closed,
// and settles), false when the stream stopped taking audio or ctx was
// cancelled.
func (s *Session) feed(ctx context.Context, stream stt.Stream) bool {
	buf := s.chunkBuf()
	inline, _ := stream.(stt.InlineWriter)
	defer func() {
		s.queue.unbypass() // no Write reaches the stream after this
		stream.Close()
	}()
	for {
		for {
			s.reportDropped()
			pos, n, ok := s.queue.pop(buf)
			if !ok {
				break
			}
			if err := stream.Write(pos, buf[:n]); err != nil {
				if !errors.Is(err, stt.ErrStopped) && ctx.Err() == nil {
					s.cfg.Log.Warn().Err(err).Msg("speech-to-text stopped taking audio")
				}
				// The chunk in hand never reached the engine.
				s.cfg.Handler.Gap(pos, int64(n/2))
				return false
			}
		}
		if s.queue.isClosed() {
			// Closed and drained (a push racing close is refused by push).
			if _, _, ok := s.queue.pop(buf); !ok {
				return true
			}
			continue
		}
		if inline != nil {
			s.queue.bypass(inline)
		}
		select {
		case <-s.queue.notify:
		case <-ctx.Done():
			return false
		}
	}
}

// outcome is what one stream amounted to.
type outcome struct {
	progress  bool // it delivered transcript text
	permanent bool // it failed in a way a new stream would repeat
}

// results hands one stream's output to the Handler until the stream
// closes Results. A panic abandons the stream (cancel) and ends Run.
func (s *Session) results(stream stt.Stream, cancel context.CancelFunc) outcome {
	var out outcome
	defer func() {
		if v := recover(); v != nil {
			stack := debug.Stack()
			cancel() // the feeder stops too
			s.panicked(v, stack)
		}
	}()
	for r := range stream.Results() {
		s.cfg.Handler.Result(r)
		switch {
		case r.Kind == stt.Partial || r.Kind == stt.Final:
			out.progress = out.progress || strings.TrimSpace(r.Text) != ""
		case r.Status != nil && r.Status.Event == stt.EventFailed:
			out.permanent = r.Status.Permanent
		}
	}
	return out
}
