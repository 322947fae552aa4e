package web

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/callcaptions/bridge/bridge"
)

// Metrics are the bridge's Prometheus metrics. One value per process,
// registered on its own registry (no global state); it implements
// bridge.Metrics for the ingest side.
type Metrics struct {
	Registry *prometheus.Registry

	callsActive    prometheus.Gauge
	callsTotal     *prometheus.CounterVec
	frames         prometheus.Counter
	bytesRecorded  prometheus.Counter
	duplicates     prometheus.Counter
	gapMs          *prometheus.CounterVec
	badFrames      *prometheus.CounterVec
	refused        *prometheus.CounterVec
	finals         *prometheus.CounterVec
	sttEvents      *prometheus.CounterVec
	recordErrors   prometheus.Counter
	authFailures   *prometheus.CounterVec
	captionLatency prometheus.Histogram
	ignored        *prometheus.CounterVec
	paramsDropped  prometheus.Counter
	mediaSockets   prometheus.Gauge
	eventsDropped  prometheus.Counter
	gapUnfilled    prometheus.Counter
	// Bounds before a call exists (see media.go, callbacks.go).
	callbacksDropped *prometheus.CounterVec
	streamsRefused   *prometheus.CounterVec
	unstarted        *prometheus.CounterVec
	pendingSockets   prometheus.Gauge
	perAddress       *prometheus.CounterVec
	fsyncSeconds     prometheus.Histogram
	fsyncErrors      prometheus.Counter
	panics           *prometheus.CounterVec
}

var _ bridge.Metrics = (*Metrics)(nil)

// NewMetrics creates and registers the metrics. hub may be nil.
func NewMetrics(hub *Hub) *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry:      r,
		callsActive:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "bridge_calls_active", Help: "Calls in progress."}),
		callsTotal:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_calls_total", Help: "Calls ended, by end reason."}, []string{"reason"}),
		frames:        prometheus.NewCounter(prometheus.CounterOpts{Name: "bridge_media_frames_total", Help: "Media frames recorded."}),
		bytesRecorded: prometheus.NewCounter(prometheus.CounterOpts{Name: "bridge_recorded_bytes_total", Help: "PCM bytes written to recordings (excluding filled silence)."}),
		duplicates:    prometheus.NewCounter(prometheus.CounterOpts{Name: "bridge_media_frames_dropped_total", Help: "Media frames dropped as duplicates or too late to place."}),
		gapMs:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_gap_milliseconds_total", Help: "Audio missing from providers (kind=media, filled with silence) or not transcribed (kind=stt)."}, []string{"kind"}),
		badFrames:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_media_bad_frames_total", Help: "Malformed media frames, by provider."}, []string{"provider"}),
		refused:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_media_sockets_refused_total", Help: "Media sockets closed for protocol errors, by provider."}, []string{"provider"}),
		finals:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_transcript_finals_total", Help: "Final transcript segments, by track."}, []string{"track"}),
		sttEvents:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_stt_events_total", Help: "Speech-to-text stream events (rollover, retry, failed, …) by error code."}, []string{"event", "code"}),
		recordErrors:  prometheus.NewCounter(prometheus.CounterOpts{Name: "bridge_recording_errors_total", Help: "Recording write errors (disk full, …)."}),
		authFailures:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_auth_failures_total", Help: "Refused requests, by authentication scheme."}, []string{"scheme"}),
		ignored:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_media_ignored_frames_total", Help: "Frames of events the bridge does not act on (marks, playback acknowledgements, unknown events), by provider."}, []string{"provider"}),
		captionLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "bridge_caption_latency_seconds", Help: "From the audio that ends an utterance reaching the bridge to its final being published.",
			Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5}}),
		mediaSockets: prometheus.NewGauge(prometheus.GaugeOpts{Name: "bridge_media_streams_active", Help: "Open media sockets."}),
	}
	r.MustRegister(m.callsActive, m.callsTotal, m.frames, m.bytesRecorded, m.duplicates, m.gapMs, m.badFrames, m.refused,
		m.finals, m.sttEvents, m.recordErrors, m.authFailures, m.captionLatency, m.mediaSockets, m.ignored)
	m.paramsDropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "bridge_custom_parameters_dropped_total", Help: "Custom parameters of start frames dropped for breaking a limit (count, key or value length)."})
	r.MustRegister(m.paramsDropped)
	m.eventsDropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "bridge_call_events_dropped_total", Help: "Transcript events (gaps, DTMF, STT notices) neither kept nor published because their call reached --max-events-per-call."})
	r.MustRegister(m.eventsDropped)
	m.gapUnfilled = prometheus.NewCounter(prometheus.CounterOpts{Name: "bridge_gap_unfilled_milliseconds_total", Help: "Missing media audio not filled with silence: beyond --max-gap at once, or beyond the call's wall time plus --max-gap in all."})
	r.MustRegister(m.gapUnfilled)
	m.callbacksDropped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_callbacks_dropped_total",
		Help: "Status callbacks not kept: call_full (the call's share is used), pending_evicted (room made for newer ones of calls not started), expired (the call never started)."}, []string{"reason"})
	m.streamsRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_streams_refused_total",
		Help: "Streams refused at their start frame, by reason (call_id, provider_mismatch, account_mismatch, resume_window, unsupported, max_calls, max_streams, shutdown, other)."}, []string{"reason"})
	m.unstarted = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_media_sockets_unstarted_closed_total",
		Help: "Media sockets closed before their stream started: start_timeout (no start frame within --start-timeout), pending_full (--max-pending-streams reached)."}, []string{"reason"})
	m.pendingSockets = prometheus.NewGauge(prometheus.GaugeOpts{Name: "bridge_media_sockets_pending", Help: "Media sockets open whose stream has not started yet."})
	m.perAddress = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_sockets_refused_per_address_total",
		Help: "Sockets refused with 429 because their remote address holds --max-sockets-per-address already, by kind (media, captions)."}, []string{"kind"})
	r.MustRegister(m.callbacksDropped, m.streamsRefused, m.unstarted, m.pendingSockets, m.perAddress)
	m.fsyncSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "bridge_fsync_round_seconds", Help: "How long one --fsync-interval round of syncing every open recording and journal took.",
		Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10}})
	m.fsyncErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "bridge_fsync_errors_total", Help: "Sync rounds in which a recording or journal could not be synced to disk."})
	r.MustRegister(m.fsyncSeconds, m.fsyncErrors)
	m.panics = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_panics_total", Help: "Panics recovered, by where they happened (http, socket, call, track): each ended one request, socket or call, never the process."}, []string{"where"})
	r.MustRegister(m.panics)
	if hub != nil {
		r.MustRegister(hubCollector{hub})
	}
	return m
}

// CallStarted implements bridge.Metrics.
func (m *Metrics) CallStarted() { m.callsActive.Inc() }

// CallEnded implements bridge.Metrics.
func (m *Metrics) CallEnded(reason string) {
	m.callsActive.Dec()
	m.callsTotal.WithLabelValues(reason).Inc()
}

// Frame implements bridge.Metrics.
func (m *Metrics) Frame(n int) { m.frames.Inc(); m.bytesRecorded.Add(float64(n)) }

// Duplicate implements bridge.Metrics.
func (m *Metrics) Duplicate() { m.duplicates.Inc() }

// Gap implements bridge.Metrics.
func (m *Metrics) Gap(kind string, ms int64) { m.gapMs.WithLabelValues(kind).Add(float64(ms)) }

// Final implements bridge.Metrics.
func (m *Metrics) Final(track string) { m.finals.WithLabelValues(track).Inc() }

// STTEvent implements bridge.Metrics.
func (m *Metrics) STTEvent(event, code string) { m.sttEvents.WithLabelValues(event, code).Inc() }

// RecordError implements bridge.Metrics.
func (m *Metrics) RecordError() { m.recordErrors.Inc() }

// CaptionLatency implements bridge.Metrics.
func (m *Metrics) CaptionLatency(d time.Duration) { m.captionLatency.Observe(d.Seconds()) }

// EventsDropped implements bridge.Metrics.
func (m *Metrics) EventsDropped(n int) { m.eventsDropped.Add(float64(n)) }

// GapUnfilled implements bridge.Metrics.
func (m *Metrics) GapUnfilled(ms int64) { m.gapUnfilled.Add(float64(ms)) }

// MediaSocketOpened and MediaSocketClosed track open media sockets.
func (m *Metrics) MediaSocketOpened() { m.mediaSockets.Inc() }

// MediaSocketClosed is the counterpart of MediaSocketOpened.
func (m *Metrics) MediaSocketClosed() { m.mediaSockets.Dec() }

// Ignored counts frames of events the bridge does not act on (marks,
// playback acknowledgements, unknown events).
func (m *Metrics) Ignored(p string) { m.ignored.WithLabelValues(p).Inc() }

// ParametersDropped counts custom parameters a start frame lost to the
// limits.
func (m *Metrics) ParametersDropped(n int) { m.paramsDropped.Add(float64(n)) }

// Panic implements bridge.Metrics and counts the web layer's recovered
// panics too (PanicHTTP, PanicSocket).
func (m *Metrics) Panic(where string) { m.panics.WithLabelValues(where).Inc() }

// BadFrame counts a malformed media frame.
func (m *Metrics) BadFrame(p string) { m.badFrames.WithLabelValues(p).Inc() }

// Refused counts a media socket closed for a protocol error.
func (m *Metrics) Refused(p string) { m.refused.WithLabelValues(p).Inc() }

// AuthFailure counts a request refused by an authentication scheme.
func (m *Metrics) AuthFailure(scheme string) { m.authFailures.WithLabelValues(scheme).Inc() }

// CallbackDropped implements bridge.Metrics.
func (m *Metrics) CallbackDropped(reason string) { m.callbacksDropped.WithLabelValues(reason).Inc() }

// StreamRefused counts a stream refused at its start frame.
func (m *Metrics) StreamRefused(reason string) { m.streamsRefused.WithLabelValues(reason).Inc() }

// UnstartedClosed counts a media socket closed before its stream started.
func (m *Metrics) UnstartedClosed(reason string) { m.unstarted.WithLabelValues(reason).Inc() }

// PerAddressRefused counts a socket refused by the per-address cap.
func (m *Metrics) PerAddressRefused(kind string) { m.perAddress.WithLabelValues(kind).Inc() }

// hubCollector exports the hub's own counters at scrape time.
type hubCollector struct{ hub *Hub }

var (
	descSubscribers = prometheus.NewDesc("bridge_subscribers", "Caption subscribers connected.", nil, nil)
	descSlow        = prometheus.NewDesc("bridge_subscribers_slow_disconnects_total", "Subscribers cut off for not keeping up.", nil, nil)
	descPublished   = prometheus.NewDesc("bridge_events_published_total", "Events published to subscribers.", nil, nil)
	descCoalesced   = prometheus.NewDesc("bridge_partials_coalesced_total", "Partial captions replaced by a newer one before a slow subscriber read them.", nil, nil)
	descReplayDrop  = prometheus.NewDesc("bridge_replay_dropped_total", "Events dropped from calls' replay logs (what late subscribers get) for --max-replay-bytes.", nil, nil)
)

func (h hubCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSubscribers
	ch <- descSlow
	ch <- descPublished
	ch <- descCoalesced
	ch <- descReplayDrop
}

func (h hubCollector) Collect(ch chan<- prometheus.Metric) {
	st := h.hub.Stats()
	ch <- prometheus.MustNewConstMetric(descSubscribers, prometheus.GaugeValue, float64(st.Subscribers))
	ch <- prometheus.MustNewConstMetric(descSlow, prometheus.CounterValue, float64(st.SlowDisconnects))
	ch <- prometheus.MustNewConstMetric(descPublished, prometheus.CounterValue, float64(st.Published))
	ch <- prometheus.MustNewConstMetric(descCoalesced, prometheus.CounterValue, float64(st.DroppedPartials))
	ch <- prometheus.MustNewConstMetric(descReplayDrop, prometheus.CounterValue, float64(st.ReplayDropped))
}

// Fsync counts one round of syncing recordings and journals to disk.
func (m *Metrics) Fsync(took time.Duration, err error) {
	m.fsyncSeconds.Observe(took.Seconds())
	if err != nil {
		m.fsyncErrors.Inc()
	}
}
