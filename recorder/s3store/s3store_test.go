package s3store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/callcaptions/bridge/recorder"
	"github.com/callcaptions/bridge/recorder/s3store/s3test"
)

const waitFor = 20 * time.Second

// testCall is what the tests store of a call.
type testCall struct {
	CallID  string     `json:"call_id"`
	Status  string     `json:"status"`
	EndedAt *time.Time `json:"ended_at,omitempty"`
	Note    string     `json:"note,omitempty"`
}

// endedCall records a call as the bridge leaves it when it ends: two
// tracks, call.json and transcript.json. It returns the folder.
func endedCall(t *testing.T, spool *recorder.Store, id string, endedAt time.Time) string {
	t.Helper()
	c, err := spool.Open(id)
	require.NoError(t, err)
	for i, track := range []string{"inbound", "outbound"} {
		w, err := c.CreateTrack(track, 8000)
		require.NoError(t, err)
		pcm := make([]byte, 16000+i*320)
		for j := range pcm {
			pcm[j] = byte(j*7 + i)
		}
		_, err = w.Write(pcm)
		require.NoError(t, err)
		require.NoError(t, w.Close())
	}
	require.NoError(t, c.WriteJSON("transcript.json", map[string]any{"call_id": id, "segments": []any{}}))
	require.NoError(t, c.WriteJSON("call.json", testCall{CallID: id, Status: "ended", EndedAt: &endedAt}))
	return c.Dir()
}

// folderFiles reads the files of a call folder the store uploads.
func folderFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, name := range []string{"call.json", "transcript.json", "inbound.wav", "outbound.wav"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		out[name] = b
	}
	return out
}

type harness struct {
	srv    *s3test.Server
	bucket string
	spool  *recorder.Store
	store  *Store
	skew   atomic.Int64 // added to the store's clock
	stop   func()
}

// newHarness starts a server and a store over a fresh spool; cfg's zero
// fields get fast test values.
func newHarness(t *testing.T, srv *s3test.Server, bucket string, cfg Config) *harness {
	t.Helper()
	spool, err := recorder.NewStore(t.TempDir())
	require.NoError(t, err)
	return startStore(t, srv, bucket, spool, cfg)
}

func startStore(t *testing.T, srv *s3test.Server, bucket string, spool *recorder.Store, cfg Config) *harness {
	t.Helper()
	h := &harness{srv: srv, bucket: bucket, spool: spool}
	cfg.Bucket = bucket
	if cfg.ResumeWindow == 0 {
		cfg.ResumeWindow = -1
	}
	if cfg.SweepEvery == 0 {
		cfg.SweepEvery = time.Hour
	}
	cfg.BackoffInitial, cfg.BackoffMax = 50*time.Millisecond, 200*time.Millisecond
	cfg.ReadTimeout = 5 * time.Second
	cfg.Now = func() time.Time { return time.Now().Add(time.Duration(h.skew.Load())) }
	h.store = New(cfg, spool, srv.Client(ClientOptions(srv.Endpoint(), true)), nil, zerolog.New(zerolog.NewTestWriter(t)))
	return h
}

func (h *harness) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { h.store.Run(ctx) })
	h.stop = func() { cancel(); wg.Wait() }
	t.Cleanup(h.stop)
}

func (h *harness) uploads(result string) float64 {
	return testutil.ToFloat64(h.store.metrics.uploads.WithLabelValues(result))
}

func (h *harness) backlog() float64 { return testutil.ToFloat64(h.store.metrics.backlog) }

func (h *harness) requireObjects(t *testing.T, folder string, want map[string][]byte) {
	t.Helper()
	for name, b := range want {
		got, ok := h.srv.Object(h.bucket, "rec/calls/"+folder+"/"+name)
		require.True(t, ok, "%s missing", name)
		require.Equal(t, b, got, "%s differs from the local file", name)
	}
}

func TestUploadIsByteExact(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("calls")
	for _, tc := range []struct {
		name, id string
	}{
		{"safe id", "CA0123456789abcdef"},
		{"unsafe id", "../weird id/Ω?*"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, srv, bucket, Config{Prefix: "rec/", Keep: true})
			dir := endedCall(t, h.spool, tc.id, time.Now())
			folder := filepath.Base(dir)
			require.Equal(t, recorder.FolderName(tc.id), folder)
			want := folderFiles(t, dir)
			h.run(t)
			h.store.Upload(tc.id)
			require.Eventually(t, func() bool { return h.uploads(ResultOK) == 1 && h.backlog() == 0 }, waitFor, 20*time.Millisecond)
			h.requireObjects(t, folder, want)
			require.DirExists(t, dir, "Keep keeps the local copy")
			require.FileExists(t, filepath.Join(dir, markerName))
			require.ElementsMatch(t, []string{"call.json", "transcript.json", "inbound.wav", "outbound.wav"},
				trimmed(srv.Keys(bucket, "rec/calls/"+folder+"/"), "rec/calls/"+folder+"/"))
		})
	}
}

func trimmed(keys []string, prefix string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k[len(prefix):]
	}
	return out
}

func TestOutageKeepsTheSpoolThenUploads(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("calls")
	h := newHarness(t, srv, bucket, Config{Prefix: "rec/"})
	const id = "CAoutage"
	dir := endedCall(t, h.spool, id, time.Now())
	want := folderFiles(t, dir)
	h.run(t)

	srv.Stop()
	h.store.Upload(id)
	require.Eventually(t, func() bool { return h.uploads(ResultFailed) >= 2 }, waitFor, 20*time.Millisecond)
	require.Equal(t, 1.0, h.backlog())
	require.DirExists(t, dir, "the local copy stays while the store is down")

	srv.Restart()
	require.Eventually(t, func() bool { return h.uploads(ResultOK) == 1 && h.backlog() == 0 }, waitFor, 20*time.Millisecond)
	h.requireObjects(t, filepath.Base(dir), want)
	require.NoDirExists(t, dir, "the spool is cleaned after the upload")
	require.Equal(t, 1.0, testutil.ToFloat64(h.store.metrics.removed))
}

func TestStartUploadsWhatTheSpoolHolds(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("calls")
	spool, err := recorder.NewStore(t.TempDir())
	require.NoError(t, err)
	ended := endedCall(t, spool, "CAended", time.Now())
	want := folderFiles(t, ended)
	live, err := spool.Open("CAlive")
	require.NoError(t, err)
	require.NoError(t, live.WriteJSON("call.json", testCall{CallID: "CAlive", Status: "active"}))

	// Kept: uploaded once, and not again at the next start.
	h := startStore(t, srv, bucket, spool, Config{Prefix: "rec/", Keep: true})
	h.run(t)
	require.Eventually(t, func() bool { return h.uploads(ResultOK) == 1 && h.backlog() == 0 }, waitFor, 20*time.Millisecond)
	h.requireObjects(t, "CAended", want)
	_, ok := srv.Object(bucket, "rec/calls/CAlive/call.json")
	require.False(t, ok, "a call still active is not uploaded")
	h.stop()

	h2 := startStore(t, srv, bucket, spool, Config{Prefix: "rec/", Keep: true})
	h2.store.Sweep()
	require.Zero(t, h2.store.queue.len(), "an uploaded call that did not change is not uploaded again")

	// A change after the upload (a status callback written into
	// call.json) is uploaded by the next sweep.
	c, err := spool.Open("CAended")
	require.NoError(t, err)
	end := time.Now()
	require.NoError(t, c.WriteJSON("call.json", testCall{CallID: "CAended", Status: "ended", EndedAt: &end, Note: "callback"}))
	h2.run(t)
	h2.store.Sweep()
	require.Eventually(t, func() bool { return h2.uploads(ResultOK) == 1 && h2.backlog() == 0 }, waitFor, 20*time.Millisecond)
	b, _ := srv.Object(bucket, "rec/calls/CAended/call.json")
	var got testCall
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, "callback", got.Note)
}

func TestResumeWindowKeepsTheCopy(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("calls")
	h := newHarness(t, srv, bucket, Config{ResumeWindow: 10 * time.Minute})
	dir := endedCall(t, h.spool, "CAresume", time.Now())
	h.run(t)
	h.store.Upload("CAresume")
	require.Eventually(t, func() bool { return h.uploads(ResultOK) == 1 && h.backlog() == 0 }, waitFor, 20*time.Millisecond)
	require.DirExists(t, dir, "the call may still be continued")

	h.skew.Store(int64(10*time.Minute + deleteMargin))
	h.store.Sweep()
	require.Eventually(t, func() bool { _, err := os.Stat(dir); return errors.Is(err, fs.ErrNotExist) }, waitFor, 20*time.Millisecond)
	require.Equal(t, 1.0, h.uploads(ResultOK), "removing is not uploading again")
}

func TestQueueFullDropsAndTheSweepCatchesUp(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("calls")
	h := newHarness(t, srv, bucket, Config{QueueSize: 1})
	endedCall(t, h.spool, "CAone", time.Now())
	endedCall(t, h.spool, "CAtwo", time.Now())
	h.store.Upload("CAone")
	h.store.Upload("CAtwo")
	require.Equal(t, 1.0, h.uploads(ResultDropped))
	require.Equal(t, 1.0, h.backlog())
	h.run(t) // its first sweep finds CAtwo once CAone is done
	require.Eventually(t, func() bool {
		return len(srv.Keys(bucket, "calls/CAtwo/")) == 4 || h.store.queue.len() == 0 && sweep(h)
	}, waitFor, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		_, err1 := os.Stat(h.spool.Dir("CAone"))
		_, err2 := os.Stat(h.spool.Dir("CAtwo"))
		return errors.Is(err1, fs.ErrNotExist) && errors.Is(err2, fs.ErrNotExist)
	}, waitFor, 20*time.Millisecond)
	require.Len(t, srv.Keys(bucket, "calls/CAtwo/"), 4)
}

// sweep sweeps and reports false, for polling loops that sweep until
// something happens.
func sweep(h *harness) bool { h.store.Sweep(); return false }

func TestReadsFallBackToTheBucket(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("calls")
	h := newHarness(t, srv, bucket, Config{Prefix: "p/"})
	ids := []string{"CAgone", "a call/with ../slashes"}
	want := map[string]map[string][]byte{}
	for _, id := range ids {
		dir := endedCall(t, h.spool, id, time.Now())
		want[id] = folderFiles(t, dir)
	}
	h.run(t)
	for _, id := range ids {
		h.store.Upload(id)
	}
	require.Eventually(t, func() bool { return h.uploads(ResultOK) == 2 && h.backlog() == 0 }, waitFor, 20*time.Millisecond)
	h.stop()
	for _, id := range ids {
		require.NoDirExists(t, h.spool.Dir(id))
	}

	// A new start over an empty spool: the bucket's calls are listed and
	// read from it.
	h2 := newHarness(t, srv, bucket, Config{Prefix: "p/"})
	var listed []string
	require.NoError(t, h2.store.Scan(func(b []byte, repair func() (map[string]int64, error)) {
		var c testCall
		require.NoError(t, json.Unmarshal(b, &c))
		listed = append(listed, c.CallID)
		samples, err := repair()
		require.NoError(t, err)
		require.Empty(t, samples)
	}))
	require.ElementsMatch(t, ids, listed)

	for _, id := range ids {
		t.Run(id, func(t *testing.T) {
			var c testCall
			require.NoError(t, h2.store.ReadJSON(id, "call.json", &c))
			require.Equal(t, id, c.CallID)
			var tr map[string]any
			require.NoError(t, h2.store.ReadJSON(id, "transcript.json", &tr))
			require.Equal(t, id, tr["call_id"])

			wav := want[id]["outbound.wav"]
			r, err := h2.store.OpenTrack(id, "outbound")
			require.NoError(t, err)
			defer r.Close()
			size, err := r.Seek(0, io.SeekEnd)
			require.NoError(t, err)
			require.Equal(t, int64(len(wav)), size)
			for _, rng := range [][2]int64{{0, 44}, {1000, 1500}, {size - 10, size}, {44, size}, {100, 101}} {
				_, err := r.Seek(rng[0], io.SeekStart)
				require.NoError(t, err)
				got := make([]byte, rng[1]-rng[0])
				_, err = io.ReadFull(r, got)
				require.NoError(t, err)
				require.Equal(t, wav[rng[0]:rng[1]], got, "bytes %d-%d", rng[0], rng[1])
			}
			_, err = r.Seek(0, io.SeekEnd)
			require.NoError(t, err)
			n, err := r.Read(make([]byte, 10))
			require.Zero(t, n)
			require.ErrorIs(t, err, io.EOF)

			_, err = h2.store.OpenTrack(id, "nosuchtrack")
			require.ErrorIs(t, err, fs.ErrNotExist)
			require.ErrorIs(t, h2.store.ReadJSON(id, "nosuch.json", &c), fs.ErrNotExist)
		})
	}
	require.ErrorIs(t, h2.store.ReadJSON("CAnever", "call.json", new(testCall)), fs.ErrNotExist)
	_, err := h2.store.OpenTrack("CAnever", "inbound")
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func TestBackoffGrowsWithJitter(t *testing.T) {
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 10: 30 * time.Second} {
		for range 50 {
			d := backoff(n, time.Second, 30*time.Second)
			require.True(t, d >= want/2 && d <= want, "attempt %d: %s not within [%s, %s]", n, d, want/2, want)
		}
	}
}

func TestQueueCoalescesAndRetries(t *testing.T) {
	length := prometheus.NewGauge(prometheus.GaugeOpts{Name: "length"})
	q := newQueue(2, length)
	now := time.Now()
	require.True(t, q.add("a", now))
	require.True(t, q.add("a", now), "queued already: not twice")
	require.Equal(t, 1, q.len())
	require.Equal(t, 1.0, testutil.ToFloat64(length))
	f, _ := q.next(now)
	require.Equal(t, "a", f)
	require.True(t, q.add("a", now), "asked for again while busy")
	q.done("a", false, now, time.Second, time.Second)
	f, _ = q.next(now)
	require.Equal(t, "a", f, "runs once more")
	q.done("a", true, now, time.Second, time.Second)
	f, wait := q.next(now)
	require.Empty(t, f)
	require.True(t, wait > 0 && wait <= time.Second)
	require.True(t, q.add("b", now))
	require.False(t, q.add("c", now), "full")
	require.Equal(t, 2.0, testutil.ToFloat64(length), "a retrying call is counted")
	keys := []string{}
	for k := range q.items {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	require.Equal(t, []string{"a", "b"}, keys)
}

// The backlog gauge is the queue's length as it is once callers are done,
// however their adds and dones interleave: it is set under the queue's
// lock, never from a length another goroutine has since changed.
func TestQueueLengthGaugeSettles(t *testing.T) {
	length := prometheus.NewGauge(prometheus.GaugeOpts{Name: "length"})
	q := newQueue(10_000, length)
	now := time.Now()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 500 {
				q.add(fmt.Sprintf("%d-%d", w, i), now)
			}
		})
		wg.Go(func() {
			for done := 0; done < 500; {
				if f, _ := q.next(now); f != "" {
					q.done(f, false, now, time.Second, time.Second)
					done++
				}
			}
		})
	}
	wg.Wait()
	require.Zero(t, q.len())
	require.Zero(t, testutil.ToFloat64(length))
}

func TestStopUploadsWhatIsQueued(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("calls")
	h := newHarness(t, srv, bucket, Config{})
	dirs := []string{endedCall(t, h.spool, "CAlast1", time.Now()), endedCall(t, h.spool, "CAlast2", time.Now())}
	running := goleak.IgnoreCurrent()
	h.run(t)
	h.store.Upload("CAlast1")
	h.store.Upload("CAlast2")
	h.stop()
	// Run's goroutines are gone; the client's idle connections stay.
	goleak.VerifyNone(t, running, goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"))
	for _, dir := range dirs {
		require.NoDirExists(t, dir)
		require.Len(t, srv.Keys(bucket, "calls/"+filepath.Base(dir)+"/"), 4)
	}
}

func TestStopGivesUpOnAnUnreachableStore(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("calls")
	h := newHarness(t, srv, bucket, Config{FlushTimeout: 500 * time.Millisecond})
	dir := endedCall(t, h.spool, "CAstuck", time.Now())
	srv.Stop()
	h.run(t)
	h.store.Upload("CAstuck")
	start := time.Now()
	h.stop()
	require.Less(t, time.Since(start), 10*time.Second)
	require.DirExists(t, dir, "left for the next start")
}

func TestScanListsEveryCallOfTheBucketInOrder(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("calls")
	client := srv.Client(ClientOptions(srv.Endpoint(), true))
	var want []string
	for i := range 40 {
		id := fmt.Sprintf("CA%03d", i)
		want = append(want, id)
		b, err := json.Marshal(testCall{CallID: id, Status: "ended"})
		require.NoError(t, err)
		key := "calls/" + id + "/call.json"
		_, err = client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(b)})
		require.NoError(t, err)
	}
	// A folder whose upload stopped before its call.json is not a call.
	key := "calls/CAhalf/inbound.wav"
	_, err := client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader([]byte("RIFF"))})
	require.NoError(t, err)

	h := newHarness(t, srv, bucket, Config{})
	endedCall(t, h.spool, "CA005", time.Now()) // the spool's copy is the one listed
	var got []string
	require.NoError(t, h.store.Scan(func(b []byte, _ func() (map[string]int64, error)) {
		var c testCall
		require.NoError(t, json.Unmarshal(b, &c))
		got = append(got, c.CallID)
	}))
	require.Equal(t, append([]string{"CA005"}, slices.Delete(slices.Clone(want), 5, 6)...), got)
}

// callPart records one part of a call as a replica leaves it: the part
// that started at started, its audio made of seed, so that two parts'
// files differ. It returns the folder.
func callPart(t *testing.T, spool *recorder.Store, id string, started time.Time, seed byte, note string, tracks ...string) string {
	t.Helper()
	c, err := spool.Open(id)
	require.NoError(t, err)
	for i, track := range tracks {
		w, err := c.CreateTrack(track, 8000)
		require.NoError(t, err)
		pcm := make([]byte, 16000+int(seed)*640+i*320)
		for j := range pcm {
			pcm[j] = byte(j*int(seed) + i)
		}
		_, err = w.Write(pcm)
		require.NoError(t, err)
		require.NoError(t, w.Close())
	}
	require.NoError(t, c.WriteJSON("transcript.json", map[string]any{"call_id": id, "note": note}))
	ended := started.Add(time.Minute)
	require.NoError(t, c.WriteJSON("call.json", map[string]any{
		"call_id": id, "status": "ended", "started_at": started, "ended_at": ended, "note": note}))
	return c.Dir()
}

// filesOf reads the named files of a call folder.
func filesOf(t *testing.T, dir string, names []string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		out[name] = b
	}
	return out
}

// TestPartsOfACallAreBothKept: a call continued on another replica (a
// takeover) is uploaded by both replicas to the same call folder; in
// either order, the later part is in the call's folder (and nothing of the
// earlier one, which had a track more) and the earlier one under
// parts/<its started_at>/, byte-exact, and a sweep of either spool
// afterwards (or a restart's) uploads nothing more. A later change of the
// earlier part goes to its parts/ folder.
func TestPartsOfACallAreBothKept(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("calls")
	for _, tc := range []struct {
		name, id     string
		earlierFirst bool
	}{
		{"earlier part first", "CAtakeover1", true},
		{"later part first", "CAtakeover2", false},
		{"unsafe id, earlier part first", "../weird id/Ω?* 1", true},
		{"unsafe id, later part first", "../weird id/Ω?* 2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			started := time.Date(2026, 12, 2, 15, 4, 5, 123_000_000, time.UTC)
			lost := newHarness(t, srv, bucket, Config{Prefix: "rec/", Keep: true})
			owner := newHarness(t, srv, bucket, Config{Prefix: "rec/", Keep: true})
			earlierDir := callPart(t, lost.spool, tc.id, started, 3, "earlier", "inbound", "outbound")
			laterDir := callPart(t, owner.spool, tc.id, started.Add(40*time.Second), 5, "later", "outbound")
			folder := recorder.FolderName(tc.id)
			earlierNames := []string{"call.json", "transcript.json", "inbound.wav", "outbound.wav"}
			laterNames := []string{"call.json", "transcript.json", "outbound.wav"}
			earlier, later := filesOf(t, earlierDir, earlierNames), filesOf(t, laterDir, laterNames)
			first, second := lost, owner
			if !tc.earlierFirst {
				first, second = owner, lost
			}
			for _, h := range []*harness{first, second} {
				h.run(t)
				h.store.Upload(tc.id)
				require.Eventually(t, func() bool { return h.uploads(ResultOK) == 1 && h.backlog() == 0 }, waitFor, 20*time.Millisecond)
			}
			parts := "parts/20261202T150405.123Z"
			lost.requireObjects(t, folder, later)
			lost.requireObjects(t, folder+"/"+parts, earlier)
			want := slices.Clone(laterNames)
			for _, n := range earlierNames {
				want = append(want, parts+"/"+n)
			}
			prefix := "rec/calls/" + folder + "/"
			require.ElementsMatch(t, want, trimmed(srv.Keys(bucket, prefix), prefix))

			for _, h := range []*harness{lost, owner} {
				h.store.Sweep()
				require.Zero(t, h.store.queue.len(), "an uploaded part is not uploaded again")
				again := startStore(t, srv, bucket, h.spool, Config{Prefix: "rec/", Keep: true})
				again.store.Sweep()
				require.Zero(t, again.store.queue.len(), "nor at the next start")
			}

			// A status callback written into the earlier part's call.json
			// after both uploads: its parts/ folder gets it.
			c, err := lost.spool.Open(tc.id)
			require.NoError(t, err)
			require.NoError(t, c.WriteJSON("call.json", map[string]any{
				"call_id": tc.id, "status": "ended", "started_at": started, "note": "callback"}))
			lost.store.Sweep()
			require.Eventually(t, func() bool { return lost.uploads(ResultOK) == 2 && lost.backlog() == 0 }, waitFor, 20*time.Millisecond)
			earlier["call.json"], err = os.ReadFile(filepath.Join(earlierDir, "call.json"))
			require.NoError(t, err)
			lost.requireObjects(t, folder+"/"+parts, earlier)
			lost.requireObjects(t, folder, later)
			require.ElementsMatch(t, want, trimmed(srv.Keys(bucket, prefix), prefix))
		})
	}
}

// TestPartKeptOnceWhenTheUploadIsCut: the later part's upload copied the
// earlier part to parts/ and had sent one file to the call's folder when
// it was cut; the retry does not copy again (the call's folder then holds
// a file of each part), and both parts end whole.
func TestPartKeptOnceWhenTheUploadIsCut(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("calls")
	const id = "CAcut"
	started := time.Date(2026, 12, 2, 15, 4, 5, 0, time.UTC)
	lost := newHarness(t, srv, bucket, Config{Prefix: "rec/", Keep: true})
	owner := newHarness(t, srv, bucket, Config{Prefix: "rec/", Keep: true})
	names := []string{"call.json", "transcript.json", "inbound.wav", "outbound.wav"}
	earlierDir := callPart(t, lost.spool, id, started, 3, "earlier", "inbound", "outbound")
	laterDir := callPart(t, owner.spool, id, started.Add(time.Minute), 5, "later", "inbound", "outbound")
	earlier, later := filesOf(t, earlierDir, names), filesOf(t, laterDir, names)
	folder := recorder.FolderName(id)
	ctx := t.Context()
	require.NoError(t, lost.store.sync(ctx, folder))

	require.NoError(t, owner.store.keepPart(ctx, folder, started))
	_, err := owner.store.put(ctx, owner.store.key(folder, "inbound.wav"), filepath.Join(laterDir, "inbound.wav"))
	require.NoError(t, err)
	require.NoError(t, owner.store.sync(ctx, folder))

	parts := "parts/20261202T150405.000Z"
	owner.requireObjects(t, folder, later)
	owner.requireObjects(t, folder+"/"+parts, earlier)
	owner.store.Sweep()
	require.Zero(t, owner.store.queue.len())
}
