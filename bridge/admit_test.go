package bridge

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge/provider"
)

// gatedStore is a memStore whose Open blocks, for the ids gated, until the
// gate is opened: a disk that stalls on one call's folder.
type gatedStore struct {
	*memStore
	mu    sync.Mutex
	gates map[string]chan struct{}
}

func (s *gatedStore) gate(id string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := make(chan struct{})
	s.gates[id] = g
	return g
}

func (s *gatedStore) Open(id string) (CallFiles, error) {
	s.mu.Lock()
	g := s.gates[id]
	s.mu.Unlock()
	if g != nil {
		<-g
	}
	return s.memStore.Open(id)
}

var pcmu8k = provider.Format{Encoding: provider.PCMU, SampleRate: 8000, Channels: 1, Raw: "audio/x-mulaw"}

// playCall plays a whole one-track call of 50 frames; it runs off the
// test goroutine, so it returns its error.
func playCall(reg *Registry, id string, gen func(int) int16) error {
	s, err := reg.StartStream(provider.Twilio, &provider.Start{CallID: id, StreamID: "MZ-" + id, AccountID: "AC1", Tracks: []string{"inbound"}, Format: pcmu8k})
	if err != nil {
		return err
	}
	for k := range 50 {
		ev := provider.Event{Kind: provider.KindMedia, Track: "inbound", Payload: ulawFrame(gen, k),
			Chunk: int64(k + 1), HasChunk: true, TimestampMs: int64(20 * k), HasTimestamp: true}
		if err := s.Media(&ev); err != nil {
			return err
		}
	}
	s.End(ReasonStop, nil)
	return nil
}

// TestSlowDiskStallsOnlyItsCall: while the disk holds one call's folder
// (a call starting, a refused stream recorded, a callback written into a
// stored call.json), other calls start, stream and end normally.
func TestSlowDiskStallsOnlyItsCall(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, reg *Registry) // before the disk stalls
		stall func(reg *Registry)               // the operation that meets the stalled disk
	}{
		{"a call starting", nil, func(reg *Registry) { _ = playCall(reg, "CAslow", utterances([2]float64{0, 1})) }},
		{"a refused stream recorded", nil, func(reg *Registry) {
			_, _ = reg.StartStream(provider.Twilio, &provider.Start{CallID: "CAslow", StreamID: "MZx", AccountID: "AC1", Format: provider.Format{Raw: "audio/opus"}})
		}},
		{"a callback written into a stored call", func(t *testing.T, reg *Registry) {
			require.NoError(t, playCall(reg, "CAslow", utterances([2]float64{0, 1})))
			waitCallEnded(t, reg, "CAslow")
		}, func(reg *Registry) { _, _ = reg.AttachCallback("CAslow", map[string]any{"event": "stream-stopped"}) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := &gatedStore{memStore: newMemStore(), gates: map[string]chan struct{}{}}
			reg := NewRegistry(Config{Store: store, Log: zerolog.Nop()})
			if tc.setup != nil {
				tc.setup(t, reg)
			}
			gate := store.gate("CAslow")
			stalled := make(chan struct{})
			go func() {
				defer close(stalled)
				tc.stall(reg)
			}()
			defer func() { <-stalled }()
			defer close(gate)
			// The stalled operation is under way once it waits on the disk.
			require.Eventually(t, func() bool {
				reg.mu.Lock()
				defer reg.mu.Unlock()
				return reg.busy["CAslow"] != nil || reg.active["CAslow"] != nil
			}, 5*time.Second, time.Millisecond)

			const others = 4
			errs := make(chan error, others)
			for i := range others {
				go func() { errs <- playCall(reg, fmt.Sprintf("CAfast%d", i), utterances([2]float64{0, 1})) }()
			}
			for range others {
				select {
				case err := <-errs:
					require.NoError(t, err)
				case <-time.After(20 * time.Second):
					t.Fatal("calls on a healthy disk stalled behind another call's disk")
				}
			}
			want := decoded(utterances([2]float64{0, 1}), 50)
			for i := range others {
				id := fmt.Sprintf("CAfast%d", i)
				rec := waitCallEnded(t, reg, id)
				require.Equal(t, int64(50*160), rec.Tracks[0].Samples, id)
				require.Equal(t, want, store.sink(id, "inbound").bytes(), id)
			}
		})
	}
}

// TestStreamJoinsOnlyItsOwnCall: a stream naming a live call's id from
// another provider or account is refused and leaves the call as it was: no
// stream in its record, no audio in its recording, no event.
func TestStreamJoinsOnlyItsOwnCall(t *testing.T) {
	store := newMemStore()
	events := &eventLog{}
	reg := NewRegistry(Config{Store: store, Publisher: events, Log: zerolog.Nop()})
	const id = "CAhijack"
	owner, err := reg.StartStream(provider.Twilio, &provider.Start{CallID: id, StreamID: "MZowner", AccountID: "AC1", Tracks: []string{"inbound"}, Format: pcmu8k})
	require.NoError(t, err)
	gen := utterances([2]float64{0, 1})
	play(t, owner, gen, 0, 10)
	before, _ := reg.Record(id)
	nEvents := len(events.of(id, ""))

	cases := []struct {
		name string
		p    provider.Name
		st   provider.Start
		want error
	}{
		{"another provider", provider.Plivo, provider.Start{AccountID: "AC1", Tracks: []string{"outbound"}, Format: pcmu8k}, ErrProviderMismatch},
		{"another account", provider.Twilio, provider.Start{AccountID: "AC2", Tracks: []string{"outbound"}, Format: pcmu8k}, ErrAccountMismatch},
		{"no account", provider.Twilio, provider.Start{Tracks: []string{"outbound"}, Format: pcmu8k}, ErrAccountMismatch},
		{"another provider, unsupported codec", provider.Plivo, provider.Start{AccountID: "AC1", Format: provider.Format{Raw: "audio/opus"}}, ErrUnsupported},
		{"another account, unsupported codec", provider.Twilio, provider.Start{AccountID: "AC2", Format: provider.Format{Raw: "audio/opus"}}, ErrUnsupported},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.st
			st.CallID, st.StreamID = id, "MZintruder"
			s, err := reg.StartStream(tc.p, &st)
			require.ErrorIs(t, err, tc.want)
			require.Nil(t, s)
			require.Equal(t, RefusalReason(tc.want), RefusalReason(err))
		})
	}
	play(t, owner, gen, 10, 50)
	owner.End(ReasonStop, nil)
	rec := waitCallEnded(t, reg, id)
	require.Len(t, rec.Streams, 1, "only the owner's stream")
	require.Equal(t, "MZowner", rec.Streams[0].StreamID)
	require.Equal(t, before.Tracks[0].Name, rec.Tracks[0].Name)
	require.Len(t, rec.Tracks, 1, "no track of the intruder")
	require.Equal(t, decoded(gen, 50), store.sink(id, "inbound").bytes(), "the recording holds the owner's audio only")
	require.Nil(t, store.sink(id, "outbound"))
	var types []string
	for _, ev := range events.of(id, "")[nEvents:] {
		types = append(types, ev.Type)
	}
	require.NotContains(t, types, TypeCallUpdated, "no event for the intruder")
}

// TestResumeWindow: an ended call is continued by the same provider and
// account within the resume window, and by nobody after it.
func TestResumeWindow(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	gen := utterances([2]float64{0, 1})
	start := func(reg *Registry, p provider.Name, acct, stream string) (*Stream, error) {
		return reg.StartStream(p, &provider.Start{CallID: "CAresume", StreamID: stream, AccountID: acct, Tracks: []string{"inbound"}, Format: pcmu8k})
	}
	cases := []struct {
		name   string
		window time.Duration
		after  time.Duration
		p      provider.Name
		acct   string
		want   error // nil: the call continues
	}{
		{"within the window", time.Minute, 59 * time.Second, provider.Twilio, "AC1", nil},
		{"after the window", time.Minute, 61 * time.Second, provider.Twilio, "AC1", ErrResumeWindow},
		{"never", -1, time.Second, provider.Twilio, "AC1", ErrResumeWindow},
		{"within, another provider", time.Minute, time.Second, provider.SignalWire, "AC1", ErrProviderMismatch},
		{"within, another account", time.Minute, time.Second, provider.Twilio, "AC9", ErrAccountMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemStore()
			events := &eventLog{}
			reg := NewRegistry(Config{Store: store, Publisher: events, Log: zerolog.Nop(), Now: clock, ResumeWindow: tc.window})
			s, err := start(reg, provider.Twilio, "AC1", "MZ1")
			require.NoError(t, err)
			play(t, s, gen, 0, 50)
			s.End(ReasonStop, nil)
			first := waitCallEnded(t, reg, "CAresume")
			require.Eventually(t, func() bool { return len(events.of("CAresume", TypeCallEnded)) == 1 }, 10*time.Second, time.Millisecond)
			advance(tc.after)
			nEvents := len(events.of("CAresume", ""))

			s, err = start(reg, tc.p, tc.acct, "MZ2")
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				// Refused with an unsupported codec too: still not recorded.
				_, err = reg.StartStream(tc.p, &provider.Start{CallID: "CAresume", StreamID: "MZ3", AccountID: tc.acct, Format: provider.Format{Raw: "audio/opus"}})
				require.ErrorIs(t, err, ErrUnsupported)
				rec, ok := reg.Record("CAresume")
				require.True(t, ok)
				require.Equal(t, first, rec, "the ended call is left as it was")
				var stored CallRecord
				require.NoError(t, store.ReadJSON("CAresume", "call.json", &stored))
				require.Len(t, stored.Streams, 1)
				require.Equal(t, decoded(gen, 50), store.sink("CAresume", "inbound").bytes())
				require.Len(t, events.of("CAresume", ""), nEvents, "no event")
				return
			}
			require.NoError(t, err)
			play(t, s, gen, 0, 50)
			s.End(ReasonStop, nil)
			require.Eventually(t, func() bool {
				rec, _ := reg.Record("CAresume")
				return rec.Status == StatusEnded && len(rec.Streams) == 2
			}, 10*time.Second, 5*time.Millisecond)
			rec, _ := reg.Record("CAresume")
			require.Equal(t, first.StartedAt, rec.StartedAt, "the same call, continued")
		})
	}
}

// TestRefusalBoundedBeforeWrite: a refused stream with a call id no
// provider sends writes nothing and logs a bounded line; refusals of a
// known call list a few and count the rest.
func TestRefusalBoundedBeforeWrite(t *testing.T) {
	t.Run("huge call ids", func(t *testing.T) {
		store := newMemStore()
		var logs syncBuffer
		reg := NewRegistry(Config{Store: store, Log: zerolog.New(&logs)})
		for i := range 50 {
			id := fmt.Sprintf("%d-%s", i, strings.Repeat("x", 100_000))
			_, err := reg.StartStream(provider.Twilio, &provider.Start{CallID: id, StreamID: strings.Repeat("s", 100_000),
				Tracks: []string{strings.Repeat("t", 100_000)}, Format: provider.Format{Raw: strings.Repeat("f", 100_000)}})
			require.ErrorIs(t, err, ErrCallID)
			require.Less(t, len(err.Error()), 200)
		}
		store.mu.Lock()
		require.Empty(t, store.calls, "nothing written")
		store.mu.Unlock()
		require.Empty(t, reg.Calls())
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			require.Less(t, len(line), 1000, "log line bounded: %.200s", line)
		}
	})
	t.Run("unsupported codec named at length", func(t *testing.T) {
		store := newMemStore()
		var logs syncBuffer
		reg := NewRegistry(Config{Store: store, Log: zerolog.New(&logs)})
		for i := range 20 {
			_, err := reg.StartStream(provider.Twilio, &provider.Start{CallID: "CAcodec", StreamID: fmt.Sprintf("MZ%d-%s", i, strings.Repeat("s", 10_000)),
				AccountID: "AC1", Format: provider.Format{Raw: strings.Repeat("f", 100_000)}})
			require.ErrorIs(t, err, ErrUnsupported)
		}
		rec, ok := reg.Record("CAcodec")
		require.True(t, ok)
		require.Len(t, rec.Streams, maxRefusedStreams, "a few refused streams listed")
		require.Equal(t, int64(20-maxRefusedStreams), rec.RefusedStreamsDropped, "the rest counted")
		for _, s := range rec.Streams {
			require.LessOrEqual(t, len(s.Format), maxLogged+len("…"))
			require.LessOrEqual(t, len(s.StreamID), MaxCallIDLen)
		}
		var stored CallRecord
		require.NoError(t, store.ReadJSON("CAcodec", "call.json", &stored))
		require.Less(t, len(fmt.Sprint(stored)), 20_000, "the stored record stays small")
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			require.Less(t, len(line), 1000, "log line bounded: %.200s", line)
		}
	})
	t.Run("at the maximum of calls", func(t *testing.T) {
		store := newMemStore()
		reg := NewRegistry(Config{Store: store, Log: zerolog.Nop(), MaxCalls: 1})
		live := startCall(t, reg, "CAlive")
		defer live.End(ReasonStop, nil)
		_, err := reg.StartStream(provider.Twilio, &provider.Start{CallID: "CAother", StreamID: "MZ", Format: provider.Format{Raw: "audio/opus"}})
		require.ErrorIs(t, err, ErrUnsupported)
		_, ok := reg.Record("CAother")
		require.False(t, ok, "a refusal is not recorded beyond the maximum of calls")
		require.Error(t, store.ReadJSON("CAother", "call.json", &CallRecord{}))
	})
}
