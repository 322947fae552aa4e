package web

// Lock order is hub.mu → call.mu → Subscription.mu; none is held while
// waiting for anything but another of these locks. Ended calls are evicted
// lazily under hub.mu (in Subscribe and when a call starts or ends): no
// janitor goroutine.

import (
	"cmp"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/bridge"
)

var _ bridge.Publisher = (*Hub)(nil)

// maxCallIDLen bounds the call ids a subscriber may wait for: a waiting
// subscription keeps its id in memory until the call starts.
const maxCallIDLen = 256

// HubConfig configures a Hub. A zero (or negative) field takes its default.
type HubConfig struct {
	// Outbox and OutboxBytes bound the queued events and bytes of one
	// subscriber; beyond either it is cut off as slow.
	Outbox, OutboxBytes int
	// WaitTimeout is how long a subscriber to a call that has not started
	// waits before it is disconnected with DisconnectCallNotStarted.
	WaitTimeout time.Duration
	// MaxSubscribers bounds all subscriptions together, MaxPerCall those
	// to one call id.
	MaxSubscribers, MaxPerCall int
	// RetainEnded is how long an ended call's replay log is kept for late
	// joiners. After that the call is forgotten: a subscriber to it waits as
	// for a call that has not started.
	RetainEnded time.Duration
	// WriteTimeout bounds each websocket write in ServeWS.
	WriteTimeout time.Duration
	// MaxReplayBytes bounds the encoded events one call keeps for late
	// joiners and resumes (call.started included). Beyond it the oldest
	// events other than call.started are dropped and counted, and a
	// subscriber whose replay misses some gets a replay.truncated event.
	MaxReplayBytes int
}

// HubDefaults are the values zero (or negative) fields of HubConfig take.
func HubDefaults() HubConfig {
	return HubConfig{
		Outbox: 512, OutboxBytes: 1 << 20, WaitTimeout: 2 * time.Minute, MaxSubscribers: 10000, MaxPerCall: 100,
		RetainEnded: 10 * time.Minute, WriteTimeout: 10 * time.Second, MaxReplayBytes: 4 << 20,
	}
}

func (c HubConfig) withDefaults() HubConfig {
	d := HubDefaults()
	c.Outbox = cmp.Or(max(c.Outbox, 0), d.Outbox)
	c.OutboxBytes = cmp.Or(max(c.OutboxBytes, 0), d.OutboxBytes)
	c.MaxSubscribers = cmp.Or(max(c.MaxSubscribers, 0), d.MaxSubscribers)
	c.MaxPerCall = cmp.Or(max(c.MaxPerCall, 0), d.MaxPerCall)
	c.WaitTimeout = cmp.Or(max(c.WaitTimeout, 0), d.WaitTimeout)
	c.RetainEnded = cmp.Or(max(c.RetainEnded, 0), d.RetainEnded)
	c.WriteTimeout = cmp.Or(max(c.WriteTimeout, 0), d.WriteTimeout)
	c.MaxReplayBytes = cmp.Or(max(c.MaxReplayBytes, 0), d.MaxReplayBytes)
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
	// ErrClusterUnavailable: the subscription would follow another
	// replica's events (a call held there, or all calls) while they cannot
	// reach this hub.
	ErrClusterUnavailable = errors.New("web: cluster unavailable")
)

// Hub fans bridge events out to subscribers. It starts no goroutines: see
// doc.go for who runs what.
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
	// remoteDown: other replicas' events cannot reach this hub (see
	// RemoteFeed.Available).
	remoteDown bool

	callNum         atomic.Uint64
	subscribers     atomic.Int64
	published       atomic.Uint64
	slow            atomic.Uint64
	droppedPartials atomic.Uint64
	rejected        atomic.Uint64
	replayDropped   atomic.Uint64
	clusterClosed   atomic.Uint64
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

// call is the hub's state of one call id; a placeholder (started == false)
// holds subscribers waiting for it.
type call struct {
	id  string
	num uint64 // start order, for the all-calls replay

	mu      sync.Mutex
	started bool
	ended   bool
	endedAt time.Time
	start   *message // call.started (kept whatever the replay's size), nil if none
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
	// more: call.ended was marked More and recording.ready has not come:
	// one-call subscribers stay (joiners too) until it does, or until the
	// call is evicted RetainEnded after call.ended.
	more   bool
	remote bool // started by another replica's events (RemoteFeed)
	subs   map[*Subscription]struct{}
}

type endedCall struct {
	c  *call
	at time.Time
}

func newCall(id string) *call {
	return &call{id: id, subs: make(map[*Subscription]struct{})}
}

// Publish queues ev, numbered and encoded by bridge, for every subscriber
// of the call and every all-calls subscriber. It never blocks on a
// subscriber. Events after a call's call.ended are dropped (except a new
// call.started, which starts the call id afresh).
func (h *Hub) Publish(ev bridge.Event) { h.publish(ev, false) }

// RemoteFeed is the hub's publisher for other replicas' events (cluster
// mode): the calls they start are held by another replica, and their
// subscribers here depend on the feed being available.
type RemoteFeed struct{ h *Hub }

var _ bridge.Publisher = RemoteFeed{}

// Remote returns the feed for other replicas' events.
func (h *Hub) Remote() RemoteFeed { return RemoteFeed{h} }

// Publish is Hub.Publish for an event of a call held by another replica.
func (f RemoteFeed) Publish(ev bridge.Event) { f.h.publish(ev, true) }

// Available tells the hub whether other replicas' events can reach it.
// When they cannot, every subscriber of a live call held by another
// replica and every all-calls subscriber is cut off with
// DisconnectClusterUnavailable, and Subscribe refuses new ones with
// ErrClusterUnavailable until they can again. Subscribers of this
// replica's calls, of ended calls (their replay is whole) and of calls
// not started yet are not affected.
func (f RemoteFeed) Available(up bool) {
	h := f.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.remoteDown == !up {
		return
	}
	h.remoteDown = !up
	if up {
		return
	}
	n := 0
	for s := range h.all {
		s.end(DisconnectClusterUnavailable)
		n++
	}
	clear(h.all)
	for _, c := range h.calls {
		c.mu.Lock()
		if c.remote && c.started && !c.ended {
			for s := range c.subs {
				s.end(DisconnectClusterUnavailable)
				n++
			}
			clear(c.subs)
		}
		c.mu.Unlock()
	}
	h.clusterClosed.Add(uint64(n))
	if n > 0 {
		h.log.Warn().Int("subscribers", n).Msg("cluster unavailable: subscribers of other replicas' calls and of all calls closed (4503)")
	}
}

func (h *Hub) publish(ev bridge.Event, remote bool) {
	if ev.CallID == "" || ev.Type == "" || len(ev.Data) == 0 {
		h.badLog.Error().Str("type", ev.Type).Str("call_id", ev.CallID).Msg("publish: event without type, call id or data dropped")
		return
	}
	m := newMessage(ev)

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
		h.evictLocked(h.now())
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
	// transcript.ready and recording.ready follow call.ended and go the
	// way of any durable event (kept for late joiners and resumes); the
	// call's subscriptions end after recording.ready, its last.
	if c.ended && !bridge.AfterCall(ev.Type) {
		if ev.Type != bridge.TypeCallStarted {
			if !c.lateWarned {
				c.lateWarned = true
				h.log.Warn().Str("type", ev.Type).Str("call_id", ev.CallID).Msg("publish: events after call.ended dropped")
			}
			return
		}
		// The call id starts again (its seq goes on increasing: bridge
		// numbers it).
		c.ended, c.started, c.start, c.lateWarned, c.more = false, false, nil, false, false
		c.log, c.head, c.logBytes, c.dropped, c.droppedThrough = nil, 0, 0, 0, 0
	}

	if !c.started || ev.Type == bridge.TypeCallStarted {
		c.remote = remote
	}
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
	case ev.Start != nil:
		// call.updated: late joiners get call.started with every track so
		// far, in call.started's place; the update itself is kept for
		// resumes after call.started.
		if c.start != nil {
			// A new message, not an in-place edit: snapshots already handed
			// to subscribers keep reading the old bytes.
			c.start = &message{data: ev.Start, seq: c.start.seq}
		}
		h.logLocked(c, m)
	case m.kind != bridge.KindPartial:
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
		c.more = ev.More
		if !ev.More { // else at recording.ready
			h.endSubsLocked(c)
		}
		h.ended = append(h.ended, endedCall{c: c, at: c.endedAt})
	}
	if c.ended && ev.Type == bridge.TypeRecordingReady {
		c.more = false
		h.endSubsLocked(c)
	}
}

// endSubsLocked ends the call's subscriptions once they have sent what is
// queued (io.EOF). c.mu must be held.
func (h *Hub) endSubsLocked(c *call) {
	for s := range c.subs {
		s.end(nil)
	}
	clear(c.subs)
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
			dst = append(dst, truncatedMessage(c.id, c.droppedThrough, c.dropped))
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
		gone := e.c.ended && e.c.endedAt.Equal(e.at)
		if gone && e.c.more {
			// recording.ready never came (its replica was lost after
			// call.ended): the waiting subscribers end here.
			e.c.more = false
			h.endSubsLocked(e.c)
		}
		gone = gone && len(e.c.subs) == 0
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
// with seq <= after, then live events; it ends with io.EOF after call.ended,
// or after recording.ready when call.ended is marked More.
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
	if h.remoteDown && h.followsRemoteLocked(callID) {
		h.clusterClosed.Add(1)
		return nil, ErrClusterUnavailable
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
		for _, c := range slices.SortedFunc(maps.Values(h.calls), func(a, b *call) int { return cmp.Compare(a.num, b.num) }) {
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
	if c.ended && !c.more {
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

// followsRemoteLocked reports whether a subscriber to callID ("": all
// calls) needs other replicas' events: all calls do, and so does a live
// call held by another replica. h.mu must be held.
func (h *Hub) followsRemoteLocked(callID string) bool {
	if callID == "" {
		return true
	}
	c := h.calls[callID]
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.remote && c.started && !c.ended
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
			s.end(DisconnectShutdown)
		}
		c.mu.Unlock()
	}
	for s := range h.all {
		s.end(DisconnectShutdown)
	}
	clear(h.calls)
	clear(h.all)
	h.ended = nil
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
