package google

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/stt"
	"github.com/callcaptions/bridge/stt/google/speechtest"
	"github.com/callcaptions/bridge/stt/session"
)

// TestChunks: audio written in 20 ms frames to a track's session reaches
// Google whole and in order, in requests of ChunkDuration; a chunk still
// being filled is sent when the frames pause, without ending the engine
// stream, and at the end of the track.
func TestChunks(t *testing.T) {
	fake, addr := speechtest.Start(t, speechtest.Config{KeepAudio: true})
	cfg := testConfig(addr) // ChunkDuration 100 ms
	// Far beyond the chunk's duration, so that only a missing pause flush,
	// not a slow machine, lets idle-close send the rest and end the stream.
	cfg.IdleClose = 8 * time.Second
	r := newTestRecognizer(t, cfg)
	const rate, frame, frames = 8000, 160, 106
	total := frames * 20 * time.Millisecond
	pcm := synth(rate, total, utterances(1, 200*time.Millisecond, total))
	h := &countResults{}
	s := session.New(session.Config{Recognizer: r, Handler: h, Log: zerolog.Nop(),
		Stream: stt.StreamConfig{CallID: "CA1", Track: "inbound", SampleRate: rate}})
	done := make(chan struct{})
	go func() { defer close(done); s.Run(context.Background()) }()
	write := func(from, to int) {
		for k := from; k < to; k++ {
			s.Write(int64(k*frame), pcm[2*k*frame:2*(k+1)*frame])
		}
	}
	heard := func() (n int) {
		for _, msgs := range fake.Audio() {
			for _, m := range msgs {
				n += len(m)
			}
		}
		return n
	}

	write(0, 53) // ten chunks and 60 ms
	require.Eventually(t, func() bool { return heard() == 53*2*frame }, 5*time.Second, time.Millisecond,
		"the chunk being filled is sent while the frames pause")
	write(53, frames) // ten chunks and 60 ms more
	s.Close(context.Background())
	<-done

	audio := fake.Audio()
	require.Len(t, audio, 1, "the pause, shorter than idle-close, kept the engine stream")
	var got []byte
	var sizes []int
	for _, m := range audio[0] {
		got = append(got, m...)
		sizes = append(sizes, len(m))
	}
	require.Equal(t, pcm, got, "all the audio, in order")
	const chunk, rest = 2 * rate / 10, 3 * 2 * frame
	want := []int{}
	for range 2 {
		for range 10 {
			want = append(want, chunk)
		}
		want = append(want, rest)
	}
	require.Equal(t, want, sizes, "requests of 100 ms; the rest at the pause and at the end")
	require.Zero(t, h.gaps.Load())
	require.Positive(t, h.results.Load())
}
