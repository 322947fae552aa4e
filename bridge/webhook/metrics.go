package webhook

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the webhook deliveries' Prometheus collectors, labelled by
// endpoint (its URL without query or user info).
type Metrics struct {
	delivered *prometheus.CounterVec
	retried   *prometheus.CounterVec
	failed    *prometheus.CounterVec
	depth     *prometheus.GaugeVec
	pending   *prometheus.GaugeVec
	bytes     *prometheus.GaugeVec
	latency   *prometheus.HistogramVec
}

// NewMetrics creates the collectors and registers them on reg (nil: kept
// unregistered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	ep := []string{"endpoint"}
	m := &Metrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_webhook_delivered_total",
			Help: "Webhook deliveries the endpoint accepted (2xx)."}, ep),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_webhook_retries_total",
			Help: "Webhook attempts that failed (no answer in time, or not 2xx) and will be retried."}, ep),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_webhook_failed_total",
			Help: "Webhook events given up: attempts (retries exhausted), gone (410 for the call), queue_full, outbox_full, outbox_error."},
			[]string{"endpoint", "reason"}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bridge_webhook_queue_depth",
			Help: "Webhook events waiting to be written to the outbox."}, ep),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bridge_webhook_pending",
			Help: "Webhook deliveries in the outbox, not yet accepted or given up."}, ep),
		bytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bridge_webhook_outbox_bytes",
			Help: "Bytes of the webhook outbox on disk."}, ep),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bridge_webhook_delivery_seconds",
			Help:    "Time from an event's queueing to its acceptance by the endpoint, retries included.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1200}}, ep),
	}
	if reg != nil {
		reg.MustRegister(m.delivered, m.retried, m.failed, m.depth, m.pending, m.bytes, m.latency)
	}
	return m
}

// endpointMetrics are one endpoint's series.
type endpointMetrics struct {
	delivered, retried prometheus.Counter
	failed             *prometheus.CounterVec
	depth              prometheus.Gauge
	pending, bytes     prometheus.Gauge
	latency            prometheus.Observer
}

func (m *Metrics) endpoint(label string) endpointMetrics {
	l := prometheus.Labels{"endpoint": label}
	return endpointMetrics{
		delivered: m.delivered.With(l), retried: m.retried.With(l), failed: m.failed.MustCurryWith(l),
		depth: m.depth.With(l), pending: m.pending.With(l), bytes: m.bytes.With(l), latency: m.latency.With(l),
	}
}
