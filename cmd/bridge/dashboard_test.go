package main

// Browser tests of the dashboard: a real bridge on 127.0.0.1:0 with the mock
// speech-to-text, a simulated call played through a real media socket at a
// few times real time, and Debian's headless Chromium driven over the
// DevTools protocol. CI installs Chromium (.ci/run) and sets CI, which turns
// a missing browser from a skip into a failure.
//
// A failing test saves a screenshot of the page in $BRIDGE_TEST_ARTIFACTS
// (default: the system's temporary directory). The README's screenshot is
// made by the live test:
//
//	BRIDGE_UPDATE_DOCS=1 go test -run TestDashboardLiveCaptions ./cmd/bridge/

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/fasthttp/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/cluster/clustertest"
)

// ---- the browser ----

// chromium finds Debian's Chromium. Without it the browser tests are
// skipped on a developer's machine and fail in CI.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("BRIDGE_CHROMIUM"), "chromium", "/usr/bin/chromium"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "" {
		t.Skip("chromium is not installed (apt-get install chromium); browser tests skipped outside CI")
	}
	t.Fatal("chromium is not installed, and CI must run the browser tests (.ci/run installs it)")
	return ""
}

// page is one browser tab of a fresh browser with its own profile.
type page struct {
	t   *testing.T
	ctx context.Context

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

// newPage starts Chromium and opens a tab. On failure the test saves a
// screenshot of the tab; at the end, an uncaught exception or a Content
// Security Policy violation in the page fails the test.
func newPage(t *testing.T, width, height int) *page {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	p := &page{t: t, ctx: ctx}
	// Start the browser before anything can time out (see chromedp.Run).
	require.NoError(t, chromedp.Do(ctx), "start chromium")
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.console = append(p.console, m)
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		<-done
	})
	// Registered last, so it runs first, while the tab is still open.
	t.Cleanup(func() {
		if t.Failed() {
			p.screenshot("failure")
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, m := range p.console {
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				t.Errorf("page %s", m)
			}
		}
	})
	return p
}

// screenshot saves the tab as <test name>-<what>.png in $BRIDGE_TEST_ARTIFACTS
// (or the system's temporary directory) and logs where.
func (p *page) screenshot(what string) {
	dir := os.Getenv("BRIDGE_TEST_ARTIFACTS")
	if dir == "" {
		dir = os.TempDir()
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Logf("no screenshot: %v", err)
		return
	}
	name := regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(p.t.Name(), "_") + "-" + what + ".png"
	path := filepath.Join(dir, name)
	err = os.MkdirAll(dir, 0o755)
	if err == nil {
		err = os.WriteFile(path, png, 0o644)
	}
	if err != nil {
		p.t.Logf("screenshot not saved: %v", err)
		return
	}
	p.t.Logf("screenshot: %s", path)
}

// do runs steps with a time limit.
func (p *page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	require.NoError(p.t, chromedp.Do(ctx, steps...))
}

// eval evaluates js and decodes its JSON result into v.
func (p *page) eval(js string, v any) error {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](js, chromedp.EvalAwaitPromise))
	if err != nil {
		return err
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(raw, v)
}

func (p *page) mustEval(js string, v any) {
	p.t.Helper()
	require.NoError(p.t, p.eval(js, v), "evaluate %s", js)
}

// waitFor polls js until it is true.
func (p *page) waitFor(js string, timeout time.Duration, msg string) {
	p.t.Helper()
	require.EventuallyWithT(p.t, func(c *assert.CollectT) {
		var ok bool
		require.NoError(c, p.eval(js, &ok))
		require.True(c, ok, "%s is not true yet", js)
	}, timeout, 25*time.Millisecond, msg)
}

// row is a caption line as the page shows it.
type row struct {
	Seg     string `json:"seg"`
	Track   string `json:"track"`
	Who     string `json:"who"`
	Text    string `json:"text"`
	Partial bool   `json:"partial"`
}

// view is what the page shows of the open call.
type view struct {
	Mode     string   `json:"mode"`
	Conn     string   `json:"conn"`
	Rows     []row    `json:"rows"`
	Notes    []string `json:"notes"`
	Mismatch *string  `json:"mismatch"`
	Jump     bool     `json:"jump"`
	JumpText string   `json:"jumpText"`
}

const viewJS = `(() => ({
  mode: document.querySelector('#call').dataset.mode ?? '',
  conn: document.querySelector('#conn').dataset.state,
  rows: [...document.querySelectorAll('#timeline li.seg')].map(li => ({
    seg: li.dataset.seg, track: li.dataset.track, who: li.querySelector('.who').textContent,
    text: li.querySelector('.text').textContent, partial: li.classList.contains('partial')})),
  notes: [...document.querySelectorAll('#timeline li.note .note-text')].map(n => n.textContent),
  mismatch: document.querySelector('#timeline').dataset.liveMismatch ?? null,
  jump: !document.querySelector('#jump').hidden,
  jumpText: document.querySelector('#jump').textContent,
}))()`

func (p *page) view() view {
	p.t.Helper()
	var v view
	p.mustEval(viewJS, &v)
	return v
}

func (v view) finals() []row {
	var out []row
	for _, r := range v.Rows {
		if !r.Partial {
			out = append(out, r)
		}
	}
	return out
}

// watchJS records, after every batch of DOM changes in the timeline, which
// segments were shown as partials and as finals, and any moment where a
// segment had two rows or a partial came back after its final.
const watchJS = `(() => {
  const w = window.__watch = {partials: {}, finals: {}, violations: []};
  const tl = document.querySelector('#timeline');
  new MutationObserver(() => {
    const seen = new Set();
    for (const li of tl.querySelectorAll('li.seg')) {
      const id = li.dataset.seg;
      if (seen.has(id)) w.violations.push('two rows for ' + id);
      seen.add(id);
      if (li.classList.contains('partial')) {
        if (w.finals[id]) w.violations.push('partial after final for ' + id);
        w.partials[id] = (w.partials[id] ?? 0) + 1;
      } else {
        w.finals[id] = true;
      }
    }
  }).observe(tl, {childList: true, subtree: true, characterData: true, attributes: true});
  return true;
})()`

type watch struct {
	Partials   map[string]int  `json:"partials"`
	Finals     map[string]bool `json:"finals"`
	Violations []string        `json:"violations"`
}

// ---- the simulated call ----

// line is one utterance of the simulated conversation.
type line struct {
	track    string
	from, to float64 // seconds on the call clock
	text     string
}

// conversation is a support call; the mock speaks each line while its
// track's tone plays.
var conversation = []line{
	{"inbound", 0.4, 2.6, "Hi, I'm calling about my order from last week."},
	{"outbound", 3.2, 5.4, "Sure, I can help with that. What's the order number?"},
	{"inbound", 6.0, 7.6, "It's four eight one five one six."},
	{"outbound", 8.4, 10.4, "Thanks, José. It shipped on Monday & arrives tomorrow."},
	{"inbound", 11.0, 12.2, "Great, that's all I needed."},
	{"outbound", 12.8, 14.4, "You're welcome. Have a good day!"},
}

const conversationEnd = 15.2 // seconds: the last line plus the silence that ends it

func scriptOf(lines []line) string {
	parts := make([]string, len(lines))
	for i, l := range lines {
		parts[i] = l.track + ":" + l.text
	}
	return strings.Join(parts, "|")
}

// player plays a two-track Twilio call over a real media socket.
type player struct {
	t                  *testing.T
	c                  *websocket.Conn
	callSid, streamSid string
	gen                map[string]func(i int) float64
	frame              int // next 20 ms frame
	seq                int
}

func startCall(t *testing.T, base, callSid string, lines []line, params map[string]string) *player {
	t.Helper()
	p := &player{t: t, callSid: callSid, streamSid: "MZ" + callSid[2:], seq: 1, gen: map[string]func(int) float64{}}
	freq := map[string]float64{"inbound": 300, "outbound": 500}
	for _, tr := range []string{"inbound", "outbound"} {
		var spans [][2]float64
		for _, l := range lines {
			if l.track == tr {
				spans = append(spans, [2]float64{l.from, l.to})
			}
		}
		f := freq[tr]
		p.gen[tr] = func(i int) float64 {
			sec := float64(i) / 8000
			for _, s := range spans {
				if sec >= s[0] && sec < s[1] {
					return 8000 * math.Sin(2*math.Pi*f*sec)
				}
			}
			return 0
		}
	}
	all := map[string]string{"script": scriptOf(lines)}
	for k, v := range params {
		all[k] = v
	}
	p.c = dial(t, base, "/media", nil)
	send(t, p.c, []byte(`{"event":"connected","protocol":"Call","version":"1.0.0"}`),
		twilioStart(callSid, p.streamSid, []string{"inbound", "outbound"}, all))
	return p
}

// play sends audio up to untilSec on the call clock at speed times real
// time (0: as fast as the socket takes it).
func (p *player) play(untilSec, speed float64) {
	p.t.Helper()
	last := int(math.Round(untilSec * 50))
	start, from := time.Now(), p.frame
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for p.frame < last {
		due := last
		if speed > 0 {
			due = min(last, from+int(time.Since(start).Seconds()*50*speed))
		}
		for ; p.frame < due; p.frame++ {
			k := p.frame
			for _, tr := range []string{"inbound", "outbound"} {
				p.seq++
				send(p.t, p.c, twilioMedia(p.streamSid, tr, p.seq, k+1, 20*k, mulawFrame(p.gen[tr], 160*k, 160)))
			}
		}
		if p.frame < last {
			<-tick.C
		}
	}
}

func (p *player) dtmf(digit string) {
	p.seq++
	send(p.t, p.c, []byte(fmt.Sprintf(`{"event":"dtmf","streamSid":"%s","sequenceNumber":"%d","dtmf":{"track":"inbound_track","digit":"%s"}}`, p.streamSid, p.seq, digit)))
}

func (p *player) stop() {
	p.seq++
	send(p.t, p.c, twilioStop(p.streamSid, p.callSid, p.seq))
}

// transcript fetches the call's transcript.json.
func transcript(t *testing.T, base, id string) bridge.Transcript {
	t.Helper()
	var tr bridge.Transcript
	require.Equal(t, http.StatusOK, getJSON(t, base, "/api/calls/"+url.PathEscape(id)+"/transcript", &tr))
	return tr
}

// inOrder is the transcript's finals in the dashboard's order: by start.
func inOrder(tr bridge.Transcript) []bridge.Segment {
	segs := slices.Clone(tr.Segments)
	slices.SortStableFunc(segs, func(a, b bridge.Segment) int { return cmp.Compare(a.StartMs, b.StartMs) })
	return segs
}

// requireSameTranscript checks that the page shows exactly the transcript's
// finals, once each, in time order, labelled by track.
func requireSameTranscript(t *testing.T, tr bridge.Transcript, rows []row) {
	t.Helper()
	want := inOrder(tr)
	got := make([]string, len(rows))
	for i, r := range rows {
		require.False(t, r.Partial, "row %d (%s) is still a partial", i, r.Seg)
		got[i] = r.Seg + " " + r.Track + " " + r.Text
	}
	exp := make([]string, len(want))
	for i, s := range want {
		exp[i] = s.SegmentID + " " + s.Track + " " + s.Text
	}
	require.Equal(t, exp, got, "the page shows transcript.json: every final once, in order")
	labels := map[string]string{"inbound": "Caller", "outbound": "Agent"}
	for _, r := range rows {
		require.Equal(t, labels[r.Track], r.Who, "row %s is labelled by its track", r.Seg)
	}
}

func callRow(id string) string {
	return `document.querySelector('#call-list li.call-item[data-call="` + id + `"]')`
}

// ---- tests ----

// TestDashboardLiveCaptions: a call appears in the list by itself, its
// captions appear per track as it is spoken, each partial is replaced in
// place by its final, DTMF shows inline, auto-scroll pauses when the reader
// scrolls up, and the view turns into the finished call when it ends.
func TestDashboardLiveCaptions(t *testing.T) {
	_, base := startBridge(t, testConfig(t))
	docs := os.Getenv("BRIDGE_UPDATE_DOCS") != ""
	if docs {
		// A finished call above the live one, as a real list would have.
		earlier := startCall(t, base, "CA3c91e5d0b7a24f6e8d1c0b9a7f6e5d4c", conversation[:2], map[string]string{"queue": "billing"})
		earlier.play(6, 0)
		earlier.stop()
		waitEnded(t, base, earlier.callSid)
	}
	p := newPage(t, 1280, 800)
	p.do(chromedp.Navigate(base + "/"))
	p.waitFor(`document.querySelector('#conn').dataset.state === 'connected'`, 10*time.Second, "caption socket connected")

	const callSid = "CA8d2f5e1b7c9a4036e2b1f0d9c8a7b6e5"
	call := startCall(t, base, callSid, conversation, map[string]string{"queue": "orders", "customer": "C-1042"})
	p.waitFor(callRow(callSid)+`?.dataset.status === 'active'`, 10*time.Second, "the new call appears in the list as live")
	var sub string
	p.mustEval(callRow(callSid)+`.querySelector('.call-sub').textContent`, &sub)
	require.Equal(t, "Live · Twilio", sub, "status in words, provider")

	p.do(chromedp.Click(chromedp.CSS(`#call-list li[data-call="` + callSid + `"] a`)))
	p.waitFor(`document.querySelector('#call').dataset.mode === 'live' && document.querySelector('#conn').dataset.state === 'connected'`,
		10*time.Second, "live view with its socket open")
	p.mustEval(watchJS, nil)

	// The first two lines at three times real time.
	call.play(6.0, 3)
	p.waitFor(`document.querySelectorAll('#timeline li.seg:not(.partial)').length === 2`, 10*time.Second, "two finals")
	v := p.view()
	require.Equal(t, []string{"inbound", "outbound"}, []string{v.Rows[0].Track, v.Rows[1].Track})
	require.Equal(t, []string{"Caller", "Agent"}, []string{v.Rows[0].Who, v.Rows[1].Who})
	require.Equal(t, conversation[0].text, v.Rows[0].Text)

	// A key press shows inline.
	call.play(7.8, 3)
	call.dtmf("5")
	call.play(11.0, 3)
	p.waitFor(`[...document.querySelectorAll('#timeline li.note')].some(n => n.textContent.includes('Caller pressed 5'))`, 10*time.Second, "DTMF inline")
	p.waitFor(`document.querySelectorAll('#timeline li.seg:not(.partial)').length === 4`, 10*time.Second, "four finals")

	// At phone width the timeline overflows; scrolling up pauses auto-scroll
	// and new finals are counted on "Jump to live".
	p.do(chromedp.EmulateViewport(390, 560, chromedp.EmulateScale(2)))
	p.waitFor(`(s => s.scrollHeight > s.clientHeight + 60)(document.querySelector('#scroller'))`, 10*time.Second, "timeline overflows at phone width")
	p.mustEval(`(s => { s.scrollTop = 0; s.dispatchEvent(new Event('scroll')); return true })(document.querySelector('#scroller'))`, nil)
	p.waitFor(`!document.querySelector('#jump').hidden`, 5*time.Second, "jump to live offered after scrolling up")
	call.play(12.8, 3)
	p.waitFor(`document.querySelectorAll('#timeline li.seg:not(.partial)').length === 5`, 10*time.Second, "five finals")
	v = p.view()
	require.True(t, v.Jump)
	require.Equal(t, "Jump to live · 1 new", v.JumpText, "new captions are counted while paused")
	var top float64
	p.mustEval(`document.querySelector('#scroller').scrollTop`, &top)
	require.Zero(t, top, "a paused timeline stays where the reader is")
	var overflow bool
	p.mustEval(`document.documentElement.scrollWidth > document.documentElement.clientWidth`, &overflow)
	require.False(t, overflow, "nothing wider than a phone")
	if docs {
		p.screenshot("phone")
	}
	p.do(chromedp.Click(chromedp.ID("jump")))
	p.waitFor(`document.querySelector('#jump').hidden && (s => s.scrollHeight - s.scrollTop - s.clientHeight < 50)(document.querySelector('#scroller'))`,
		5*time.Second, "jump to live scrolls to the end and hides")
	p.do(chromedp.EmulateViewport(1280, 800))

	// Mid-utterance the last line is a partial.
	call.play(13.9, 3)
	p.waitFor(`!!document.querySelector('#timeline li.seg.partial[data-track="outbound"]')`, 10*time.Second, "a partial of the agent's last line")
	if docs {
		p.screenshotTo(filepath.Join("..", "..", "docs", "live-view.png"))
	}
	call.play(conversationEnd, 3)
	p.waitFor(`document.querySelectorAll('#timeline li.seg').length === 6 && !document.querySelector('#timeline li.partial')`, 10*time.Second, "six finals, no partials")
	requireSameTranscript(t, transcript(t, base, callSid), p.view().Rows)

	var w watch
	p.mustEval(`window.__watch`, &w)
	require.Empty(t, w.Violations, "the DOM never showed a partial and its final at once")
	require.GreaterOrEqual(t, len(w.Partials), 4, "partials were shown for most lines: %v", w.Partials)
	for id := range w.Partials {
		require.True(t, w.Finals[id], "partial %s was replaced by its final", id)
	}

	call.stop()
	p.waitFor(`document.querySelector('#call').dataset.mode === 'finished' && document.querySelector('#call').dataset.ready === 'true'`, 15*time.Second, "finished view")
	v = p.view()
	require.NotNil(t, v.Mismatch)
	require.Equal(t, "0", *v.Mismatch, "the live view had every final exactly once")
	require.Equal(t, "connected", v.Conn, "the all-calls socket stays up")
	p.waitFor(callRow(callSid)+`?.dataset.status === 'ended'`, 5*time.Second, "the list shows the call ended")
}

// TestDashboardReconnectResumes: the page's caption sockets are cut and
// refused for a while as the call goes on; the page says it is
// reconnecting, comes back with after=<last seq>, and then shows exactly
// transcript.json, with nothing lost and nothing twice.
func TestDashboardReconnectResumes(t *testing.T) {
	_, base := startBridge(t, testConfig(t))
	px := newCutProxy(t, strings.TrimPrefix(base, "http://"))
	const callSid = "CA2f000000000000000000000000000003"

	p := newPage(t, 1280, 800)
	// Open the call before it starts: the page waits for it.
	p.do(chromedp.Navigate(px.base + "/#/calls/" + callSid))
	p.waitFor(`document.querySelector('#call').dataset.mode === 'waiting' && document.querySelector('#conn').dataset.state === 'connected'`,
		10*time.Second, "waiting for the call")

	call := startCall(t, base, callSid, conversation, nil)
	call.play(6.0, 3)
	p.waitFor(`document.querySelectorAll('#timeline li.seg:not(.partial)').length === 2`, 10*time.Second, "two finals before the cut")

	px.cut(true)
	p.waitFor(`document.querySelector('#conn').dataset.state === 'reconnecting'`, 5*time.Second, "the page says it is reconnecting")
	call.play(11.0, 3)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		resp, err := http.Get(base + "/api/calls/" + callSid + "/transcript")
		require.NoError(c, err)
		defer resp.Body.Close()
		var tr bridge.Transcript
		require.NoError(c, json.NewDecoder(resp.Body).Decode(&tr))
		require.Len(c, tr.Segments, 4)
	}, 10*time.Second, 20*time.Millisecond, "two more finals while the page is cut off")
	require.Len(t, p.view().finals(), 2, "the page cannot have seen them yet")

	px.cut(false)
	p.waitFor(`document.querySelector('#conn').dataset.state === 'connected' && document.querySelectorAll('#timeline li.seg').length === 4`,
		20*time.Second, "reconnected and caught up")
	requireSameTranscript(t, transcript(t, base, callSid), p.view().Rows)
	require.True(t, px.resumed(callSid), "the page resumed with after=<seq>: %v", px.requests())
	var reconnects string
	p.mustEval(`document.querySelector('#conn').dataset.reconnects`, &reconnects)
	n, _ := strconv.Atoi(reconnects)
	require.Positive(t, n)

	call.play(conversationEnd, 3)
	call.stop()
	p.waitFor(`document.querySelector('#call').dataset.ready === 'true'`, 15*time.Second, "finished view")
	v := p.view()
	require.NotNil(t, v.Mismatch)
	require.Equal(t, "0", *v.Mismatch, "the live view had every final exactly once")
	requireSameTranscript(t, transcript(t, base, callSid), v.Rows)
}

// TestDashboardFinishedCall: the finished view loads both recordings (the
// audio elements report the WAVs' duration), clicking a segment seeks both
// to its start and highlights it, search filters the transcript, and the
// WebVTT and SRT downloads parse.
func TestDashboardFinishedCall(t *testing.T) {
	_, base := startBridge(t, testConfig(t))
	const callSid = "CA3f000000000000000000000000000004"
	call := startCall(t, base, callSid, conversation, map[string]string{"queue": "orders"})
	call.play(conversationEnd, 0)
	call.stop()
	waitEnded(t, base, callSid)
	tr := transcript(t, base, callSid)
	require.Len(t, tr.Segments, len(conversation))

	p := newPage(t, 1280, 800)
	p.do(chromedp.Navigate(base + "/#/calls/" + callSid))
	p.waitFor(`document.querySelector('#call').dataset.ready === 'true'`, 10*time.Second, "finished view")
	requireSameTranscript(t, tr, p.view().Rows)

	// The audio elements know the recordings' length.
	p.waitFor(`[...document.querySelectorAll('#player audio')].every(a => a.duration > 0) && !document.querySelector('#player .play').disabled`,
		10*time.Second, "recordings loaded")
	var durations map[string]float64
	p.mustEval(`Object.fromEntries([...document.querySelectorAll('#player audio')].map(a => [a.dataset.track, a.duration]))`, &durations)
	require.Len(t, durations, 2)
	for _, track := range []string{"inbound", "outbound"} {
		w := fetchWAV(t, base, callSid, track)
		require.InDelta(t, float64(len(w.samples))/float64(w.rate), durations[track], 0.01, "%s duration", track)
	}

	// Click-to-seek moves both tracks to the segment's start.
	seg := inOrder(tr)[3]
	p.do(chromedp.Click(chromedp.CSS(`#timeline li[data-seg="` + seg.SegmentID + `"] button.ts`)))
	start := float64(seg.StartMs) / 1000
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var times []float64
		require.NoError(c, p.eval(`[...document.querySelectorAll('#player audio')].map(a => a.currentTime)`, &times))
		require.Len(c, times, 2)
		for _, ct := range times {
			// Clicking a segment also starts playback.
			require.True(c, ct >= start-0.05 && ct <= start+1.5, "currentTime %.3f, segment starts at %.3f", ct, start)
		}
	}, 10*time.Second, 20*time.Millisecond, "both tracks seek to the segment")
	p.waitFor(`document.querySelector('#timeline li[data-seg="`+seg.SegmentID+`"]').classList.contains('current')`, 5*time.Second, "the segment under the playhead is highlighted")
	p.mustEval(`(a => { a.pause(); return true })(document.querySelector('#player audio'))`, nil)

	// Search.
	p.do(chromedp.SendKeys(chromedp.ID("search"), "order"))
	p.waitFor(`document.querySelector('#search-count').textContent === '2 matches'`, 5*time.Second, "two lines mention orders")
	var visible int
	p.mustEval(`[...document.querySelectorAll('#timeline li.seg')].filter(li => !li.hidden).length`, &visible)
	require.Equal(t, 2, visible)
	p.mustEval(`document.querySelectorAll('#timeline mark').length`, &visible)
	require.Equal(t, 2, visible, "matches are marked")

	// Downloads: the links the page offers.
	var links map[string]string
	p.mustEval(`Object.fromEntries([...document.querySelectorAll('#downloads a')].map(a => [a.textContent, a.href]))`, &links)
	require.Len(t, links, 5, "%v", links)
	for _, name := range []string{"CallerWAV", "AgentWAV", "TranscriptJSON", "CaptionsVTT", "CaptionsSRT"} {
		require.Contains(t, links, name)
		resp, err := http.Get(links[name])
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", name, body)
		switch name {
		case "CaptionsVTT":
			require.Contains(t, resp.Header.Get("Content-Disposition"), "attachment")
			requireCues(t, tr, parseVTT(t, string(body)))
		case "CaptionsSRT":
			require.Contains(t, resp.Header.Get("Content-Disposition"), "attachment")
			requireCues(t, tr, parseSRT(t, string(body)))
		}
	}
	// Chromium's own WebVTT parser reads the file too.
	var cues []string
	p.mustEval(`new Promise((resolve, reject) => {
	  const v = document.createElement('video');
	  const tr = document.createElement('track');
	  tr.kind = 'captions'; tr.default = true; tr.src = `+strconv.Quote(links["CaptionsVTT"])+`;
	  tr.addEventListener('load', () => resolve([...tr.track.cues].map(c => c.text)));
	  tr.addEventListener('error', () => reject(new Error('track did not load')));
	  v.append(tr); document.body.append(v);
	})`, &cues)
	require.Len(t, cues, len(tr.Segments))
	require.Equal(t, "<v Caller>"+conversation[0].text, cues[0])

	// Phone width: the call alone, nothing wider than the screen.
	p.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	var phone struct {
		Overflow   bool `json:"overflow"`
		SidebarOff bool `json:"sidebarOff"`
		PlayW      int  `json:"playW"`
	}
	p.mustEval(`({overflow: document.documentElement.scrollWidth > 390,
	  sidebarOff: getComputedStyle(document.querySelector('.sidebar')).display === 'none',
	  playW: document.querySelector('#player .play').getBoundingClientRect().width})`, &phone)
	require.False(t, phone.Overflow, "no horizontal scrolling at 390 px")
	require.True(t, phone.SidebarOff, "the call takes the whole phone screen")
	require.GreaterOrEqual(t, phone.PlayW, 40, "a thumb-sized play button")
	if os.Getenv("BRIDGE_UPDATE_DOCS") != "" {
		p.screenshot("phone")
	}
}

// TestDashboardToken: with a token configured, the page, the API and the
// caption socket refuse requests without it; the start-up link sets the
// cookie, leaves the address bar clean, and everything works with it.
func TestDashboardToken(t *testing.T) {
	const token = "s3cret-t0ken"
	cfg := testConfig(t)
	cfg.APIToken = token
	_, base := startBridge(t, cfg)
	const callSid = "CA4f000000000000000000000000000005"
	call := startCall(t, base, callSid, conversation[:2], nil)
	call.play(6, 0)
	call.stop()

	get := func(path string, hdr map[string]string) (*http.Response, []byte) {
		return httpResponse(t, http.MethodGet, base+path, "", hdr)
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		_, body := get("/api/calls/"+callSid, bearer(token))
		var rec bridge.CallRecord
		require.NoError(c, json.Unmarshal(body, &rec))
		require.Equal(c, bridge.StatusEnded, rec.Status)
	}, 15*time.Second, 20*time.Millisecond, "call ended")
	for _, path := range []string{"/api/calls", "/api/config", "/api/calls/" + callSid + "/transcript", "/api/calls/" + callSid + "/transcript.vtt",
		"/api/calls/" + callSid + "/transcript.srt", "/api/calls/" + callSid + "/recordings/inbound.wav", "/app.js"} {
		t.Run("refused"+path, func(t *testing.T) {
			resp, _ := get(path, nil)
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			resp, _ = get(path, map[string]string{"Authorization": "Bearer wrong"})
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			resp, _ = get(path, bearer(token))
			require.Equal(t, http.StatusOK, resp.StatusCode)
		})
	}
	resp, body := get("/api/calls", nil)
	require.Contains(t, resp.Header.Get("Content-Type"), "application/json", "the API answers JSON: %s", body)

	// Caption socket: token required, and only from the bridge's own origin.
	ws := "ws" + strings.TrimPrefix(base, "http") + "/ws/captions"
	_, r, err := websocket.DefaultDialer.Dial(ws, nil)
	require.Error(t, err)
	require.Equal(t, http.StatusUnauthorized, r.StatusCode)
	_, r, err = websocket.DefaultDialer.Dial(ws, http.Header{"Authorization": {"Bearer " + token}, "Origin": {"http://evil.example"}})
	require.Error(t, err)
	require.Equal(t, http.StatusForbidden, r.StatusCode)
	c, _, err := websocket.DefaultDialer.Dial(ws, http.Header{"Authorization": {"Bearer " + token}})
	require.NoError(t, err)
	c.Close()

	p := newPage(t, 1280, 800)
	res, err := chromedp.Run(p.ctx, chromedp.NavigateResponse(base+"/"))
	require.NoError(t, err)
	require.EqualValues(t, http.StatusUnauthorized, res.Status)
	var text string
	p.mustEval(`document.body.innerText`, &text)
	require.Contains(t, text, "Access token needed")
	require.Contains(t, text, "link the bridge printed")

	// The form on that page with a wrong token: refused again.
	p.do(chromedp.SendKeys(chromedp.ID("token"), "wrong"), chromedp.Submit(chromedp.ID("token")))
	p.waitFor(`location.search === '?token=wrong' && document.body.innerText.includes('Access token needed')`, 5*time.Second, "a wrong token is refused")

	// The start-up link.
	res, err = chromedp.Run(p.ctx, chromedp.NavigateResponse(base+"/?token="+token))
	require.NoError(t, err)
	require.EqualValues(t, http.StatusOK, res.Status)
	p.waitFor(`document.querySelector('#conn').dataset.state === 'connected' && !!`+callRow(callSid), 10*time.Second, "dashboard with the call, socket connected")
	var loc struct {
		URL    string `json:"url"`
		Cookie string `json:"cookie"`
	}
	p.mustEval(`({url: location.href, cookie: document.cookie})`, &loc)
	require.Equal(t, base+"/", loc.URL, "the token left the address bar")
	require.NotContains(t, loc.Cookie, token, "the cookie is HttpOnly")
	p.do(chromedp.Click(chromedp.CSS(`#call-list li[data-call="` + callSid + `"] a`)))
	p.waitFor(`document.querySelector('#call').dataset.ready === 'true' && document.querySelectorAll('#timeline li.seg').length === 2`, 10*time.Second, "finished call over the cookie")
	p.waitFor(`[...document.querySelectorAll('#player audio')].every(a => a.duration > 0)`, 10*time.Second, "recordings load with the cookie")
}

// ---- cut proxy ----

// cutProxy forwards TCP to the bridge and can cut the caption sockets that
// pass through it and refuse new ones, as a network drop or a restarting
// server would.
type cutProxy struct {
	t    *testing.T
	ln   net.Listener
	to   string
	base string

	mu      sync.Mutex
	cutting bool
	live    map[net.Conn]struct{} // caption sockets
	lines   []string              // request lines of caption sockets
	wg      sync.WaitGroup
}

func newCutProxy(t *testing.T, to string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	px := &cutProxy{t: t, ln: ln, to: to, base: "http://" + ln.Addr().String(), live: map[net.Conn]struct{}{}}
	px.wg.Add(1)
	go func() {
		defer px.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			px.wg.Add(1)
			go func() {
				defer px.wg.Done()
				px.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		px.mu.Lock()
		for c := range px.live {
			c.Close()
		}
		px.mu.Unlock()
		px.wg.Wait()
	})
	return px
}

func (px *cutProxy) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	first, err := br.ReadString('\n')
	if err != nil {
		return
	}
	caption := strings.HasPrefix(first, "GET /ws/captions")
	if caption {
		px.mu.Lock()
		px.lines = append(px.lines, strings.TrimSpace(first))
		if px.cutting {
			px.mu.Unlock()
			return
		}
		px.live[c] = struct{}{}
		px.mu.Unlock()
		defer func() {
			px.mu.Lock()
			delete(px.live, c)
			px.mu.Unlock()
		}()
	}
	up, err := net.Dial("tcp", px.to)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(c, up)
		c.Close()
	}()
	if _, err := io.WriteString(up, first); err == nil {
		_, _ = io.Copy(up, br)
	}
	up.Close()
	<-done
}

// cut drops every caption socket and refuses new ones (on), or lets them
// through again (off).
func (px *cutProxy) cut(on bool) {
	px.mu.Lock()
	defer px.mu.Unlock()
	px.cutting = on
	if on {
		for c := range px.live {
			c.Close()
		}
	}
}

func (px *cutProxy) requests() []string {
	px.mu.Lock()
	defer px.mu.Unlock()
	return slices.Clone(px.lines)
}

// resumed reports whether a caption socket for the call asked to resume.
func (px *cutProxy) resumed(callID string) bool {
	for _, l := range px.requests() {
		if strings.Contains(l, "call="+callID+"&after=") {
			return true
		}
	}
	return false
}

// ---- caption files ----

type parsedCue struct {
	start, end int64
	text       string
}

var (
	vttTime = regexp.MustCompile(`^(\d{2,}):(\d{2}):(\d{2})\.(\d{3}) --> (\d{2,}):(\d{2}):(\d{2})\.(\d{3})$`)
	srtTime = regexp.MustCompile(`^(\d{2,}):(\d{2}):(\d{2}),(\d{3}) --> (\d{2,}):(\d{2}):(\d{2}),(\d{3})$`)
)

func cueMs(m []string) (int64, int64) {
	n := func(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v }
	return ((n(m[1])*60+n(m[2]))*60+n(m[3]))*1000 + n(m[4]), ((n(m[5])*60+n(m[6]))*60+n(m[7]))*1000 + n(m[8])
}

// parseVTT reads a WebVTT file strictly: header, then blocks of an optional
// identifier, a timing line and one text line.
func parseVTT(t *testing.T, s string) []parsedCue {
	t.Helper()
	blocks := strings.Split(strings.TrimRight(s, "\n"), "\n\n")
	require.Equal(t, "WEBVTT", blocks[0])
	var out []parsedCue
	for _, b := range blocks[1:] {
		ls := strings.Split(b, "\n")
		if !strings.Contains(ls[0], "-->") {
			ls = ls[1:]
		}
		require.Len(t, ls, 2, "cue %q", b)
		m := vttTime.FindStringSubmatch(ls[0])
		require.NotNil(t, m, "timing %q", ls[0])
		start, end := cueMs(m)
		out = append(out, parsedCue{start, end, ls[1]})
	}
	return out
}

// parseSRT reads a SubRip file strictly: numbered blocks of a timing line and
// one text line.
func parseSRT(t *testing.T, s string) []parsedCue {
	t.Helper()
	var out []parsedCue
	for i, b := range strings.Split(strings.TrimRight(s, "\n"), "\n\n") {
		ls := strings.Split(b, "\n")
		require.Len(t, ls, 3, "cue %q", b)
		require.Equal(t, strconv.Itoa(i+1), ls[0])
		m := srtTime.FindStringSubmatch(ls[1])
		require.NotNil(t, m, "timing %q", ls[1])
		start, end := cueMs(m)
		out = append(out, parsedCue{start, end, ls[2]})
	}
	return out
}

// requireCues checks one cue per final, in time order, at the final's times,
// with its speaker's label and text.
func requireCues(t *testing.T, tr bridge.Transcript, cues []parsedCue) {
	t.Helper()
	segs := inOrder(tr)
	require.Len(t, cues, len(segs))
	labels := map[string]string{"inbound": "Caller", "outbound": "Agent"}
	for i, s := range segs {
		c := cues[i]
		require.Equal(t, s.StartMs, c.start)
		require.Equal(t, s.EndMs, c.end)
		text := strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">").Replace(c.text)
		require.True(t, text == "<v "+labels[s.Track]+">"+s.Text || text == labels[s.Track]+": "+s.Text, "cue %d: %q for %q", i, c.text, s.Text)
	}
}

// screenshotTo saves the tab as a PNG at path (the README's screenshot).
func (p *page) screenshotTo(path string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(p.t, err)
	require.NoError(p.t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(p.t, os.WriteFile(path, png, 0o644))
	p.t.Logf("wrote %s", path)
}

// TestDashboardOtherReplica: in cluster mode the dashboard of replica B
// shows a call held by replica A as it would on A: in the list while it
// is live, its captions live, then its finished view with the transcript
// and recordings B fetches from A.
func TestDashboardOtherReplica(t *testing.T) {
	srv := clustertest.Start(t)
	_, baseA := startReplica(t, srv.URL(), "replica-a")
	_, baseB := startReplica(t, srv.URL(), "replica-b")

	p := newPage(t, 1280, 800)
	p.do(chromedp.Navigate(baseB + "/"))
	p.waitFor(`document.querySelector('#conn').dataset.state === 'connected'`, 10*time.Second, "B's caption socket connected")

	const callSid = "CA3f000000000000000000000000000005"
	call := startCall(t, baseA, callSid, conversation, map[string]string{"queue": "orders"})
	p.waitFor(callRow(callSid)+`?.dataset.status === 'active'`, 10*time.Second, "A's call appears live in B's list")
	p.do(chromedp.Click(chromedp.CSS(`#call-list li[data-call="` + callSid + `"] a`)))
	p.waitFor(`document.querySelector('#call').dataset.mode === 'live' && document.querySelector('#conn').dataset.state === 'connected'`,
		10*time.Second, "B's live view of A's call")
	call.play(conversationEnd, 3)
	p.waitFor(`document.querySelectorAll('#timeline li.seg').length === 6 && !document.querySelector('#timeline li.partial')`,
		15*time.Second, "six finals on B")
	requireSameTranscript(t, transcript(t, baseA, callSid), p.view().Rows)

	call.stop()
	p.waitFor(`document.querySelector('#call').dataset.mode === 'finished' && document.querySelector('#call').dataset.ready === 'true'`,
		15*time.Second, "finished view on B")
	v := p.view()
	require.NotNil(t, v.Mismatch)
	require.Equal(t, "0", *v.Mismatch, "B's live view had every final of A's call exactly once")
	requireSameTranscript(t, transcript(t, baseB, callSid), v.Rows)
	p.waitFor(callRow(callSid)+`?.dataset.status === 'ended'`, 10*time.Second, "B's list shows the call ended")
	p.waitFor(`[...document.querySelectorAll('#player audio')].every(a => a.duration > 0) && !document.querySelector('#player .play').disabled`,
		10*time.Second, "A's recordings load through B")
	var durations map[string]float64
	p.mustEval(`Object.fromEntries([...document.querySelectorAll('#player audio')].map(a => [a.dataset.track, a.duration]))`, &durations)
	require.Len(t, durations, 2)
	for _, track := range []string{"inbound", "outbound"} {
		w := fetchWAV(t, baseA, callSid, track)
		require.InDelta(t, float64(len(w.samples))/float64(w.rate), durations[track], 0.01, "%s duration through B", track)
	}
}
