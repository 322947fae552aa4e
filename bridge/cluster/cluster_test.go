package cluster

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/cluster/clustertest"
)

// sink records what a Cluster hands on.
type sink struct {
	mu  sync.Mutex
	evs []bridge.Event
}

func (s *sink) Publish(ev bridge.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evs = append(s.evs, ev)
}

func (s *sink) events() []bridge.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]bridge.Event(nil), s.evs...)
}

// start runs a Cluster of node against url until the test ends.
func start(t *testing.T, url, node string, cfg Config) (*Cluster, *sink) {
	t.Helper()
	cfg.Servers, cfg.NodeID = []string{url}, node
	out := &sink{}
	c, err := New(cfg, out, nil, zerolog.New(zerolog.NewTestWriter(t)))
	require.NoError(t, err)
	runCluster(t, c)
	return c, out
}

// seq numbers events of calls as a bridge.Sequencer does.
func events(t *testing.T, callID string, types ...string) []bridge.Event {
	t.Helper()
	var out []bridge.Event
	s := bridge.NewSequencer(publisherFunc(func(ev bridge.Event) { out = append(out, ev) }), 0, nil, zerolog.Nop())
	for _, typ := range types {
		var body any
		switch typ {
		case bridge.TypeCallStarted:
			body = bridge.CallStartedBody{Provider: "twilio", Tracks: []string{"inbound"}}
		case bridge.TypeTranscriptFinal:
			body = bridge.Segment{Track: "inbound", SegmentID: fmt.Sprintf("inbound-%d", len(out)), Text: "hello"}
		}
		s.Publish(bridge.Event{Type: typ, CallID: callID, Body: body})
	}
	return out
}

type publisherFunc func(bridge.Event)

func (f publisherFunc) Publish(ev bridge.Event) { f(ev) }

func TestSubject(t *testing.T) {
	for _, id := range []string{"CA123", "a.b c>*", "ünïcode/id", "x"} {
		subj := Subject(id)
		require.Regexp(t, `^bridge\.events\.[A-Za-z0-9_-]+$`, subj, id)
	}
	require.NotEqual(t, Subject("a.b"), Subject("a_b"))
}

func TestPublishedOnTheCallsSubject(t *testing.T) {
	srv := clustertest.Start(t)
	c, _ := start(t, srv.URL(), "node-a", Config{})
	evs := events(t, "call one.>", bridge.TypeCallStarted, bridge.TypeTranscriptFinal, bridge.TypeCallEnded)
	for _, ev := range evs {
		c.Publish(ev)
	}
	require.Eventually(t, func() bool { return testutil.ToFloat64(c.m.published) == 3 }, 10*time.Second, 10*time.Millisecond)

	js, ctx := jetStream(t, srv.URL())
	st, err := js.Stream(ctx, DefaultStream)
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, DefaultMaxAge, info.Config.MaxAge)
	require.Equal(t, jetstream.DiscardOld, info.Config.Discard)
	require.EqualValues(t, DefaultMaxMsgsPerSubject, info.Config.MaxMsgsPerSubject)
	for i, ev := range evs {
		msg, err := st.GetMsg(ctx, uint64(i+1))
		require.NoError(t, err)
		require.Equal(t, Subject("call one.>"), msg.Subject)
		require.Equal(t, strconv.FormatUint(ev.Seq, 10), msg.Header.Get(HeaderSeq))
		require.Equal(t, "node-a", msg.Header.Get(HeaderNode))
		require.Equal(t, string(ev.Data), string(msg.Data))
	}
	require.Zero(t, testutil.ToFloat64(c.m.dropped))
}

func TestOtherNodesEventsHandedOn(t *testing.T) {
	srv := clustertest.Start(t)
	a, fromB := start(t, srv.URL(), "node-a", Config{})
	b, fromA := start(t, srv.URL(), "node-b", Config{})
	evs := events(t, "call-1", bridge.TypeCallStarted, bridge.TypeTranscriptPartial, bridge.TypeTranscriptFinal, bridge.TypeCallEnded)
	for _, ev := range evs {
		a.Publish(ev)
	}
	require.Eventually(t, func() bool { return len(fromA.events()) == len(evs) }, 10*time.Second, 10*time.Millisecond)
	for i, got := range fromA.events() {
		want := evs[i]
		require.Equal(t, want.Seq, got.Seq)
		require.Equal(t, want.Type, got.Type)
		require.Equal(t, want.CallID, got.CallID)
		require.Equal(t, want.Kind, got.Kind, want.Type)
		require.Equal(t, want.Segment, got.Segment, want.Type)
		require.Equal(t, string(want.Data), string(got.Data))
	}
	require.EqualValues(t, len(evs), testutil.ToFloat64(b.m.received))
	require.Empty(t, fromB.events(), "a node's own events are not handed back to it")
}

func TestCallBegunBeforeTheReplicaReadsItsHistory(t *testing.T) {
	srv := clustertest.Start(t)
	a, _ := start(t, srv.URL(), "node-a", Config{})
	evs := events(t, "early", bridge.TypeCallStarted, bridge.TypeTranscriptFinal, bridge.TypeTranscriptFinal, bridge.TypeCallEnded)
	for _, ev := range evs[:2] {
		a.Publish(ev)
	}
	require.Eventually(t, func() bool { return testutil.ToFloat64(a.m.published) == 2 }, 10*time.Second, 10*time.Millisecond)

	_, fromA := start(t, srv.URL(), "node-b", Config{})
	for _, ev := range evs[2:] {
		a.Publish(ev)
	}
	require.Eventually(t, func() bool { return len(fromA.events()) == len(evs) }, 10*time.Second, 10*time.Millisecond)
	for i, got := range fromA.events() {
		require.Equal(t, evs[i].Seq, got.Seq)
	}
}

func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	srv := clustertest.Start(t)
	// Not run: nothing takes from the queue.
	c, err := New(Config{Servers: []string{srv.URL()}, NodeID: "a", Queue: 4}, &sink{}, nil, zerolog.Nop())
	require.NoError(t, err)
	defer c.Close()
	ev := events(t, "c", bridge.TypeCallStarted)[0]
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100 {
			c.Publish(ev)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on a full queue")
	}
	require.EqualValues(t, 96, testutil.ToFloat64(c.m.dropped))
}

// gateSink is a sink that is also a Gate and records what it is told.
type gateSink struct {
	sink
	gmu  sync.Mutex
	says []bool
}

func (g *gateSink) Available(up bool) {
	g.gmu.Lock()
	defer g.gmu.Unlock()
	g.says = append(g.says, up)
}

func (g *gateSink) told() []bool {
	g.gmu.Lock()
	defer g.gmu.Unlock()
	return append([]bool(nil), g.says...)
}

// runCluster runs c until the test ends, once it is ready.
func runCluster(t *testing.T, c *Cluster) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("cluster did not stop in 10s")
		}
	})
	select {
	case <-c.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("cluster not ready in 10s")
	}
}

// runWith runs a Cluster of node with out as its sink until the test ends.
func runWith(t *testing.T, url, node string, out bridge.Publisher) *Cluster {
	t.Helper()
	c, err := New(Config{Servers: []string{url}, NodeID: node}, out, nil, zerolog.New(zerolog.NewTestWriter(t)))
	require.NoError(t, err)
	runCluster(t, c)
	return c
}

// TestNATSDownHoldsAndComesBack: while NATS is down, Publish does not
// block, the gate is told other replicas' events cannot arrive, and the
// events wait; once NATS is back the gate is told so, the waiting events
// are published and the other replica reads them, in order, after what it
// read before.
func TestNATSDownHoldsAndComesBack(t *testing.T) {
	srv := clustertest.Start(t)
	outA, outB := &gateSink{}, &gateSink{}
	a := runWith(t, srv.URL(), "node-a", outA)
	runWith(t, srv.URL(), "node-b", outB)
	require.Eventually(t, func() bool { return len(outA.told()) == 2 && len(outB.told()) == 2 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, []bool{false, true}, outB.told(), "unavailable until the stream is read")
	require.True(t, a.Connected())
	require.EqualValues(t, 1, testutil.ToFloat64(a.m.connected))

	evs := events(t, "call", bridge.TypeCallStarted, bridge.TypeTranscriptFinal, bridge.TypeTranscriptFinal,
		bridge.TypeTranscriptFinal, bridge.TypeCallEnded)
	a.Publish(evs[0])
	a.Publish(evs[1])
	require.Eventually(t, func() bool { return len(outB.events()) == 2 }, 10*time.Second, 10*time.Millisecond)

	srv.Stop()
	require.Eventually(t, func() bool { return !a.Connected() }, 10*time.Second, 10*time.Millisecond)
	require.EqualValues(t, 0, testutil.ToFloat64(a.m.connected))
	require.Eventually(t, func() bool { return len(outB.told()) == 3 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, []bool{false, true, false}, outB.told())
	begin := time.Now()
	for _, ev := range evs[2:] {
		a.Publish(ev)
	}
	require.Less(t, time.Since(begin), time.Second, "Publish blocked while NATS was down")

	srv.Restart()
	require.Eventually(t, func() bool { return a.Connected() }, 15*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return len(outB.events()) == len(evs) }, 20*time.Second, 10*time.Millisecond,
		"B reads what A held while NATS was down")
	for i, got := range outB.events() {
		require.Equal(t, evs[i].Seq, got.Seq)
		require.Equal(t, evs[i].Type, got.Type)
	}
	require.Equal(t, []bool{false, true, false, true}, outB.told())
	require.EqualValues(t, len(evs), testutil.ToFloat64(a.m.published))
	require.Zero(t, testutil.ToFloat64(a.m.dropped))
}

func TestFullWindowDropsWithoutBlocking(t *testing.T) {
	srv := clustertest.Start(t)
	// A subscriber that never acknowledges stands in for the stream, so
	// what is published stays in the window.
	nc, err := nats.Connect(srv.URL())
	require.NoError(t, err)
	defer nc.Close()
	_, err = nc.Subscribe(SubjectPrefix+">", func(*nats.Msg) {})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	c, err := New(Config{Servers: []string{srv.URL()}, NodeID: "a", Window: 8}, &sink{}, nil, zerolog.Nop())
	require.NoError(t, err)
	defer c.Close()
	ev := events(t, "c", bridge.TypeCallStarted)[0]
	begin := time.Now()
	for range 20 {
		c.sendOne(ev)
	}
	require.Less(t, time.Since(begin), time.Second, "the sender waited on a full window")
	require.Equal(t, 8, c.js.PublishAsyncPending())
	require.EqualValues(t, 12, testutil.ToFloat64(c.m.dropped))
	require.Zero(t, testutil.ToFloat64(c.m.published))
}

// jetStream is a JetStream client of its own on url, closed with the test,
// and a context that bounds what the test asks of it.
func jetStream(t *testing.T, url string) (jetstream.JetStream, context.Context) {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return js, ctx
}
