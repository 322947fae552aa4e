package bridge

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the bridge's Prometheus collectors for ingest: calls, frames,
// gaps, transcripts and what the per-call bounds drop. NewMetrics registers
// them on the registerer it is given; the HTTP side exports that registry.
type Metrics struct {
	callsActive      prometheus.Gauge
	callsTotal       *prometheus.CounterVec
	frames           prometheus.Counter
	bytesRecorded    prometheus.Counter
	duplicates       prometheus.Counter
	gapMs            *prometheus.CounterVec
	finals           *prometheus.CounterVec
	sttEvents        *prometheus.CounterVec
	recordErrors     prometheus.Counter
	captionLatency   prometheus.Histogram
	eventsDropped    prometheus.Counter
	gapUnfilled      prometheus.Counter
	callbacksDropped *prometheus.CounterVec
	panics           *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them on reg (nil: kept
// unregistered, for tests and tools).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	vec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m := &Metrics{
		callsActive:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "bridge_calls_active", Help: "Calls in progress."}),
		callsTotal:    vec("bridge_calls_total", "Calls ended, by end reason.", "reason"),
		frames:        counter("bridge_media_frames_total", "Media frames recorded."),
		bytesRecorded: counter("bridge_recorded_bytes_total", "PCM bytes written to recordings (excluding filled silence)."),
		duplicates:    counter("bridge_media_frames_dropped_total", "Media frames dropped as duplicates or too late to place."),
		gapMs: vec("bridge_gap_milliseconds_total",
			"Audio missing from providers (kind=media, filled with silence) or not transcribed (kind=stt).", "kind"),
		finals: vec("bridge_transcript_finals_total", "Final transcript segments, by track.", "track"),
		sttEvents: vec("bridge_stt_events_total",
			"Speech-to-text stream events (rollover, retry, failed, …) by error code.", "event", "code"),
		recordErrors: counter("bridge_recording_errors_total", "Recording write errors (disk full, …)."),
		captionLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "bridge_caption_latency_seconds",
			Help:    "From the audio that ends an utterance reaching the bridge to its final being published.",
			Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5}}),
		eventsDropped: counter("bridge_call_events_dropped_total",
			"Transcript events (gaps, DTMF, STT notices) neither kept nor published because their call reached --max-events-per-call."),
		gapUnfilled: counter("bridge_gap_unfilled_milliseconds_total",
			"Missing media audio not filled with silence: beyond --max-gap at once, or beyond the call's wall time plus --max-gap in all."),
		callbacksDropped: vec("bridge_callbacks_dropped_total",
			"Status callbacks not kept: call_full (the call's share is used), pending_evicted (room made for newer ones of calls not started), expired (the call never started).",
			"reason"),
		panics: vec("bridge_panics_total",
			"Panics recovered, by where they happened (http, socket, call, track): each ended one request, socket or call, never the process.",
			"where"),
	}
	if reg != nil {
		reg.MustRegister(m.callsActive, m.callsTotal, m.frames, m.bytesRecorded, m.duplicates, m.gapMs, m.finals, m.sttEvents,
			m.recordErrors, m.captionLatency, m.eventsDropped, m.gapUnfilled, m.callbacksDropped, m.panics)
	}
	return m
}

// CallStarted counts a call in progress.
func (m *Metrics) CallStarted() { m.callsActive.Inc() }

// CallEnded counts a call ended for reason.
func (m *Metrics) CallEnded(reason string) {
	m.callsActive.Dec()
	m.callsTotal.WithLabelValues(reason).Inc()
}

// Frame counts a recorded frame of n PCM bytes.
func (m *Metrics) Frame(n int) { m.frames.Inc(); m.bytesRecorded.Add(float64(n)) }

// Gap counts audio missing (kind media) or not transcribed (kind stt).
func (m *Metrics) Gap(kind string, ms int64) { m.gapMs.WithLabelValues(kind).Add(float64(ms)) }

// STTEvent counts a speech-to-text stream event.
func (m *Metrics) STTEvent(event, code string) { m.sttEvents.WithLabelValues(event, code).Inc() }

// CaptionLatency observes a final's caption latency (see its help).
func (m *Metrics) CaptionLatency(d time.Duration) { m.captionLatency.Observe(d.Seconds()) }

// EventsDropped counts transcript events not kept (see Config.MaxEventsPerCall).
func (m *Metrics) EventsDropped(n int) { m.eventsDropped.Add(float64(n)) }

// Panic counts a recovered panic by where it happened: PanicCall and
// PanicTrack here, the HTTP side's own places there.
func (m *Metrics) Panic(where string) { m.panics.WithLabelValues(where).Inc() }
