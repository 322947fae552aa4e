package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/provider"
)

// Relay subscription limits: messages relayed to this replica wait in the
// subscription's buffer for its one handler goroutine. Full (the handler
// stalls, e.g. on a slow disk), NATS drops the newest and they are counted
// (bridge_nats_relay_overflow_total): a lost frame is a silence in the
// recording.
const (
	relayPendingMsgs  = 8192
	relayPendingBytes = 16 << 20
)

// relayed is a stream relayed to this replica by another: its call runs
// here. mu serialises the stream's callers (the relay handler, the
// watcher that ends it), as a socket's read loop would be one caller.
type relayed struct {
	id    string
	relay string // the relaying node
	subj  string // its relay subject
	mu    sync.Mutex
	st    *bridge.Stream
	heard atomic.Bool // a message came from the relay since the watcher last looked
	done  chan struct{}
	once  sync.Once
}

// end ends the stream once.
func (r *relayed) end(reason string, err error) {
	r.once.Do(func() {
		r.mu.Lock()
		r.st.End(reason, err)
		r.mu.Unlock()
		close(r.done)
	})
}

// listenRelay subscribes to this replica's relay subject. The
// subscription lasts as long as the connection (Close ends it).
func (c *Cluster) listenRelay() error {
	sub, err := c.nc.Subscribe(RelaySubject(c.cfg.NodeID), c.onRelay)
	if err != nil {
		return fmt.Errorf("subscribe to relay messages: %w", err)
	}
	if err := sub.SetPendingLimits(relayPendingMsgs, relayPendingBytes); err != nil {
		return fmt.Errorf("relay subscription limits: %w", err)
	}
	c.m.relaySub.Store(sub)
	return nil
}

// onRelay handles one relay message, on the subscription's goroutine.
func (c *Cluster) onRelay(m *nats.Msg) {
	kind, id, rest, err := parseHead(m.Data)
	if err != nil {
		c.m.relayDropped.Inc()
		return
	}
	if kind == kindBegin {
		// On a goroutine of its own: a start may wait for the registry
		// (disk, a previous call of the id finishing), and must not hold
		// up the frames of the other relayed streams. The relay sends
		// nothing else for this stream before the answer. Bounded by the
		// relaying replicas' sockets waiting for their start.
		sid := string(id)
		c.relay.goWatch(func() { c.relayBegin(m, sid, rest) })
		return
	}
	q := c.relay
	q.mu.Lock()
	var in *relayed
	var out *RelayStream
	if kind == kindStop {
		out = q.out[string(id)] // no allocation: the map index converts in place
	} else {
		in = q.in[string(id)]
	}
	q.mu.Unlock()
	switch {
	case kind == kindStop && out != nil:
		out.stop(string(rest))
	case in == nil:
		c.m.relayDropped.Inc() // the stream ended here already, or never began
	case kind == kindMedia:
		c.relayMedia(in, rest)
	case kind == kindDTMF:
		c.relayDTMF(in, rest)
	case kind == kindEnd:
		reason, msg, err := readStr(rest)
		if err != nil {
			reason = []byte(bridge.ReasonDisconnect)
		}
		var cause error
		if len(msg) > 0 {
			cause = errors.New(string(msg))
		}
		c.dropRelayed(in)
		in.end(string(reason), cause)
	default:
		c.m.relayDropped.Inc()
	}
}

func (c *Cluster) relayMedia(in *relayed, b []byte) {
	md, err := parseMedia(b)
	if err != nil {
		c.m.relayDropped.Inc()
		return
	}
	in.heard.Store(true)
	ev := provider.Event{Kind: provider.KindMedia, Track: trackOf(md.flags), Chunk: md.chunk, HasChunk: md.flags&flagChunk != 0,
		TimestampMs: md.ts, HasTimestamp: md.flags&flagTs != 0, Payload: md.payload}
	in.mu.Lock()
	err = in.st.Media(&ev)
	in.mu.Unlock()
	if err != nil {
		c.m.relayBad.Inc()
		return
	}
	c.m.relayFramesIn.Inc()
}

func (c *Cluster) relayDTMF(in *relayed, b []byte) {
	md, err := parseMedia(b)
	if err != nil {
		c.m.relayDropped.Inc()
		return
	}
	in.heard.Store(true)
	ev := provider.Event{Kind: provider.KindDTMF, Track: trackOf(md.flags), TimestampMs: md.ts, HasTimestamp: md.flags&flagTs != 0,
		Digit: string(md.payload), DurationMs: md.chunk}
	in.mu.Lock()
	in.st.DTMF(&ev)
	in.mu.Unlock()
}

// relayBegin starts a relayed stream on the registry and answers the
// relay: joined, or the registry's refusal.
func (c *Cluster) relayBegin(m *nats.Msg, id string, b []byte) {
	relay, b, err := readStr(b)
	var p []byte
	if err == nil {
		p, b, err = readStr(b)
	}
	var st provider.Start
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	if err != nil {
		c.m.relayDropped.Inc()
		c.answerRelay(m, fmt.Errorf("%w: %w", bridge.ErrCallID, errMalformed))
		return
	}
	if c.streams == nil {
		c.answerRelay(m, fmt.Errorf("%w: this replica runs no relayed streams", bridge.ErrShuttingDown))
		return
	}
	s, err := c.streams.StartStream(provider.Name(p), &st)
	if err != nil {
		c.answerRelay(m, err)
		return
	}
	in := &relayed{id: id, relay: string(relay), subj: RelaySubject(string(relay)), st: s, done: make(chan struct{})}
	in.heard.Store(true)
	c.relay.mu.Lock()
	c.relay.in[id] = in
	c.relay.mu.Unlock()
	if !c.relay.goWatch(func() { c.watchRelayed(in) }) {
		c.dropRelayed(in)
		in.end(bridge.ReasonShutdown, nil)
		c.answerRelay(m, fmt.Errorf("%w: this replica is stopping", bridge.ErrShuttingDown))
		return
	}
	c.m.relayStreamsIn.Inc()
	c.answerRelay(m, nil)
}

// answerRelay replies to a relayed start: 'O', or 'R' with the refusal.
func (c *Cluster) answerRelay(m *nats.Msg, err error) {
	b := []byte{replyOK}
	if err != nil {
		b = appendStr([]byte{replyRefus}, bridge.RefusalReason(err))
		b = append(b, err.Error()...)
	}
	_ = m.Respond(b) // the relay times out and refuses its socket when this is lost
}

func (c *Cluster) dropRelayed(in *relayed) {
	c.relay.mu.Lock()
	if c.relay.in[in.id] == in {
		delete(c.relay.in, in.id)
	}
	c.relay.mu.Unlock()
}

// watchRelayed tells the relay when the call stops the stream, and ends
// the stream when the relay goes silent for Config.RelayTimeout or its
// node is lost (the relaying replica died: no end will come).
func (c *Cluster) watchRelayed(in *relayed) {
	tick := time.NewTicker(min(c.cfg.RelayTimeout, c.cfg.NodeTimeout) / 3)
	defer tick.Stop()
	lastHeard := time.Now() // to a tick's precision: frames only set a flag
	for {
		select {
		case <-in.done:
			return
		case <-c.relay.stopped:
			return
		case <-in.st.Stopped():
			c.m.relayStops.Inc()
			_ = c.nc.Publish(in.subj, append(appendHead(nil, kindStop, in.id), in.st.StopReason()...))
			c.dropRelayed(in)
			in.end(in.st.StopReason(), nil)
			return
		case now := <-tick.C:
			if in.heard.Swap(false) {
				lastHeard = now
			}
			silent := now.Sub(lastHeard)
			lost := !c.alive(in.relay)
			if silent < c.cfg.RelayTimeout && !lost {
				continue
			}
			c.log.Warn().Str("call_id", bridge.Clip(in.st.CallID())).Str("relay", in.relay).Dur("silent", silent).Bool("relay_lost", lost).
				Msg("relayed stream ended: its replica went silent")
			c.dropRelayed(in)
			in.end(bridge.ReasonDisconnect, fmt.Errorf("relaying replica %s silent for %s", in.relay, silent.Round(time.Millisecond)))
			return
		}
	}
}
