package web

// Subscriber hub: goroutine model.
//
// The Hub starts no goroutines. Everything it does runs on its callers:
//
//   - Publish runs on the publisher (ingest and STT goroutines of a call). It
//     encodes the event once, then, under the hub's read lock and the call's
//     lock, assigns the call's next seq, appends the event to the call's
//     replay log (partials excepted) and hands the same *message to the
//     outbox of every subscriber of that call and every all-calls
//     subscriber. Handing over is a slice append under the subscriber's own
//     mutex plus a non-blocking send on a 1-slot wake-up channel: Publish
//     never waits for a reader.
//   - Subscription.Next runs on the subscriber's owner (one goroutine per
//     subscription; ServeWS's write loop). It is the only place that blocks
//     waiting for events, and it enforces WaitTimeout for a call that has not
//     started.
//   - Subscribe, Subscription.Close and Hub.Close take the hub's write lock
//     briefly; ended calls are evicted lazily there (and when a call starts),
//     so no janitor goroutine is needed.
//
// Lock order is hub.mu → call.mu → Subscription.mu; none is held while
// waiting for anything but another of these locks.
//
// When an outbox is full nothing is dropped silently except partials: a
// queued partial is replaced by a newer partial of the same segment (moved
// to the back, so seq order holds) and removed by the final of its segment.
// Everything else is queued; a subscriber whose queue then exceeds Outbox
// events or OutboxBytes bytes is cut off with DisconnectSlow, its queue is
// released, and HubStats.SlowDisconnects counts it.
//
// A call's replay log is bounded too: past MaxReplayBytes its oldest events
// (never call.started) are dropped and HubStats.ReplayDropped counts them;
// a subscriber whose replay misses some is told with replay.truncated.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/bridge"
)

var _ bridge.Publisher = (*Hub)(nil)

// Defaults of HubConfig's zero values.
const (
	DefaultOutbox         = 512
	DefaultOutboxBytes    = 1 << 20
	DefaultWaitTimeout    = 2 * time.Minute
	DefaultMaxSubscribers = 10000
	DefaultMaxPerCall     = 100
	DefaultRetainEnded    = 10 * time.Minute
	DefaultWriteTimeout   = 10 * time.Second
	DefaultMaxReplayBytes = 4 << 20
)

// maxCallIDLen bounds the call ids a subscriber may wait for: a waiting
// subscription keeps its id in memory until the call starts.
const maxCallIDLen = 256

// HubConfig configures a Hub. A zero (or negative) field takes its default.
type HubConfig struct {
	// Outbox is the number of queued events per subscriber beyond which it
	// is cut off as slow. Default 512.
	Outbox int
	// OutboxBytes is the number of queued bytes per subscriber beyond which
	// it is cut off as slow. Default 1 MiB.
	OutboxBytes int
	// WaitTimeout is how long a subscriber to a call that has not started
	// waits before it is disconnected with DisconnectCallNotStarted.
	// Default 2 min.
	WaitTimeout time.Duration
	// MaxSubscribers bounds all subscriptions together. Default 10000.
	MaxSubscribers int
	// MaxPerCall bounds the subscriptions to one call id. Default 100.
	MaxPerCall int
	// RetainEnded is how long an ended call's replay log is kept for late
	// joiners. After that the call is forgotten: a subscriber to it waits as
	// for a call that has not started. Default 10 min.
	RetainEnded time.Duration
	// WriteTimeout bounds each websocket write in ServeWS. Default 10 s.
	WriteTimeout time.Duration
	// MaxReplayBytes bounds the encoded events one call keeps for late
	// joiners and resumes (call.started included). Beyond it the oldest
	// events other than call.started are dropped and counted, and a
	// subscriber whose replay misses some gets a replay.truncated event.
	// Default 4 MiB.
	MaxReplayBytes int
}

func (c HubConfig) withDefaults() HubConfig {
	def := func(v, d int) int {
		if v <= 0 {
			return d
		}
		return v
	}
	dur := func(v, d time.Duration) time.Duration {
		if v <= 0 {
			return d
		}
		return v
	}
	c.Outbox = def(c.Outbox, DefaultOutbox)
	c.OutboxBytes = def(c.OutboxBytes, DefaultOutboxBytes)
	c.MaxSubscribers = def(c.MaxSubscribers, DefaultMaxSubscribers)
	c.MaxPerCall = def(c.MaxPerCall, DefaultMaxPerCall)
	c.WaitTimeout = dur(c.WaitTimeout, DefaultWaitTimeout)
	c.RetainEnded = dur(c.RetainEnded, DefaultRetainEnded)
	c.WriteTimeout = dur(c.WriteTimeout, DefaultWriteTimeout)
	c.MaxReplayBytes = def(c.MaxReplayBytes, DefaultMaxReplayBytes)
	return c
}

// Errors returned by Subscribe and Next.
var (
	ErrHubClosed          = errors.New("web: hub closed")
	ErrTooManySubscribers = errors.New("web: too many subscribers")
	ErrTooManyForCall     = errors.New("web: too many subscribers for call")
	ErrInvalidCallID      = errors.New("web: invalid call id")
	ErrAfterWithoutCall   = errors.New("web: after needs a call id")
	ErrSubscriptionClosed = errors.New("web: subscription closed")
)

// DisconnectError is returned by Next when the hub cuts a subscription off.
// The hub returns one of the Disconnect* values, so errors.Is works with
// them; Reason is meant for logs and close frames.
type DisconnectError struct {
	Reason string
}

func (e *DisconnectError) Error() string { return "web: subscriber disconnected: " + e.Reason }

// Reasons a subscription is cut off.
var (
	// DisconnectSlow: the outbox exceeded Outbox events or OutboxBytes.
	DisconnectSlow = &DisconnectError{Reason: "slow"}
	// DisconnectCallNotStarted: the call did not start within WaitTimeout.
	DisconnectCallNotStarted = &DisconnectError{Reason: "call_not_started"}
	// DisconnectShutdown: the hub was closed.
	DisconnectShutdown = &DisconnectError{Reason: "shutdown"}
)

// HubStats is a snapshot of the hub's counters for /metrics.
type HubStats struct {
	Subscribers     int    // attached subscriptions, waiting ones included
	Calls           int    // calls started and not ended
	Published       uint64 // events accepted by Publish
	SlowDisconnects uint64 // subscribers cut off as slow
	DroppedPartials uint64 // queued partials replaced by a newer partial or their final
	Rejected        uint64 // Subscribe calls refused by a limit
	ReplayDropped   uint64 // events dropped from replay logs for MaxReplayBytes
}

// Hub fans bridge events out to subscribers. It implements bridge.Publisher.
// See the comment at the top of this file for the goroutine model.
type Hub struct {
	cfg HubConfig
	log zerolog.Logger
	// badLog reports malformed events, which can repeat per event.
	badLog zerolog.Logger
	now    func() time.Time // replaced in tests to drive eviction
	// pingEvery is ServeWS's ping interval; a field so tests can shorten it.
	pingEvery time.Duration

	mu     sync.RWMutex
	closed bool
	calls  map[string]*call
	all    map[*Subscription]struct{}
	ended  []endedCall // ended calls in end order, for eviction

	callNum         atomic.Uint64
	subscribers     atomic.Int64
	published       atomic.Uint64
	slow            atomic.Uint64
	droppedPartials atomic.Uint64
	rejected        atomic.Uint64
	replayDropped   atomic.Uint64
}

// NewHub returns a Hub. It starts no goroutines; Close disconnects every
// subscriber.
func NewHub(cfg HubConfig, log zerolog.Logger) *Hub {
	return &Hub{
		cfg:       cfg.withDefaults(),
		log:       log.With().Str("component", "hub").Logger(),
		badLog:    log.With().Str("component", "hub").Logger().Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Minute}),
		now:       time.Now,
		pingEvery: 25 * time.Second,
		calls:     make(map[string]*call),
		all:       make(map[*Subscription]struct{}),
	}
}

type msgKind uint8

const (
	kindOther msgKind = iota
	kindPartial
	kindFinal
)

// segKey identifies a transcript segment across calls.
type segKey struct{ call, segment string }

// message is one encoded event, shared read-only by the replay log and every
// outbox it reaches.
type message struct {
	data []byte
	seq  uint64
	kind msgKind
	seg  segKey // set for partials and finals that name a segment
}

// call is the hub's state of one call id; a placeholder (started == false)
// holds subscribers waiting for it.
type call struct {
	id  string
	num uint64 // start order, for the all-calls replay

	mu        sync.Mutex
	seq       uint64
	started   bool
	ended     bool
	endedAt   time.Time
	start     *message // call.started (kept whatever the replay's size), nil if none
	startBody *bridge.CallStartedBody
	// The replay log: every other non-partial event, in seq order, from
	// log[head]. It holds at most MaxReplayBytes together with start; when
	// an event would exceed that, the oldest are dropped (counted in
	// dropped, the newest of them in droppedThrough) and the slice is
	// compacted once half of it is dropped entries.
	log            []*message
	head           int
	logBytes       int // bytes of log[head:]
	dropped        uint64
	droppedThrough uint64
	lateWarned     bool // "events after call.ended" logged once per call
	subs           map[*Subscription]struct{}
}

type endedCall struct {
	c  *call
	at time.Time
}

func newCall(id string) *call {
	return &call{id: id, subs: make(map[*Subscription]struct{})}
}

// Publish encodes ev once, assigns it the call's next seq and queues it for
// every subscriber of the call and every all-calls subscriber. It never
// blocks on a subscriber. Events after a call's call.ended are dropped
// (except a new call.started, which starts the call id afresh).
func (h *Hub) Publish(ev bridge.Event) {
	if ev.CallID == "" || ev.Type == "" {
		h.badLog.Error().Str("type", ev.Type).Str("call_id", ev.CallID).Msg("publish: event without type or call id dropped")
		return
	}
	// Encode everything but seq before taking any lock.
	body, err := marshalBody(ev.Body)
	if err != nil {
		h.badLog.Error().Err(err).Str("type", ev.Type).Str("call_id", ev.CallID).Msg("publish: body not encoded, event sent without it")
		body = nil
	}
	m := &message{kind: kindOf(ev.Type)}
	if seg := segmentOf(ev.Body); seg != "" {
		m.seg = segKey{call: ev.CallID, segment: seg}
	}
	buf := make([]byte, 0, len(ev.Type)+len(ev.CallID)+len(body)+48)
	buf = appendPrefix(buf, ev.Type, ev.CallID)

	// call.started and call.ended change the call map or the ended list, so
	// they take the write lock; everything else only reads the map.
	write := ev.Type == bridge.TypeCallStarted || ev.Type == bridge.TypeCallEnded
	h.mu.RLock()
	c := h.calls[ev.CallID]
	if c == nil || write {
		h.mu.RUnlock()
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.closed {
			return
		}
		now := h.now()
		h.evictLocked(now)
		if c = h.calls[ev.CallID]; c == nil {
			c = newCall(ev.CallID)
			h.calls[ev.CallID] = c
		}
	} else {
		defer h.mu.RUnlock()
		if h.closed {
			return
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		if ev.Type != bridge.TypeCallStarted {
			if !c.lateWarned {
				c.lateWarned = true
				h.log.Warn().Str("type", ev.Type).Str("call_id", ev.CallID).Msg("publish: events after call.ended dropped")
			}
			return
		}
		// The call id starts again; seq keeps increasing so that resumes
		// never mistake new events for old ones.
		c.ended, c.started, c.start, c.startBody, c.lateWarned = false, false, nil, nil, false
		c.log, c.head, c.logBytes, c.dropped, c.droppedThrough = nil, 0, 0, 0, 0
	}
	c.seq++
	m.seq = c.seq
	buf = strconv.AppendUint(buf, c.seq, 10)
	m.data = appendBody(buf, body)

	if !c.started {
		c.started = true
		c.num = h.callNum.Add(1)
		if ev.Type != bridge.TypeCallStarted {
			h.log.Warn().Str("type", ev.Type).Str("call_id", ev.CallID).Msg("publish: call began without call.started")
		}
	}
	switch {
	case ev.Type == bridge.TypeCallStarted:
		c.start = m
		c.startBody = startedBodyOf(ev.Body)
	case ev.Type == bridge.TypeCallUpdated:
		h.updateStartedLocked(c, ev)
		h.logLocked(c, m)
	case m.kind != kindPartial:
		h.logLocked(c, m)
	}
	h.published.Add(1)

	for s := range c.subs {
		if !s.push(m) {
			delete(c.subs, s)
		}
	}
	for s := range h.all {
		s.push(m)
	}

	if ev.Type == bridge.TypeCallEnded {
		c.ended = true
		c.endedAt = h.now()
		for s := range c.subs {
			s.finish()
		}
		clear(c.subs)
		h.ended = append(h.ended, endedCall{c: c, at: c.endedAt})
	}
}

// updateStartedLocked rewrites the logged call.started (same seq, same
// place) so that a late joiner's call.started lists every track.
func (h *Hub) updateStartedLocked(c *call, ev bridge.Event) {
	upd := startedBodyOf(ev.Body)
	if upd == nil || c.startBody == nil || c.start == nil {
		return
	}
	merged := mergeStarted(*c.startBody, *upd)
	body, err := json.Marshal(merged)
	if err != nil {
		h.log.Error().Err(err).Str("call_id", c.id).Msg("publish: call.started not updated")
		return
	}
	old := c.start
	buf := appendPrefix(make([]byte, 0, len(body)+len(c.id)+48), bridge.TypeCallStarted, c.id)
	buf = strconv.AppendUint(buf, old.seq, 10)
	// A new message, not an in-place edit: snapshots already handed to
	// subscribers keep reading the old bytes.
	c.start = &message{data: appendBody(buf, body), seq: old.seq, kind: kindOther}
	c.startBody = &merged
}

// logLocked appends m to the call's replay log, then drops the oldest
// entries (never call.started) while the log exceeds MaxReplayBytes; m
// itself goes too if it alone does not fit. c.mu must be held.
func (h *Hub) logLocked(c *call, m *message) {
	c.log = append(c.log, m)
	c.logBytes += len(m.data)
	startBytes := 0
	if c.start != nil {
		startBytes = len(c.start.data)
	}
	n := 0
	for c.logBytes+startBytes > h.cfg.MaxReplayBytes && c.head < len(c.log) {
		old := c.log[c.head]
		c.log[c.head] = nil
		c.head++
		c.logBytes -= len(old.data)
		c.droppedThrough = old.seq
		n++
	}
	if n == 0 {
		return
	}
	if c.dropped == 0 {
		h.log.Warn().Str("call_id", c.id).Int("max_replay_bytes", h.cfg.MaxReplayBytes).
			Msg("replay log full: the oldest events are dropped from what late subscribers get (the transcript keeps them)")
	}
	c.dropped += uint64(n)
	h.replayDropped.Add(uint64(n))
	if 2*c.head >= len(c.log) {
		k := copy(c.log, c.log[c.head:])
		clear(c.log[k:])
		c.log, c.head = c.log[:k], 0
	}
}

// TypeReplayTruncated tells a subscriber that its replay misses events the
// replay log no longer holds (MaxReplayBytes). Its seq is that of the
// newest event missed, so every event that follows has a higher one and
// resuming after it misses nothing more; dropped is how many events the
// call's replay log has dropped in all. The REST transcript has them.
const TypeReplayTruncated = "replay.truncated"

// replayLocked appends to dst what a subscriber joining now with after
// gets: call.started first, then replay.truncated when events it has not
// seen were dropped, then every logged event with seq > after. (Events a
// faulty publisher sent before call.started stay before it, in seq
// order.) c.mu must be held.
func (c *call) replayLocked(dst []*message, after uint64) []*message {
	headed := false
	head := func() {
		headed = true
		if c.start != nil && c.start.seq > after {
			dst = append(dst, c.start)
		}
		if c.droppedThrough > after {
			buf := appendPrefix(make([]byte, 0, len(c.id)+80), TypeReplayTruncated, c.id)
			buf = strconv.AppendUint(buf, c.droppedThrough, 10)
			buf = append(buf, `,"dropped":`...)
			buf = strconv.AppendUint(buf, c.dropped, 10)
			dst = append(dst, &message{data: append(buf, '}'), seq: c.droppedThrough, kind: kindOther})
		}
	}
	for _, m := range c.log[c.head:] {
		if !headed && (c.start == nil || m.seq > c.start.seq) {
			head()
		}
		if m.seq > after {
			dst = append(dst, m)
		}
	}
	if !headed {
		head()
	}
	return dst
}

// evictLocked forgets ended calls older than RetainEnded. h.mu must be held
// for writing.
func (h *Hub) evictLocked(now time.Time) {
	n := 0
	for _, e := range h.ended {
		if now.Sub(e.at) < h.cfg.RetainEnded {
			break
		}
		n++
		e.c.mu.Lock()
		// Only if the call did not start again (or end again later).
		gone := e.c.ended && e.c.endedAt.Equal(e.at) && len(e.c.subs) == 0
		e.c.mu.Unlock()
		if gone && h.calls[e.c.id] == e.c {
			delete(h.calls, e.c.id)
		}
	}
	if n > 0 {
		clear(h.ended[:n])
		h.ended = h.ended[n:]
	}
}

// Subscribe returns a subscription to one call (callID != "") or to every
// call (callID == "").
//
// A one-call subscription first yields the call's call.started (listing
// every track so far) and every non-partial event since, skipping those
// with seq <= after, then live events; it ends with io.EOF after call.ended.
// If the call has not started (or was ended longer than RetainEnded ago and
// forgotten) the subscription waits for it up to WaitTimeout, then Next
// returns DisconnectCallNotStarted.
//
// An all-calls subscription yields, for every active call, its call.started
// and non-partial events, then live events of every call. after must be 0.
//
// The replay is a snapshot of the log (shared messages, not copies) served
// before the outbox; it does not count against Outbox or OutboxBytes.
//
// The caller must call Close when done.
func (h *Hub) Subscribe(callID string, after uint64) (*Subscription, error) {
	if len(callID) > maxCallIDLen {
		return nil, ErrInvalidCallID
	}
	if callID == "" && after != 0 {
		return nil, ErrAfterWithoutCall
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrHubClosed
	}
	h.evictLocked(h.now())
	if h.subscribers.Load() >= int64(h.cfg.MaxSubscribers) {
		h.rejected.Add(1)
		return nil, ErrTooManySubscribers
	}
	s := &Subscription{
		hub:      h,
		callID:   callID,
		notify:   make(chan struct{}, 1),
		maxLen:   h.cfg.Outbox,
		maxBytes: h.cfg.OutboxBytes,
	}
	if callID == "" {
		s.all = true
		active := make([]*call, 0, len(h.calls))
		for _, c := range h.calls {
			active = append(active, c)
		}
		slices.SortFunc(active, func(a, b *call) int { return cmp.Compare(a.num, b.num) })
		for _, c := range active {
			c.mu.Lock()
			if c.started && !c.ended {
				s.replay = c.replayLocked(s.replay, 0)
			}
			c.mu.Unlock()
		}
		h.all[s] = struct{}{}
		h.subscribers.Add(1)
		return s, nil
	}

	c := h.calls[callID]
	created := c == nil
	if created {
		c = newCall(callID)
		h.calls[callID] = c
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.subs) >= h.cfg.MaxPerCall {
		if created {
			delete(h.calls, callID)
		}
		h.rejected.Add(1)
		return nil, ErrTooManyForCall
	}
	s.replay = c.replayLocked(s.replay, after)
	if c.ended {
		// Replay only; never attached, so never counted.
		s.detached, s.eos = true, true
		return s, nil
	}
	if !c.started {
		s.waiting = true
		s.deadline = time.Now().Add(h.cfg.WaitTimeout)
	}
	c.subs[s] = struct{}{}
	h.subscribers.Add(1)
	return s, nil
}

// Close disconnects every subscriber with DisconnectShutdown and makes
// later Publish calls no-ops and Subscribe calls fail. It is idempotent.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for _, c := range h.calls {
		c.mu.Lock()
		for s := range c.subs {
			s.disconnect(DisconnectShutdown)
		}
		c.mu.Unlock()
	}
	for s := range h.all {
		s.disconnect(DisconnectShutdown)
	}
	clear(h.calls)
	clear(h.all)
	h.ended = nil
}

// Stats returns the hub's counters.
func (h *Hub) Stats() HubStats {
	st := HubStats{
		Subscribers:     int(h.subscribers.Load()),
		Published:       h.published.Load(),
		SlowDisconnects: h.slow.Load(),
		DroppedPartials: h.droppedPartials.Load(),
		Rejected:        h.rejected.Load(),
		ReplayDropped:   h.replayDropped.Load(),
	}
	h.mu.RLock()
	for _, c := range h.calls {
		c.mu.Lock()
		if c.started && !c.ended {
			st.Calls++
		}
		c.mu.Unlock()
	}
	h.mu.RUnlock()
	return st
}

func (h *Hub) remove(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.all {
		delete(h.all, s)
		return
	}
	c := h.calls[s.callID]
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.subs, s)
	if !c.started && len(c.subs) == 0 {
		delete(h.calls, s.callID) // a placeholder nobody waits for
	}
	c.mu.Unlock()
}

// Subscription is one subscriber's view of the hub. Next must be called from
// one goroutine at a time; Close may be called from any goroutine.
type Subscription struct {
	hub    *Hub
	callID string
	all    bool
	// notify wakes Next. One slot is enough: Next re-reads the state after
	// every wake-up, so a pending signal covers any number of pushes.
	notify chan struct{}

	mu       sync.Mutex
	replay   []*message // the log snapshot taken at Subscribe, served first
	ri       int        // next replay index
	out      outbox     // live events
	maxLen   int
	maxBytes int
	err      error // terminal error Next returns, once replay and outbox are done or cleared
	eos      bool  // the call ended: io.EOF once drained
	detached bool  // no longer receives events nor counts as a subscriber
	closed   bool
	waiting  bool // the call has not started yet
	deadline time.Time
}

// Next returns the next encoded event (a JSON object, shared with other
// subscribers: do not modify it). It returns io.EOF after call.ended of a
// one-call subscription, a *DisconnectError when the hub cut the
// subscription off, ErrSubscriptionClosed after Close, or ctx's error.
func (s *Subscription) Next(ctx context.Context) ([]byte, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		s.mu.Lock()
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			return nil, err
		}
		if s.ri < len(s.replay) {
			m := s.replay[s.ri]
			s.replay[s.ri] = nil
			s.ri++
			s.mu.Unlock()
			return m.data, nil
		}
		if m, ok := s.out.pop(); ok {
			s.mu.Unlock()
			return m.data, nil
		}
		if s.eos {
			s.err = io.EOF
			s.mu.Unlock()
			return nil, io.EOF
		}
		var expired <-chan time.Time
		if s.waiting {
			d := time.Until(s.deadline)
			if d <= 0 {
				s.endLocked(DisconnectCallNotStarted)
				s.mu.Unlock()
				return nil, DisconnectCallNotStarted
			}
			if timer == nil {
				timer = time.NewTimer(d)
			}
			expired = timer.C
		}
		s.mu.Unlock()
		select {
		case <-s.notify:
		case <-expired:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close detaches the subscription from the hub, releases what it still
// holds and wakes a blocked Next, which then returns ErrSubscriptionClosed
// (or the *DisconnectError that ended it before). It is idempotent.
func (s *Subscription) Close() {
	s.mu.Lock()
	s.endLocked(ErrSubscriptionClosed)
	if s.err == nil || s.err == io.EOF {
		s.err = ErrSubscriptionClosed
	}
	s.replay = nil
	s.out.reset()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	s.wake()
	if !already {
		s.hub.remove(s)
	}
}

func (s *Subscription) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// endLocked detaches s. With err nil the subscription drains and then
// returns io.EOF; otherwise everything pending is released and Next
// returns err. It reports whether s was attached.
func (s *Subscription) endLocked(err error) bool {
	if s.detached {
		return false
	}
	s.detached = true
	s.waiting = false
	s.hub.subscribers.Add(-1)
	if err == nil {
		s.eos = true
		return true
	}
	s.err = err
	s.replay = nil
	s.out.reset()
	return true
}

func (s *Subscription) disconnect(err *DisconnectError) {
	s.mu.Lock()
	s.endLocked(err)
	s.mu.Unlock()
	s.wake()
}

// finish ends a one-call subscription after the call's call.ended.
func (s *Subscription) finish() {
	s.mu.Lock()
	s.endLocked(nil)
	s.mu.Unlock()
	s.wake()
}

// push queues m. It reports false if s no longer takes events (detached
// before, or cut off as slow now).
func (s *Subscription) push(m *message) bool {
	s.mu.Lock()
	if s.detached {
		s.mu.Unlock()
		return false
	}
	s.waiting = false
	if s.out.push(m) {
		s.hub.droppedPartials.Add(1)
	}
	slow := s.out.live > s.maxLen || s.out.bytes > s.maxBytes
	var pending, pendingBytes int
	if slow {
		pending, pendingBytes = s.out.live, s.out.bytes
		s.endLocked(DisconnectSlow)
	}
	s.mu.Unlock()
	s.wake()
	if slow {
		s.hub.slow.Add(1)
		s.hub.log.Warn().Str("call_id", s.callID).Int("pending", pending).Int("pending_bytes", pendingBytes).
			Msg("slow subscriber disconnected")
	}
	return !slow
}

// outbox is a subscriber's queue of live events: a slice used as a FIFO
// from head, where a removed partial leaves a nil hole. Holes and the
// consumed prefix are compacted away when the slice is full and they make
// up at least half of it, so a burst of coalesced partials cannot grow it.
type outbox struct {
	items    []*message
	head     int
	dead     int // nil holes in items[head:]
	live     int
	bytes    int
	partials map[segKey]int // segment → index in items of its queued partial
}

// push appends m and reports whether it made a queued partial obsolete.
func (q *outbox) push(m *message) (dropped bool) {
	if m.kind != kindOther && m.seg.segment != "" {
		if i, ok := q.partials[m.seg]; ok {
			old := q.items[i]
			q.items[i] = nil
			q.dead++
			q.live--
			q.bytes -= len(old.data)
			delete(q.partials, m.seg)
			dropped = true
		}
	}
	if len(q.items) == cap(q.items) && 2*(q.head+q.dead) >= len(q.items) && len(q.items) > 0 {
		q.compact()
	}
	q.items = append(q.items, m)
	q.live++
	q.bytes += len(m.data)
	if m.kind == kindPartial && m.seg.segment != "" {
		if q.partials == nil {
			q.partials = make(map[segKey]int)
		}
		q.partials[m.seg] = len(q.items) - 1
	}
	return dropped
}

func (q *outbox) pop() (*message, bool) {
	for q.head < len(q.items) {
		i := q.head
		m := q.items[i]
		q.items[i] = nil
		q.head++
		if m == nil {
			q.dead--
			continue
		}
		q.live--
		q.bytes -= len(m.data)
		if m.kind == kindPartial && m.seg.segment != "" {
			if j, ok := q.partials[m.seg]; ok && j == i {
				delete(q.partials, m.seg)
			}
		}
		if q.head == len(q.items) {
			q.items, q.head, q.dead = q.items[:0], 0, 0
		}
		return m, true
	}
	q.items, q.head, q.dead = q.items[:0], 0, 0
	return nil, false
}

func (q *outbox) compact() {
	n := 0
	for i := q.head; i < len(q.items); i++ {
		m := q.items[i]
		if m == nil {
			continue
		}
		if m.kind == kindPartial && m.seg.segment != "" {
			if j, ok := q.partials[m.seg]; ok && j == i {
				q.partials[m.seg] = n
			}
		}
		q.items[n] = m
		n++
	}
	clear(q.items[n:])
	q.items, q.head, q.dead = q.items[:n], 0, 0
}

func (q *outbox) reset() {
	*q = outbox{}
}

func kindOf(typ string) msgKind {
	switch typ {
	case bridge.TypeTranscriptPartial:
		return kindPartial
	case bridge.TypeTranscriptFinal:
		return kindFinal
	}
	return kindOther
}

func segmentOf(body any) string {
	switch b := body.(type) {
	case bridge.PartialBody:
		return b.SegmentID
	case *bridge.PartialBody:
		if b != nil {
			return b.SegmentID
		}
	case bridge.FinalBody:
		return b.SegmentID
	case *bridge.FinalBody:
		if b != nil {
			return b.SegmentID
		}
	}
	return ""
}

func startedBodyOf(body any) *bridge.CallStartedBody {
	var b bridge.CallStartedBody
	switch v := body.(type) {
	case bridge.CallStartedBody:
		b = v
	case *bridge.CallStartedBody:
		if v == nil {
			return nil
		}
		b = *v
	default:
		return nil
	}
	b.Tracks = slices.Clone(b.Tracks)
	return &b
}

// mergeStarted adds what call.updated brings to call.started: new tracks in
// arrival order, new custom parameters, and fields still empty.
func mergeStarted(old, upd bridge.CallStartedBody) bridge.CallStartedBody {
	out := old
	out.Tracks = slices.Clone(old.Tracks)
	for _, t := range upd.Tracks {
		if !slices.Contains(out.Tracks, t) {
			out.Tracks = append(out.Tracks, t)
		}
	}
	if len(upd.CustomParameters) > 0 {
		params := make(map[string]string, len(old.CustomParameters)+len(upd.CustomParameters))
		for k, v := range old.CustomParameters {
			params[k] = v
		}
		for k, v := range upd.CustomParameters {
			params[k] = v
		}
		out.CustomParameters = params
	}
	if out.Provider == "" {
		out.Provider = upd.Provider
	}
	if out.StartedAt.IsZero() {
		out.StartedAt = upd.StartedAt
	}
	if out.From == "" {
		out.From = upd.From
	}
	if out.To == "" {
		out.To = upd.To
	}
	if out.SampleRate == 0 {
		out.SampleRate = upd.SampleRate
	}
	return out
}

// marshalBody encodes an event body; the result is a JSON object or nil.
func marshalBody(body any) ([]byte, error) {
	if body == nil {
		return nil, nil
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode body: %w", err)
	}
	if string(b) == "null" {
		return nil, nil
	}
	if len(b) < 2 || b[0] != '{' {
		return nil, fmt.Errorf("encode body: %T is not a JSON object", body)
	}
	return b, nil
}

// appendPrefix appends `{"type":<typ>,"call_id":<callID>,"seq":`.
func appendPrefix(dst []byte, typ, callID string) []byte {
	dst = append(dst, `{"type":`...)
	dst = appendString(dst, typ)
	dst = append(dst, `,"call_id":`...)
	dst = appendString(dst, callID)
	return append(dst, `,"seq":`...)
}

// appendBody splices the body object's fields after seq and closes the
// event object.
func appendBody(dst, body []byte) []byte {
	if len(body) <= 2 { // nil or {}
		return append(dst, '}')
	}
	dst = append(dst, ',')
	return append(dst, body[1:]...)
}

// appendString appends s as a JSON string, as encoding/json would (invalid
// UTF-8 becomes U+FFFD) except that <, > and & are not escaped.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
