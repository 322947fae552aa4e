package webhook_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/webhook"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// secret is 32 bytes of key in the whsec_ form.
const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw/oHn45DDLyo="

// receiver is a user's endpoint: it checks every delivery as a user
// would, answers what fail says, and keeps what it accepted, deduplicated
// by webhook-id.
type receiver struct {
	t    *testing.T
	srv  *httptest.Server
	fail func(id string, attempt int) int // status to answer; 0: hang until the client gives up

	mu       sync.Mutex
	attempts map[string]int
	accepted map[string]int      // id → times accepted (duplicates counted)
	order    map[string][]uint64 // call → seq of first acceptances
	bodies   map[string][]byte
	bad      int
}

func newReceiver(t *testing.T, fail func(id string, attempt int) int) *receiver {
	r := &receiver{t: t, fail: fail, attempts: map[string]int{}, accepted: map[string]int{}, order: map[string][]uint64{}, bodies: map[string][]byte{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if err := verifyWebhook(secret, req.Header, body, time.Now()); err != nil {
		r.mu.Lock()
		r.bad++
		r.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	r.attempts[id]++
	n := r.attempts[id]
	r.mu.Unlock()
	status := http.StatusNoContent
	if r.fail != nil {
		status = r.fail(id, n)
	}
	if status == 0 {
		<-req.Context().Done()
		return
	}
	if status/100 == 2 {
		var ev struct {
			CallID string `json:"call_id"`
			Seq    uint64 `json:"seq"`
		}
		require.NoError(r.t, json.Unmarshal(body, &ev))
		r.mu.Lock()
		if r.accepted[id] == 0 { // a duplicate is acknowledged, not processed again
			r.order[ev.CallID] = append(r.order[ev.CallID], ev.Seq)
			r.bodies[id] = body
		}
		r.accepted[id]++
		r.mu.Unlock()
	}
	w.WriteHeader(status)
}

func (r *receiver) acceptedIDs() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.accepted)
}

func (r *receiver) seqs(call string) []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.order[call])
}

// run starts a publisher on urls until the test ends (or stop).
func run(t *testing.T, cfg webhook.Config, reg prometheus.Registerer, failed webhook.Failed) (*bridge.Sequencer, *webhook.Publisher, func()) {
	t.Helper()
	if cfg.Secret == "" {
		cfg.Secret = secret
	}
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	cfg.Backoff = cmpOr(cfg.Backoff, 20*time.Millisecond)
	cfg.MaxBackoff = cmpOr(cfg.MaxBackoff, 100*time.Millisecond)
	p, err := webhook.New(cfg, webhook.NewMetrics(reg), failed, zerolog.Nop())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return bridge.NewSequencer(p, 0, nil, zerolog.Nop()), p, stop
}

func cmpOr(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

// call publishes a call's events: call.started, n finals, call.ended.
func call(seq *bridge.Sequencer, id string, n int) {
	seq.Publish(bridge.Event{Type: bridge.TypeCallStarted, CallID: id, Body: bridge.CallStartedBody{Provider: "twilio", Tracks: []string{"inbound"}}})
	for i := range n {
		seq.Publish(bridge.Event{Type: bridge.TypeTranscriptPartial, CallID: id, Body: bridge.PartialBody{Track: "inbound", SegmentID: "s" + strconv.Itoa(i), Text: "par"}})
		seq.Publish(bridge.Event{Type: bridge.TypeTranscriptFinal, CallID: id, Body: bridge.Segment{Track: "inbound", SegmentID: "s" + strconv.Itoa(i), Text: "final " + strconv.Itoa(i)}})
	}
	seq.Publish(bridge.Event{Type: bridge.TypeCallEnded, CallID: id, Body: bridge.CallEndedBody{Reason: bridge.ReasonStop}})
}

// wantSeqs are the seqs of call's delivered events by default (partials
// are not): 1, 3, 5 … 2n+1, 2n+2.
func wantSeqs(n int) []uint64 {
	var out []uint64
	for i := 0; i <= n; i++ {
		out = append(out, uint64(2*i+1))
	}
	return append(out, uint64(2*n+2))
}

func TestRetriedUntilAcceptedOnceEachInOrder(t *testing.T) {
	// Every event is refused twice (500, then a redirect that must not be
	// followed), then accepted.
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { t.Error("a redirect was followed") }))
	defer elsewhere.Close()
	rcv := newReceiver(t, func(_ string, n int) int {
		switch n {
		case 1:
			return http.StatusInternalServerError
		case 2:
			return http.StatusTemporaryRedirect
		}
		return http.StatusOK
	})
	reg := prometheus.NewRegistry()
	seq, _, _ := run(t, webhook.Config{URLs: []string{rcv.srv.URL + "/hook?token=x"}}, reg, nil)
	for _, id := range []string{"CA1", "CA2"} {
		call(seq, id, 5)
	}
	require.Eventually(t, func() bool { return rcv.acceptedIDs() == 14 }, 20*time.Second, 10*time.Millisecond)
	require.Equal(t, wantSeqs(5), rcv.seqs("CA1"))
	require.Equal(t, wantSeqs(5), rcv.seqs("CA2"))
	rcv.mu.Lock()
	for id, n := range rcv.attempts {
		require.Equal(t, 3, n, "attempts of %s", id)
		require.Equal(t, 1, rcv.accepted[id])
	}
	require.Zero(t, rcv.bad, "every delivery verifies")
	rcv.mu.Unlock()
	label := rcv.srv.URL + "/hook"
	// The receiver counts an event when it answers; the bridge when it has
	// read the answer, a moment later.
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(mustVec(t, reg, "bridge_webhook_delivered_total", label)) == 14
	}, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, 28.0, testutil.ToFloat64(mustVec(t, reg, "bridge_webhook_retries_total", label)))
	require.Eventually(t, func() bool { return testutil.ToFloat64(mustVec(t, reg, "bridge_webhook_pending", label)) == 0 }, 5*time.Second, 10*time.Millisecond)
}

// mustVec finds the series of name for endpoint label in reg.
func mustVec(t *testing.T, reg *prometheus.Registry, name, label string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "endpoint" && l.GetValue() == label {
					v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
					g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
					g.Set(v)
					return g
				}
			}
		}
	}
	t.Fatalf("no %s{endpoint=%q}", name, label)
	return nil
}

func TestTimeoutRetriedWithTheSameIDAndBody(t *testing.T) {
	rcv := newReceiver(t, func(_ string, n int) int {
		if n == 1 {
			return 0 // hang
		}
		return http.StatusOK
	})
	seq, _, _ := run(t, webhook.Config{URLs: []string{rcv.srv.URL}, Timeout: 200 * time.Millisecond}, nil, nil)
	call(seq, "CAt", 1)
	require.Eventually(t, func() bool { return rcv.acceptedIDs() == 3 }, 20*time.Second, 10*time.Millisecond)
	require.Equal(t, wantSeqs(1), rcv.seqs("CAt"))
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for id, n := range rcv.attempts {
		require.Equal(t, 2, n, id)
	}
}

func TestGoneStopsTheCall(t *testing.T) {
	var goneID sync.Map
	rcv := newReceiver(t, nil)
	rcv.fail = func(id string, _ int) int {
		if _, ok := goneID.Load(id); ok {
			return http.StatusGone
		}
		return http.StatusOK
	}
	// The receiver answers 410 to the first final of CAgone.
	rcv.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var ev struct {
			CallID string `json:"call_id"`
			Seq    uint64 `json:"seq"`
		}
		_ = json.Unmarshal(body, &ev)
		if ev.CallID == "CAgone" && ev.Seq == 3 {
			goneID.Store(req.Header.Get("webhook-id"), true)
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		rcv.serve(w, req)
	})
	seq, _, _ := run(t, webhook.Config{URLs: []string{rcv.srv.URL}}, nil, nil)
	call(seq, "CAgone", 3)
	call(seq, "CAok", 3)
	require.Eventually(t, func() bool { return len(rcv.seqs("CAok")) == 5 }, 20*time.Second, 10*time.Millisecond)
	require.Equal(t, wantSeqs(3), rcv.seqs("CAok"))
	require.Equal(t, []uint64{1}, rcv.seqs("CAgone"), "nothing after the 410")
}

func TestGivenUpIsReported(t *testing.T) {
	rcv := newReceiver(t, func(string, int) int { return http.StatusServiceUnavailable })
	var mu sync.Mutex
	var failures []bridge.WebhookFailure
	seq, _, _ := run(t, webhook.Config{URLs: []string{rcv.srv.URL + "/x?k=secret"}, Attempts: 3}, nil, func(call string, f bridge.WebhookFailure) {
		require.Equal(t, "CAf", call)
		mu.Lock()
		failures = append(failures, f)
		mu.Unlock()
	})
	call(seq, "CAf", 0)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(failures) == 2 }, 20*time.Second, 10*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, bridge.TypeCallStarted, failures[0].Type)
	require.Equal(t, bridge.TypeCallEnded, failures[1].Type)
	for _, f := range failures {
		require.Equal(t, 3, f.Attempts)
		require.Equal(t, "HTTP 503", f.Error)
		require.Equal(t, rcv.srv.URL+"/x", f.URL, "no query in the record")
	}
}

func TestOutboxSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	// The endpoint is down: nothing listens on its port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	url := "http://" + addr + "/hook"

	seq, _, stop := run(t, webhook.Config{URLs: []string{url}, Dir: dir, Backoff: time.Hour}, nil, nil)
	call(seq, "CAr", 2)
	require.Eventually(t, func() bool { return outboxFiles(t, dir) == 4 }, 10*time.Second, 10*time.Millisecond)
	stop()
	require.Equal(t, 4, outboxFiles(t, dir), "the pending deliveries stay on disk")

	// The endpoint comes up on that address; a new run delivers.
	rcv := newReceiver(t, nil)
	rcv.srv.Close()
	ln, err = net.Listen("tcp", addr)
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(rcv.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	run(t, webhook.Config{URLs: []string{url}, Dir: dir}, nil, nil)
	require.Eventually(t, func() bool { return rcv.acceptedIDs() == 4 }, 20*time.Second, 10*time.Millisecond)
	require.Equal(t, wantSeqs(2), rcv.seqs("CAr"))
	require.Eventually(t, func() bool { return outboxFiles(t, dir) == 0 }, 10*time.Second, 10*time.Millisecond)
}

func outboxFiles(t *testing.T, dir string) int {
	n := 0
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(p) == ".json" {
			n++
		}
		return err
	}))
	return n
}

func TestHangingEndpointHoldsUpNoOther(t *testing.T) {
	hung := newReceiver(t, func(string, int) int { return 0 })
	ok := newReceiver(t, nil)
	seq, _, stop := run(t, webhook.Config{URLs: []string{hung.srv.URL, ok.srv.URL}, Timeout: time.Minute}, nil, nil)
	for i := range 20 {
		call(seq, "CAh"+strconv.Itoa(i), 3)
	}
	require.Eventually(t, func() bool { return ok.acceptedIDs() == 20*5 }, 20*time.Second, 10*time.Millisecond)
	require.Zero(t, hung.acceptedIDs())
	stop() // cuts the hung attempt off
}

func TestOutboxFull(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	defer down.Close()
	var mu sync.Mutex
	reasons := map[string]int{}
	seq, _, _ := run(t, webhook.Config{URLs: []string{down.URL}, OutboxBytes: 600, Backoff: time.Hour}, nil, func(_ string, f bridge.WebhookFailure) {
		mu.Lock()
		reasons[f.Error]++
		mu.Unlock()
	})
	call(seq, "CAfull", 5)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return reasons["outbox full"] > 0 }, 10*time.Second, 10*time.Millisecond)
}

// TestSecretForms: a short key (weak, but a receiver may have one) and
// unpadded base64 are accepted, and give the key the receiver has.
func TestSecretForms(t *testing.T) {
	for secret, want := range map[string]string{
		"whsec_YWJj":     "abc",
		"whsec_YWJjZA":   "abcd",
		"whsec_YWJjZA==": "abcd",
	} {
		key, err := webhook.ParseSecret(secret)
		require.NoError(t, err, secret)
		require.Equal(t, want, string(key), secret)
	}
}

func TestBadConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  webhook.Config
		want string
	}{
		{"no prefix", webhook.Config{URLs: []string{"http://127.0.0.1/"}, Secret: "abc", Dir: "d"}, "no whsec_ prefix"},
		{"not base64", webhook.Config{URLs: []string{"http://127.0.0.1/"}, Secret: "whsec_!!!", Dir: "d"}, "not standard base64"},
		{"empty key", webhook.Config{URLs: []string{"http://127.0.0.1/"}, Secret: "whsec_", Dir: "d"}, "the key is 0 bytes"},
		{"bad url", webhook.Config{URLs: []string{"ftp://x/"}, Secret: secret, Dir: t.TempDir()}, "absolute http"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := webhook.New(tc.cfg, nil, nil, zerolog.Nop())
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestSignMatchesAnIndependentVerifier(t *testing.T) {
	key, err := webhook.ParseSecret(secret)
	require.NoError(t, err)
	body := []byte(`{"type":"call.started","call_id":"CA1","seq":1}`)
	now := time.Now()
	h := http.Header{}
	h.Set("webhook-id", "msg_1")
	h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	h.Set("webhook-signature", "v1,bm90IGl0 "+webhook.Sign(key, "msg_1", now.Unix(), body))
	require.NoError(t, verifyWebhook(secret, h, body, now))
	require.Error(t, verifyWebhook(secret, h, append(body, ' '), now), "another body")
	require.Error(t, verifyWebhook(secret, h, body, now.Add(10*time.Minute)), "too old")
	h.Set("webhook-signature", webhook.Sign(key, "msg_2", now.Unix(), body))
	require.Error(t, verifyWebhook(secret, h, body, now), "another id")
}

// TestOutboxUnreadableFilesRemoved: a damaged outbox file (a disk error,
// a hand edit) is removed at start-up; the readable ones are delivered
// and later events numbered after them.
func TestOutboxUnreadableFilesRemoved(t *testing.T) {
	rcv := newReceiver(t, nil)
	dir := t.TempDir()
	sum := sha256.Sum256([]byte(rcv.srv.URL))
	box := filepath.Join(dir, hex.EncodeToString(sum[:8]))
	require.NoError(t, os.MkdirAll(box, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(box, "00000000000000000007.json"), []byte("{not json"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(box, ".00000000000000000008.json"), []byte("half"), 0o600))
	good := `{"id":"msg_kept","call_id":"CAold","seq":9,"type":"call.ended","queued_at":"2026-12-06T00:00:00Z","body":{"type":"call.ended","call_id":"CAold","seq":9}}`
	require.NoError(t, os.WriteFile(filepath.Join(box, "00000000000000000009.json"), []byte(good), 0o600))

	seq, _, _ := run(t, webhook.Config{URLs: []string{rcv.srv.URL}, Dir: dir}, nil, nil)
	call(seq, "CAnew", 1)
	require.Eventually(t, func() bool { return rcv.acceptedIDs() == 4 }, 20*time.Second, 10*time.Millisecond)
	require.Equal(t, []uint64{9}, rcv.seqs("CAold"))
	require.Equal(t, wantSeqs(1), rcv.seqs("CAnew"))
	rcv.mu.Lock()
	require.Equal(t, 1, rcv.accepted["msg_kept"], "the kept delivery keeps its id")
	rcv.mu.Unlock()
	require.Eventually(t, func() bool { return outboxFiles(t, dir) == 0 }, 10*time.Second, 10*time.Millisecond)
	entries, err := os.ReadDir(box)
	require.NoError(t, err)
	require.Empty(t, entries, "the damaged and half-written files are gone")
}

// TestAttemptsSurviveRestart: the attempts made before a restart count
// toward Config.Attempts after it; the outbox file records them.
func TestAttemptsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	rcv := newReceiver(t, func(string, int) int { return http.StatusServiceUnavailable })
	url := rcv.srv.URL + "/hook"
	cfg := webhook.Config{URLs: []string{url}, Dir: dir, Attempts: 3, Backoff: time.Hour, MaxBackoff: time.Hour}
	seq, _, stop := run(t, cfg, nil, nil)
	seq.Publish(bridge.Event{Type: bridge.TypeCallStarted, CallID: "CAa", Body: bridge.CallStartedBody{Provider: "twilio", Tracks: []string{"inbound"}}})
	recorded := func() bool {
		var found bool
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && filepath.Ext(p) == ".json" {
				b, _ := os.ReadFile(p)
				found = found || strings.Contains(string(b), `"attempts":1`)
			}
			return nil
		})
		return found
	}
	require.Eventually(t, recorded, 10*time.Second, 10*time.Millisecond, "the failed attempt is written to the outbox")
	stop() // waiting an hour for the second attempt
	rcv.mu.Lock()
	require.Len(t, rcv.attempts, 1)
	for _, n := range rcv.attempts {
		require.Equal(t, 1, n)
	}
	rcv.mu.Unlock()

	var mu sync.Mutex
	var failures []bridge.WebhookFailure
	cfg.Backoff, cfg.MaxBackoff = 20*time.Millisecond, 40*time.Millisecond
	run(t, cfg, nil, func(_ string, f bridge.WebhookFailure) {
		mu.Lock()
		failures = append(failures, f)
		mu.Unlock()
	})
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(failures) == 1 }, 20*time.Second, 10*time.Millisecond)
	mu.Lock()
	require.Equal(t, 3, failures[0].Attempts, "given up at the limit, counting the first run's attempt")
	mu.Unlock()
	require.Zero(t, outboxFiles(t, dir))
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, n := range rcv.attempts {
		require.Equal(t, 3, n, "three attempts in all over both runs")
	}
}
