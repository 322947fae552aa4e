package session

import (
	"sync"

	"github.com/callcaptions/bridge/stt"
)

// queue hands audio from a stream's read loop to the track's STT feeder.
// Push never blocks: when the queue holds its capacity, the oldest audio is
// dropped and counted, and the positions carried with the audio tell the
// recognizer where the hole is. Memory starts small and grows by doubling up
// to the capacity, so a track whose recognizer keeps up never holds more
// than a few frames.
//
// While the feeder's stream can take audio without blocking
// (stt.InlineWriter), the ring is bypassed: push hands audio straight to
// the stream, on the caller's goroutine, and the feeder sleeps.
type queue struct {
	mu sync.Mutex
	// direct, while set, takes audio in place of the ring. The feeder sets
	// it (bypass) only when the ring is empty, so no queued audio is
	// overtaken, and takes it back (unbypass) before it writes to the
	// stream or closes it itself. push gives it up when the stream refuses
	// audio or fails: that audio, and what follows, goes to the ring, and
	// the feeder, woken, writes it with Write and handles the failure as it
	// would have without inline writes. TryWrite runs under mu and never
	// blocks: mu orders it with the feeder's Writes, never at the same time.
	direct  stt.InlineWriter
	buf     []byte // ring of audio bytes
	max     int    // capacity bound in bytes
	head    int    // index of the oldest byte
	size    int    // bytes queued
	segs    []segment
	segHead int
	segN    int
	closed  bool
	dropped int64 // bytes dropped since the last takeDroppedSpan
	dropPos int64 // sample position of the first of those bytes
	notify  chan struct{}
	done    chan struct{} // closed by close, for waits that care about nothing else
}

type segment struct {
	pos int64 // sample position of the segment's first sample
	n   int   // bytes
}

// A queue starts with room for a 20 ms frame at up to 24 kHz (or three at
// 8 kHz) and a few segments: every call holds one per track, and one whose
// recognizer keeps up never needs more.
const (
	queueInitialBytes = 1024
	queueInitialSegs  = 4
)

func newQueue(maxBytes int) *queue {
	return &queue{
		buf:    make([]byte, queueInitialBytes),
		max:    max(maxBytes, queueInitialBytes),
		segs:   make([]segment, queueInitialSegs),
		notify: make(chan struct{}, 1), // one pending wake-up is enough: the feeder drains everything
		done:   make(chan struct{}),
	}
}

// push appends audio at position pos. It reports whether older audio had to
// be dropped to make room.
func (q *queue) push(pos int64, pcm []byte) (dropped bool) {
	if len(pcm) == 0 {
		return false
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	if w := q.direct; w != nil && q.tryDirect(w, pos, pcm) {
		q.mu.Unlock()
		return false
	}
	if len(pcm) > q.max { // a single frame larger than the queue: keep its tail
		skip := (len(pcm) - q.max) &^ 1
		if q.dropped == 0 {
			q.dropPos = pos
		}
		pos += int64(skip / 2)
		pcm = pcm[skip:]
		q.dropped += int64(skip)
		dropped = true
	}
	for q.size+len(pcm) > len(q.buf) && len(q.buf) < q.max {
		q.grow()
	}
	for q.size+len(pcm) > len(q.buf) || q.segN == len(q.segs) {
		if q.segN == len(q.segs) && len(q.segs) < 4096 && q.size+len(pcm) <= len(q.buf) {
			q.growSegs()
			continue
		}
		need := q.size + len(pcm) - len(q.buf)
		if q.segN == len(q.segs) {
			need = q.segs[q.segHead].n // out of segment slots: the oldest segment goes
		}
		q.dropOldest(need)
		dropped = true
	}
	tail := (q.head + q.size) % len(q.buf)
	copy(q.buf, pcm[copy(q.buf[tail:], pcm):])
	q.size += len(pcm)
	// Merge with the last segment when contiguous, to keep segments few.
	if last := &q.segs[(q.segHead+q.segN-1+len(q.segs))%len(q.segs)]; q.segN > 0 && last.pos+int64(last.n/2) == pos {
		last.n += len(pcm)
	} else {
		q.segs[(q.segHead+q.segN)%len(q.segs)] = segment{pos: pos, n: len(pcm)}
		q.segN++
	}
	q.mu.Unlock()
	notify(q.notify)
	return dropped
}

// tryDirect hands pcm to w, the inline stream, with q.mu held. It takes
// direct back for the call and gives it back only when w took the audio:
// when w refuses it or fails, the feeder takes over. When TryWrite panics,
// q.mu is released on the panic's way to the writer's recovery, so that
// the session can still be closed.
func (q *queue) tryDirect(w stt.InlineWriter, pos int64, pcm []byte) bool {
	q.direct = nil
	returned := false
	defer func() {
		if !returned {
			q.mu.Unlock()
		}
	}()
	ok, err := w.TryWrite(pos, pcm)
	returned = true
	if ok && err == nil {
		q.direct = w
		return true
	}
	return false
}

// notify leaves a wake-up in a channel of one without blocking.
func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (q *queue) grow() {
	nb := make([]byte, min(2*len(q.buf), q.max))
	q.readAt(nb[:q.size], q.head)
	q.buf, q.head = nb, 0
}

func (q *queue) growSegs() {
	ns := make([]segment, 2*len(q.segs))
	for i := 0; i < q.segN; i++ {
		ns[i] = q.segs[(q.segHead+i)%len(q.segs)]
	}
	q.segs, q.segHead = ns, 0
}

func (q *queue) readAt(dst []byte, from int) {
	n := copy(dst, q.buf[from:])
	copy(dst[n:], q.buf)
}

// dropOldest drops at least need bytes (rounded up to whole samples) from
// the front, never more than the oldest segment holds.
func (q *queue) dropOldest(need int) {
	s := &q.segs[q.segHead]
	n := min(s.n, (need+1)&^1)
	if n <= 0 {
		n = s.n
	}
	if q.dropped == 0 {
		q.dropPos = s.pos
	}
	q.dropped += int64(n)
	q.consume(n)
}

// consume forgets the oldest n bytes, all of the oldest segment's or fewer.
func (q *queue) consume(n int) {
	s := &q.segs[q.segHead]
	q.head = (q.head + n) % len(q.buf)
	q.size -= n
	s.n -= n
	s.pos += int64(n / 2)
	if s.n == 0 {
		q.segHead = (q.segHead + 1) % len(q.segs)
		q.segN--
	}
}

// pop copies the oldest contiguous audio, up to len(dst) bytes (even), into
// dst. ok is false when the queue is empty.
func (q *queue) pop(dst []byte) (pos int64, n int, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.segN == 0 {
		return 0, 0, false
	}
	s := q.segs[q.segHead]
	n = min(s.n, len(dst)&^1)
	q.readAt(dst[:n], q.head)
	q.consume(n)
	return s.pos, n, true
}

// takeDroppedSpan returns and resets the dropped bytes and the position of
// the first dropped sample. Drops since the last call are reported as one
// stretch starting there: what was dropped is always the oldest audio, so
// it is contiguous unless the media itself had gaps.
func (q *queue) takeDroppedSpan() (pos, n int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	pos, n = q.dropPos, q.dropped
	q.dropped = 0
	return pos, n
}

// bypass makes w take the audio pushed from now on, if the ring is empty
// and open; otherwise the ring stays in use.
func (q *queue) bypass(w stt.InlineWriter) {
	q.mu.Lock()
	if !q.closed && q.segN == 0 {
		q.direct = w
	}
	q.mu.Unlock()
}

// unbypass sends pushed audio to the ring again. When it returns, no
// TryWrite is running or will run.
func (q *queue) unbypass() {
	q.mu.Lock()
	q.direct = nil
	q.mu.Unlock()
}

// close stops accepting audio; what is queued can still be popped.
func (q *queue) close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.done)
	}
	q.mu.Unlock()
	notify(q.notify)
}

func (q *queue) isClosed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}
