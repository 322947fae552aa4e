package bridge

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/bridge/codec"
	"github.com/callcaptions/bridge/bridge/provider"
	"github.com/callcaptions/bridge/stt"
)

// sttChunkMs is how much audio the feeder hands the recognizer per Write at
// most: 100 ms is what Google recommends and keeps caption latency low.
const sttChunkMs = 100

// track is one recorded and transcribed track of a call. The stream that
// owns it calls ingest from its read loop; nothing on that path waits for
// the recognizer or a subscriber.
type track struct {
	call *Call
	name string
	rate int
	log  zerolog.Logger

	// Owned by the ingesting stream (one at a time).
	clock     mediaClock
	pcm       []byte // decode scratch, reused for every frame
	sink      AudioSink
	sinkErr   error
	encoding  provider.Encoding
	order     provider.ByteOrder
	checked   int // L16 frames examined by the byte-order detector
	swapVotes int // of those, frames that looked byte-swapped

	queue   *pcmQueue
	stream  stt.Stream
	sttDone chan struct{} // closed when the STT goroutines have exited
	cancel  context.CancelFunc

	frames     atomic.Int64
	samples    atomic.Int64 // samples recorded, filled gaps included (the sink is not read across goroutines)
	duplicates atomic.Int64
	gapSamples atomic.Int64
	warning    atomic.Pointer[string]
	sttStopped atomic.Bool
	// segOffset is how many segments the track had before the call was
	// continued; the recognizer counts from 1 again, the transcript does not.
	segOffset int

	arrivals arrivals

	closeOnce sync.Once
}

// arrivals remembers when recent audio reached the bridge, in 100 ms
// buckets of the track's timeline, so a final's caption latency can be
// measured without keeping anything per frame. 64 buckets cover the last
// 6.4 s, longer than any engine takes to settle an utterance's end.
type arrivals struct {
	bucket [64]atomic.Int64 // which bucket the slot holds (+1; 0 = empty)
	at     [64]atomic.Int64 // Unix nanoseconds of the first audio of that bucket
	last   int64            // last bucket marked (ingest goroutine only)
}

func (a *arrivals) mark(bucket, now int64) {
	if bucket+1 == a.last {
		return
	}
	a.last = bucket + 1
	i := bucket & 63
	a.bucket[i].Store(0)
	a.at[i].Store(now)
	a.bucket[i].Store(bucket + 1)
}

func (a *arrivals) when(bucket int64) (int64, bool) {
	i := bucket & 63
	if a.bucket[i].Load() != bucket+1 {
		return 0, false
	}
	at := a.at[i].Load()
	return at, a.bucket[i].Load() == bucket+1
}

// decode turns one wire payload into PCM16LE in t.pcm.
func (t *track) decode(payload []byte) ([]byte, error) {
	var need int
	switch t.encoding {
	case provider.PCMU, provider.PCMA:
		need = 2 * len(payload)
	case provider.L16:
		if len(payload)%2 != 0 {
			return nil, errOddL16
		}
		need = len(payload)
	default:
		return nil, errUnsupported
	}
	if cap(t.pcm) < need {
		t.pcm = make([]byte, need)
	}
	dst := t.pcm[:need]
	switch t.encoding {
	case provider.PCMU:
		codec.DecodeMulaw(dst, payload)
	case provider.PCMA:
		codec.DecodeAlaw(dst, payload)
	case provider.L16:
		if t.order == provider.BigEndian {
			codec.DecodeL16BE(dst, payload)
		} else {
			codec.DecodeL16LE(dst, payload)
		}
	}
	return dst, nil
}

var (
	errOddL16      = errors.New("L16 payload has an odd number of bytes")
	errUnsupported = errors.New("unsupported encoding")
)

// detectOrder looks at the first seconds of L16 audio and warns once when
// it looks byte-swapped: the configured byte order for the provider is
// wrong. One frame can fool the detector (a loud pure tone repeats few
// values), so it takes a vote: correctly ordered audio almost never looks
// swapped, swapped audio does on nearly every frame that is not silent.
func (t *track) detectOrder(pcm []byte) {
	const (
		framesToCheck = 250 // about 5 s of 20 ms frames
		votesToWarn   = 25  // frames that must look swapped
	)
	if t.encoding != provider.L16 || t.checked >= framesToCheck {
		return
	}
	t.checked++
	if codec.LooksByteSwapped(pcm) {
		t.swapVotes++
	}
	if t.swapVotes == votesToWarn {
		t.checked = framesToCheck
		msg := "L16 audio looks byte-swapped: the configured byte order for this provider is probably wrong"
		t.warning.Store(&msg)
		t.log.Warn().Str("byte_order", orderName(t.order)).Msg(msg)
	}
}

func orderName(o provider.ByteOrder) string {
	switch o {
	case provider.LittleEndian:
		return "le"
	case provider.BigEndian:
		return "be"
	}
	return ""
}

// write records pcm at its placement and queues it for transcription.
func (t *track) write(p placement, pcm []byte) {
	if p.gap > 0 {
		t.gapSamples.Add(p.gap + p.skipped)
		if t.sinkErr == nil {
			t.sinkErr = t.sink.WriteSilence(p.gap)
			t.recordErr()
		}
		t.call.gap(t.name, p.pos-p.gap, p.gap+p.skipped, "media", t.rate)
	}
	if t.sinkErr == nil {
		_, t.sinkErr = t.sink.Write(pcm)
		t.recordErr()
	}
	end := p.pos + int64(len(pcm)/2)
	t.samples.Store(end)
	t.arrivals.mark((end-1)*10/int64(t.rate), t.call.reg.now().UnixNano())
	if t.queue != nil && !t.sttStopped.Load() {
		t.queue.push(p.pos, pcm)
	}
}

func (t *track) recordErr() {
	if t.sinkErr != nil {
		t.log.Error().Err(t.sinkErr).Msg("recording failed; transcription continues")
		t.call.trackError(t.name, t.sinkErr)
	}
}

// feed runs in its own goroutine: it moves audio from the queue to the
// recognizer, which may block, and closes the recognizer's input when the
// queue is closed and empty.
func (t *track) feed(ctx context.Context) {
	buf := make([]byte, 2*t.rate*sttChunkMs/1000)
	defer t.stream.Close()
	for {
		for {
			if d := t.queue.takeDropped(); d > 0 {
				t.call.sttGap(t.name, d/2, t.rate)
			}
			pos, n, ok := t.queue.pop(buf)
			if !ok {
				break
			}
			if err := t.stream.Write(pos, buf[:n]); err != nil {
				if !errors.Is(err, stt.ErrStopped) && ctx.Err() == nil {
					t.log.Warn().Err(err).Msg("speech-to-text stopped taking audio")
				}
				t.sttStopped.Store(true)
				return
			}
		}
		if t.queue.isClosed() {
			// Closed and drained (a push racing close is refused by push).
			if _, _, ok := t.queue.pop(buf); !ok {
				return
			}
			continue
		}
		select {
		case <-t.queue.notify:
		case <-ctx.Done():
			return
		}
	}
}

// results runs in its own goroutine and turns recognizer output into
// transcript segments and subscriber events.
func (t *track) results() {
	for r := range t.stream.Results() {
		t.call.result(t, r)
	}
}

// finish closes the track's input and waits for transcription to settle,
// then closes the WAV. Safe to call more than once.
func (t *track) finish(ctx context.Context) {
	t.closeOnce.Do(func() {
		if t.queue != nil {
			t.queue.close()
			select {
			case <-t.sttDone:
			case <-ctx.Done():
				t.cancel()
				<-t.sttDone
			}
		}
		if t.cancel != nil {
			t.cancel()
		}
		if err := t.sink.Close(); err != nil && t.sinkErr == nil {
			t.sinkErr = err
			t.recordErr()
		}
	})
}

// continuedSegment renumbers a recognizer's "<track>-<n>" after the
// segments the track already had.
func (t *track) continuedSegment(id string) string {
	n, err := strconv.Atoi(strings.TrimPrefix(id, t.name+"-"))
	if err != nil {
		return id
	}
	return stt.SegmentID(t.name, n+t.segOffset)
}
