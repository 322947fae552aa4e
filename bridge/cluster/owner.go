package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Ownership: every stream of a call, on whichever replica it lands, asks
// the KV bucket Config.OwnersBucket who holds the call. The key is the
// call's token (as in Subject), the value the owner's node id. The first
// stream's replica creates the key and runs the call; the streams landing
// elsewhere are relayed to it (relay.go). A key whose owner is lost
// (unheard for Config.NodeTimeout, or not answering relayed starts) is
// taken over with a compare-and-set on its revision, so racing replicas
// still end with one owner.
//
// Bounds: the owner deletes the key when the call ends (after the
// reconnect grace: call.ended is published only then); a key whose delete
// was lost (NATS away at that moment, the owner killed) expires with the
// bucket's Config.OwnerTTL, and until then a stream that finds it takes
// it over when its owner is lost, or is relayed to the live owner, which
// starts (or resumes) the call. A stream that continues an ended call
// within the resume window on another replica finds no key: it starts a
// call of that id there.

// Defaults of the ownership settings.
const (
	DefaultOwnersBucket = "BRIDGE_OWNERS"
	DefaultOwnerTTL     = 6 * time.Hour
)

// ownerWait bounds each request to the bucket.
const ownerWait = 3 * time.Second

// Claim is who holds a call.
type Claim struct {
	Owner string // node id; this replica's when Local
	Local bool
	// TookOver: the call's previous owner was lost and this replica now
	// holds the call. LastSeq is the last seq of the call this replica
	// has seen from another replica (0: none): the lost owner's, or that
	// of a call of this id that ended on another replica.
	TookOver bool
	LastSeq  uint64
	rev      uint64
}

// owners returns the bucket, creating it (or updating its settings) on the
// first use after start or after a failure.
func (c *Cluster) owners(ctx context.Context) (jetstream.KeyValue, error) {
	c.kvMu.Lock()
	defer c.kvMu.Unlock()
	if c.kv != nil {
		return c.kv, nil
	}
	kv, err := c.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      c.cfg.OwnersBucket,
		Description: "Which replica holds each live call (key: the call's subject token, value: node id).",
		TTL:         c.cfg.OwnerTTL,
		History:     1,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("owners bucket %s: %w", c.cfg.OwnersBucket, err)
	}
	c.kv = kv
	return kv, nil
}

// Claim finds or takes the owner of callID: created here, already here,
// another live replica, or a lost replica's key taken over. An error
// means the bucket could not be asked (NATS away): the caller runs the
// call here, as a single replica would.
func (c *Cluster) Claim(ctx context.Context, callID string) (Claim, error) {
	if !c.Connected() {
		// Not worth a request that would wait for the reconnect.
		return Claim{Owner: c.cfg.NodeID, Local: true}, errors.New("owner of call: NATS is disconnected")
	}
	ctx, cancel := context.WithTimeout(ctx, ownerWait)
	defer cancel()
	kv, err := c.owners(ctx)
	if err != nil {
		return Claim{Owner: c.cfg.NodeID, Local: true}, err
	}
	key := Token(callID)
	for range 4 { // each turn lost a race to another replica's write
		rev, err := kv.Create(ctx, key, []byte(c.cfg.NodeID))
		if err == nil {
			c.m.ownerClaims.WithLabelValues("created").Inc()
			return Claim{Owner: c.cfg.NodeID, Local: true, LastSeq: c.lastSeq(callID), rev: rev}, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return Claim{Owner: c.cfg.NodeID, Local: true}, fmt.Errorf("create owner of call: %w", err)
		}
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // released meanwhile
		}
		if err != nil {
			return Claim{Owner: c.cfg.NodeID, Local: true}, fmt.Errorf("read owner of call: %w", err)
		}
		owner := string(e.Value())
		switch {
		case owner == c.cfg.NodeID:
			c.m.ownerClaims.WithLabelValues("local").Inc()
			return Claim{Owner: owner, Local: true, rev: e.Revision()}, nil
		case c.alive(owner):
			c.m.ownerClaims.WithLabelValues("remote").Inc()
			return Claim{Owner: owner, rev: e.Revision()}, nil
		}
		cl, err := c.takeOver(ctx, kv, callID, e.Revision())
		if errors.Is(err, jetstream.ErrKeyExists) {
			continue // another replica took it first: ask again
		}
		return cl, err
	}
	return Claim{Owner: c.cfg.NodeID, Local: true}, errors.New("owner of call: the key changed on every try")
}

// TakeOver takes callID from the owner named in cl (lost, or not answering
// relayed streams), unless the key changed since cl was read.
func (c *Cluster) TakeOver(ctx context.Context, callID string, cl Claim) (Claim, error) {
	ctx, cancel := context.WithTimeout(ctx, ownerWait)
	defer cancel()
	kv, err := c.owners(ctx)
	if err != nil {
		return Claim{}, err
	}
	return c.takeOver(ctx, kv, callID, cl.rev)
}

func (c *Cluster) takeOver(ctx context.Context, kv jetstream.KeyValue, callID string, rev uint64) (Claim, error) {
	nrev, err := kv.Update(ctx, Token(callID), []byte(c.cfg.NodeID), rev)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return Claim{}, err
		}
		return Claim{Owner: c.cfg.NodeID, Local: true}, fmt.Errorf("take over call: %w", err)
	}
	c.m.ownerClaims.WithLabelValues("taken_over").Inc()
	// The lost owner's call ends for this replica's subscribers first (as
	// the watcher would), so the continuation's seq follows its node_lost.
	c.mu.Lock()
	s, ok := c.seen[callID]
	if ok && !s.ended && s.node != c.cfg.NodeID {
		c.endCall(callID, s, time.Now())
	}
	last := c.seen[callID].seq
	c.mu.Unlock()
	c.log.Warn().Str("call_id", callID).Uint64("last_seq", last).Msg("call of a lost replica taken over: it continues here")
	return Claim{Owner: c.cfg.NodeID, Local: true, TookOver: true, LastSeq: last, rev: nrev}, nil
}

// lastSeq is the last seq of callID handed on from another replica (0:
// none): a call that ended there and continues here (within the resume
// window) goes on after it.
func (c *Cluster) lastSeq(callID string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.seen[callID]; ok && s.node != c.cfg.NodeID {
		return s.seq
	}
	return 0
}

// alive says whether node is a live replica: heard within NodeTimeout, or
// not yet known to be lost because this replica has not listened that
// long.
func (c *Cluster) alive(node string) bool {
	if !c.Connected() || c.rejoined.Load() {
		// As the watcher: cut off from NATS, or back and not yet checked
		// afresh, this replica cannot tell a lost node from its own outage.
		return true
	}
	now := time.Now()
	c.mu.Lock()
	heard, ok := c.nodes[node]
	c.mu.Unlock()
	if ok {
		return now.Sub(heard) < c.cfg.NodeTimeout
	}
	return now.Sub(c.born) < c.cfg.NodeTimeout
}

// release queues the deletion of callID's key, if this replica holds it
// (the call ended here). It never blocks: when the queue is full the key
// is left to expire (see the bounds above) and the drop is counted.
func (c *Cluster) release(callID string) {
	select {
	case c.releases <- callID:
	default:
		c.m.ownerReleaseDropped.Inc()
	}
}

// releaser deletes the keys of calls ended here until ctx is done.
func (c *Cluster) releaser(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-c.releases:
			if err := c.releaseNow(ctx, id); err != nil {
				c.m.ownerReleaseDropped.Inc()
				c.log.Debug().Err(err).Str("call_id", id).Msg("owner key left to expire")
			}
		}
	}
}

// releaseNow deletes callID's key if its value is this node, with the
// revision read, so a key another replica took over meanwhile stays.
func (c *Cluster) releaseNow(ctx context.Context, callID string) error {
	ctx, cancel := context.WithTimeout(ctx, ownerWait)
	defer cancel()
	kv, err := c.owners(ctx)
	if err != nil {
		return err
	}
	key := Token(callID)
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read owner: %w", err)
	}
	if string(e.Value()) != c.cfg.NodeID {
		return nil
	}
	if err := kv.Delete(ctx, key, jetstream.LastRevision(e.Revision())); err != nil {
		return fmt.Errorf("delete owner: %w", err)
	}
	return nil
}
