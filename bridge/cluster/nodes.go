package cluster

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/callcaptions/bridge/bridge"
)

// HeartbeatSubject is where every replica says, every third of
// Config.NodeTimeout, that it is alive; the payload is its node id. Core
// NATS, not the stream: a heartbeat is worth nothing once the next one is
// due, so nothing is stored, and a replica that cannot reach NATS sends
// none.
const HeartbeatSubject = "bridge.nodes"

// HeaderInstance names, in a heartbeat, the process that sent it (random,
// per start), so that two processes started with one --node-id (two
// replicas on one host without --node-id, where both default to the host
// name) hear each other and say so.
const HeaderInstance = "Bridge-Instance"

// watch sends heartbeats, hears the other replicas' and ends the open
// calls of a replica unheard for Config.NodeTimeout, until ctx is done.
func (c *Cluster) watch(ctx context.Context) {
	sub, err := c.nc.Subscribe(HeartbeatSubject, func(m *nats.Msg) {
		node := string(m.Data)
		switch {
		case node == "":
		case node != c.cfg.NodeID:
			c.mu.Lock()
			c.nodes[node] = time.Now()
			c.mu.Unlock()
		case m.Header.Get(HeaderInstance) != c.instance:
			c.conflict(m.Header.Get(HeaderInstance))
		}
	})
	if err != nil {
		c.log.Error().Err(err).Msg("heartbeats of other replicas not heard: their calls are not ended here when they die")
	} else {
		defer func() { _ = sub.Unsubscribe() }() // the connection closes next anyway
	}
	tick := time.NewTicker(c.cfg.NodeTimeout / 3)
	defer tick.Stop()
	c.beat()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			c.beat()
			c.check(now)
		}
	}
}

// beat publishes this replica's heartbeat while connected. A failure is
// not logged: losing the connection is, once.
func (c *Cluster) beat() {
	if c.nc.IsConnected() {
		m := nats.NewMsg(HeartbeatSubject)
		m.Data = []byte(c.cfg.NodeID)
		m.Header.Set(HeaderInstance, c.instance)
		_ = c.nc.PublishMsg(m)
	}
}

// conflict reports a heartbeat of another process with this replica's
// node id: counted each time, logged at most once a minute.
func (c *Cluster) conflict(other string) {
	c.m.conflicts.Inc()
	now := time.Now().UnixNano()
	last := c.conflictLogged.Load()
	if now-last < int64(time.Minute) || !c.conflictLogged.CompareAndSwap(last, now) {
		return
	}
	c.log.Error().Str("node_id", c.cfg.NodeID).Str("other_instance", bridge.Clip(other)).
		Msg("another replica runs with this --node-id: give every replica its own (--node-id, BRIDGE_NODE_ID); until then captions, the call list and relays between the two go wrong")
}

// check declares lost the nodes unheard for Config.NodeTimeout at now and
// ends their open calls. A replica that is itself cut off from NATS hears
// nobody, so it declares nobody lost, and after it is back it gives every
// node a full timeout again.
func (c *Cluster) check(now time.Time) {
	if !c.Connected() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rejoined.Swap(false) {
		for node := range c.nodes {
			c.nodes[node] = now
		}
	}
	live := 1 // this replica
	for node, heard := range c.nodes {
		if now.Sub(heard) < c.cfg.NodeTimeout {
			live++
			continue
		}
		// Forgotten until heard again, so declared lost once.
		delete(c.nodes, node)
		c.m.nodesLost.Inc()
		c.log.Warn().Str("node", node).Dur("unheard", now.Sub(heard)).Int("calls", c.endCalls(node, now)).
			Msg("replica lost: its open calls are ended for this replica's subscribers (node_lost)")
	}
	c.m.nodes.Set(float64(live))
}

// endCalls hands the sink a call.ended (reason node_lost) for each call
// of node not ended yet, with the seq after the last one handed on, and
// returns how many. c.mu is held.
func (c *Cluster) endCalls(node string, now time.Time) int {
	n := 0
	for id, s := range c.seen {
		if s.node == node && !s.ended && c.endCall(id, s, now) {
			n++
		}
	}
	return n
}

// endCall hands the sink a call.ended (reason node_lost) for call id,
// whose state s is, with the seq after the last one handed on. c.mu is
// held.
func (c *Cluster) endCall(id string, s seen, now time.Time) bool {
	body := bridge.CallEndedBody{Reason: bridge.ReasonNodeLost, EndedAt: now.UTC()}
	if !s.started.IsZero() {
		body.DurationMs = now.Sub(s.started).Milliseconds()
	}
	data, err := bridge.Encode(bridge.TypeCallEnded, id, s.seq+1, body)
	if err != nil { // a CallEndedBody always encodes
		c.log.Error().Err(err).Str("call_id", id).Msg("call.ended not encoded")
		return false
	}
	s.seq, s.ended, s.lost = s.seq+1, true, true
	c.seen[id] = s
	c.sink.Publish(bridge.Event{Type: bridge.TypeCallEnded, CallID: id, Seq: s.seq, Data: data, Kind: bridge.KindDurable, Body: body})
	return true
}
