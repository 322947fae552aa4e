package bridge

import (
	"cmp"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Publisher takes the bridge's events, numbered and encoded. Several
// publish side by side (see Fanout).
//
// The rule for every implementation: Publish never blocks. It runs on a
// call's ingest and STT goroutines, holding that call's event lock (so a
// call's events arrive in seq order), and a publisher that waited for a
// slow reader or a network would stall the call's captions for every
// other publisher too. Queue with a bound and drop (and count) instead.
// The event is shared with the other publishers: Data and Start must not
// be modified.
type Publisher interface {
	Publish(ev Event)
}

// Fanout hands every event to each of its publishers in turn, side by
// side: the in-process caption hub, and message buses or webhooks beside
// it. Each of them must keep the Publisher rule: Publish never blocks.
type Fanout []Publisher

// Publish implements Publisher.
func (f Fanout) Publish(ev Event) {
	for _, p := range f {
		p.Publish(ev)
	}
}

// DefaultSeqRetain is how long a Sequencer remembers an ended call's seq
// at least: as long as the caption hub keeps an ended call for late
// joiners by default, so a resume never sees a call's seq go back.
const DefaultSeqRetain = 10 * time.Minute

// Sequencer numbers the events of each call and encodes each event once,
// before any publisher sees it, so that every publisher numbers a call's
// events alike.
//
// A call's seq starts at 1 and increases by one per event; when the call
// id starts again (call.started after call.ended: a continued call) it
// keeps increasing, so resumes never mistake new events for old ones
// (for retain after the call ended, in memory only: see doc.go).
//
// Publish runs on its caller (no goroutines). It encodes outside any lock,
// then takes the call's own lock to number the event and hand it to the
// Publisher, so each call's events reach it in seq order. Lock order is
// Sequencer.mu → callSeq.mu, never the other way; the publisher's own
// locks come after both.
type Sequencer struct {
	pub    Publisher
	retain time.Duration
	now    func() time.Time
	// badLog reports malformed events, which can repeat per event.
	badLog zerolog.Logger

	mu    sync.RWMutex
	calls map[string]*callSeq
	ended []endedSeq // ended calls in end order, for eviction
}

// callSeq is what a Sequencer keeps of one call id.
type callSeq struct {
	mu       sync.Mutex
	seq      uint64
	start    *CallStartedBody // call.started merged with every call.updated since; nil before call.started
	startSeq uint64
	ended    bool
	endedAt  time.Time
}

type endedSeq struct {
	id string
	c  *callSeq
	at time.Time
}

// NewSequencer returns a Sequencer that hands every event to pub. retain
// is how long an ended call's seq is remembered (at least
// DefaultSeqRetain); now is the clock (nil: time.Now).
func NewSequencer(pub Publisher, retain time.Duration, now func() time.Time, log zerolog.Logger) *Sequencer {
	if now == nil {
		now = time.Now
	}
	log = log.With().Str("component", "events").Logger()
	return &Sequencer{
		pub: pub, retain: max(retain, DefaultSeqRetain), now: now,
		badLog: log.Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Minute}),
		calls:  map[string]*callSeq{},
	}
}

// Publish fills in ev's Seq, Kind, Segment, Data and Start from its Type,
// CallID and Body and hands it to the publisher. An event without a type
// or call id is dropped; one whose body does not encode to a JSON object
// is sent without it. Both are logged.
func (s *Sequencer) Publish(ev Event) {
	if ev.CallID == "" || ev.Type == "" {
		s.badLog.Error().Str("type", ev.Type).Str("call_id", ev.CallID).Msg("publish: event without type or call id dropped")
		return
	}
	// Encode everything but seq before taking any lock.
	body, err := marshalBody(ev.Body)
	if err != nil {
		s.badLog.Error().Err(err).Str("type", ev.Type).Str("call_id", ev.CallID).Msg("publish: body not encoded, event sent without it")
		body = nil
	}
	ev.Kind, ev.Segment = kindOf(ev.Type, ev.Body)
	buf := make([]byte, 0, len(ev.Type)+len(ev.CallID)+len(body)+48)
	buf = appendPrefix(buf, ev.Type, ev.CallID)

	c, now := s.call(ev.Type, ev.CallID)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	ev.Seq = c.seq
	ev.Data = appendBody(appendSeq(buf, c.seq), body)
	switch ev.Type {
	case TypeCallStarted:
		// A continued call starts afresh (but for its seq).
		c.ended, c.start, c.startSeq = false, startedBodyOf(ev.Body), c.seq
	case TypeCallUpdated:
		ev.Start = c.updateStart(ev.CallID, ev.Body)
	case TypeCallEnded:
		c.ended, c.endedAt, c.start = true, now, nil
	}
	s.pub.Publish(ev)
}

// call returns the state of call id, made on its first event. call.started
// and call.ended also forget the calls that ended longer than retain ago,
// and call.ended lists its call for that at now, which it returns.
func (s *Sequencer) call(typ, id string) (c *callSeq, now time.Time) {
	s.mu.RLock()
	c = s.calls[id]
	s.mu.RUnlock()
	if c != nil && typ != TypeCallStarted && typ != TypeCallEnded {
		return c, now
	}
	now = s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evictLocked(now)
	if c = s.calls[id]; c == nil {
		c = &callSeq{}
		s.calls[id] = c
	}
	if typ == TypeCallEnded {
		s.ended = append(s.ended, endedSeq{id: id, c: c, at: now})
	}
	return c, now
}

// evictLocked forgets ended calls older than retain. s.mu must be held for
// writing.
func (s *Sequencer) evictLocked(now time.Time) {
	n := 0
	for _, e := range s.ended {
		if now.Sub(e.at) < s.retain {
			break
		}
		n++
		e.c.mu.Lock()
		// Only if the call did not start again (or end again later).
		gone := e.c.ended && e.c.endedAt.Equal(e.at)
		e.c.mu.Unlock()
		if gone && s.calls[e.id] == e.c {
			delete(s.calls, e.id)
		}
	}
	if n > 0 {
		clear(s.ended[:n])
		s.ended = s.ended[n:]
	}
}

// updateStart merges what a call.updated brings into the call's
// call.started and returns that re-encoded with call.started's seq, for
// publishers that keep call.started for late joiners; nil if the call has
// no call.started (or the update no body). c.mu must be held.
func (c *callSeq) updateStart(id string, body any) []byte {
	upd := startedBodyOf(body)
	if upd == nil || c.start == nil {
		return nil
	}
	merged := mergeStarted(*c.start, *upd)
	enc, err := Encode(TypeCallStarted, id, c.startSeq, merged)
	if err != nil {
		return nil // a CallStartedBody always encodes
	}
	c.start = &merged
	return enc
}

// kindOf tells how publishers treat an event of type typ, and the
// transcript segment it belongs to.
func kindOf(typ string, body any) (Kind, string) {
	var seg string
	switch b := body.(type) {
	case PartialBody:
		seg = b.SegmentID
	case Segment:
		seg = b.SegmentID
	}
	switch typ {
	case TypeTranscriptPartial:
		return KindPartial, seg
	case TypeTranscriptFinal:
		return KindFinal, seg
	}
	return KindDurable, seg
}

func startedBodyOf(body any) *CallStartedBody {
	b, ok := body.(CallStartedBody)
	if !ok {
		return nil
	}
	b.Tracks = slices.Clone(b.Tracks)
	return &b
}

// mergeStarted adds what call.updated brings to call.started: new tracks in
// arrival order, new custom parameters, and fields still empty.
func mergeStarted(old, upd CallStartedBody) CallStartedBody {
	out := old
	out.Tracks = slices.Clone(old.Tracks)
	for _, t := range upd.Tracks {
		if !slices.Contains(out.Tracks, t) {
			out.Tracks = append(out.Tracks, t)
		}
	}
	if len(upd.CustomParameters) > 0 {
		out.CustomParameters = make(map[string]string, len(old.CustomParameters)+len(upd.CustomParameters))
		maps.Copy(out.CustomParameters, old.CustomParameters)
		maps.Copy(out.CustomParameters, upd.CustomParameters)
	}
	if out.StartedAt.IsZero() {
		out.StartedAt = upd.StartedAt
	}
	out.Provider, out.From, out.To = cmp.Or(out.Provider, upd.Provider), cmp.Or(out.From, upd.From), cmp.Or(out.To, upd.To)
	out.SampleRate = cmp.Or(out.SampleRate, upd.SampleRate)
	return out
}
