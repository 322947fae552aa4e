package bridge

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote`, `back\slash`, "ctl\x00\x1f\x7f", "\b\f\n\r\t", "é€😀", "bad\xff\xfe", "\u2028\u2029"} {
		want, err := json.Marshal(s)
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendString(nil, s)), "%q", s)
	}
}

func TestSequencer(t *testing.T) {
	started := func(tracks ...string) Event {
		return Event{Type: TypeCallStarted, CallID: "CA1", Body: CallStartedBody{Provider: "twilio", Tracks: tracks, SampleRate: 8000}}
	}
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }

	t.Run("seq per call, kinds and segments", func(t *testing.T) {
		a, b := &eventLog{}, &eventLog{}
		s := NewSequencer(Fanout{a, b}, 0, clock, zerolog.Nop())
		s.Publish(started("inbound"))
		s.Publish(Event{Type: TypeCallStarted, CallID: "CA2"})
		s.Publish(Event{Type: TypeTranscriptPartial, CallID: "CA1", Body: PartialBody{SegmentID: "s1"}})
		s.Publish(Event{Type: TypeTranscriptFinal, CallID: "CA1", Body: Segment{SegmentID: "s1"}})
		s.Publish(Event{Type: "", CallID: "CA1"}) // dropped
		require.Equal(t, a.evs, b.evs, "every publisher gets the same events")
		require.Len(t, a.evs, 4)
		var seqs []uint64
		var kinds []Kind
		var segs []string
		for _, ev := range a.evs {
			seqs, kinds, segs = append(seqs, ev.Seq), append(kinds, ev.Kind), append(segs, ev.Segment)
		}
		require.Equal(t, []uint64{1, 1, 2, 3}, seqs)
		require.Equal(t, []Kind{KindDurable, KindDurable, KindPartial, KindFinal}, kinds)
		require.Equal(t, []string{"", "", "s1", "s1"}, segs)
		require.JSONEq(t, `{"type":"transcript.partial","call_id":"CA1","seq":2,"track":"","segment_id":"s1","text":"","stability":0,"start_ms":0,"end_ms":0}`, string(a.evs[2].Data))
	})

	t.Run("call.updated replaces call.started", func(t *testing.T) {
		p := &eventLog{}
		s := NewSequencer(p, 0, clock, zerolog.Nop())
		s.Publish(started("inbound"))
		s.Publish(Event{Type: TypeCallUpdated, CallID: "CA1", Body: CallStartedBody{Tracks: []string{"inbound", "outbound"}, CustomParameters: map[string]string{"k": "v"}}})
		require.Nil(t, p.evs[0].Start)
		require.Equal(t, `{"type":"call.started","call_id":"CA1","seq":1,"provider":"twilio","tracks":["inbound","outbound"],"started_at":"0001-01-01T00:00:00Z","custom_parameters":{"k":"v"},"sample_rate":8000}`, string(p.evs[1].Start))
	})

	t.Run("a continued call's seq goes on until forgotten", func(t *testing.T) {
		p := &eventLog{}
		s := NewSequencer(p, time.Minute, clock, zerolog.Nop()) // retain raised to DefaultSeqRetain
		s.Publish(started("inbound"))
		s.Publish(Event{Type: TypeCallEnded, CallID: "CA1", Body: CallEndedBody{Reason: ReasonStop}})
		now = now.Add(DefaultSeqRetain - time.Second)
		s.Publish(started("inbound"))
		require.Equal(t, uint64(3), p.evs[2].Seq)
		s.Publish(Event{Type: TypeCallEnded, CallID: "CA1"})
		now = now.Add(DefaultSeqRetain)
		s.Publish(started("inbound"))
		require.Equal(t, uint64(1), p.evs[4].Seq, "forgotten after retain")
	})
}
