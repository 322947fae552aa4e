package cluster

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the cluster's Prometheus collectors.
type Metrics struct {
	connected prometheus.Gauge
	published prometheus.Counter
	dropped   prometheus.Counter
	received  prometheus.Counter
	nodes     prometheus.Gauge
	nodesLost prometheus.Counter

	index       indexMetrics
	rpcRequests *prometheus.CounterVec
	rpcServed   *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them on reg (nil: kept
// unregistered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m := &Metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "bridge_nats_connected", Help: "1 while the connection to NATS is up, else 0."}),
		published: counter("bridge_nats_published_total", "Caption events of this replica's calls acknowledged by the JetStream stream."),
		dropped: counter("bridge_nats_publish_dropped_total",
			"Caption events of this replica's calls not sent to NATS: the send queue or the in-flight window was full, NATS was disconnected, or the stream refused them."),
		received: counter("bridge_nats_received_total", "Caption events of other replicas' calls handed to this replica's caption hub."),
		nodes:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "bridge_nats_nodes", Help: "Replicas heard within --node-timeout, this one included."}),
		nodesLost: counter("bridge_nats_nodes_lost_total",
			"Other replicas declared lost (unheard for --node-timeout); their open calls were ended here with reason node_lost."),
	}
	m.calls(reg)
	if reg != nil {
		reg.MustRegister(m.connected, m.published, m.dropped, m.received, m.nodes, m.nodesLost)
	}
	return m
}
