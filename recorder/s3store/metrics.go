package s3store

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the uploader's Prometheus collectors. NewMetrics registers
// them on the registerer it is given.
type Metrics struct {
	backlog prometheus.Gauge
	uploads *prometheus.CounterVec
	bytes   prometheus.Counter
	removed prometheus.Counter
}

// Results of an upload attempt, the result label of bridge_s3_uploads_total.
const (
	ResultOK      = "ok"      // the call's changed files are uploaded and verified
	ResultFailed  = "failed"  // an attempt failed; the call waits for its next try
	ResultDropped = "dropped" // the queue was full; the next sweep finds the call
)

// NewMetrics creates the collectors and registers them on reg (nil: kept
// unregistered, for tests and tools).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{Name: "bridge_s3_upload_backlog",
			Help: "Ended calls waiting to be uploaded to object storage (queued, or retrying after a failure)."}),
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_s3_uploads_total",
			Help: "Call uploads to object storage by result: ok (uploaded and verified), failed (retried with backoff), dropped (queue full; the next spool sweep finds the call)."},
			[]string{"result"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "bridge_s3_uploaded_bytes_total",
			Help: "Bytes uploaded to object storage and verified."}),
		removed: prometheus.NewCounter(prometheus.CounterOpts{Name: "bridge_s3_spool_removed_total",
			Help: "Calls whose local copy was removed from the spool after their upload."}),
	}
	for _, r := range []string{ResultOK, ResultFailed, ResultDropped} {
		m.uploads.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.backlog, m.uploads, m.bytes, m.removed)
	}
	return m
}
