package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/cluster"
	"github.com/callcaptions/bridge/recorder/s3store"
	"github.com/callcaptions/bridge/web"
)

// --nats-url: one call list through any replica. Each replica puts the
// record of its calls into the cluster's call index whenever it writes
// call.json (indexedStore); the REST API reads its own registry first,
// then the index, and asks the replica holding a call for its transcript
// and recordings, or, when that replica does not answer, its own storage
// (the bucket of --s3-bucket) (clusterCalls).

// indexedStore is the bridge's Store whose calls also put their record
// into the call index when they write call.json.
type indexedStore struct {
	bridge.Store
	c *cluster.Cluster
}

var (
	_ bridge.Store     = indexedStore{}
	_ bridge.CallFiles = indexedFiles{}
	_ web.Registry     = clusterCalls{}
	_ cluster.Calls    = (*bridge.Registry)(nil)
)

// withIndex is store, putting records into c's index when there is one.
func withIndex(store bridge.Store, c *cluster.Cluster) bridge.Store {
	if c == nil {
		return store
	}
	return indexedStore{store, c}
}

func (s indexedStore) Open(callID string) (bridge.CallFiles, error) {
	f, err := s.Store.Open(callID)
	if err != nil {
		return nil, err
	}
	return indexedFiles{f, s.c}, nil
}

type indexedFiles struct {
	bridge.CallFiles
	c *cluster.Cluster
}

// WriteJSON writes the document and, for call.json, queues the record for
// the index (never blocking). The record goes even when the disk refused
// it: the index shows the call as it is.
func (f indexedFiles) WriteJSON(name string, v any) error {
	return f.indexed(name, v, f.CallFiles.WriteJSON(name, v))
}

// WriteJSONNoWait is WriteJSON without waiting for the disk.
func (f indexedFiles) WriteJSONNoWait(name string, v any) error {
	return f.indexed(name, v, f.CallFiles.WriteJSONNoWait(name, v))
}

// indexed queues a call.json just written (err: how that went) for the
// index, and returns err.
func (f indexedFiles) indexed(name string, v any, err error) error {
	if name == "call.json" {
		switch rec := v.(type) {
		case bridge.CallRecord:
			f.c.PutRecord(rec)
		case *bridge.CallRecord:
			f.c.PutRecord(*rec)
		}
	}
	return err
}

// clusterCalls is the registry as the web side sees it, with the REST
// reads of every replica's calls: the local registry first, then the call
// index, then the replica holding the call, then this replica's storage.
type clusterCalls struct {
	*bridge.Registry
	c       *cluster.Cluster
	store   bridge.Store   // this replica's storage (spool and bucket)
	objects *s3store.Store // nil: no --s3-bucket
}

// webRegistry is reg, reading other replicas' calls too when there is a
// cluster; it also makes reg answer the other replicas' requests.
func webRegistry(reg *bridge.Registry, c *cluster.Cluster, store bridge.Store, objects *s3store.Store) web.Registry {
	if c == nil {
		return reg
	}
	c.ServeCalls(reg)
	return clusterCalls{Registry: reg, c: c, store: store, objects: objects}
}

// Calls lists this replica's calls and the index's others, newest first;
// a call in both is this replica's.
func (cc clusterCalls) Calls() []bridge.CallRecord {
	out := cc.Registry.Calls()
	local := make(map[string]bool, len(out))
	for _, r := range out {
		local[r.CallID] = true
	}
	for _, e := range cc.c.Records() {
		if !local[e.Record.CallID] {
			out = append(out, e.Record)
		}
	}
	slices.SortFunc(out, func(a, b bridge.CallRecord) int {
		return cmp.Or(b.StartedAt.Compare(a.StartedAt), strings.Compare(a.CallID, b.CallID))
	})
	return out
}

// remote is callID's index entry when another replica holds the call.
func (cc clusterCalls) remote(callID string) (cluster.Entry, bool) {
	e, ok := cc.c.Lookup(callID)
	return e, ok && e.Node != cc.c.NodeID()
}

// Record: a live call of another replica is asked of it (its figures move
// on between records); when it does not answer, and for ended calls, the
// index has the record.
func (cc clusterCalls) Record(id string) (bridge.CallRecord, bool) {
	if rec, ok := cc.Registry.Record(id); ok {
		return rec, true
	}
	e, ok := cc.c.Lookup(id)
	if !ok {
		return bridge.CallRecord{}, false
	}
	if e.Node != cc.c.NodeID() && e.Record.Status == bridge.StatusActive {
		if rec, found, err := cc.c.RemoteRecord(e.Node, id); err == nil && found {
			return rec, true
		}
	}
	return e.Record, true
}

func (cc clusterCalls) Transcript(id string) (bridge.Transcript, bool, error) {
	if t, ok, err := cc.Registry.Transcript(id); ok || err != nil {
		return t, ok, err
	}
	e, ok := cc.remote(id)
	if !ok {
		return bridge.Transcript{}, false, nil
	}
	t, found, askErr := cc.c.RemoteTranscript(e.Node, id)
	if askErr == nil && found {
		return t, true, nil
	}
	cc.lookInBucket(id)
	err := cc.store.ReadJSON(id, "transcript.json", &t)
	switch {
	case err == nil:
		return t, true, nil
	case askErr != nil:
		return bridge.Transcript{}, true, unavailable(id, e.Node, askErr)
	case errors.Is(err, fs.ErrNotExist):
		return bridge.Transcript{}, true, fiber.NewError(fiber.StatusNotFound,
			fmt.Sprintf("the transcript of call %q is neither on its replica (%s) nor in storage", id, e.Node))
	}
	return bridge.Transcript{}, true, err
}

func (cc clusterCalls) OpenTrack(id, track string) (io.ReadSeekCloser, bool, error) {
	if r, ok, err := cc.Registry.OpenTrack(id, track); ok {
		return r, ok, err
	}
	e, ok := cc.remote(id)
	if !ok || !slices.ContainsFunc(e.Record.Tracks, func(t bridge.TrackRecord) bool { return t.Name == track }) {
		return nil, false, nil
	}
	r, found, askErr := cc.c.RemoteTrack(e.Node, id, track)
	if askErr == nil && found {
		return r, true, nil
	}
	cc.lookInBucket(id)
	r, err := cc.store.OpenTrack(id, track)
	switch {
	case err == nil:
		return r, true, nil
	case askErr != nil:
		return nil, true, unavailable(id, e.Node, askErr)
	}
	return nil, true, err
}

// lookInBucket lets the storage look for another replica's call in the
// bucket (it looks there only for calls it knows the bucket holds).
func (cc clusterCalls) lookInBucket(id string) {
	if cc.objects != nil {
		cc.objects.Known(id)
	}
}

// unavailable is the answer when the replica holding a call does not
// answer and this replica has no copy: 504 when it was too slow, else 503.
func unavailable(id, node string, err error) error {
	code := fiber.StatusServiceUnavailable
	if errors.Is(err, cluster.ErrTimeout) {
		code = fiber.StatusGatewayTimeout
	}
	return fiber.NewError(code, fmt.Sprintf("call %q: %v, and this replica has no stored copy", id, err))
}
