package config

import (
	"net/url"
	"strings"
	"time"
)

// NATS configures cluster mode: caption events shared between replicas
// over NATS JetStream. Off when URL is empty: one process, as without it.
type NATS struct {
	URL    string `name:"nats-url" env:"BRIDGE_NATS_URL" help:"NATS servers (comma-separated, e.g. nats://nats-1:4222,nats://nats-2:4222) with JetStream: turns cluster mode on, so captions of a call held by any replica can be followed on every replica. Empty: one process."`
	Creds  string `name:"nats-creds" env:"BRIDGE_NATS_CREDS" help:"NATS credentials file (JWT and NKey seed) for a secured server." type:"path"`
	CA     string `name:"nats-ca" env:"BRIDGE_NATS_CA" help:"File of CA certificates (PEM) that the NATS servers' TLS certificates are checked against." type:"path"`
	NodeID string `name:"node-id" env:"BRIDGE_NODE_ID" help:"Name of this replica in the cluster, unique among replicas. Empty: the host name."`
	// NodeTimeout is how long a replica may go unheard before the others
	// end its calls for their subscribers (call.ended, reason node_lost).
	NodeTimeout time.Duration `name:"node-timeout" env:"BRIDGE_NODE_TIMEOUT" default:"15s" help:"How long a replica may go without a heartbeat before the other replicas end its calls for their subscribers (call.ended with reason node_lost). 3s to 5m."`
}

// Enabled reports whether cluster mode is on.
func (n NATS) Enabled() bool { return n.URL != "" }

// Servers are the URLs of --nats-url.
func (n NATS) Servers() []string {
	var out []string
	for _, s := range strings.Split(n.URL, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// check reports every problem with the cluster settings.
func (n NATS) check(bad func(setting, format string, a ...any)) {
	if !n.Enabled() {
		for _, set := range []struct {
			flag string
			on   bool
		}{{"nats-creds", n.Creds != ""}, {"nats-ca", n.CA != ""}} {
			if set.on {
				bad(set.flag, "has no effect without --nats-url")
			}
		}
		return
	}
	servers := n.Servers()
	if len(servers) == 0 {
		bad("nats-url", "%q names no server (e.g. nats://127.0.0.1:4222)", n.URL)
	}
	for _, s := range servers {
		u, err := url.Parse(s)
		switch {
		case err != nil:
			bad("nats-url", "%q does not parse: %v", s, err)
		case u.Scheme != "nats" && u.Scheme != "tls" && u.Scheme != "ws" && u.Scheme != "wss":
			bad("nats-url", "%q must start with nats://, tls://, ws:// or wss://", s)
		case u.Host == "":
			bad("nats-url", "%q has no host", s)
		}
	}
	if n.NodeID != "" && (len(n.NodeID) > 64 || strings.ContainsAny(n.NodeID, " \t\r\n:")) {
		bad("node-id", "%q must be at most 64 characters without spaces or colons", n.NodeID)
	}
	if n.NodeTimeout < 3*time.Second || n.NodeTimeout > 5*time.Minute {
		bad("node-timeout", "%s must be from 3s to 5m", n.NodeTimeout)
	}
}
