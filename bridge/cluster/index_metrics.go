package cluster

import "github.com/prometheus/client_golang/prometheus"

// indexMetrics are the call index's collectors.
type indexMetrics struct {
	puts        *prometheus.CounterVec
	records     prometheus.Gauge
	interrupted prometheus.Counter
}

// calls makes the collectors of the call index and of requests between
// replicas, and registers them on reg when it is not nil.
func (m *Metrics) calls(reg prometheus.Registerer) {
	m.index = indexMetrics{
		puts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_nats_index_puts_total",
			Help: "Records of this replica's calls for the call index, by result: ok (stored), superseded (not stored: the index holds a later part of the call, continued on another replica), failed (NATS or the bucket refused it; retried), dropped (the queue was full)."},
			[]string{"result"}),
		records: prometheus.NewGauge(prometheus.GaugeOpts{Name: "bridge_nats_index_records",
			Help: "Call records of every replica read from the call index and held in memory for the call list."}),
		interrupted: prometheus.NewCounter(prometheus.CounterOpts{Name: "bridge_nats_index_interrupted_total",
			Help: "Calls of lost replicas this replica marked interrupted (node_lost) in the call index."}),
	}
	m.rpcRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_nats_rpc_requests_total",
		Help: "Requests of this replica's REST API to the replica holding a call (record, transcript, recording chunks), by result: ok, not_found, busy, timeout, unreachable, error."},
		[]string{"result"})
	m.rpcServed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_nats_rpc_served_total",
		Help: "Requests of other replicas about this replica's calls, by answer: ok, not_found, busy (too many at once), error."},
		[]string{"result"})
	if reg != nil {
		reg.MustRegister(m.index.puts, m.index.records, m.index.interrupted, m.rpcRequests, m.rpcServed)
	}
}
