package cluster

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/provider"
)

// RelaySubjectPrefix starts the subject of each replica's relay messages:
// bridge.relay.<node id in unpadded base64url>.
const RelaySubjectPrefix = "bridge.relay."

// DefaultRelayQueue is Config.RelayQueue's default: 4096 frames, well over
// a second of 50 relayed streams' 20 ms frames, to ride out a stall.
const DefaultRelayQueue = 4096

// relayStartWait bounds how long a relayed stream waits for the owner to
// take it.
const relayStartWait = 3 * time.Second

// RelaySubject is where node receives relay messages.
func RelaySubject(node string) string {
	return RelaySubjectPrefix + Token(node)
}

// Streams is what the owner of a call needs of the registry to run the
// streams other replicas relay to it (*bridge.Registry).
type Streams interface {
	StartStream(p provider.Name, st *provider.Start) (*bridge.Stream, error)
	// ContinueAfter makes a taken-over call's next seq follow seq.
	ContinueAfter(callID string, seq uint64)
}

// relays is the state of relayed streams on both sides.
type relays struct {
	mu  sync.Mutex
	out map[string]*RelayStream // streams this replica relays, by id
	in  map[string]*relayed     // streams relayed to this replica, by id

	// queue holds the messages of streams relayed from here until the
	// relay sender publishes them; size Config.RelayQueue. Full: the
	// message is dropped and counted (bridge_relay_dropped_total); the
	// owner places audio by timestamp or chunk, so a lost frame is a
	// silence, and a lost end is made good by the owner's relay timeout.
	queue chan relayMsg
	bufs  sync.Pool // *[]byte message buffers, back after publishing

	watchers sync.WaitGroup // one per stream, either side, and relayed starts
	stopped  chan struct{}  // closed (under mu) when the cluster stops: watchers return, none start
}

// goWatch runs f on a tracked goroutine, unless the cluster has stopped.
func (q *relays) goWatch(f func()) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	select {
	case <-q.stopped:
		return false
	default:
	}
	q.watchers.Go(f)
	return true
}

// stop ends the watchers and waits for them.
func (q *relays) stop() {
	q.mu.Lock()
	select {
	case <-q.stopped:
	default:
		close(q.stopped)
	}
	q.mu.Unlock()
	q.watchers.Wait()
}

type relayMsg struct {
	subj string
	buf  *[]byte
}

func newRelays(size int) *relays {
	return &relays{out: map[string]*RelayStream{}, in: map[string]*relayed{}, queue: make(chan relayMsg, size), stopped: make(chan struct{}),
		bufs: sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}}
}

// SetStreams hands the cluster the registry that runs the streams relayed
// to this replica. Call it before Run; without it relayed streams are
// refused.
func (c *Cluster) SetStreams(s Streams) { c.streams = s }

// Route decides where a starting stream of a call goes: nil when this
// replica holds the call (the caller starts the stream on its registry),
// or a RelayStream to the owner. When the bucket cannot be asked, the
// call runs here (logged; counted as claims "unreachable").
func (c *Cluster) Route(p provider.Name, st *provider.Start) (*RelayStream, error) {
	ctx := context.Background()
	cl, err := c.Claim(ctx, st.CallID)
	for range 3 {
		if err != nil {
			c.m.ownerClaims.WithLabelValues("unreachable").Inc()
			c.log.Warn().Err(err).Str("call_id", bridge.Clip(st.CallID)).Msg("owner of call unknown: the stream runs here")
			return nil, nil
		}
		if cl.Local {
			if cl.LastSeq > 0 && c.streams != nil {
				c.streams.ContinueAfter(st.CallID, cl.LastSeq)
			}
			return nil, nil
		}
		rs, err2 := c.startRelay(p, st, cl.Owner)
		if !errors.Is(err2, nats.ErrNoResponders) {
			return rs, err2
		}
		// Nobody listens for the owner's relay messages: it is gone.
		cl, err = c.TakeOver(ctx, st.CallID, cl)
		if errors.Is(err, jetstream.ErrKeyExists) { // another replica took it first
			cl, err = c.Claim(ctx, st.CallID)
		}
	}
	return nil, errors.New("the owner of the call changed on every try")
}

// RelayStream is a stream whose socket is on this replica and whose call
// is held by another (the owner): its frames go to the owner over NATS.
// The media socket's read loop is its only caller but for Stopped and
// StopReason.
type RelayStream struct {
	c        *Cluster
	id       string
	callID   string
	streamID string
	owner    string
	subj     string // the owner's relay subject

	endOnce  sync.Once
	stopOnce sync.Once
	stopCh   chan struct{}
	reason   atomic.Value // string, set before stopCh closes
	done     chan struct{}
}

// startRelay asks owner to take the stream (a request, so a refusal comes
// back as the registry's error), then relays it.
func (c *Cluster) startRelay(p provider.Name, st *provider.Start, owner string) (*RelayStream, error) {
	js, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encode start: %w", err)
	}
	id := rand.Text()
	b := appendHead(nil, kindBegin, id)
	b = appendStr(b, c.cfg.NodeID)
	b = appendStr(b, string(p))
	b = append(b, js...)
	rs := &RelayStream{c: c, id: id, callID: st.CallID, streamID: st.StreamID, owner: owner, subj: RelaySubject(owner),
		stopCh: make(chan struct{}), done: make(chan struct{})}
	// Registered first: the owner may stop it as soon as it joins.
	c.relay.mu.Lock()
	c.relay.out[id] = rs
	c.relay.mu.Unlock()
	reply, err := c.nc.Request(rs.subj, b, relayStartWait)
	if err == nil {
		err = parseReply(reply.Data)
	}
	if err != nil {
		c.relay.mu.Lock()
		delete(c.relay.out, id)
		c.relay.mu.Unlock()
		if errors.Is(err, nats.ErrNoResponders) {
			return nil, err
		}
		if errors.Is(err, nats.ErrTimeout) {
			// The owner may take the stream after all: tell it the
			// stream is over, so it does not wait for its relay timeout.
			rs.sendEnd(bridge.ReasonError, errors.New("relay start timed out"))
		}
		return nil, fmt.Errorf("relay stream to %s: %w", owner, err)
	}
	c.m.relayStreamsOut.Inc()
	if !c.relay.goWatch(func() { c.watchOwner(rs) }) {
		rs.stop(bridge.ReasonShutdown)
	}
	c.log.Info().Str("call_id", bridge.Clip(st.CallID)).Str("stream_id", bridge.Clip(st.StreamID)).Str("owner", owner).
		Msg("stream relayed to the replica that holds its call")
	return rs, nil
}

// refusal is a stream the owner refused: its message, and the registry's
// error it stands for (so the socket is answered as a local refusal).
type refusal struct {
	msg string
	err error
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.err }

// refusals map RefusalReason's names back to the registry's errors.
var refusals = map[string]error{
	"call_id": bridge.ErrCallID, "provider_mismatch": bridge.ErrProviderMismatch, "account_mismatch": bridge.ErrAccountMismatch,
	"resume_window": bridge.ErrResumeWindow, "unsupported": bridge.ErrUnsupported, "max_calls": bridge.ErrTooManyCalls,
	"max_streams": bridge.ErrTooManyStreams, "shutdown": bridge.ErrShuttingDown,
}

func parseReply(b []byte) error {
	switch {
	case len(b) == 1 && b[0] == replyOK:
		return nil
	case len(b) > 1 && b[0] == replyRefus:
		reason, msg, err := readStr(b[1:])
		if err == nil {
			return &refusal{msg: string(msg), err: refusals[string(reason)]}
		}
	}
	return errMalformed
}

// CallID is the call this stream belongs to.
func (r *RelayStream) CallID() string { return r.callID }

// ID is the provider's stream id.
func (r *RelayStream) ID() string { return r.streamID }

// Media relays one frame. The owner decodes it; a frame it finds bad is
// counted there.
func (r *RelayStream) Media(ev *provider.Event) error {
	flags := trackFlags(ev.Track)
	if ev.HasChunk {
		flags |= flagChunk
	}
	if ev.HasTimestamp {
		flags |= flagTs
	}
	r.send(kindMedia, media{flags: flags, chunk: ev.Chunk, ts: ev.TimestampMs, payload: ev.Payload})
	return nil
}

// DTMF relays a key press.
func (r *RelayStream) DTMF(ev *provider.Event) {
	flags := trackFlags(ev.Track)
	if ev.HasTimestamp {
		flags |= flagTs
	}
	digit := ev.Digit
	if len(digit) > 16 {
		digit = digit[:16]
	}
	r.send(kindDTMF, media{flags: flags, chunk: ev.DurationMs, ts: ev.TimestampMs, payload: []byte(digit)})
}

// send queues one message without blocking.
func (r *RelayStream) send(kind byte, m media) {
	bp := r.c.relay.bufs.Get().(*[]byte)
	*bp = appendMedia(appendHead((*bp)[:0], kind, r.id), m)
	r.enqueue(bp)
}

// enqueue hands a message to the relay sender, or drops and counts it
// when the queue is full.
func (r *RelayStream) enqueue(bp *[]byte) {
	q := r.c.relay
	select {
	case q.queue <- relayMsg{subj: r.subj, buf: bp}:
	default:
		q.bufs.Put(bp)
		r.c.m.relayDropped.Inc()
	}
}

// End tells the owner the stream ended. Idempotent.
func (r *RelayStream) End(reason string, err error) {
	r.endOnce.Do(func() {
		if s := r.StopReason(); s != "" {
			reason = s
		}
		q := r.c.relay
		q.mu.Lock()
		delete(q.out, r.id)
		q.mu.Unlock()
		close(r.done)
		if reason != bridge.ReasonNodeLost { // else nobody to tell
			r.sendEnd(reason, err)
		}
	})
}

// sendEnd queues the end message without blocking.
func (r *RelayStream) sendEnd(reason string, err error) {
	bp := r.c.relay.bufs.Get().(*[]byte)
	b := appendStr(appendHead((*bp)[:0], kindEnd, r.id), reason)
	if err != nil {
		b = append(b, err.Error()...)
	}
	*bp = b
	r.enqueue(bp)
}

// Stopped is closed when the owner stopped the call's streams, or was
// lost; StopReason says why.
func (r *RelayStream) Stopped() <-chan struct{} { return r.stopCh }

// StopReason is the reason given, once Stopped is closed.
func (r *RelayStream) StopReason() string {
	select {
	case <-r.stopCh:
		return r.reason.Load().(string)
	default:
		return ""
	}
}

// Fail does nothing more than End(ReasonError, err), which the socket
// calls next: the owner's call goes on with its other streams.
func (r *RelayStream) Fail(error) {}

func (r *RelayStream) stop(reason string) {
	r.stopOnce.Do(func() {
		r.reason.Store(reason)
		close(r.stopCh)
	})
}

// watchOwner stops rs (reason node_lost) when its owner is lost, until rs
// ends.
func (c *Cluster) watchOwner(rs *RelayStream) {
	tick := time.NewTicker(c.cfg.NodeTimeout / 3)
	defer tick.Stop()
	for {
		select {
		case <-rs.done:
			return
		case <-c.relay.stopped:
			return
		case <-tick.C:
			if !c.alive(rs.owner) {
				c.log.Warn().Str("call_id", bridge.Clip(rs.callID)).Str("owner", rs.owner).Msg("owner of a relayed stream lost: its socket is closed (node_lost)")
				rs.stop(bridge.ReasonNodeLost)
				return
			}
		}
	}
}

// StopRelays closes the sockets of the streams this replica relays
// (reason: shutdown when it drains), as Registry.Shutdown does for its own
// calls' streams. Nil-safe.
func (c *Cluster) StopRelays(reason string) {
	if c == nil {
		return
	}
	c.relay.mu.Lock()
	defer c.relay.mu.Unlock()
	for _, rs := range c.relay.out {
		rs.stop(reason)
	}
}

// relaySend publishes queued relay messages until ctx is done. A publish
// that fails (disconnected, NATS's own reconnect buffer full) is counted
// as a drop.
func (c *Cluster) relaySend(ctx context.Context) {
	q := c.relay
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-q.queue:
			if err := c.nc.Publish(m.subj, *m.buf); err != nil {
				c.m.relayDropped.Inc()
			} else if (*m.buf)[0] == kindMedia {
				c.m.relayFramesOut.Inc()
			}
			q.bufs.Put(m.buf)
		}
	}
}
