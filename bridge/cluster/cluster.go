package cluster

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/bridge"
)

// Defaults of Config's zero values.
const (
	DefaultStream            = "BRIDGE_EVENTS"
	DefaultMaxAge            = time.Hour
	DefaultMaxBytes          = 1 << 30
	DefaultMaxMsgsPerSubject = 100_000
	DefaultQueue             = 8192
	DefaultWindow            = 1024
	DefaultNodeTimeout       = 15 * time.Second
)

// SubjectPrefix is what every event's subject starts with.
const SubjectPrefix = "bridge.events."

// Header names of an event's message.
const (
	HeaderNode = "Bridge-Node"
	HeaderSeq  = "Bridge-Seq"
	// HeaderStart carries bridge.Event.Start (call.updated's merged
	// call.started) when there is one.
	HeaderStart = "Bridge-Start"
	// HeaderMore is "1" on a call.ended that transcript.ready and
	// recording.ready follow (bridge.Event.More), so other replicas' hubs
	// keep the call's subscribers until recording.ready.
	HeaderMore = "Bridge-More"
)

// Config configures a Cluster. A zero field means its default.
type Config struct {
	Servers []string // NATS server URLs; at least one
	Creds   string   // credentials file; empty: none
	CA      string   // CA certificates (PEM) for TLS; empty: the system's
	NodeID  string   // this replica's name; required, unique per replica

	// The stream, created or updated at start-up with these limits. When
	// one is reached the oldest events go (discard old): an event older
	// than MaxAge, or beyond MaxBytes in all, or beyond MaxMsgsPerSubject
	// for its call is no longer there for late joiners of another replica.
	Stream            string        // default DefaultStream
	MaxAge            time.Duration // default DefaultMaxAge
	MaxBytes          int64         // default DefaultMaxBytes
	MaxMsgsPerSubject int64         // default DefaultMaxMsgsPerSubject

	// Queue is how many events wait for the sender (default DefaultQueue:
	// a few seconds of every call's events at full load, to ride out a
	// burst); Window how many are published and not yet acknowledged
	// (default DefaultWindow). Beyond either, events are dropped and
	// counted.
	Queue  int
	Window int

	// Replay bounds how long reading one call's history may take
	// (default 5s).
	Replay time.Duration

	// NodeTimeout is how long another replica may go unheard (no
	// heartbeat, no event) before its open calls are ended here with
	// reason node_lost (default DefaultNodeTimeout). Heartbeats go out
	// every third of it.
	NodeTimeout time.Duration

	// Calls split over replicas (owner.go, relay.go): the KV bucket of
	// call owners (default DefaultOwnersBucket) and how long a key lives
	// after its last write (default DefaultOwnerTTL; keep it above the
	// longest call); how many relay messages wait for the relay sender
	// (default DefaultRelayQueue); how long a relayed stream may go
	// silent before its owner ends it (default 30s).
	OwnersBucket string
	OwnerTTL     time.Duration
	RelayQueue   int
	RelayTimeout time.Duration
	// The call index (index.go): its key-value bucket, created or updated
	// at start-up, with a record kept IndexMaxAge after its last put and
	// IndexMaxBytes in all (beyond it new records are refused: the puts
	// fail and are counted); IndexQueue calls' records waiting to be put;
	// IndexMaxRecords records of the bucket held in memory for the call
	// list (past it the oldest tenth, ended calls first, is dropped).
	IndexBucket     string        // default DefaultIndexBucket
	IndexMaxAge     time.Duration // default DefaultIndexMaxAge
	IndexMaxBytes   int64         // default DefaultIndexMaxBytes
	IndexQueue      int           // default DefaultIndexQueue
	IndexMaxRecords int           // default DefaultIndexMaxRecords
}

func (c Config) withDefaults() Config {
	c.Stream = cmp.Or(c.Stream, DefaultStream)
	c.MaxAge = cmp.Or(max(c.MaxAge, 0), DefaultMaxAge)
	c.MaxBytes = cmp.Or(max(c.MaxBytes, 0), DefaultMaxBytes)
	c.MaxMsgsPerSubject = cmp.Or(max(c.MaxMsgsPerSubject, 0), DefaultMaxMsgsPerSubject)
	c.Queue = cmp.Or(max(c.Queue, 0), DefaultQueue)
	c.Window = cmp.Or(max(c.Window, 0), DefaultWindow)
	c.Replay = cmp.Or(max(c.Replay, 0), 5*time.Second)
	c.NodeTimeout = cmp.Or(max(c.NodeTimeout, 0), DefaultNodeTimeout)
	c.OwnersBucket = cmp.Or(c.OwnersBucket, DefaultOwnersBucket)
	c.OwnerTTL = cmp.Or(max(c.OwnerTTL, 0), DefaultOwnerTTL)
	c.RelayQueue = cmp.Or(max(c.RelayQueue, 0), DefaultRelayQueue)
	c.RelayTimeout = cmp.Or(max(c.RelayTimeout, 0), 30*time.Second)
	c.IndexBucket = cmp.Or(c.IndexBucket, DefaultIndexBucket)
	c.IndexMaxAge = cmp.Or(max(c.IndexMaxAge, 0), DefaultIndexMaxAge)
	c.IndexMaxBytes = cmp.Or(max(c.IndexMaxBytes, 0), DefaultIndexMaxBytes)
	c.IndexQueue = cmp.Or(max(c.IndexQueue, 0), DefaultIndexQueue)
	c.IndexMaxRecords = cmp.Or(max(c.IndexMaxRecords, 0), DefaultIndexMaxRecords)
	return c
}

// Gate is what a sink may implement besides bridge.Publisher to be told
// whether other replicas' events can reach it: false while this replica
// is cut off from NATS or cannot read the stream, true again once it
// reads it. Calls come one at a time, only on a change, and never under
// the lock the events are handed on under.
type Gate interface {
	Available(up bool)
}

// Cluster publishes this replica's events to the stream and hands other
// replicas' events to a local publisher (the caption hub).
type Cluster struct {
	cfg Config
	// instance tells this process's heartbeats from those of another
	// process with the same node id; conflictLogged is when that was last
	// logged (unix ns).
	instance       string
	conflictLogged atomic.Int64
	sink           bridge.Publisher
	gate           Gate // sink's, or nil
	m              *Metrics
	log            zerolog.Logger

	nc        *nats.Conn
	js        jetstream.JetStream
	queue     chan bridge.Event // Publish → sender; size Config.Queue
	connected atomic.Bool
	// One slot each: the connection came back. upSend wakes the sender,
	// upRecv the receiver waiting to read the stream again.
	upSend, upRecv chan struct{}

	// reading: the receiver reads the stream. The gate is told
	// connected && reading, under gateMu, when it changes.
	reading   atomic.Bool
	gateMu    sync.Mutex
	available bool
	// streamSeq is the stream sequence of the last message the receiver
	// read: after a failure it reads on from the next one. Receiver only.
	streamSeq uint64

	ready     chan struct{} // closed once the stream exists and the receiver reads it
	readyOnce sync.Once
	closeOnce sync.Once

	// mu guards seen and nodes: the receiver hands events on under it, the
	// watcher ends lost nodes' calls under it, so a call's events reach
	// the sink in one seq order.
	mu       sync.Mutex
	seen     map[string]seen      // per call
	nodes    map[string]time.Time // other nodes, until declared lost: when last heard
	rejoined atomic.Bool          // set on (re)connect: the watcher starts its clocks afresh

	// Calls split over replicas: see owner.go and relay.go.
	born     time.Time // when this replica began to listen for others
	kvMu     sync.Mutex
	kv       jetstream.KeyValue // the owners bucket, once made
	releases chan string        // ended calls' keys to delete; size releaseQueue, full: left to expire
	relay    *relays
	streams  Streams  // runs relayed streams; nil: refused
	index    *index   // the call index (index.go)
	rpc      rpcState // requests of other replicas (rpc.go)
}

// releaseQueue bounds the owner keys waiting to be deleted: calls ending
// at once; beyond it a key is left to expire (Config.OwnerTTL).
const releaseQueue = 1024

var _ bridge.Publisher = (*Cluster)(nil)

// Subject is the subject of callID's events.
func Subject(callID string) string {
	return SubjectPrefix + Token(callID)
}

// New connects to NATS (in the background when it cannot at once: the
// client keeps trying) and returns the Cluster; Run starts it. Events of
// other replicas go to sink.
func New(cfg Config, sink bridge.Publisher, m *Metrics, log zerolog.Logger) (*Cluster, error) {
	cfg = cfg.withDefaults()
	if len(cfg.Servers) == 0 {
		return nil, errors.New("cluster: no NATS server")
	}
	if cfg.NodeID == "" {
		return nil, errors.New("cluster: no node id")
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	c := &Cluster{
		cfg: cfg, instance: rand.Text(), sink: sink, m: m, log: log.With().Str("component", "cluster").Logger(),
		queue: make(chan bridge.Event, cfg.Queue), ready: make(chan struct{}), seen: map[string]seen{},
		nodes: map[string]time.Time{}, upSend: make(chan struct{}, 1), upRecv: make(chan struct{}, 1),
		index: newIndex(cfg), born: time.Now(), releases: make(chan string, releaseQueue), relay: newRelays(cfg.RelayQueue),
	}
	if g, ok := sink.(Gate); ok {
		c.gate = g
		// Until the stream is read, other replicas' calls cannot be shown.
		g.Available(false)
	}
	opts := []nats.Option{
		nats.Name("bridge " + cfg.NodeID),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1), // a replica outlives any NATS outage
		nats.ReconnectWait(time.Second),
		nats.ReconnectJitter(500*time.Millisecond, time.Second),
		nats.Timeout(5 * time.Second),
		nats.PingInterval(10 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.ConnectHandler(func(nc *nats.Conn) { c.setConnected(true, nc.ConnectedUrlRedacted()) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { c.setConnected(true, nc.ConnectedUrlRedacted()) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { c.setConnected(false, "") }),
		nats.ClosedHandler(func(*nats.Conn) { c.setConnected(false, "") }),
	}
	if cfg.Creds != "" {
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	}
	if cfg.CA != "" {
		opts = append(opts, nats.RootCAs(cfg.CA))
	}
	nc, err := nats.Connect(strings.Join(cfg.Servers, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	c.setConnected(nc.IsConnected(), nc.ConnectedUrlRedacted())
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(cfg.Window),
		jetstream.WithPublishAsyncTimeout(10*time.Second),
		jetstream.WithPublishAsyncAckHandler(func(jetstream.JetStream, *nats.Msg, *jetstream.PubAck) { c.m.published.Inc() }),
		// Not acknowledged in time (NATS went away) or refused.
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { c.m.dropped.Inc() }))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	c.nc, c.js = nc, js
	return c, nil
}

func (c *Cluster) setConnected(up bool, server string) {
	// The gauge first: whoever sees Connected change sees the gauge agree.
	if up {
		c.m.connected.Set(1)
	} else {
		c.m.connected.Set(0)
	}
	if c.connected.Swap(up) != up {
		if up {
			c.log.Info().Str("server", server).Msg("connected to NATS")
		} else {
			c.log.Warn().Msg("disconnected from NATS: captions of this replica's calls are not shared until it is back")
		}
	}
	if up {
		c.rejoined.Store(true)
		for _, ch := range []chan struct{}{c.upSend, c.upRecv} {
			select {
			case ch <- struct{}{}:
			default: // a wake-up is pending already
			}
		}
	}
	c.report()
}

// report tells the gate whether other replicas' events can reach the
// sink, when that changed.
func (c *Cluster) report() {
	if c.gate == nil {
		return
	}
	c.gateMu.Lock()
	defer c.gateMu.Unlock()
	if now := c.Available(); now != c.available {
		c.available = now
		c.gate.Available(now)
	}
}

// Connected reports whether the connection to NATS is up.
func (c *Cluster) Connected() bool { return c.connected.Load() }

// Available reports whether events flow both ways: the connection is up
// and the receiver reads the stream.
func (c *Cluster) Available() bool { return c.connected.Load() && c.reading.Load() }

// Ready is closed once the stream exists and the receiver reads it.
func (c *Cluster) Ready() <-chan struct{} { return c.ready }

// Publish queues ev for the stream. It never blocks: when the queue is
// full (NATS is slow, or unreachable and the sender waits for it), ev is
// dropped and counted.
func (c *Cluster) Publish(ev bridge.Event) {
	select {
	case c.queue <- ev:
	default:
		c.m.dropped.Inc()
	}
	if ev.Type == bridge.TypeCallEnded {
		c.release(ev.CallID)
	}
}

// Run creates the stream and the call index (retrying while NATS cannot
// be reached), then sends and receives events, heartbeats, records and
// requests until ctx is done, and closes the connection.
func (c *Cluster) Run(ctx context.Context) {
	defer c.Close()
	if err := c.listenRelay(); err != nil {
		c.log.Error().Err(err).Msg("streams of this replica's calls that land on other replicas cannot be relayed here")
	}
	var wg sync.WaitGroup
	wg.Go(func() { c.send(ctx) })
	wg.Go(func() { c.receive(ctx) })
	wg.Go(func() { c.watch(ctx) })
	wg.Go(func() { c.releaser(ctx) })
	wg.Go(func() { c.relaySend(ctx) })
	wg.Go(func() { c.runIndex(ctx) })
	wg.Go(func() { c.serveRPC(ctx) })
	wg.Wait()
	c.relay.stop()
}

// Close closes the connection (Run does when it returns). It is
// idempotent, and a no-op on nil.
func (c *Cluster) Close() {
	if c == nil {
		return
	}
	c.closeOnce.Do(func() {
		c.nc.Close()
		c.setConnected(false, "")
	})
}

// flushWait bounds how long the sender waits at the end for the
// acknowledgements of what it sent (the calls' last events).
const flushWait = 2 * time.Second

// send publishes queued events until ctx is done, then what is still
// queued, and waits up to flushWait for their acknowledgements. While the
// connection is down it waits for it, and the events wait in the queue:
// other replicas get them, in order, once it is back.
func (c *Cluster) send(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			c.flush()
			return
		case ev := <-c.queue:
			for !c.nc.IsConnected() {
				select {
				case <-ctx.Done():
					c.sendOne(ev) // dropped and counted: the connection is down
					c.flush()
					return
				case <-c.upSend:
				}
			}
			c.sendOne(ev)
		}
	}
}

func (c *Cluster) flush() {
	for {
		select {
		case ev := <-c.queue:
			c.sendOne(ev)
			continue
		default:
		}
		break
	}
	t := time.NewTimer(flushWait)
	defer t.Stop()
	select {
	case <-c.js.PublishAsyncComplete():
	case <-t.C:
	}
}

func (c *Cluster) sendOne(ev bridge.Event) {
	if !c.nc.IsConnected() || c.js.PublishAsyncPending() >= c.cfg.Window {
		c.m.dropped.Inc()
		return
	}
	msg := &nats.Msg{Subject: Subject(ev.CallID), Data: ev.Data, Header: nats.Header{}}
	msg.Header.Set(HeaderNode, c.cfg.NodeID)
	msg.Header.Set(HeaderSeq, strconv.FormatUint(ev.Seq, 10))
	if ev.Start != nil {
		msg.Header.Set(HeaderStart, string(ev.Start))
	}
	if ev.More {
		msg.Header.Set(HeaderMore, "1")
	}
	// The window is checked above and only this goroutine publishes, so
	// the stall wait is a backstop.
	// The acknowledgement is counted by the handlers given to jetstream.New.
	if _, err := c.js.PublishMsgAsync(msg, jetstream.WithStallWait(10*time.Millisecond)); err != nil {
		c.m.dropped.Inc()
	}
}
