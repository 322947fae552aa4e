package cluster

import (
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the cluster's Prometheus collectors.
type Metrics struct {
	connected prometheus.Gauge
	published prometheus.Counter
	dropped   prometheus.Counter
	received  prometheus.Counter
	nodes     prometheus.Gauge
	nodesLost prometheus.Counter
	conflicts prometheus.Counter

	ownerClaims         *prometheus.CounterVec
	ownerReleaseDropped prometheus.Counter
	relayStreamsOut     prometheus.Counter
	relayStreamsIn      prometheus.Counter
	relayFramesOut      prometheus.Counter
	relayFramesIn       prometheus.Counter
	relayDropped        prometheus.Counter
	relayBad            prometheus.Counter
	relayStops          prometheus.Counter
	// relaySub is the relay subscription, whose own drops (its buffer
	// full) bridge_nats_relay_overflow_total reads.
	relaySub    atomic.Pointer[nats.Subscription]
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
		conflicts: counter("bridge_nats_node_id_conflicts_total",
			"Heartbeats heard from another process with this replica's --node-id: two replicas share a node id, and captions, the call list and relays between them go wrong until one is given another."),
		ownerClaims: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_nats_owner_claims_total",
			Help: "Streams that asked who holds their call, by result: created (first stream, held here), local (held here already), remote (relayed to the live owner), taken_over (the owner was lost), unreachable (the owners bucket could not be asked: run here)."},
			[]string{"result"}),
		ownerReleaseDropped: counter("bridge_nats_owner_release_failed_total",
			"Owner keys of calls ended here that could not be deleted (queue full or NATS away): they expire after the bucket's TTL."),
		relayStreamsOut: counter("bridge_nats_relay_streams_sent_total", "Streams whose socket is here relayed to the replica that holds their call."),
		relayStreamsIn:  counter("bridge_nats_relay_streams_received_total", "Streams relayed here by another replica and joined to a call held here."),
		relayFramesOut:  counter("bridge_nats_relay_frames_sent_total", "Media frames of relayed streams published to the owner of their call."),
		relayFramesIn:   counter("bridge_nats_relay_frames_received_total", "Media frames relayed by other replicas and recorded here."),
		relayDropped: counter("bridge_nats_relay_dropped_total",
			"Relay messages lost: the relay queue was full, a publish failed, or a message came for no relayed stream or did not parse. A lost frame is a silence in the recording."),
		relayBad:   counter("bridge_nats_relay_bad_frames_total", "Relayed media frames the owner could not record (bad payload or track)."),
		relayStops: counter("bridge_nats_relay_stopped_total", "Relayed streams stopped by the call held here (the relay closes their socket)."),
	}
	overflow := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "bridge_nats_relay_overflow_total",
		Help: "Relay messages to this replica dropped because they came faster than it recorded them (the relay subscription's buffer was full)."},
		func() float64 {
			if sub := m.relaySub.Load(); sub != nil {
				if n, err := sub.Dropped(); err == nil {
					return float64(n)
				}
			}
			return 0
		})
	m.calls(reg)
	if reg != nil {
		reg.MustRegister(overflow)
		reg.MustRegister(m.connected, m.published, m.dropped, m.received, m.nodes, m.nodesLost, m.conflicts,
			m.ownerClaims, m.ownerReleaseDropped, m.relayStreamsOut, m.relayStreamsIn, m.relayFramesOut, m.relayFramesIn,
			m.relayDropped, m.relayBad, m.relayStops)
	}
	return m
}
