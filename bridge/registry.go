package bridge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/bridge/provider"
	"github.com/callcaptions/bridge/stt"
	"github.com/callcaptions/bridge/stt/session"
)

// Config wires a Registry. Zero durations and limits take their Defaults.
type Config struct {
	Store      Store
	Recognizer stt.Recognizer // nil: record only
	Publisher  Publisher      // nil: no subscribers
	Metrics    *Metrics       // nil: counted but not registered
	Log        zerolog.Logger

	MaxCalls          int
	MaxStreamsPerCall int
	MaxCallDuration   time.Duration
	MaxGap            time.Duration
	ReconnectGrace    time.Duration // 0: end at once
	STTQueue          time.Duration
	DrainTimeout      time.Duration // how long transcription may settle after a call ends
	// ByteOrder overrides the documented L16 byte order of a provider.
	ByteOrder map[provider.Name]provider.ByteOrder
	// ReorderFrames is the jitter window, in frames, of the tracks of
	// providers that deliver frames out of order (Telnyx): default 5,
	// negative turns reordering off.
	ReorderFrames int
	// ResumeWindow is how long after a call ended a stream with its call
	// id, from the same provider and account, may continue it (negative:
	// never, such a stream is refused).
	ResumeWindow time.Duration
	// MaxIndexed bounds the ended calls kept in memory for listing (newest
	// kept). Older calls stay on disk and are still found by id.
	MaxIndexed int
	// MaxEventsPerCall bounds the transcript events (gaps, DTMF, STT
	// notices) one call keeps; beyond it events are counted as dropped,
	// neither kept nor published.
	MaxEventsPerCall int
	// BaseURL is where the REST API is reached (--public-url), for the
	// links in transcript.ready and recording.ready; empty: the links are
	// paths (/api/calls/…).
	BaseURL string
	// ObjectURL, when set, names where a call's file will be in object
	// storage (recording.ready's object_url).
	ObjectURL func(callID, file string) string
	// InlineTranscript is the largest transcript carried inline by
	// transcript.ready, in bytes (0: MaxInlineTranscript; negative: none,
	// every transcript is only linked).
	InlineTranscript int
	// Now is the wall clock (tests may replace it).
	Now func() time.Time
}

// Defaults are the values zero fields of Config take. The command line
// shows the same ones: config reads them from here.
func Defaults() Config {
	return Config{
		MaxCalls: 2000, MaxStreamsPerCall: 4, MaxCallDuration: 4 * time.Hour, MaxGap: 10 * time.Second,
		STTQueue: session.DefaultQueue, DrainTimeout: 10 * time.Second, MaxEventsPerCall: 10_000,
		ResumeWindow: 10 * time.Minute, MaxIndexed: 10_000,
	}
}

func (c *Config) defaults() {
	d := Defaults()
	c.MaxCalls = cmp.Or(c.MaxCalls, d.MaxCalls)
	c.MaxStreamsPerCall = cmp.Or(c.MaxStreamsPerCall, d.MaxStreamsPerCall)
	c.MaxCallDuration = cmp.Or(c.MaxCallDuration, d.MaxCallDuration)
	c.MaxGap = cmp.Or(c.MaxGap, d.MaxGap)
	c.STTQueue = cmp.Or(c.STTQueue, d.STTQueue)
	c.DrainTimeout = cmp.Or(c.DrainTimeout, d.DrainTimeout)
	c.MaxEventsPerCall = cmp.Or(c.MaxEventsPerCall, d.MaxEventsPerCall)
	c.ResumeWindow = cmp.Or(c.ResumeWindow, d.ResumeWindow)
	c.MaxIndexed = cmp.Or(c.MaxIndexed, d.MaxIndexed)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
}

// MaxCallIDLen bounds a call id. Providers' ids are far shorter (Twilio 34
// bytes, UUIDs 36); a longer one is refused rather than carried into every
// log line, document and subscriber event (subscribers cannot name a call
// with a longer id either).
const MaxCallIDLen = 256

// Registry owns every live call and knows every stored one.
type Registry struct {
	cfg     Config
	log     zerolog.Logger
	metrics *Metrics
	env     callEnv // what each call is given

	mu      sync.Mutex
	active  map[string]*Call
	past    map[string]CallRecord // ended calls, by id
	pending pendingCallbacks      // callbacks for calls not started yet
	// busy: the ids claimed by an operation doing I/O outside the lock
	// (see doc.go), each with a channel closed when it is done. Bounded by
	// the operations in flight: calls starting count against MaxCalls, the
	// rest are requests and sockets under the web layer's limits.
	busy     map[string]chan struct{}
	shutdown bool
	calls    sync.WaitGroup // one per live call's run goroutine
}

// NewRegistry makes a registry. Call Load to index stored calls.
func NewRegistry(cfg Config) *Registry {
	cfg.defaults()
	if cfg.Publisher != nil {
		cfg.Publisher = NewSequencer(cfg.Publisher, cfg.ResumeWindow, cfg.Now, cfg.Log)
	}
	r := &Registry{
		cfg: cfg, log: cfg.Log.With().Str("component", "bridge").Logger(), metrics: cfg.Metrics,
		active: map[string]*Call{}, past: map[string]CallRecord{}, busy: map[string]chan struct{}{},
		pending: pendingCallbacks{calls: map[string]*pendingCall{}},
	}
	r.env = callEnv{cfg: &r.cfg, metrics: r.metrics, shuttingDown: r.shuttingDown, ended: r.ended}
	return r
}

func (r *Registry) shuttingDown() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.shutdown
}

// Admit says whether a new media socket may be accepted now (checked before
// the WebSocket upgrade, so a refused provider costs nothing).
func (r *Registry) Admit() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.shutdown {
		return ErrShuttingDown
	}
	if len(r.active) >= r.cfg.MaxCalls {
		return ErrTooManyCalls
	}
	return nil
}

// StartStream joins a stream that sent its start frame to its call,
// creating the call if it is new. A stream joins a live call only from the
// call's provider and account, and continues an ended one only within
// ResumeWindow (see mayContinue); a refused stream leaves that call as it
// was.
func (r *Registry) StartStream(p provider.Name, st *provider.Start) (*Stream, error) {
	if err := CheckCallID(st.CallID); err != nil {
		return nil, err
	}
	if err := checkFormat(st.Format); err != nil {
		r.recordRefused(p, st, err)
		return nil, err
	}
	for {
		if r.shuttingDown() {
			return nil, ErrShuttingDown
		}
		c, prev, indexed, err := r.claim(st.CallID, true)
		if err != nil {
			return nil, err
		}
		created := c == nil
		if created {
			if c, err = r.newCall(p, st, prev, indexed); err != nil {
				return nil, err
			}
		}
		s, err := c.join(p, st)
		if created {
			// The creating stream joins first; then the documents are
			// written and the call's goroutine starts.
			if err != nil {
				c.joinFailed(err)
			}
			r.startCall(c)
		}
		if errors.Is(err, ErrCallEnding) && !created {
			<-c.done // the previous call with this id is finishing; start afresh
			continue
		}
		if err != nil {
			return nil, err
		}
		c.log.Info().Str("stream_id", Clip(st.StreamID)).Strs("tracks", clipAll(st.Tracks)).Str("encoding", string(st.Format.Encoding)).
			Int("sample_rate", st.Format.SampleRate).Msg("stream started")
		return s, nil
	}
}

// claim returns the live call of id, or else claims id (busy) for the caller,
// with its index entry, waiting while another operation holds it. A new
// call counts against MaxCalls: when limited is set, the claim is refused
// at the maximum of calls or when shutting down.
func (r *Registry) claim(id string, limited bool) (c *Call, indexed CallRecord, isIndexed bool, err error) {
	for {
		r.mu.Lock()
		if c = r.active[id]; c != nil {
			r.mu.Unlock()
			return c, CallRecord{}, false, nil
		}
		wait := r.busy[id]
		switch {
		case wait != nil:
			r.mu.Unlock()
			<-wait
			continue
		case limited && r.shutdown:
			err = ErrShuttingDown
		case limited && len(r.active)+len(r.busy) >= r.cfg.MaxCalls:
			err = ErrTooManyCalls
		default:
			indexed, isIndexed = r.past[id]
			r.busy[id] = make(chan struct{})
		}
		r.mu.Unlock()
		return nil, indexed, isIndexed, err
	}
}

// releaseLocked ends a busy id's operation: whoever waits for it looks
// again.
func (r *Registry) releaseLocked(id string) {
	if wait := r.busy[id]; wait != nil {
		close(wait)
		delete(r.busy, id)
	}
}

// newCall makes the call of a stream whose id is not live; the caller has
// claimed the id (busy), and newCall releases it.
func (r *Registry) newCall(p provider.Name, st *provider.Start, indexed CallRecord, isIndexed bool) (*Call, error) {
	claimed := true
	defer func() {
		// Refused, or the store panicked: the id is free again, so that
		// streams waiting for it are not stuck.
		if claimed {
			r.mu.Lock()
			r.releaseLocked(st.CallID)
			r.mu.Unlock()
		}
	}()
	prev, known := r.pastUnlocked(st.CallID, indexed, isIndexed)
	if known {
		if err := r.mayContinue(p, st, prev); err != nil {
			return nil, err
		}
	}
	files, filesErr := r.cfg.Store.Open(st.CallID)
	if filesErr != nil {
		// The call is still transcribed and captioned (see unrecorded.go);
		// its tracks and documents log and count the error as they fail.
		filesErr = fmt.Errorf("open call folder: %w", filesErr)
		files = failedFiles{filesErr}
	}
	c := openCall(r.env, r.log, p, st, files, filesErr, prev, known)
	// call.started has the call's tracks, with what st says of the call (a
	// continued call's record keeps what its first stream said).
	started := c.startedBodyLocked() // c is not shared yet
	started.CustomParameters, started.From, started.To = st.CustomParameters, st.From, st.To
	started.SampleRate = st.Format.SampleRate

	r.mu.Lock()
	r.releaseLocked(st.CallID)
	claimed = false
	if r.shutdown {
		r.mu.Unlock()
		return nil, ErrShuttingDown
	}
	c.addCallbacks(r.takePendingLocked(st.CallID, false))
	r.active[st.CallID] = c
	delete(r.past, st.CallID)
	r.metrics.CallStarted()
	// Guarded: the call is registered now, and must reach its goroutine
	// (which ends it) whatever happens.
	c.guard(PanicCall, func() { r.env.publish(Event{Type: TypeCallStarted, CallID: c.id, Body: started}) })
	r.calls.Add(1) // under the lock, so Shutdown's Wait cannot miss it; started by StartStream
	r.mu.Unlock()
	c.log.Info().Msg("call started")
	return c, nil
}

// startCall writes a new call's documents before anything else happens to
// it, then starts the call's goroutine.
//
// The record is what the start-up repair (Load) looks for: a folder with a
// call.json whose status is active is a call the process died in, whose
// recordings it repairs and whose transcript it completes from the
// journal. So call.json, with the tracks join just created, and the empty
// transcript.json are in the folder before StartStream returns and the
// first frame is written: a process killed from then on leaves a call Load
// finds. They are written without waiting for the disk's flush
// (WriteJSONNoWait): a killed process loses nothing the kernel has, and
// against a power cut the store's sync round makes them durable together
// with the recordings they describe, as it does the audio and the
// transcript journal (the same --fsync-interval bounds what a power cut
// loses of each).
func (r *Registry) startCall(c *Call) {
	c.guard(PanicCall, func() { c.persist(true, false) })
	go func() {
		defer r.calls.Done()
		c.run()
	}()
}

// ended moves a finalized call from the live set to the index.
func (r *Registry) ended(c *Call) {
	rec := c.Record()
	r.mu.Lock()
	if r.active[c.id] == c {
		delete(r.active, c.id)
	}
	r.rememberLocked(rec)
	r.mu.Unlock()
	r.metrics.CallEnded(rec.Reason)
}

// Active is the number of live calls.
func (r *Registry) Active() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.active)
}

// Shutdown stops taking calls, lets live calls run until ctx is done, then
// ends the remaining ones with reason shutdown and waits until every call
// is finalized (recordings closed, documents written).
func (r *Registry) Shutdown(ctx context.Context) {
	r.mu.Lock()
	r.shutdown = true
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.calls.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	r.mu.Lock()
	live := slices.Collect(maps.Values(r.active))
	r.mu.Unlock()
	for _, c := range live {
		c.stopStreams(ReasonShutdown)
	}
	<-done
}
