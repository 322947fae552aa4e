package cluster

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/callcaptions/bridge/bridge"
)

// The call index: a JetStream key-value bucket that holds the record
// (call.json) of every replica's calls, keyed by Token(call id), so that
// any replica lists and finds any call. The replica that holds a call puts
// its record whenever it writes call.json (PutRecord); every replica
// watches the bucket and keeps the records in memory (Records, Lookup).
// When a replica is lost, the others mark its calls still active in the
// bucket interrupted (reason node_lost); one of them wins (a KV update at
// the revision it saw), all see the result through the watch.

// Defaults of the index's Config fields.
const (
	DefaultIndexBucket     = "BRIDGE_CALLS"
	DefaultIndexMaxAge     = 24 * time.Hour
	DefaultIndexMaxBytes   = 1 << 30
	DefaultIndexQueue      = 4096
	DefaultIndexMaxRecords = 100_000
)

// indexMaxValue bounds one record in the bucket; a bigger one is refused
// by the server (the put fails and is counted).
const indexMaxValue = 1 << 20

// Entry is a call's value in the index: its record and the replica that
// holds it.
type Entry struct {
	Node   string            `json:"node"`
	Record bridge.CallRecord `json:"record"`
}

// Token is callID as a key and subject token: unpadded base64url (call
// ids may hold characters that neither allows).
func Token(callID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(callID))
}

// index is the cluster's side of the call index.
type index struct {
	puts *putQueue

	kv jetstream.KeyValue

	mu      sync.Mutex
	entries map[string]indexed // by call id, every replica's (this one's too)
	max     int
}

// indexed is an entry as read from the bucket, with its revision.
type indexed struct {
	Entry
	rev uint64
}

func newIndex(cfg Config) *index {
	return &index{puts: newPutQueue(cfg.IndexQueue), entries: map[string]indexed{}, max: cfg.IndexMaxRecords}
}

// PutRecord queues rec for the index, encoded at once (the caller may
// change it afterwards). It never blocks: a newer record of the same call
// replaces the queued one; when the queue is full, rec is dropped and
// counted (the call's next record tries again).
func (c *Cluster) PutRecord(rec bridge.CallRecord) {
	if rec.CallID == "" {
		return
	}
	b, err := json.Marshal(Entry{Node: c.cfg.NodeID, Record: rec})
	if err != nil { // a CallRecord always encodes
		c.log.Error().Err(err).Str("call_id", rec.CallID).Msg("call index: record not encoded")
		return
	}
	if !c.index.puts.add(rec.CallID, b) {
		c.m.index.puts.WithLabelValues("dropped").Inc()
	}
}

// Records is every record in the index that this replica has read, in no
// order.
func (c *Cluster) Records() []Entry {
	c.index.mu.Lock()
	defer c.index.mu.Unlock()
	out := make([]Entry, 0, len(c.index.entries))
	for _, e := range c.index.entries {
		out = append(out, e.Entry)
	}
	return out
}

// Lookup is callID's entry in the index as this replica has read it.
func (c *Cluster) Lookup(callID string) (Entry, bool) {
	c.index.mu.Lock()
	defer c.index.mu.Unlock()
	e, ok := c.index.entries[callID]
	return e.Entry, ok
}

// NodeID is this replica's node id.
func (c *Cluster) NodeID() string { return c.cfg.NodeID }

// runIndex creates or updates the bucket (retrying while NATS cannot be
// reached), then puts this replica's records, watches every replica's
// and marks lost replicas' calls interrupted, until ctx is done.
func (c *Cluster) runIndex(ctx context.Context) {
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		err := c.openIndex(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		c.log.Warn().Err(err).Dur("retry_in", wait).Msg("cannot open the call index: the call list shows this replica's calls only until it can")
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { c.putRecords(ctx) })
	wg.Go(func() { c.sweepLost(ctx) })
	c.watchIndex(ctx)
	wg.Wait()
}

func (c *Cluster) openIndex(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	kv, err := c.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:       c.cfg.IndexBucket,
		Description:  "The record (call.json) of every replica's calls and the replica that holds each, for every replica's call list.",
		History:      1,
		TTL:          c.cfg.IndexMaxAge,
		MaxBytes:     c.cfg.IndexMaxBytes,
		MaxValueSize: indexMaxValue,
		Storage:      jetstream.FileStorage,
	})
	if err != nil {
		return err
	}
	c.index.kv = kv
	return nil
}

// putTimeout bounds one put of a record.
const putTimeout = 5 * time.Second

// putRecords puts queued records until ctx is done, then what is still
// queued (the calls that ended in the drain) for up to flushWait. A failed
// put stays queued (unless a newer record of the call came meanwhile) and
// is tried again after a pause, 1s doubling to 30s.
func (c *Cluster) putRecords(ctx context.Context) {
	wait := time.Second
	for {
		select {
		case <-ctx.Done():
			c.flushRecords()
			return
		case <-c.index.puts.wake:
		}
		for {
			id, b, ok := c.index.puts.take()
			if !ok {
				break
			}
			if err := c.putRecord(ctx, id, b); err != nil {
				c.m.index.puts.WithLabelValues("failed").Inc()
				c.log.Warn().Err(err).Str("call_id", id).Dur("retry_in", wait).Msg("call index: record not stored; other replicas list the call as they last saw it")
				if !c.index.puts.retry(id, b) {
					c.m.index.puts.WithLabelValues("dropped").Inc()
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
				wait = min(2*wait, 30*time.Second)
				continue
			}
			wait = time.Second
		}
	}
}

// flushRecords puts what is queued, once each, within flushWait.
func (c *Cluster) flushRecords() {
	ctx, cancel := context.WithTimeout(context.Background(), flushWait)
	defer cancel()
	for ctx.Err() == nil {
		id, b, ok := c.index.puts.take()
		if !ok {
			return
		}
		if err := c.putRecord(ctx, id, b); err != nil {
			c.m.index.puts.WithLabelValues("failed").Inc()
		}
	}
}

// putConflicts bounds the tries of one put that another replica's write
// of the same call interrupts (a revision conflict).
const putConflicts = 5

// putRecord stores entry as id's record unless the bucket holds a later
// part of the call: a call continued on another replica (a takeover, or a
// continuation within the resume window) has a new record there with a
// later started_at, and the part before it (say, repaired at the start of
// the replica that held it) must not replace it in the call list. It
// reads the entry, then updates it at the revision read (or creates it
// when absent), so a put in between is seen and the comparison made
// again. A record with the same started_at replaces as any put does.
// It counts the put when it is stored or superseded; the caller counts a
// failure.
func (c *Cluster) putRecord(ctx context.Context, id string, entry []byte) error {
	ctx, cancel := context.WithTimeout(ctx, putTimeout)
	defer cancel()
	var ours Entry
	if err := json.Unmarshal(entry, &ours); err != nil {
		return err
	}
	key := Token(id)
	var err error
	for range putConflicts {
		var cur jetstream.KeyValueEntry
		cur, err = c.index.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = c.index.kv.Create(ctx, key, entry)
		case err != nil:
			return err
		default:
			var theirs Entry
			if json.Unmarshal(cur.Value(), &theirs) == nil && theirs.Record.StartedAt.After(ours.Record.StartedAt) {
				c.m.index.puts.WithLabelValues("superseded").Inc()
				return nil
			}
			_, err = c.index.kv.Update(ctx, key, entry, cur.Revision())
		}
		if err == nil {
			c.m.index.puts.WithLabelValues("ok").Inc()
			return nil
		}
		if !conflict(err) {
			return err
		}
	}
	return err
}

// conflict says whether err is a KV write refused because the key changed
// (or was created) since it was read.
func conflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// watchIndex keeps the index's entries up to date until ctx is done,
// watching again (after a pause) when the watch ends.
func (c *Cluster) watchIndex(ctx context.Context) {
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		err := c.watchOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		c.log.Warn().Err(err).Dur("retry_in", wait).Msg("call index: watch ended; watching again")
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (c *Cluster) watchOnce(ctx context.Context) error {
	w, err := c.index.kv.WatchAll(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("updates closed")
			}
			if e != nil { // nil: the initial values are all in
				c.index.apply(e)
				c.m.index.records.Set(float64(c.index.len()))
			}
		}
	}
}

func (x *index) len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.entries)
}

// apply takes one update of the bucket into the entries.
func (x *index) apply(e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		id, err := base64.RawURLEncoding.DecodeString(e.Key())
		if err == nil {
			x.mu.Lock()
			delete(x.entries, string(id))
			x.mu.Unlock()
		}
		return
	}
	var v Entry
	if json.Unmarshal(e.Value(), &v) != nil || v.Record.CallID == "" || Token(v.Record.CallID) != e.Key() {
		return // not a record: nothing the list could show
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.entries[v.Record.CallID] = indexed{Entry: v, rev: e.Revision()}
	if len(x.entries) > x.max {
		x.shrinkLocked()
	}
}

// shrinkLocked drops the oldest tenth of the entries, ended calls first:
// the call list then shows what the bucket holds of them no longer (their
// own replica, and the bucket of --s3-bucket, still serve them by id).
func (x *index) shrinkLocked() {
	all := slices.SortedFunc(maps.Values(x.entries), func(a, b indexed) int {
		aLive, bLive := a.Record.Status == bridge.StatusActive, b.Record.Status == bridge.StatusActive
		if aLive != bLive {
			if aLive {
				return 1
			}
			return -1
		}
		return cmp.Or(a.Record.StartedAt.Compare(b.Record.StartedAt), strings.Compare(a.Record.CallID, b.Record.CallID))
	})
	for _, e := range all[:len(all)-x.max*9/10] {
		delete(x.entries, e.Record.CallID)
	}
}

// sweepLost marks interrupted, every sixth of Config.NodeTimeout, the
// calls the index shows active on a replica unheard for
// Config.NodeTimeout, once this replica has itself been connected that
// long (it must have had the time to hear everybody); and the calls it
// shows active on this replica that this replica does not know (a
// previous run's, whose folder was lost with its disk).
func (c *Cluster) sweepLost(ctx context.Context) {
	tick := time.NewTicker(c.cfg.NodeTimeout / 6)
	defer tick.Stop()
	var upSince time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if !c.Connected() {
				upSince = time.Time{}
				continue
			}
			if upSince.IsZero() {
				upSince = now
			}
			if now.Sub(upSince) < c.cfg.NodeTimeout {
				continue
			}
			for _, e := range c.lostEntries(now) {
				c.markLost(ctx, e, now)
			}
		}
	}
}

// lostEntries are the active entries of replicas other than this one not
// heard within Config.NodeTimeout at now, and this replica's that its
// calls (ServeCalls) do not know.
func (c *Cluster) lostEntries(now time.Time) []indexed {
	c.mu.Lock()
	live := map[string]bool{c.cfg.NodeID: true}
	for node, heard := range c.nodes {
		if now.Sub(heard) < c.cfg.NodeTimeout {
			live[node] = true
		}
	}
	c.mu.Unlock()
	c.index.mu.Lock()
	var out, own []indexed
	for _, e := range c.index.entries {
		switch {
		case e.Record.Status != bridge.StatusActive:
		case e.Node == c.cfg.NodeID:
			own = append(own, e)
		case !live[e.Node]:
			out = append(out, e)
		}
	}
	c.index.mu.Unlock()
	// A call of this replica is in the registry before its first record
	// is written; its lookup may read the disk, so outside the lock.
	if held := c.rpc.calls.Load(); held != nil {
		for _, e := range own {
			if _, ok := held.Record(e.Record.CallID); !ok {
				out = append(out, e)
			}
		}
	}
	return out
}

// markLost writes e's record as interrupted (reason node_lost) at the
// revision read, so that of the replicas that try, one does, and a record
// the holder put meanwhile is not overwritten.
func (c *Cluster) markLost(ctx context.Context, e indexed, now time.Time) {
	rec := Interrupted(e.Record, e.Node, now)
	b, err := json.Marshal(Entry{Node: e.Node, Record: rec})
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, putTimeout)
	defer cancel()
	if _, err := c.index.kv.Update(ctx, Token(rec.CallID), b, e.rev); err != nil {
		// Another replica was first, or the holder put a newer record:
		// the watch brings either.
		c.log.Debug().Err(err).Str("call_id", rec.CallID).Msg("call index: lost replica's call not marked here")
		return
	}
	c.m.index.interrupted.Inc()
	c.log.Warn().Str("call_id", rec.CallID).Str("node", e.Node).Msg("call index: the call's replica is lost; marked interrupted")
}

// Interrupted is rec as a call whose replica (node) was lost at now:
// status interrupted, reason node_lost, ended then.
func Interrupted(rec bridge.CallRecord, node string, now time.Time) bridge.CallRecord {
	now = now.UTC()
	rec.Status = bridge.StatusInterrupted
	rec.Reason = bridge.ReasonNodeLost
	rec.Error = cmp.Or(rec.Error, "the replica holding the call ("+node+") was lost; its recordings are on that replica or in the bucket up to where it stopped")
	rec.EndedAt = &now
	if !rec.StartedAt.IsZero() {
		rec.DurationMs = max(0, now.Sub(rec.StartedAt).Milliseconds())
	}
	return rec
}

// putQueue holds the records waiting for the index (encoded entries), one
// per call (the newest), in the order the calls first queued: a map for
// coalescing and a FIFO of call ids. Bounded by max calls; when full a new
// call's record is dropped (drop newest: the calls already queued keep
// their turn, and the new call's next record tries again).
type putQueue struct {
	mu    sync.Mutex
	recs  map[string][]byte
	order []string
	max   int
	wake  chan struct{} // 1: wake-ups coalesce
}

func newPutQueue(max int) *putQueue {
	return &putQueue{recs: map[string][]byte{}, max: max, wake: make(chan struct{}, 1)}
}

// add queues id's entry, replacing a queued one of the call; false when
// the queue is full and the call not in it.
func (q *putQueue) add(id string, entry []byte) bool {
	q.mu.Lock()
	if _, ok := q.recs[id]; !ok {
		if len(q.recs) >= q.max {
			q.mu.Unlock()
			return false
		}
		q.order = append(q.order, id)
	}
	q.recs[id] = entry
	q.mu.Unlock()
	q.signal()
	return true
}

func (q *putQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take removes and returns the entry of the call queued first.
func (q *putQueue) take() (id string, entry []byte, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.order) == 0 {
		return "", nil, false
	}
	id = q.order[0]
	q.order[0] = ""
	q.order = q.order[1:]
	entry = q.recs[id]
	delete(q.recs, id)
	return id, entry, true
}

// retry puts an entry that could not be stored back at the front, unless
// a newer one of its call was queued meanwhile (that one goes instead);
// false when the queue is full (the entry is dropped).
func (q *putQueue) retry(id string, entry []byte) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.recs[id]; ok {
		return true
	}
	if len(q.recs) >= q.max {
		return false
	}
	q.recs[id] = entry
	q.order = append([]string{id}, q.order...)
	q.signal()
	return true
}

// len is how many calls' records are queued.
func (q *putQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.recs)
}
