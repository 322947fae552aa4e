package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/callcaptions/bridge/bridge"
)

// maxSeen bounds the calls the receiver remembers a seq of. Past it the
// ended calls are forgotten, and if that is not enough (calls whose
// replica vanished never end) all of them.
const maxSeen = 100_000

// seen is what the receiver remembers of a call: the last seq it handed
// on, whether that was call.ended (lost: one this replica made because
// the call's node was lost), the node that holds it and when it started.
type seen struct {
	seq     uint64
	ended   bool
	lost    bool
	node    string
	started time.Time
}

// forget makes room in c.seen. c.mu is held.
func (c *Cluster) forget() {
	for id, s := range c.seen {
		if s.ended {
			delete(c.seen, id)
		}
	}
	if len(c.seen) >= maxSeen {
		clear(c.seen)
	}
}

// receive sets up the stream and reads it until ctx is done, starting
// over when NATS cannot be reached: after a pause (longer after each
// attempt that did not get to read), or as soon as the connection is back.
func (c *Cluster) receive(ctx context.Context) {
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		err := c.readStream(ctx)
		if ctx.Err() != nil {
			return
		}
		if c.reading.Swap(false) {
			c.report()
			wait = time.Second
		}
		c.log.Warn().Err(err).Dur("retry_in", wait).Msg("cannot read the event stream: other replicas' captions are not shown until it can")
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-c.upRecv:
		}
	}
}

// readStream creates or updates the stream, then hands on other replicas'
// events from the newest on until ctx is done or the stream fails.
func (c *Cluster) readStream(ctx context.Context) error {
	setupCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.js.CreateOrUpdateStream(setupCtx, jetstream.StreamConfig{
		Name:              c.cfg.Stream,
		Description:       "Caption events of every replica's calls, for the other replicas' caption hubs.",
		Subjects:          []string{SubjectPrefix + ">"},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxAge:            c.cfg.MaxAge,
		MaxBytes:          c.cfg.MaxBytes,
		MaxMsgsPerSubject: c.cfg.MaxMsgsPerSubject,
		Storage:           jetstream.FileStorage,
	}); err != nil {
		return fmt.Errorf("create stream %s: %w", c.cfg.Stream, err)
	}
	occ := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{SubjectPrefix + ">"},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	}
	if c.streamSeq > 0 {
		// Read on after a failure from where it stopped, unless the stream
		// is no longer the one read (it was lost and created anew).
		if st, err := c.js.Stream(setupCtx, c.cfg.Stream); err == nil && st.CachedInfo().State.LastSeq >= c.streamSeq {
			occ.DeliverPolicy, occ.OptStartSeq = jetstream.DeliverByStartSequencePolicy, c.streamSeq+1
		}
	}
	cons, err := c.js.OrderedConsumer(setupCtx, c.cfg.Stream, occ)
	if err != nil {
		return fmt.Errorf("read stream %s: %w", c.cfg.Stream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("read stream %s: %w", c.cfg.Stream, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	c.readyOnce.Do(func() { close(c.ready) })
	c.reading.Store(true)
	c.report()
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return ctx.Err()
			}
			return err
		}
		if md, err := msg.Metadata(); err == nil {
			c.streamSeq = md.Sequence.Stream
		}
		c.handle(ctx, msg.Subject(), msg.Headers(), msg.Data(), true)
	}
}

// wire is what the receiver reads of an event's payload.
type wire struct {
	Type      string    `json:"type"`
	CallID    string    `json:"call_id"`
	Seq       uint64    `json:"seq"`
	SegmentID string    `json:"segment_id"`
	StartedAt time.Time `json:"started_at"` // call.started, call.updated
}

// handle hands msg on to the sink unless it is this node's or already
// handed on. live is false while reading a call's history: then a call
// seen past its start is not read again. A call this replica ended as
// node_lost takes nothing more from its node but a new call.started: the
// node may come back, but its seq no longer follows on.
func (c *Cluster) handle(ctx context.Context, subject string, h nats.Header, data []byte, live bool) {
	node := h.Get(HeaderNode)
	if node == c.cfg.NodeID {
		return
	}
	var w wire
	if err := json.Unmarshal(data, &w); err != nil || w.CallID == "" || w.Type == "" {
		c.log.Warn().Str("subject", subject).Msg("event stream: message that is not an event skipped")
		return
	}
	if s, err := strconv.ParseUint(h.Get(HeaderSeq), 10, 64); err == nil && w.Seq == 0 {
		w.Seq = s
	}
	if live && w.Type != bridge.TypeCallStarted {
		c.mu.Lock()
		_, known := c.seen[w.CallID]
		c.mu.Unlock()
		if !known {
			// The call began before this replica read the stream: its
			// history first (which holds this event too).
			if err := c.history(ctx, subject); err != nil {
				c.log.Warn().Err(err).Str("call_id", w.CallID).Msg("event stream: the call's earlier events could not be read; it is shown from now on")
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if node != "" {
		c.nodes[node] = time.Now()
	}
	last, known := c.seen[w.CallID]
	if known && (w.Seq <= last.seq || last.lost && w.Type != bridge.TypeCallStarted) {
		return
	}
	if len(c.seen) >= maxSeen && !known {
		c.forget()
	}
	started := last.started
	if !w.StartedAt.IsZero() {
		started = w.StartedAt
	}
	// transcript.ready and recording.ready come after call.ended: the call
	// stays ended (a lost replica's ended calls are not ended again).
	ended := w.Type == bridge.TypeCallEnded || (known && last.ended && bridge.AfterCall(w.Type))
	c.seen[w.CallID] = seen{seq: w.Seq, ended: ended, node: node, started: started}
	ev := bridge.Event{Type: w.Type, CallID: w.CallID, Seq: w.Seq, Data: data, Kind: bridge.KindDurable}
	switch w.Type {
	case bridge.TypeTranscriptPartial:
		ev.Kind, ev.Segment = bridge.KindPartial, w.SegmentID
	case bridge.TypeTranscriptFinal:
		ev.Kind, ev.Segment = bridge.KindFinal, w.SegmentID
	}
	if s := h.Get(HeaderStart); s != "" {
		ev.Start = []byte(s)
	}
	ev.More = w.Type == bridge.TypeCallEnded && h.Get(HeaderMore) == "1"
	c.m.received.Inc()
	// The hub never blocks its publishers, so this is short under c.mu.
	c.sink.Publish(ev)
}

// history hands on the events on subject from the stream's oldest on,
// one direct read each, bounded by Config.Replay.
func (c *Cluster) history(ctx context.Context, subject string) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Replay)
	defer cancel()
	st, err := c.js.Stream(ctx, c.cfg.Stream)
	if err != nil {
		return err
	}
	for seq := uint64(1); ; {
		msg, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil // read to the end
		}
		if err != nil {
			return err
		}
		c.handle(ctx, msg.Subject, msg.Header, msg.Data, false)
		seq = msg.Sequence + 1
	}
}
