package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/cluster/clustertest"
)

func record(id, status string, started time.Time) bridge.CallRecord {
	return bridge.CallRecord{CallID: id, Provider: "twilio", Status: status, StartedAt: started,
		Tracks: []bridge.TrackRecord{{Name: "inbound", SampleRate: 8000, File: "inbound.wav"}}}
}

func TestPutQueue(t *testing.T) {
	t.Run("a newer record of a queued call replaces it and keeps its turn", func(t *testing.T) {
		q := newPutQueue(10)
		require.True(t, q.add("a", []byte("a1")))
		require.True(t, q.add("b", []byte("b1")))
		require.True(t, q.add("a", []byte("a2")))
		require.Equal(t, 2, q.len())
		id, b, ok := q.take()
		require.True(t, ok)
		require.Equal(t, "a", id)
		require.Equal(t, "a2", string(b))
		id, b, _ = q.take()
		require.Equal(t, "b", id)
		require.Equal(t, "b1", string(b))
		_, _, ok = q.take()
		require.False(t, ok)
	})
	t.Run("full: a new call is dropped, a queued call still updated", func(t *testing.T) {
		q := newPutQueue(2)
		require.True(t, q.add("a", []byte("a1")))
		require.True(t, q.add("b", []byte("b1")))
		require.False(t, q.add("c", []byte("c1")))
		require.True(t, q.add("b", []byte("b2")))
		require.Equal(t, 2, q.len())
	})
	t.Run("a failed put goes first again, unless a newer one came", func(t *testing.T) {
		q := newPutQueue(3)
		q.add("a", []byte("a1"))
		q.add("b", []byte("b1"))
		id, b, _ := q.take()
		require.True(t, q.retry(id, b))
		id, _, _ = q.take()
		require.Equal(t, "a", id, "retried first")
		q.add("a", []byte("a2"))
		require.True(t, q.retry("a", []byte("a1")))
		_, _, _ = q.take() // b
		_, b, _ = q.take()
		require.Equal(t, "a2", string(b), "the newer record wins over the retried one")
	})
	t.Run("a retry into a full queue is dropped", func(t *testing.T) {
		q := newPutQueue(1)
		q.add("a", []byte("a1"))
		id, b, _ := q.take()
		q.add("b", []byte("b1"))
		require.False(t, q.retry(id, b))
	})
	t.Run("wake-ups coalesce", func(t *testing.T) {
		q := newPutQueue(10)
		for i := range 5 {
			q.add(fmt.Sprint(i), nil)
		}
		require.Len(t, q.wake, 1)
	})
}

// TestIndexSharesRecords: a record put by one replica is read by the
// other through the watch, with the node that holds it, and replaced by
// the next one.
func TestIndexSharesRecords(t *testing.T) {
	srv := clustertest.Start(t)
	a, _ := start(t, srv.URL(), "a", Config{})
	b, _ := start(t, srv.URL(), "b", Config{})
	now := time.Now().UTC().Truncate(time.Millisecond)
	a.PutRecord(record("CA1", bridge.StatusActive, now))
	require.Eventually(t, func() bool {
		e, ok := b.Lookup("CA1")
		return ok && e.Node == "a" && e.Record.Status == bridge.StatusActive && e.Record.StartedAt.Equal(now)
	}, 10*time.Second, 10*time.Millisecond)
	ended := record("CA1", bridge.StatusEnded, now)
	ended.Reason = bridge.ReasonStop
	a.PutRecord(ended)
	require.Eventually(t, func() bool {
		e, _ := b.Lookup("CA1")
		return e.Record.Status == bridge.StatusEnded && e.Record.Reason == bridge.ReasonStop
	}, 10*time.Second, 10*time.Millisecond)
	require.Len(t, b.Records(), 1)
	e, ok := a.Lookup("CA1")
	require.True(t, ok, "a replica reads its own records too")
	require.Equal(t, "a", e.Node)
	require.Equal(t, 2.0, testutil.ToFloat64(a.m.index.puts.WithLabelValues("ok")))
	_, ok = b.Lookup("CA2")
	require.False(t, ok)
}

// TestIndexKeepsLaterPart: a call continued on another replica has a
// record there with a later started_at; the earlier part's record, put
// afterwards (its replica repaired it at start-up), does not replace it,
// and is counted superseded. The later part put after the earlier one
// replaces it.
func TestIndexKeepsLaterPart(t *testing.T) {
	srv := clustertest.Start(t)
	a, _ := start(t, srv.URL(), "a", Config{})
	b, _ := start(t, srv.URL(), "b", Config{})
	first := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	later := first.Add(30 * time.Second)

	a.PutRecord(record("CAold", bridge.StatusInterrupted, first))
	require.Eventually(t, func() bool { _, ok := b.Lookup("CAold"); return ok }, 10*time.Second, 10*time.Millisecond)
	b.PutRecord(record("CAold", bridge.StatusEnded, later))
	require.Eventually(t, func() bool {
		e, _ := a.Lookup("CAold")
		return e.Node == "b" && e.Record.StartedAt.Equal(later)
	}, 10*time.Second, 10*time.Millisecond, "the later part replaces the earlier")

	b.PutRecord(record("CAnew", bridge.StatusActive, later))
	require.Eventually(t, func() bool { _, ok := a.Lookup("CAnew"); return ok }, 10*time.Second, 10*time.Millisecond)
	a.PutRecord(record("CAnew", bridge.StatusInterrupted, first))
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(a.m.index.puts.WithLabelValues("superseded")) == 1
	}, 10*time.Second, 10*time.Millisecond)
	a.PutRecord(record("CAmark", bridge.StatusEnded, first)) // a later put of a, to know the one before is done
	require.Eventually(t, func() bool { _, ok := b.Lookup("CAmark"); return ok }, 10*time.Second, 10*time.Millisecond)
	for _, r := range []*Cluster{a, b} {
		e, _ := r.Lookup("CAnew")
		require.Equal(t, "b", e.Node, "the earlier part does not replace the later")
		require.True(t, e.Record.StartedAt.Equal(later))
		require.Equal(t, bridge.StatusActive, e.Record.Status)
	}
	v, err := b.index.kv.Get(t.Context(), Token("CAnew"))
	require.NoError(t, err)
	require.Contains(t, string(v.Value()), `"node":"b"`, "the bucket too")

	b.PutRecord(record("CAnew", bridge.StatusEnded, later))
	require.Eventually(t, func() bool {
		e, _ := a.Lookup("CAnew")
		return e.Record.Status == bridge.StatusEnded
	}, 10*time.Second, 10*time.Millisecond, "the same part replaces as before")
	require.Equal(t, 5.0, testutil.ToFloat64(a.m.index.puts.WithLabelValues("ok"))+testutil.ToFloat64(b.m.index.puts.WithLabelValues("ok")))
}

// TestIndexBoundInMemory: past IndexMaxRecords the oldest ended records
// go first; live calls stay.
func TestIndexBoundInMemory(t *testing.T) {
	srv := clustertest.Start(t)
	a, _ := start(t, srv.URL(), "a", Config{})
	b, _ := start(t, srv.URL(), "b", Config{IndexMaxRecords: 10})
	base := time.Now().UTC().Add(-time.Hour)
	a.PutRecord(record("live", bridge.StatusActive, base)) // the oldest of all
	for i := range 14 {
		a.PutRecord(record(fmt.Sprintf("CA%02d", i), bridge.StatusEnded, base.Add(time.Duration(i+1)*time.Minute)))
	}
	require.Eventually(t, func() bool { _, ok := b.Lookup("CA13"); return ok }, 10*time.Second, 10*time.Millisecond)
	require.LessOrEqual(t, len(b.Records()), 10)
	_, ok := b.Lookup("live")
	require.True(t, ok, "a live call is kept")
	_, ok = b.Lookup("CA00")
	require.False(t, ok, "the oldest ended call went")
	require.Eventually(t, func() bool { return len(a.Records()) == 15 }, 10*time.Second, 10*time.Millisecond,
		"the other replica's bound is its own")
}

// TestLostReplicasCallsInterrupted: a replica that is no longer heard has
// its active calls marked interrupted (node_lost) in the index; its ended
// calls stay as they were.
func TestLostReplicasCallsInterrupted(t *testing.T) {
	srv := clustertest.Start(t)
	cfg := Config{NodeTimeout: 600 * time.Millisecond}
	a, _ := start(t, srv.URL(), "a", cfg)
	b, _ := start(t, srv.URL(), "b", cfg)
	c, _ := start(t, srv.URL(), "c", cfg)
	started := time.Now().UTC().Add(-time.Minute)
	a.PutRecord(record("CAlive", bridge.StatusActive, started))
	a.PutRecord(record("CAdone", bridge.StatusEnded, started))
	require.Eventually(t, func() bool { _, ok := b.Lookup("CAdone"); return ok }, 10*time.Second, 10*time.Millisecond)
	require.Never(t, func() bool {
		e, _ := b.Lookup("CAlive")
		return e.Record.Status != bridge.StatusActive
	}, 2*cfg.NodeTimeout, 20*time.Millisecond, "a live replica's call stays active")

	a.Close()
	require.Eventually(t, func() bool {
		e, _ := c.Lookup("CAlive")
		return e.Record.Status == bridge.StatusInterrupted
	}, 10*time.Second, 10*time.Millisecond)
	e, _ := c.Lookup("CAlive")
	require.Equal(t, bridge.ReasonNodeLost, e.Record.Reason)
	require.Equal(t, "a", e.Node)
	require.NotNil(t, e.Record.EndedAt)
	require.GreaterOrEqual(t, e.Record.DurationMs, time.Minute.Milliseconds())
	done, _ := c.Lookup("CAdone")
	require.Equal(t, bridge.StatusEnded, done.Record.Status)
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(b.m.index.interrupted)+testutil.ToFloat64(c.m.index.interrupted) == 1
	}, 5*time.Second, 10*time.Millisecond, "one replica marks it")
}

// calls is a Calls of one call with one recording.
type calls struct {
	rec bridge.CallRecord
	wav []byte
}

func (f calls) Record(id string) (bridge.CallRecord, bool) { return f.rec, id == f.rec.CallID }

func (f calls) Transcript(id string) (bridge.Transcript, bool, error) {
	if id != f.rec.CallID {
		return bridge.Transcript{}, false, nil
	}
	// Longer than a chunk, as a long call's is.
	segs := make([]bridge.Segment, 0, 5000)
	for i := range cap(segs) {
		segs = append(segs, bridge.Segment{Track: "inbound", SegmentID: fmt.Sprintf("inbound-%d", i), Text: "hello there, this is a long call"})
	}
	return bridge.Transcript{CallID: id, Segments: segs}, true, nil
}

type readSeekNopCloser struct{ *bytes.Reader }

func (readSeekNopCloser) Close() error { return nil }

func (f calls) OpenTrack(id, track string) (io.ReadSeekCloser, bool, error) {
	if id != f.rec.CallID || track != "inbound" {
		return nil, false, nil
	}
	return readSeekNopCloser{bytes.NewReader(f.wav)}, true, nil
}

// TestRemoteReads: another replica's record, transcript and recording,
// the latter byte-exact at any offset across chunks; an unknown call is
// not found, a replica nobody answers for is unreachable.
func TestRemoteReads(t *testing.T) {
	srv := clustertest.Start(t)
	a, _ := start(t, srv.URL(), "a", Config{})
	b, _ := start(t, srv.URL(), "b", Config{})
	wav := make([]byte, 2*RPCChunk+1234)
	for i := range wav {
		wav[i] = byte(i * 7)
	}
	a.ServeCalls(calls{rec: record("CA1", bridge.StatusActive, time.Now().UTC()), wav: wav})

	rec, ok, err := b.RemoteRecord("a", "CA1")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "CA1", rec.CallID)
	tr, ok, err := b.RemoteTranscript("a", "CA1")
	require.NoError(t, err)
	require.True(t, ok)
	require.Len(t, tr.Segments, 5000, "a transcript over several chunks")
	require.Equal(t, "inbound-4999", tr.Segments[4999].SegmentID)

	r, ok, err := b.RemoteTrack("a", "CA1", "inbound")
	require.NoError(t, err)
	require.True(t, ok)
	size, err := r.Seek(0, io.SeekEnd)
	require.NoError(t, err)
	require.EqualValues(t, len(wav), size)
	_, err = r.Seek(0, io.SeekStart)
	require.NoError(t, err)
	got, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Equal(t, wav, got)
	_, err = r.Seek(RPCChunk-10, io.SeekStart)
	require.NoError(t, err)
	part := make([]byte, 20)
	_, err = io.ReadFull(r, part)
	require.NoError(t, err)
	require.Equal(t, wav[RPCChunk-10:RPCChunk+10], part, "a read across a chunk's end")
	require.NoError(t, r.Close())

	_, ok, err = b.RemoteRecord("a", "CA2")
	require.NoError(t, err)
	require.False(t, ok)
	_, ok, err = b.RemoteTrack("a", "CA1", "outbound")
	require.NoError(t, err)
	require.False(t, ok)
	_, _, err = b.RemoteRecord("gone", "CA1")
	require.True(t, errors.Is(err, ErrUnreachable), "%v", err)
	require.Equal(t, 1.0, testutil.ToFloat64(b.m.rpcRequests.WithLabelValues("unreachable")))
	require.Positive(t, testutil.ToFloat64(a.m.rpcServed.WithLabelValues(statusOK)))
}

// TestOwnUnknownCallsInterrupted: a record of this replica that its calls
// do not know (a previous run's, its folder lost) is marked interrupted;
// one it holds stays active.
func TestOwnUnknownCallsInterrupted(t *testing.T) {
	srv := clustertest.Start(t)
	cfg := Config{NodeTimeout: 600 * time.Millisecond}
	a, _ := start(t, srv.URL(), "a", cfg)
	now := time.Now().UTC()
	a.ServeCalls(calls{rec: record("CAheld", bridge.StatusActive, now)})
	a.PutRecord(record("CAheld", bridge.StatusActive, now))
	a.PutRecord(record("CAold", bridge.StatusActive, now.Add(-time.Hour)))
	require.Eventually(t, func() bool {
		e, _ := a.Lookup("CAold")
		return e.Record.Status == bridge.StatusInterrupted && e.Record.Reason == bridge.ReasonNodeLost
	}, 10*time.Second, 10*time.Millisecond)
	e, _ := a.Lookup("CAheld")
	require.Equal(t, bridge.StatusActive, e.Record.Status)
}

// TestIndexAfterNATSRestart: records put while NATS is down are put once
// it is back, and the other replica's watch goes on.
func TestIndexAfterNATSRestart(t *testing.T) {
	srv := clustertest.Start(t)
	a, _ := start(t, srv.URL(), "a", Config{})
	b, _ := start(t, srv.URL(), "b", Config{})
	now := time.Now().UTC()
	a.PutRecord(record("CAbefore", bridge.StatusActive, now))
	require.Eventually(t, func() bool { _, ok := b.Lookup("CAbefore"); return ok }, 10*time.Second, 10*time.Millisecond)
	srv.Stop()
	require.Eventually(t, func() bool { return !a.Connected() }, 10*time.Second, 10*time.Millisecond)
	a.PutRecord(record("CAduring", bridge.StatusActive, now))
	srv.Restart()
	require.Eventually(t, func() bool {
		_, ok := b.Lookup("CAduring")
		return ok
	}, 60*time.Second, 20*time.Millisecond, "the record put while NATS was down reaches the other replica")
	a.PutRecord(record("CAafter", bridge.StatusEnded, now))
	require.Eventually(t, func() bool { _, ok := b.Lookup("CAafter"); return ok }, 30*time.Second, 20*time.Millisecond)
}
