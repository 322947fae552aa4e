package main

import (
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/cluster"
	"github.com/callcaptions/bridge/config"
	"github.com/callcaptions/bridge/web"
)

// --nats-url: cluster mode. A publisher beside the caption hub sends the
// events of this replica's calls to a JetStream stream; the events other
// replicas send there go into this replica's hub, so every caption socket
// serves every replica's calls. Without NATS the replica records and
// captions its own calls as a single process does.

// newCluster connects to the NATS servers of --nats-url; nil when it is
// not set. Servers that cannot be reached are not fatal: the client keeps
// trying, and the stream is set up once it connects.
func newCluster(cfg config.Config, hub *web.Hub, reg prometheus.Registerer, log zerolog.Logger) (*cluster.Cluster, error) {
	if !cfg.NATS.Enabled() {
		return nil, nil
	}
	node := cfg.NATS.NodeID
	if node == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "bridge"
		}
		node = host
	}
	c, err := cluster.New(cluster.Config{
		Servers: cfg.NATS.Servers(), Creds: cfg.NATS.Creds, CA: cfg.NATS.CA, NodeID: node, NodeTimeout: cfg.NATS.NodeTimeout,
		// An owner key outlives the longest call; a relayed stream is
		// ended by its owner when silent as long as a socket would be.
		OwnerTTL:     cfg.Limits.MaxCallDuration + cfg.Limits.ReconnectGrace + time.Hour,
		RelayTimeout: cfg.Limits.IdleTimeout,
	}, hub.Remote(), cluster.NewMetrics(reg), log)
	if err != nil {
		return nil, err
	}
	log.Info().Str("node_id", node).Strs("servers", cfg.NATS.Servers()).Bool("connected", c.Connected()).
		Msg("cluster mode: captions of every replica's calls are shared over NATS JetStream")
	return c, nil
}

// withCluster adds the cluster's publisher to pubs when there is one.
func withCluster(pubs bridge.Fanout, c *cluster.Cluster) bridge.Fanout {
	if c == nil {
		return pubs
	}
	return append(pubs, c)
}

// runCluster runs c (nothing when nil) beside the server.
func runCluster(c *cluster.Cluster) *beside {
	if c == nil {
		return runBeside(nil)
	}
	return runBeside(c.Run)
}

// natsState tells /readyz whether the cluster shares events both ways
// (connected, and reading the stream); nil without cluster mode.
func natsState(c *cluster.Cluster) func() bool {
	if c == nil {
		return nil
	}
	return c.Available
}
