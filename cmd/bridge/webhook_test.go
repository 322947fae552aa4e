package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/cluster/clustertest"
	"github.com/callcaptions/bridge/bridge/webhook"
	"github.com/callcaptions/bridge/config"
	"github.com/callcaptions/bridge/recorder"
	"github.com/callcaptions/bridge/recorder/s3store/s3test"
)

const hookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw/oHn45DDLyo="

// hookReceiver is a user's endpoint: it verifies each delivery on its own
// (secret, timestamp tolerance, any of the v1 signatures), refuses the
// first attempt of every id when refuseFirst is set, and keeps each id's
// first accepted body (a duplicate is acknowledged and ignored).
type hookReceiver struct {
	refuseFirst bool
	status      int // when not 0, every answer

	mu       sync.Mutex
	attempts map[string]int
	accepted map[string]int
	events   []map[string]any // first acceptances, in arrival order
	raw      map[uint64][]byte
	bad      int
}

func newHookReceiver() *hookReceiver {
	return &hookReceiver{attempts: map[string]int{}, accepted: map[string]int{}, raw: map[uint64][]byte{}}
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if !hookValid(r.Header, body) {
		h.mu.Lock()
		h.bad++
		h.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	id := r.Header.Get("webhook-id")
	h.mu.Lock()
	defer h.mu.Unlock()
	h.attempts[id]++
	switch {
	case h.status != 0:
		w.WriteHeader(h.status)
		return
	case h.refuseFirst && h.attempts[id] == 1:
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if h.accepted[id] == 0 {
		var ev map[string]any
		if json.Unmarshal(body, &ev) == nil {
			h.events = append(h.events, ev)
			h.raw[uint64(ev["seq"].(float64))] = body
		}
	}
	h.accepted[id]++
	w.WriteHeader(http.StatusOK)
}

// hookValid is the receiver's own Standard Webhooks check.
func hookValid(hdr http.Header, body []byte) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(hookSecret, "whsec_"))
	if err != nil {
		return false
	}
	ts, err := strconv.ParseInt(hdr.Get("webhook-timestamp"), 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > 5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(hdr.Get("webhook-id") + "." + hdr.Get("webhook-timestamp") + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(hdr.Get("webhook-signature")) {
		v, ok := strings.CutPrefix(s, "v1,")
		got, err := base64.StdEncoding.DecodeString(v)
		if ok && err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

// types are the types of the accepted events of call, in arrival order,
// and whether their seqs increase.
func (h *hookReceiver) types(call string) ([]string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	last, inOrder := 0.0, true
	for _, ev := range h.events {
		if ev["call_id"] != call {
			continue
		}
		out = append(out, ev["type"].(string))
		inOrder = inOrder && ev["seq"].(float64) > last
		last = ev["seq"].(float64)
	}
	return out, inOrder
}

// serveHooks serves h on 127.0.0.1 (addr "" : a random port).
func serveHooks(t *testing.T, h http.Handler, addr string) string {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/hooks"
}

// TestWebhooksEndToEnd: a call played over a real media socket reaches a
// receiver that refuses every first attempt, verified, once per id, in seq
// order, with the caption socket's bytes; an endpoint that never answers
// and one that always fails hold up neither the captions nor the other
// endpoint, and the failing one's give-ups are listed in the call record.
func TestWebhooksEndToEnd(t *testing.T) {
	good := newHookReceiver()
	good.refuseFirst = true
	failing := newHookReceiver()
	failing.status = http.StatusInternalServerError
	hang := make(chan struct{})
	defer close(hang)
	hung := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hang })

	cfg := testConfig(t)
	goodURL := serveHooks(t, good, "")
	failingURL := serveHooks(t, failing, "") + "?token=not-in-records"
	cfg.Webhook.URLs = []string{serveHooks(t, hung, ""), goodURL, failingURL}
	cfg.Webhook.Secret = hookSecret
	cfg.Webhook.Attempts = 2
	cfg.Webhook.Timeout = time.Minute
	cfg.PublicURL = "https://bridge.example"
	_, base := startBridge(t, cfg)

	const sid, stream = "CA000000000000000000000000000abc01", "MZ000000000000000000000000000abc01"
	sub := dial(t, base, "/ws/captions?call="+sid, nil)
	media := dial(t, base, "/media", nil)
	playBursts(t, media, sid, stream, 150)
	send(t, media, twilioStop(stream, sid, 200))

	captions := readEvents(t, sub, func(ev map[string]any) bool { return ev["type"] == bridge.TypeRecordingReady })
	var capTypes []string
	for _, ev := range captions {
		capTypes = append(capTypes, ev["type"].(string))
	}
	n := len(capTypes)
	require.Equal(t, []string{bridge.TypeCallEnded, bridge.TypeTranscriptReady, bridge.TypeRecordingReady}, capTypes[n-3:], "the ready events follow call.ended on the caption socket")

	want := slices.DeleteFunc(slices.Clone(capTypes), func(s string) bool { return s == bridge.TypeTranscriptPartial })
	require.Contains(t, want, bridge.TypeTranscriptFinal)
	eventually(t, func() bool { got, _ := good.types(sid); return len(got) == len(want) }, 20*time.Second, 20*time.Millisecond, "deliveries to the good endpoint")
	got, inOrder := good.types(sid)
	require.Equal(t, want, got)
	require.True(t, inOrder, "seq order")

	good.mu.Lock()
	require.Zero(t, good.bad)
	for id, n := range good.accepted {
		require.Equal(t, 1, n, "id %s accepted once", id)
		require.Equal(t, 2, good.attempts[id], "id %s: refused once, then accepted", id)
	}
	// The body is the caption socket's event, byte for byte in meaning.
	for _, ev := range captions {
		seq := uint64(ev["seq"].(float64))
		if raw, ok := good.raw[seq]; ok {
			var body map[string]any
			require.NoError(t, json.Unmarshal(raw, &body))
			require.Equal(t, ev, body, "seq %d", seq)
		}
	}
	good.mu.Unlock()

	ready := captions[n-1]["recordings"].([]any)[0].(map[string]any)
	require.Equal(t, "inbound", ready["track"])
	require.Equal(t, "https://bridge.example/api/calls/"+sid+"/recordings/inbound.wav", ready["url"])
	require.Equal(t, float64(3000), ready["duration_ms"])
	require.Equal(t, float64(44+2*150*160), ready["bytes"])
	tr := captions[n-2]
	require.Equal(t, "https://bridge.example/api/calls/"+sid+"/transcript", tr["url"])
	require.Equal(t, sid, tr["transcript"].(map[string]any)["call_id"], "a short transcript is inline")

	// A second call while the hung endpoint still holds its first
	// delivery: its media is recorded and its captions arrive in full.
	const sid2, stream2 = "CA000000000000000000000000000abc03", "MZ000000000000000000000000000abc03"
	sub2 := dial(t, base, "/ws/captions?call="+sid2, nil)
	media2 := dial(t, base, "/media", nil)
	playBursts(t, media2, sid2, stream2, 100)
	send(t, media2, twilioStop(stream2, sid2, 200))
	caps2 := readEvents(t, sub2, func(ev map[string]any) bool { return ev["type"] == bridge.TypeRecordingReady })
	require.Equal(t, bridge.TypeCallStarted, caps2[0]["type"])
	waitEnded(t, base, sid2)
	require.Len(t, fetchWAV(t, base, sid2, "inbound").samples, 100*160)

	// The failing endpoint's give-ups reach the call record, without the URL's query.
	var rec bridge.CallRecord
	eventually(t, func() bool {
		rec = bridge.CallRecord{}
		return getJSON(t, base, "/api/calls/"+sid, &rec) == http.StatusOK && len(rec.WebhooksFailed) == len(want)
	}, 60*time.Second, 50*time.Millisecond, "failures in the call record")
	for _, f := range rec.WebhooksFailed {
		require.Equal(t, strings.TrimSuffix(failingURL, "?token=not-in-records"), f.URL)
		require.Equal(t, 2, f.Attempts)
		require.Equal(t, "HTTP 500", f.Error)
	}
}

// TestWebhooksOutboxAcrossRestart: the endpoint is down while a call runs
// and the bridge restarts; the new process delivers what the old one
// could not, once per id, in order.
func TestWebhooksOutboxAcrossRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // down: nothing listens there yet

	cfg := testConfig(t)
	cfg.Webhook.URLs = []string{"http://" + addr + "/hooks"}
	cfg.Webhook.Secret = hookSecret
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)

	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan *instance, 1)
	errc := make(chan error, 1)
	go func() { errc <- serve(ctx, cfg, log, io.Discard, started) }()
	inst := <-started
	base := "http://" + inst.addr
	const sid, stream = "CA000000000000000000000000000abc02", "MZ000000000000000000000000000abc02"
	media := dial(t, base, "/media", nil)
	playBursts(t, media, sid, stream, 100)
	send(t, media, twilioStop(stream, sid, 200))
	waitEnded(t, base, sid)
	eventually(t, func() bool { return inst.reg.Active() == 0 }, 10*time.Second, 10*time.Millisecond, "call gone")
	cancel()
	require.NoError(t, <-errc)

	rcv := newHookReceiver()
	serveHooks(t, rcv, addr)
	_, base = startBridge(t, cfg)
	eventually(t, func() bool {
		got, _ := rcv.types(sid)
		return len(got) > 0 && got[len(got)-1] == bridge.TypeRecordingReady
	}, 30*time.Second, 20*time.Millisecond, "delivered after the restart")
	got, inOrder := rcv.types(sid)
	require.True(t, inOrder)
	require.Equal(t, bridge.TypeCallStarted, got[0])
	require.Equal(t, []string{bridge.TypeCallEnded, bridge.TypeTranscriptReady, bridge.TypeRecordingReady}, got[len(got)-3:])
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for id, n := range rcv.accepted {
		require.Equal(t, 1, n, id)
	}
	require.Zero(t, rcv.bad)
	_ = base
}

// TestWebhooksRecordingInBucket: with --s3-bucket, recording.ready names
// each WAV's object, which the upload then fills with the recording.
func TestWebhooksRecordingInBucket(t *testing.T) {
	srv := s3test.Start(t)
	rcv := newHookReceiver()
	bucket := srv.Bucket("hooked")
	cfg := s3Config(t, srv, bucket)
	cfg.S3.Prefix = "p/"
	cfg.Webhook.URLs = []string{serveHooks(t, rcv, "")}
	cfg.Webhook.Secret = hookSecret
	_, base := startBridge(t, cfg)

	const sid, stream = "CA000000000000000000000000000abc04", "MZ000000000000000000000000000abc04"
	media := dial(t, base, "/media", nil)
	playBursts(t, media, sid, stream, 50)
	send(t, media, twilioStop(stream, sid, 200))
	var ready map[string]any
	eventually(t, func() bool {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		for _, ev := range rcv.events {
			if ev["type"] == bridge.TypeRecordingReady {
				ready = ev["recordings"].([]any)[0].(map[string]any)
			}
		}
		return ready != nil
	}, 20*time.Second, 20*time.Millisecond, "recording.ready delivered")
	key := "p/calls/" + recorder.FolderName(sid) + "/inbound.wav"
	require.Equal(t, "s3://"+bucket+"/"+key, ready["object_url"])
	eventually(t, func() bool {
		b, ok := srv.Object(bucket, key)
		return ok && float64(len(b)) == ready["bytes"].(float64)
	}, 30*time.Second, 50*time.Millisecond, "the named object holds the recording")
}

// TestWebhooksTranscriptAboveInlineMax: a transcript larger than
// --inline-transcript-max is only linked in transcript.ready, on the
// caption socket and to the endpoint alike; the link serves it whole.
func TestWebhooksTranscriptAboveInlineMax(t *testing.T) {
	rcv := newHookReceiver()
	cfg := testConfig(t)
	cfg.Webhook.URLs = []string{serveHooks(t, rcv, "")}
	cfg.Webhook.Secret = hookSecret
	cfg.Webhook.InlineMax = 300 // below any transcript with a final in it
	_, base := startBridge(t, cfg)

	const sid, stream = "CA000000000000000000000000000abc07", "MZ000000000000000000000000000abc07"
	sub := dial(t, base, "/ws/captions?call="+sid, nil)
	media := dial(t, base, "/media", nil)
	playBursts(t, media, sid, stream, 150)
	send(t, media, twilioStop(stream, sid, 200))
	captions := readEvents(t, sub, func(ev map[string]any) bool { return ev["type"] == bridge.TypeRecordingReady })
	tr := captions[len(captions)-2]
	require.Equal(t, bridge.TypeTranscriptReady, tr["type"])
	require.NotContains(t, tr, "transcript", "only linked")
	require.Greater(t, tr["bytes"], float64(cfg.Webhook.InlineMax))
	require.Equal(t, "/api/calls/"+sid+"/transcript", tr["url"])

	var delivered map[string]any
	eventually(t, func() bool {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		for _, ev := range rcv.events {
			if ev["type"] == bridge.TypeTranscriptReady {
				delivered = ev
			}
		}
		return delivered != nil
	}, 20*time.Second, 20*time.Millisecond, "transcript.ready delivered")
	require.Equal(t, tr, delivered, "the endpoint gets the caption socket's event")

	var doc map[string]any
	require.Equal(t, http.StatusOK, getJSON(t, base, tr["url"].(string), &doc))
	require.Equal(t, sid, doc["call_id"])
	require.NotEmpty(t, doc["segments"])
}

// TestWebhooksOnceInCluster: two replicas with the same endpoint. A call
// played into A (followed on B) and a call whose inbound socket reaches A
// and outbound socket B (relayed to A) are delivered once each: every
// event the caption socket has, one webhook-id each, accepted once, in
// seq order per call, none from B (which only follows or relays them).
func TestWebhooksOnceInCluster(t *testing.T) {
	srv := clustertest.Start(t)
	rcv := newHookReceiver()
	hookURL := serveHooks(t, rcv, "")
	hooks := func(c *config.Config) {
		c.Webhook.URLs = []string{hookURL}
		c.Webhook.Secret = hookSecret
	}
	_, baseA := startReplicaTimed(t, srv.URL(), "replica-a", 0, hooks)
	_, baseB := startReplicaTimed(t, srv.URL(), "replica-b", 0, hooks)
	isLast := func(ev map[string]any) bool { return ev["type"] == bridge.TypeRecordingReady }
	durable := func(evs []map[string]any) []string {
		var out []string
		for _, ev := range evs {
			if slices.Contains(webhook.DefaultEvents, ev["type"].(string)) { // --webhook-events' default
				out = append(out, ev["type"].(string))
			}
		}
		return out
	}

	// A call split over A and B, held by A (played first: playSplit
	// counts A's claims).
	split := plivoCall{callID: "5a1b2c3d-1111-4222-8333-444455550009", t0: 1_764_900_000_000}
	onSplit := dial(t, baseB, "/ws/captions?call="+split.callID, nil)
	playSplit(t, baseA, baseB, split, bursts(300, 8000, 0, 0.4, 1), bursts(500, 8000, 0.2, 0.6, 1.5))
	want2 := durable(readEvents(t, onSplit, isLast))
	require.Contains(t, want2, bridge.TypeTranscriptFinal)

	// A call held by A, followed on B.
	const sid, stream = "CA000000000000000000000000000abc09", "MZ000000000000000000000000000abc09"
	onA := dial(t, baseA, "/ws/captions?call="+sid, nil)
	onB := dial(t, baseB, "/ws/captions?call="+sid, nil)
	media := dial(t, baseA, "/media", nil)
	playBursts(t, media, sid, stream, 150)
	send(t, media, twilioStop(stream, sid, 200))
	want1 := durable(readEvents(t, onA, isLast))
	require.Equal(t, want1, durable(readEvents(t, onB, isLast)), "B's subscriber has the call to recording.ready")

	for _, c := range []struct {
		id   string
		want []string
	}{{sid, want1}, {split.callID, want2}} {
		eventually(t, func() bool { got, _ := rcv.types(c.id); return len(got) >= len(c.want) }, 30*time.Second, 20*time.Millisecond,
			"deliveries of %s", c.id)
	}
	total := len(want1) + len(want2)
	eventually(t, func() bool {
		return metric(t, baseA, `bridge_webhook_delivered_total{endpoint="`+hookURL+`"}`) == float64(total)
	}, 10*time.Second, 20*time.Millisecond, "A delivered every event")

	for _, c := range []struct {
		id   string
		want []string
	}{{sid, want1}, {split.callID, want2}} {
		got, inOrder := rcv.types(c.id)
		require.Equal(t, c.want, got, "call %s: every event once", c.id)
		require.True(t, inOrder, "call %s: seq order", c.id)
	}
	rcv.mu.Lock()
	require.Zero(t, rcv.bad)
	require.Len(t, rcv.accepted, total, "one webhook-id per event")
	for id, n := range rcv.accepted {
		require.Equal(t, 1, n, "id %s accepted once", id)
	}
	seen := map[string]bool{}
	for _, ev := range rcv.events {
		k := fmt.Sprintf("%v/%v", ev["call_id"], ev["seq"])
		require.False(t, seen[k], "%s delivered under two ids", k)
		seen[k] = true
	}
	rcv.mu.Unlock()
	// B's publisher had every event of both calls in its hub (the
	// subscribers on B got them) before A delivered the last one: had any
	// reached B's publisher, it would be queued, pending or delivered.
	for _, m := range []string{"bridge_webhook_queue_depth", "bridge_webhook_pending", "bridge_webhook_delivered_total"} {
		series := m + `{endpoint="` + hookURL + `"}`
		require.Contains(t, string(authGet(t, baseB, "", "/metrics")), series+" ", "B has the endpoint's series")
		require.Zero(t, metric(t, baseB, series), m)
	}
}
