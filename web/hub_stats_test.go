package web

// HubStats is a snapshot of the hub's counters, which /metrics exports
// one by one.
type HubStats struct {
	Subscribers     int    // attached subscriptions, waiting ones included
	Calls           int    // calls started and not ended
	Published       uint64 // events accepted by Publish
	SlowDisconnects uint64 // subscribers cut off as slow
	DroppedPartials uint64 // queued partials replaced by a newer partial or their final
	Rejected        uint64 // Subscribe calls refused by a limit
	ReplayDropped   uint64 // events dropped from replay logs for MaxReplayBytes
}

// Stats returns the hub's counters.
func (h *Hub) Stats() HubStats {
	st := HubStats{
		Subscribers:     int(h.subscribers.Load()),
		Published:       h.published.Load(),
		SlowDisconnects: h.slow.Load(),
		DroppedPartials: h.droppedPartials.Load(),
		Rejected:        h.rejected.Load(),
		ReplayDropped:   h.replayDropped.Load(),
	}
	h.mu.RLock()
	for _, c := range h.calls {
		c.mu.Lock()
		if c.started && !c.ended {
			st.Calls++
		}
		c.mu.Unlock()
	}
	h.mu.RUnlock()
	return st
}
