package web

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/callcaptions/bridge/bridge"
)

// Metrics are the HTTP side's Prometheus collectors: media sockets before
// and after their stream starts, refusals, authentication and the caption
// hub. The bridge's own collectors (bridge.Metrics) sit beside them on the
// same registry; recovered panics are counted there.
type Metrics struct {
	bridge       *bridge.Metrics
	badFrames    *prometheus.CounterVec
	refused      *prometheus.CounterVec
	authFailures *prometheus.CounterVec
	ignored      *prometheus.CounterVec
	mediaSockets prometheus.Gauge
	// Bounds before a call exists (see media.go, callbacks.go).
	paramsDropped  prometheus.Counter
	streamsRefused *prometheus.CounterVec
	unstarted      *prometheus.CounterVec
	pendingSockets prometheus.Gauge
	perAddress     *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them, and the hub's
// (when hub is not nil), on reg (nil: kept unregistered). Panics are
// counted on bm (nil: a private, unregistered set).
func NewMetrics(reg prometheus.Registerer, hub *Hub, bm *bridge.Metrics) *Metrics {
	if bm == nil {
		bm = bridge.NewMetrics(nil)
	}
	vec := func(name, help, label string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})
	}
	m := &Metrics{
		bridge:       bm,
		badFrames:    vec("bridge_media_bad_frames_total", "Malformed media frames, by provider.", "provider"),
		refused:      vec("bridge_media_sockets_refused_total", "Media sockets closed for protocol errors, by provider.", "provider"),
		authFailures: vec("bridge_auth_failures_total", "Refused requests, by authentication scheme.", "scheme"),
		ignored: vec("bridge_media_ignored_frames_total",
			"Frames of events the bridge does not act on (marks, playback acknowledgements, unknown events), by provider.", "provider"),
		mediaSockets: prometheus.NewGauge(prometheus.GaugeOpts{Name: "bridge_media_streams_active", Help: "Open media sockets."}),
		paramsDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "bridge_custom_parameters_dropped_total",
			Help: "Custom parameters of start frames dropped for breaking a limit (count, key or value length)."}),
		streamsRefused: vec("bridge_streams_refused_total",
			"Streams refused at their start frame, by reason (call_id, provider_mismatch, account_mismatch, resume_window, unsupported, max_calls, max_streams, shutdown, other).",
			"reason"),
		unstarted: vec("bridge_media_sockets_unstarted_closed_total",
			"Media sockets closed before their stream started: start_timeout (no start frame within --start-timeout), pending_full (--max-pending-streams reached).",
			"reason"),
		pendingSockets: prometheus.NewGauge(prometheus.GaugeOpts{Name: "bridge_media_sockets_pending", Help: "Media sockets open whose stream has not started yet."}),
		perAddress: vec("bridge_sockets_refused_per_address_total",
			"Sockets refused with 429 because their remote address holds --max-sockets-per-address already, by kind (media, captions).", "kind"),
	}
	if reg != nil {
		reg.MustRegister(m.badFrames, m.refused, m.authFailures, m.ignored, m.mediaSockets,
			m.paramsDropped, m.streamsRefused, m.unstarted, m.pendingSockets, m.perAddress)
		if hub != nil {
			registerHub(reg, hub)
		}
	}
	return m
}

// AuthFailure counts a request refused by an authentication scheme.
func (m *Metrics) AuthFailure(scheme string) { m.authFailures.WithLabelValues(scheme).Inc() }

// registerHub exports the hub's own counters, read at scrape time.
func registerHub(reg prometheus.Registerer, hub *Hub) {
	counter := func(name, help string, n *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(n.Load()) })
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "bridge_subscribers", Help: "Caption subscribers connected."},
			func() float64 { return float64(hub.subscribers.Load()) }),
		counter("bridge_subscribers_slow_disconnects_total", "Subscribers cut off for not keeping up.", &hub.slow),
		counter("bridge_events_published_total", "Events published to subscribers.", &hub.published),
		counter("bridge_partials_coalesced_total", "Partial captions replaced by a newer one before a slow subscriber read them.",
			&hub.droppedPartials),
		counter("bridge_subscribers_cluster_unavailable_total",
			"Caption subscribers closed or refused (4503) because other replicas' events could not reach this replica.", &hub.clusterClosed),
		counter("bridge_replay_dropped_total", "Events dropped from calls' replay logs (what late subscribers get) for --max-replay-bytes.",
			&hub.replayDropped))
}
