package bridge

import (
	"fmt"
	"slices"
	"sync"

	"github.com/callcaptions/bridge/bridge/provider"
)

// Stream is one provider stream (one media socket) of a call. The socket's
// read loop is its only caller, except for stop, which the call uses to ask
// the socket to close (shutdown, maximum duration).
type Stream struct {
	call   *Call
	id     string
	tracks []*track

	// Timestamp anchoring for providers whose media timestamps count from
	// the stream's start.
	tsBase    int64
	offsetMs  int64
	hasTsBase bool

	// reorder holds one jitter window per track (parallel to tracks) for
	// providers whose frames arrive out of order; nil entries elsewhere.
	reorder []*reorderer

	// For providers whose start frame names no tracks (Telnyx, Exotel):
	// the media frames name them, and a track is added the first time one
	// appears.
	start      *provider.Start
	order      provider.ByteOrder
	openTracks bool

	endOnce    sync.Once
	stopOnce   sync.Once
	stopCh     chan struct{}
	stopReason string
}

// CallID is the call this stream belongs to.
func (s *Stream) CallID() string { return s.call.id }

// Call is the call this stream belongs to.
func (s *Stream) Call() *Call { return s.call }

// ID is the provider's stream id.
func (s *Stream) ID() string { return s.id }

func (s *Stream) track(name string) *track {
	for _, t := range s.tracks {
		if t.name == name {
			return t
		}
	}
	return nil
}

// Media records one media frame. Errors describe a bad frame; the caller
// decides whether the stream goes on.
func (s *Stream) Media(ev *provider.Event) error {
	i := 0
	if ev.Track != "" && (len(s.tracks) > 1 || ev.Track != s.tracks[0].name) {
		if i = slices.IndexFunc(s.tracks, func(t *track) bool { return t.name == ev.Track }); i < 0 {
			if !s.openTracks {
				return fmt.Errorf("media for track %q, which the stream did not announce", ev.Track)
			}
			if err := s.call.addTrackTo(s, ev.Track); err != nil {
				return err
			}
			i = len(s.tracks) - 1
		}
	}
	// A frame goes on at once unless the track's jitter window holds it.
	t, ro := s.tracks[i], s.reorder[i]
	if ro == nil || !ev.HasChunk || ro.bypass(ev.Chunk) {
		if ro != nil && !ev.HasChunk {
			// Nothing to order by: what is held goes first, as if the frames
			// had come in order (one that does not decode is dropped).
			_ = s.release(i, ro, true)
		}
		return s.place(t, ev.Payload, ev.Chunk, ev.HasChunk, ev.TimestampMs, ev.HasTimestamp)
	}
	if !ro.add(ev.Chunk, ev.TimestampMs, ev.HasTimestamp, ev.Payload) {
		t.duplicates.Add(1)
		s.call.env.metrics.duplicates.Inc()
		return nil
	}
	return s.release(i, ro, false)
}

// place decodes one frame and records it where its chunk and timestamp put
// it on the track.
func (s *Stream) place(t *track, payload []byte, chunk int64, hasChunk bool, tsMs int64, hasTs bool) error {
	pcm, err := t.decode(payload)
	if err != nil {
		return err
	}
	if len(pcm) == 0 {
		return nil
	}
	t.frames.Add(1)
	n := int64(len(pcm) / 2)
	var at int64
	if hasTs {
		at = s.timestampToCallMs(tsMs) * int64(t.rate) / 1000
	}
	var first int64
	if !t.clock.started && !hasTs {
		first = s.call.streamOffsetMs() * int64(t.rate) / 1000
	}
	p := t.clock.place(n, at, hasTs, chunk, hasChunk, first, t.silenceAllowance)
	if p.drop {
		t.duplicates.Add(1)
		s.call.env.metrics.duplicates.Inc()
		t.mediaWarn().Int64("chunk", chunk).Int64("timestamp", tsMs).Int64("duplicates", t.duplicates.Load()).
			Msg("media frame dropped: a duplicate, or its timestamp or chunk is behind audio already recorded")
		return nil
	}
	t.detectOrder(pcm)
	t.write(p, pcm)
	s.call.env.metrics.Frame(len(pcm))
	return nil
}

// timestampToCallMs maps a media timestamp to the call clock. Unix-epoch
// timestamps (Plivo, Vobiz) share one base per call, so a reconnecting
// stream continues exactly; relative timestamps are anchored once per
// stream.
func (s *Stream) timestampToCallMs(ts int64) int64 {
	const epochMs = 1_000_000_000_000 // 2001-09-09: any later value is a Unix-ms timestamp
	if ts >= epochMs {
		return s.call.epochToCallMs(ts)
	}
	if !s.hasTsBase {
		s.hasTsBase = true
		s.tsBase = ts
		s.offsetMs = s.call.streamOffsetMs()
	}
	return s.offsetMs + ts - s.tsBase
}

// DTMF records a key press.
func (s *Stream) DTMF(ev *provider.Event) {
	t := s.track(ev.Track)
	if t == nil {
		t = s.tracks[0]
	}
	name := t.name
	at := t.clock.next * 1000 / int64(t.rate)
	if ev.HasTimestamp {
		at = s.timestampToCallMs(ev.TimestampMs)
	}
	c := s.call
	c.event(TranscriptEvent{Type: TypeDTMF, Track: name, AtMs: at, Digit: ev.Digit, DurationMs: ev.DurationMs},
		DTMFBody{Track: name, Digit: ev.Digit, AtMs: at, DurationMs: ev.DurationMs})
}

// End ends the stream: the provider sent stop (ReasonStop), the socket
// closed (ReasonDisconnect), or the bridge stopped it. err says what went
// wrong, if anything. Idempotent; only the first call counts.
//
// When End returns, the stream's audio (frames held for reordering
// included) is in its tracks' WAV files, not yet synced: a process killed
// from then on loses none of it, so a provider's stop may be answered.
// The rest of the end (transcription settling, the WAVs closed and synced,
// the documents) is the call's, on its own goroutine, once its last
// stream has gone.
func (s *Stream) End(reason string, err error) {
	s.endOnce.Do(func() {
		// Guarded: the stream must leave its call whatever happens to the
		// frames still held for reordering.
		s.call.guard(PanicTrack, func() {
			s.drainAll()
			for _, t := range s.tracks {
				t.rec.flush()
			}
		})
		if r := s.StopReason(); r != "" {
			reason = r
		}
		s.call.streamEnded(s, reason, err)
	})
}

// Stopped is closed when the bridge wants this stream's socket closed;
// StopReason says why.
func (s *Stream) Stopped() <-chan struct{} { return s.stopCh }

// StopReason is the reason given to stop, once Stopped is closed.
func (s *Stream) StopReason() string {
	select {
	case <-s.stopCh:
		return s.stopReason
	default:
		return ""
	}
}

func (s *Stream) stop(reason string) {
	s.stopOnce.Do(func() {
		s.stopReason = reason
		close(s.stopCh)
	})
}
