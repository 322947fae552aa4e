package webhook

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/bridge"
)

// DefaultEvents are the event types delivered when Config.Events is empty.
var DefaultEvents = []string{
	bridge.TypeCallStarted, bridge.TypeCallEnded, bridge.TypeTranscriptFinal,
	bridge.TypeTranscriptReady, bridge.TypeRecordingReady,
}

// Defaults of the Config fields left zero.
const (
	// DefaultQueue events per endpoint wait between Publish and the
	// outbox. When full, Publish drops the event (counted, reason
	// queue_full): the outbox writer is behind by that many events.
	DefaultQueue = 1024
	// DefaultOutboxBytes bound each endpoint's outbox on disk. When full,
	// a new event is not queued (counted, reason outbox_full); the pending
	// ones keep their place.
	DefaultOutboxBytes = 64 << 20
	// DefaultTimeout bounds one attempt: connect, send, answer.
	DefaultTimeout = 10 * time.Second
	// DefaultWorkers calls are delivered at once per endpoint, each
	// call's events one at a time in seq order: a call whose event is
	// being retried holds back only its own later events.
	DefaultWorkers = 4
	// DefaultAttempts: the first try and 11 retries.
	DefaultAttempts = 12
	// DefaultBackoff is the wait before the first retry; each retry
	// doubles it up to DefaultMaxBackoff. Every wait is drawn between half
	// and all of that (jitter). With the defaults a delivery is given up
	// about 19 minutes after its first attempt at the latest.
	DefaultBackoff    = time.Second
	DefaultMaxBackoff = 5 * time.Minute
	// maxResponseBytes of an answer are read (and discarded) so that the
	// connection can be reused; the rest is not.
	maxResponseBytes = 64 << 10
	// maxGone bounds the calls remembered as gone (410) per endpoint;
	// beyond it those older than goneTTL are forgotten, then all.
	maxGone = 10000
	goneTTL = time.Hour
)

// Config sets up the webhook deliveries. A zero field means its default.
type Config struct {
	URLs   []string // the endpoints; only these are ever called
	Secret string   // whsec_<base64 key>
	Events []string // the event types delivered; empty: DefaultEvents
	// Dir holds the outbox: one directory per endpoint under it.
	Dir         string
	OutboxBytes int64
	Queue       int
	Timeout     time.Duration
	Attempts    int
	Workers     int // calls delivered at once per endpoint
	Backoff     time.Duration
	MaxBackoff  time.Duration
}

// Failed is told about a delivery given up on (the receiver never
// accepted it within the attempts, or the outbox had no room). It runs on
// the endpoint's own goroutine and may block it.
type Failed func(callID string, f bridge.WebhookFailure)

// Publisher delivers the bridge's events to the configured endpoints. It
// is a bridge.Publisher: Publish only queues.
type Publisher struct {
	cfg       Config
	key       []byte
	events    map[string]bool
	endpoints []*endpoint
}

var _ bridge.Publisher = (*Publisher)(nil)

// endpoint is one URL: its queue, outbox, client and two goroutines (see
// doc.go).
type endpoint struct {
	p      *Publisher
	url    string
	label  string // the URL without query or user info, for metrics, logs and records
	in     chan bridge.Event
	box    *outbox
	client *http.Client
	m      endpointMetrics
	failed Failed
	log    zerolog.Logger
	// dropLog reports full queues, which can repeat per event.
	dropLog zerolog.Logger

	mu   sync.Mutex
	gone map[string]time.Time // calls whose deliveries this endpoint refused with 410
}

// New checks cfg, opens each endpoint's outbox (loading what a previous
// run left pending) and returns the publisher; Run delivers.
func New(cfg Config, m *Metrics, failed Failed, log zerolog.Logger) (*Publisher, error) {
	key, err := ParseSecret(cfg.Secret)
	if err != nil {
		return nil, err
	}
	if len(cfg.URLs) == 0 {
		return nil, errors.New("webhook: no URL")
	}
	if cfg.Dir == "" {
		return nil, errors.New("webhook: no outbox directory")
	}
	if len(cfg.Events) == 0 {
		cfg.Events = DefaultEvents
	}
	cfg.OutboxBytes = orDefault(cfg.OutboxBytes, DefaultOutboxBytes)
	cfg.Queue = orDefault(cfg.Queue, DefaultQueue)
	cfg.Timeout = orDefault(cfg.Timeout, DefaultTimeout)
	cfg.Attempts = orDefault(cfg.Attempts, DefaultAttempts)
	cfg.Workers = orDefault(cfg.Workers, DefaultWorkers)
	cfg.Backoff = orDefault(cfg.Backoff, DefaultBackoff)
	cfg.MaxBackoff = orDefault(cfg.MaxBackoff, DefaultMaxBackoff)
	if m == nil {
		m = NewMetrics(nil)
	}
	if failed == nil {
		failed = func(string, bridge.WebhookFailure) {}
	}
	log = log.With().Str("component", "webhook").Logger()
	if len(key) < RecommendedKeyBytes {
		log.Warn().Int("key_bytes", len(key)).Msg("--webhook-secret: a short key is easier to guess; use 24 to 64 random bytes (echo whsec_$(head -c 32 /dev/urandom | base64))")
	}
	p := &Publisher{cfg: cfg, key: key, events: map[string]bool{}}
	for _, t := range cfg.Events {
		p.events[t] = true
	}
	for _, raw := range cfg.URLs {
		label, err := Label(raw)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256([]byte(raw))
		box, bad, err := openOutbox(filepath.Join(cfg.Dir, hex.EncodeToString(sum[:8])), cfg.OutboxBytes)
		if err != nil {
			return nil, err
		}
		elog := log.With().Str("endpoint", label).Logger()
		if bad > 0 {
			elog.Warn().Int("files", bad).Msg("unreadable outbox files removed")
		}
		if n, _ := box.stats(); n > 0 {
			elog.Info().Int("pending", n).Msg("webhook deliveries pending from the last run")
		}
		p.endpoints = append(p.endpoints, &endpoint{
			p: p, url: raw, label: label, in: make(chan bridge.Event, cfg.Queue), box: box,
			client: &http.Client{
				Timeout: cfg.Timeout,
				// Only the configured URL is called: a redirect is an
				// answer like any other non-2xx (retried).
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			},
			m: m.endpoint(label), failed: failed, log: elog, gone: map[string]time.Time{},
			dropLog: elog.Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Minute}),
		})
	}
	return p, nil
}

func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Label is u without its query, fragment or user info: what metrics, logs
// and call records name an endpoint by (a query may hold a token). It
// fails for a URL that is not absolute http(s).
func Label(u string) (string, error) {
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return "", fmt.Errorf("webhook URL %q: want an absolute http:// or https:// URL", u)
	}
	return pu.Scheme + "://" + pu.Host + pu.EscapedPath(), nil
}

// Publish implements bridge.Publisher: it queues ev for each endpoint
// that takes its type and never blocks (a full queue drops it, counted).
func (p *Publisher) Publish(ev bridge.Event) {
	if !p.events[ev.Type] || len(ev.Data) == 0 {
		return
	}
	for _, e := range p.endpoints {
		select {
		case e.in <- ev:
			e.m.depth.Inc()
		default:
			e.m.failed.WithLabelValues("queue_full").Inc()
			e.dropLog.Warn().Str("call_id", ev.CallID).Uint64("seq", ev.Seq).Msg("webhook queue full: event not delivered")
		}
	}
}

// Run delivers until ctx is done, then writes what is still queued to the
// outboxes and returns once every goroutine has exited. Deliveries in
// flight are cut off and stay pending for the next run.
func (p *Publisher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, e := range p.endpoints {
		wg.Go(func() { e.persist(ctx) })
		for range p.cfg.Workers {
			wg.Go(func() { e.deliver(ctx) })
		}
	}
	wg.Wait()
}

// persist moves events from the queue into the outbox.
func (e *endpoint) persist(ctx context.Context) {
	for {
		select {
		case ev := <-e.in:
			e.store(ev)
		case <-ctx.Done():
			for {
				select {
				case ev := <-e.in:
					e.store(ev)
				default:
					return
				}
			}
		}
	}
}

func (e *endpoint) store(ev bridge.Event) {
	e.m.depth.Dec()
	if e.isGone(ev.CallID) {
		e.m.failed.WithLabelValues("gone").Inc()
		return
	}
	d := &delivery{ID: newID(), CallID: ev.CallID, Seq: ev.Seq, Type: ev.Type, QueuedAt: time.Now(), Body: ev.Data}
	if err := e.box.add(d); err != nil {
		reason := "outbox_error"
		if errors.Is(err, errFull) {
			reason = "outbox_full"
		}
		e.m.failed.WithLabelValues(reason).Inc()
		e.log.Error().Err(err).Str("call_id", ev.CallID).Uint64("seq", ev.Seq).Msg("webhook event not queued")
		e.failed(ev.CallID, e.failure(d, 0, err.Error()))
		return
	}
	e.gauge()
}

func (e *endpoint) gauge() {
	n, b := e.box.stats()
	e.m.pending.Set(float64(n))
	e.m.bytes.Set(float64(b))
}

// deliver is one of the endpoint's workers: it sends the oldest delivery
// of a call no other worker has, until that is settled, then the next.
func (e *endpoint) deliver(ctx context.Context) {
	e.gauge()
	for {
		d := e.box.take()
		if d == nil {
			select {
			case <-e.box.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		ok := e.attempt(ctx, d)
		e.box.release(d.CallID)
		if !ok {
			return
		}
		e.gauge()
	}
}

// attempt tries d until it is settled; false when ctx ended first (d stays
// pending). The attempts of an earlier run count: a delivery loaded from
// the outbox goes on from d.Attempts, its next wait the one it had
// reached.
func (e *endpoint) attempt(ctx context.Context, d *delivery) bool {
	wait := e.p.cfg.Backoff
	for range d.Attempts {
		wait = min(2*wait, e.p.cfg.MaxBackoff)
	}
	for n := d.Attempts + 1; ; n++ {
		if e.isGone(d.CallID) {
			e.box.remove(d)
			e.m.failed.WithLabelValues("gone").Inc()
			return true
		}
		status, err := e.send(ctx, d)
		switch {
		case ctx.Err() != nil:
			return false
		case err == nil && status/100 == 2:
			e.box.remove(d)
			e.m.delivered.Inc()
			e.m.latency.Observe(time.Since(d.QueuedAt).Seconds())
			return true
		case err == nil && status == http.StatusGone:
			e.markGone(d.CallID)
			dropped := e.box.removeCall(d.CallID)
			e.m.failed.WithLabelValues("gone").Add(float64(dropped))
			e.log.Info().Str("call_id", d.CallID).Int("dropped", dropped).Msg("410 Gone: no more deliveries of this call to this endpoint")
			return true
		}
		msg := "HTTP " + strconv.Itoa(status)
		if err != nil {
			msg = err.Error()
		}
		if n >= e.p.cfg.Attempts {
			e.box.remove(d)
			e.m.failed.WithLabelValues("attempts").Inc()
			e.log.Warn().Str("call_id", d.CallID).Uint64("seq", d.Seq).Str("type", d.Type).Int("attempts", n).Str("error", msg).Msg("webhook delivery failed")
			e.failed(d.CallID, e.failure(d, n, msg))
			return true
		}
		e.m.retried.Inc()
		if err := e.box.setAttempts(d, n); err != nil {
			e.log.Warn().Err(err).Str("call_id", d.CallID).Uint64("seq", d.Seq).Msg("webhook attempts not recorded: a restart may try this delivery more often")
		}
		// Half to all of the wait: endpoints that failed together do not
		// all come back together.
		sleep := wait/2 + rand.N(wait/2+1)
		wait = min(2*wait, e.p.cfg.MaxBackoff)
		t := time.NewTimer(sleep)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
	}
}

// send makes one attempt; it returns the status code, or an error when
// there was no answer (in time).
func (e *endpoint) send(ctx context.Context, d *delivery) (int, error) {
	ts := time.Now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(d.Body))
	if err != nil {
		return 0, fmt.Errorf("make request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "callcaptions-bridge")
	req.Header.Set("webhook-id", d.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Sign(e.p.key, d.ID, ts, d.Body))
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

func (e *endpoint) failure(d *delivery, attempts int, msg string) bridge.WebhookFailure {
	return bridge.WebhookFailure{
		URL: e.label, EventID: d.ID, Type: d.Type, Seq: d.Seq, Attempts: attempts, Error: msg, At: time.Now().UTC(),
	}
}

func (e *endpoint) isGone(call string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.gone[call]
	return ok
}

func (e *endpoint) markGone(call string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	if len(e.gone) >= maxGone {
		for k, at := range e.gone {
			if now.Sub(at) > goneTTL {
				delete(e.gone, k)
			}
		}
		if len(e.gone) >= maxGone {
			clear(e.gone)
		}
	}
	e.gone[call] = now
}

// newID returns a webhook-id: msg_ and 16 random bytes in hex, made once
// per event and endpoint and kept in the outbox, so every retry (and a
// retry after a restart) carries the same id.
func newID() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	return "msg_" + hex.EncodeToString(b[:])
}
