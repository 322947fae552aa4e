package bridge

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/callcaptions/bridge/bridge/provider"
	"github.com/callcaptions/bridge/recorder"
)

// diskCalls keeps calls in a recorder.Store, as the bridge does in
// production.
type diskCalls struct{ *recorder.Store }

func (s diskCalls) Open(id string) (CallFiles, error) {
	c, err := s.Store.Open(id)
	if err != nil {
		return nil, err
	}
	return diskCallFiles{c}, nil
}

type diskCallFiles struct{ *recorder.Call }

func (c diskCallFiles) CreateTrack(track string, rate int) (AudioSink, error) {
	return c.Call.CreateTrack(track, rate)
}

func (c diskCallFiles) AppendTrack(track string, rate int) (AudioSink, error) {
	return c.Call.AppendTrack(track, rate)
}

// TestStartedCallIsRepairedAfterCrash: a call's documents are written
// without waiting for the disk; still, from the moment StartStream
// returns, call.json names the call and its track, so a process that dies then (the registry abandoned, never
// shut down) leaves a call the next start-up finds, marks interrupted and
// whose recording it repairs.
func TestStartedCallIsRepairedAfterCrash(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	store, err := recorder.NewStore(dir)
	require.NoError(t, err)
	store.SyncWith(recorder.NewSyncer(time.Hour, nil)) // a round never comes: nothing waits for the disk
	crashed := NewRegistry(Config{Store: diskCalls{store}, Log: zerolog.Nop()})
	s := startCall(t, crashed, "CA-crash")

	b, err := os.ReadFile(filepath.Join(store.Dir("CA-crash"), "call.json"))
	require.NoError(t, err, "call.json is there when StartStream returns")
	var rec CallRecord
	require.NoError(t, json.Unmarshal(b, &rec))
	require.Equal(t, StatusActive, rec.Status)
	require.Len(t, rec.Tracks, 1)
	require.Equal(t, "inbound", rec.Tracks[0].Name)

	play(t, s, utterances([2]float64{0, 1}), 0, 100) // 2 s: the header is patched every second

	// The next process, on the same folder, while the first is gone.
	store2, err := recorder.NewStore(dir)
	require.NoError(t, err)
	next := NewRegistry(Config{Store: diskCalls{store2}, Log: zerolog.Nop()})
	interrupted, err := next.Load()
	require.NoError(t, err)
	require.Equal(t, 1, interrupted)
	got, ok := next.Record("CA-crash")
	require.True(t, ok)
	require.Equal(t, StatusInterrupted, got.Status)
	require.Len(t, got.Tracks, 1)
	require.GreaterOrEqual(t, got.Tracks[0].Samples, int64(8000), "the repaired recording holds the audio whose header was patched")

	// Let the abandoned registry's goroutines finish.
	s.End(ReasonStop, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	crashed.Shutdown(ctx)
}

// TestStreamEndPutsItsAudioInTheWAV: when Stream.End returns, everything
// the stream delivered is in its track's WAV file, under a header that
// counts it, though the call goes on (its other stream is live, so nothing
// is finalized): the web layer answers a provider's stop only then, and a
// process killed after that answer has lost none of the stream's audio.
func TestStreamEndPutsItsAudioInTheWAV(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	store, err := recorder.NewStore(t.TempDir())
	require.NoError(t, err)
	reg := NewRegistry(Config{Store: diskCalls{store}, Log: zerolog.Nop()})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		reg.Shutdown(ctx)
	}()
	open := func(track string) *Stream {
		s, err := reg.StartStream(provider.Twilio, &provider.Start{CallID: "CA-two", StreamID: "MZ-" + track, AccountID: "AC1", Tracks: []string{track}, Format: pcmu8k})
		require.NoError(t, err)
		return s
	}
	in, out := open("inbound"), open("outbound")
	defer out.End(ReasonStop, nil)
	// 0.4 s: less than the WAV's write buffer, and than the second after
	// which the header is patched anyway.
	const frames = 20
	play(t, in, utterances([2]float64{0, 1}), 0, frames)
	in.End(ReasonStop, nil)

	path, err := store.TrackPath("CA-two", "inbound")
	require.NoError(t, err)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Len(t, b, 44+frames*320, "the stream's audio is in the file")
	require.Equal(t, uint32(len(b)-8), binary.LittleEndian.Uint32(b[4:8]))
	require.Equal(t, uint32(frames*320), binary.LittleEndian.Uint32(b[40:44]), "the header counts it")
	rec, _ := reg.Record("CA-two")
	require.Equal(t, StatusActive, rec.Status, "the call goes on")
}

// TestConcurrentStarts: start frames racing for one call id make one call,
// whose track one stream feeds (the others are refused as the track is
// busy, never given a second call or recording); racing for new calls at
// the limit, exactly MaxCalls start. Through the real recorder, whose
// documents do not wait for the disk.
func TestConcurrentStarts(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const racers = 8
	race := func(reg *Registry, id func(i int) string) (streams []*Stream, errs []error) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range racers {
			wg.Go(func() {
				<-start
				s, err := reg.StartStream(provider.Twilio, &provider.Start{CallID: id(i), StreamID: fmt.Sprintf("MZ%d", i), AccountID: "AC1", Tracks: []string{"inbound"}, Format: pcmu8k})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				streams = append(streams, s)
			})
		}
		close(start)
		wg.Wait()
		return streams, errs
	}
	newReg := func(t *testing.T, maxCalls int) (*Registry, *recorder.Store) {
		store, err := recorder.NewStore(t.TempDir())
		require.NoError(t, err)
		store.SyncWith(recorder.NewSyncer(time.Hour, nil))
		reg := NewRegistry(Config{Store: diskCalls{store}, Log: zerolog.Nop(), MaxCalls: maxCalls})
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			reg.Shutdown(ctx)
		})
		return reg, store
	}

	t.Run("one call id", func(t *testing.T) {
		reg, store := newReg(t, 0)
		streams, errs := race(reg, func(int) string { return "CA-same" })
		require.Len(t, streams, 1)
		require.Len(t, errs, racers-1)
		for _, err := range errs {
			require.ErrorIs(t, err, ErrTrackBusy)
		}
		require.Equal(t, 1, reg.Active())
		play(t, streams[0], utterances([2]float64{0, 1}), 0, 50)
		streams[0].End(ReasonStop, nil)
		rec := waitCallEnded(t, reg, "CA-same")
		require.Len(t, rec.Tracks, 1)
		require.Equal(t, int64(50*160), rec.Tracks[0].Samples)
		var stored CallRecord
		require.NoError(t, store.ReadJSON("CA-same", "call.json", &stored))
		require.Equal(t, StatusEnded, stored.Status)
		require.Equal(t, int64(50*160), stored.Tracks[0].Samples)
	})
	t.Run("new calls at the limit", func(t *testing.T) {
		const limit = 3
		reg, _ := newReg(t, limit)
		streams, errs := race(reg, func(i int) string { return fmt.Sprintf("CA-%d", i) })
		require.Len(t, streams, limit)
		require.Len(t, errs, racers-limit)
		for _, err := range errs {
			require.ErrorIs(t, err, ErrTooManyCalls)
		}
		require.Equal(t, limit, reg.Active())
		for _, s := range streams {
			s.End(ReasonStop, nil)
		}
	})
}
