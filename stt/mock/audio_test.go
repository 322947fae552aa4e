package mock

import (
	"context"
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/stt"
)

// part is a stretch of synthetic audio: a 300 Hz tone or silence.
type part struct {
	ms   int
	tone bool
}

func tone(ms int) part    { return part{ms: ms, tone: true} }
func silence(ms int) part { return part{ms: ms} }

// toneAmp gives a tone at about -20 dBFS RMS, well above the default threshold.
const toneAmp = 3277

// synth renders parts as PCM16LE at rate. The tone's phase follows the
// absolute sample index, so the audio does not depend on how it is cut.
func synth(rate int, amp float64, parts ...part) []byte {
	var n int
	for _, p := range parts {
		n += p.ms * rate / 1000
	}
	pcm := make([]byte, 2*n)
	i := 0
	for _, p := range parts {
		for range p.ms * rate / 1000 {
			var v int16
			if p.tone {
				v = int16(math.Round(amp * math.Sin(2*math.Pi*300*float64(i)/float64(rate))))
			}
			binary.LittleEndian.PutUint16(pcm[2*i:], uint16(v))
			i++
		}
	}
	return pcm
}

// write is one Write call: audio at a sample position.
type write struct {
	pos int64
	pcm []byte
}

// chunked cuts pcm starting at sample pos into writes of n samples.
func chunked(pos int64, pcm []byte, n int) []write {
	var out []write
	for len(pcm) > 0 {
		c := min(2*n, len(pcm))
		out = append(out, write{pos: pos, pcm: pcm[:c]})
		pos += int64(c / 2)
		pcm = pcm[c:]
	}
	return out
}

// run is the outcome of playing writes into a stream.
type run struct {
	results []stt.Result
	err     error // the first error from Write, after which writing stopped
}

// play opens a stream, plays writes while draining Results, closes the
// stream and returns everything it delivered.
func play(t *testing.T, r *Recognizer, sc stt.StreamConfig, writes []write) run {
	t.Helper()
	st, err := r.Open(t.Context(), sc)
	require.NoError(t, err)
	got := drainAsync(st.Results())
	var out run
	for _, w := range writes {
		if out.err = st.Write(w.pos, w.pcm); out.err != nil {
			break
		}
	}
	require.NoError(t, st.Close())
	out.results = waitDrain(t, got)
	return out
}

// drainAsync collects results until the channel closes.
func drainAsync(ch <-chan stt.Result) <-chan []stt.Result {
	done := make(chan []stt.Result, 1)
	go func() {
		var rs []stt.Result
		for r := range ch {
			rs = append(rs, r)
		}
		done <- rs
	}()
	return done
}

func waitDrain(t *testing.T, got <-chan []stt.Result) []stt.Result {
	t.Helper()
	select {
	case rs := <-got:
		return rs
	case <-time.After(10 * time.Second):
		require.FailNow(t, "results were not closed")
		return nil
	}
}

func finals(rs []stt.Result) []stt.Result {
	var out []stt.Result
	for _, r := range rs {
		if r.Kind == stt.Final {
			out = append(out, r)
		}
	}
	return out
}

func texts(rs []stt.Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Text)
	}
	return out
}

// requireWellFormed checks what holds for every run: segments numbered from
// 1 in order, partials that grow word by word and never repeat with rising
// stability, exactly one final per segment after its partials, and words
// spread evenly over the final.
func requireWellFormed(t *testing.T, track string, rs []stt.Result) {
	t.Helper()
	finalSeen := map[string]bool{}
	lastPartial := map[string]stt.Result{}
	segments := 0
	for _, r := range rs {
		if r.Kind == stt.Status {
			continue
		}
		require.Equal(t, track, r.Track)
		if _, ok := lastPartial[r.SegmentID]; !ok && !finalSeen[r.SegmentID] {
			segments++
			require.Equal(t, stt.SegmentID(track, segments), r.SegmentID, "segments in order")
		}
		require.False(t, finalSeen[r.SegmentID], "result after the final of %s", r.SegmentID)
		switch r.Kind {
		case stt.Partial:
			if prev, ok := lastPartial[r.SegmentID]; ok {
				require.Greater(t, len(strings.Fields(r.Text)), len(strings.Fields(prev.Text)), "partial grows")
				require.NotEqual(t, prev.Text, r.Text)
				require.Greater(t, r.Stability, prev.Stability)
				require.Equal(t, prev.StartMs, r.StartMs)
			}
			require.Less(t, r.Stability, 0.9)
			require.Empty(t, r.Words)
			lastPartial[r.SegmentID] = r
		case stt.Final:
			finalSeen[r.SegmentID] = true
			if prev, ok := lastPartial[r.SegmentID]; ok {
				require.Equal(t, prev.StartMs, r.StartMs)
				require.LessOrEqual(t, prev.EndMs, r.EndMs)
			}
			require.InDelta(t, 0.9, r.Confidence, 1e-9)
			require.Len(t, r.Words, len(strings.Fields(r.Text)))
			span := r.EndMs - r.StartMs
			for i, w := range r.Words {
				require.Equal(t, strings.Fields(r.Text)[i], w.Word)
				require.Equal(t, r.StartMs+span*int64(i)/int64(len(r.Words)), w.StartMs)
				require.Equal(t, r.StartMs+span*int64(i+1)/int64(len(r.Words)), w.EndMs)
			}
			require.Equal(t, r.EndMs, r.Words[len(r.Words)-1].EndMs)
		}
	}
	if n := len(rs); n > 0 && rs[n-1].Kind == stt.Status && rs[n-1].Status.Event == stt.EventFailed {
		// The utterance in progress when the stream failed is lost.
		require.GreaterOrEqual(t, len(finalSeen), segments-1, "one final per segment")
		return
	}
	require.Len(t, finalSeen, segments, "one final per segment")
}

// span is where a burst of tone was, in call-clock milliseconds.
type span struct{ start, end int64 }

// requireSpans checks each final against the burst it came from, to within
// one 20 ms window.
func requireSpans(t *testing.T, want []span, fs []stt.Result) {
	t.Helper()
	require.Len(t, fs, len(want))
	for i, w := range want {
		require.InDelta(t, w.start, fs[i].StartMs, 20, "start of %s", fs[i].SegmentID)
		require.InDelta(t, w.end, fs[i].EndMs, 20, "end of %s", fs[i].SegmentID)
	}
}

func inbound(rate int) stt.StreamConfig {
	return stt.StreamConfig{CallID: "CA1", Track: "inbound", SampleRate: rate}
}

// openCancellable opens a stream whose context the test cancels itself.
func openCancellable(t *testing.T, r *Recognizer, sc stt.StreamConfig) (*Stream, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := r.Open(ctx, sc)
	require.NoError(t, err)
	return st.(*Stream), cancel
}
