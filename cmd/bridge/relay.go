package main

import (
	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/cluster"
	"github.com/callcaptions/bridge/bridge/provider"
	"github.com/callcaptions/bridge/web"
)

// In cluster mode a stream of a call held by another replica is relayed
// to it (see bridge/cluster/relay.go): one call record, one seq order and
// every track's WAV on the replica that holds the call.

// clusterStreams routes each starting stream to the replica that holds its
// call: this one (the registry), or a relay to the owner.
type clusterStreams struct {
	c   *cluster.Cluster
	reg *bridge.Registry
}

var _ web.Streams = clusterStreams{}

func (s clusterStreams) StartStream(p provider.Name, st *provider.Start) (web.MediaStream, error) {
	// A bad call id is refused before it names a key in the bucket.
	if err := bridge.CheckCallID(st.CallID); err != nil {
		return nil, err
	}
	rs, err := s.c.Route(p, st)
	if err != nil {
		return nil, err
	}
	if rs != nil {
		return rs, nil
	}
	ls, err := s.reg.StartStream(p, st)
	if err != nil {
		return nil, err
	}
	return ls, nil
}

// streamsOf is what starts the media streams: nil (the registry's) without
// cluster mode. It hands the cluster the registry for streams relayed here.
func streamsOf(c *cluster.Cluster, reg *bridge.Registry) web.Streams {
	if c == nil {
		return nil
	}
	c.SetStreams(reg)
	return clusterStreams{c: c, reg: reg}
}
