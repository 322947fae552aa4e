package cluster

import (
	"testing"

	"github.com/callcaptions/bridge/bridge/provider"
)

// BenchmarkRelayMedia is the relaying socket's cost per frame: encoding
// into a pooled buffer and queueing it (a consumer hands the buffers back
// as the relay sender does after publishing).
func BenchmarkRelayMedia(b *testing.B) {
	c := &Cluster{relay: newRelays(DefaultRelayQueue), m: NewMetrics(nil)}
	rs := &RelayStream{c: c, id: "0123456789ABCDEFGHIJKLMNOP", subj: RelaySubject("node-a")}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range c.relay.queue {
			c.relay.bufs.Put(m.buf)
		}
	}()
	ev := &provider.Event{Kind: provider.KindMedia, Track: "outbound", Chunk: 1, HasChunk: true, TimestampMs: 20, HasTimestamp: true,
		Payload: make([]byte, 160)}
	b.ReportAllocs()
	b.SetBytes(int64(len(ev.Payload)))
	for b.Loop() {
		ev.Chunk++
		_ = rs.Media(ev)
	}
	b.StopTimer()
	close(c.relay.queue)
	<-done
}
