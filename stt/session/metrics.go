package session

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the counters of a process's engine streams. A nil *Metrics
// counts nothing.
type Metrics struct {
	streams   prometheus.Counter
	rotations prometheus.Counter
	errors    *prometheus.CounterVec
}

// NewMetrics creates the counters and registers them on reg unless it is nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		streams:   prometheus.NewCounter(prometheus.CounterOpts{Name: "bridge_stt_streams_opened_total", Help: "Speech-to-text engine streams opened (rotations and retries included)."}),
		rotations: prometheus.NewCounter(prometheus.CounterOpts{Name: "bridge_stt_rotations_total", Help: "Planned switches to a fresh engine stream before the engine's stream limit."}),
		errors:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_stt_errors_total", Help: "Speech-to-text engine stream errors, by gRPC code."}, []string{"code"}),
	}
	if reg != nil {
		reg.MustRegister(m.streams, m.rotations, m.errors)
	}
	return m
}

// StreamOpened counts an engine stream opened (first, rollover, retry).
func (m *Metrics) StreamOpened() {
	if m != nil {
		m.streams.Inc()
	}
}

// Rotation counts a planned rollover.
func (m *Metrics) Rotation() {
	if m != nil {
		m.rotations.Inc()
	}
}

// Error counts a failed engine stream by the engine's code name.
func (m *Metrics) Error(code string) {
	if m != nil {
		m.errors.WithLabelValues(code).Inc()
	}
}
