package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
)

func TestCaptionFiles(t *testing.T) {
	label := func(track string) string {
		return map[string]string{"inbound": "Caller", "outbound": "Agent"}[track]
	}
	seg := func(track string, start, end int64, text string) bridge.Segment {
		return bridge.Segment{Track: track, SegmentID: track + "-x", StartMs: start, EndMs: end, Text: text}
	}
	cases := []struct {
		name     string
		segs     []bridge.Segment
		vtt, srt string
	}{
		{
			name: "empty",
			vtt:  "WEBVTT\n",
			srt:  "",
		},
		{
			name: "ordered by start across tracks",
			segs: []bridge.Segment{seg("outbound", 3000, 4500, "How can I help?"), seg("inbound", 1200, 2400, "hello world")},
			vtt:  "WEBVTT\n\n1\n00:00:01.200 --> 00:00:02.400\n<v Caller>hello world\n\n2\n00:00:03.000 --> 00:00:04.500\n<v Agent>How can I help?\n",
			srt:  "1\n00:00:01,200 --> 00:00:02,400\nCaller: hello world\n\n2\n00:00:03,000 --> 00:00:04,500\nAgent: How can I help?\n",
		},
		{
			name: "hours and milliseconds",
			segs: []bridge.Segment{seg("inbound", 3_723_004, 363_599_999, "long")},
			vtt:  "WEBVTT\n\n1\n01:02:03.004 --> 100:59:59.999\n<v Caller>long\n",
			srt:  "1\n01:02:03,004 --> 100:59:59,999\nCaller: long\n",
		},
		{
			name: "markup escaped in WebVTT only",
			segs: []bridge.Segment{seg("inbound", 0, 900, "a <b> & c --> d")},
			vtt:  "WEBVTT\n\n1\n00:00:00.000 --> 00:00:00.900\n<v Caller>a &lt;b&gt; &amp; c --&gt; d\n",
			srt:  "1\n00:00:00,000 --> 00:00:00,900\nCaller: a <b> & c --> d\n",
		},
		{
			name: "line breaks and blank text",
			segs: []bridge.Segment{seg("inbound", 0, 900, "one\n\ntwo\r\n three "), seg("outbound", 100, 200, " \n ")},
			vtt:  "WEBVTT\n\n1\n00:00:00.000 --> 00:00:00.900\n<v Caller>one two three\n",
			srt:  "1\n00:00:00,000 --> 00:00:00,900\nCaller: one two three\n",
		},
		{
			name: "end not after start, negative start",
			segs: []bridge.Segment{seg("inbound", 5000, 5000, "x"), seg("outbound", -20, 300, "y")},
			vtt:  "WEBVTT\n\n1\n00:00:00.000 --> 00:00:00.300\n<v Agent>y\n\n2\n00:00:05.000 --> 00:00:06.000\n<v Caller>x\n",
			srt:  "1\n00:00:00,000 --> 00:00:00,300\nAgent: y\n\n2\n00:00:05,000 --> 00:00:06,000\nCaller: x\n",
		},
		{
			name: "UTF-8 kept, invalid bytes replaced, unlabelled track",
			segs: []bridge.Segment{seg("mixed", 0, 1000, "Grüße, José \xff!")},
			vtt:  "WEBVTT\n\n1\n00:00:00.000 --> 00:00:01.000\nGrüße, José \uFFFD!\n",
			srt:  "1\n00:00:00,000 --> 00:00:01,000\nGrüße, José \uFFFD!\n",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cues := cuesOf(tc.segs, label)
			var vtt, srt bytes.Buffer
			writeVTT(&vtt, cues)
			writeSRT(&srt, cues)
			require.Equal(t, tc.vtt, vtt.String())
			require.Equal(t, tc.srt, srt.String())
		})
	}
}

func TestAttachmentName(t *testing.T) {
	cases := []struct{ name, id, want string }{
		{"safe id kept", "CA123", "CA123.vtt"},
		{"quotes, slashes and spaces replaced", `a"b/c\d e`, "a_b_c_d_e.vtt"},
		{"no leading dot", "..hidden", "hidden.vtt"},
		{"empty", "", "call.vtt"},
		{"no header injection", "\r\nX-Evil: 1", "__X-Evil__1.vtt"},
		{"bounded length", strings.Repeat("é", 200), strings.Repeat("_", 100) + ".vtt"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, attachmentName(tc.id, "vtt"))
		})
	}
}

// memStore is a bridge.Store holding ended calls in memory.
type memStore struct {
	recs []bridge.CallRecord
	docs map[string]any // call id + "/" + name
}

func (m *memStore) Open(string) (bridge.CallFiles, error) { return nil, errors.New("read-only") }
func (m *memStore) OpenTrack(string, string) (io.ReadSeekCloser, error) {
	return nil, os.ErrNotExist
}
func (m *memStore) ReadJSONLines(string, string, func([]byte) error) error { return nil }

func (m *memStore) ReadJSON(id, name string, v any) error {
	d, ok := m.docs[id+"/"+name]
	if !ok {
		return os.ErrNotExist
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func (m *memStore) Scan(fn func([]byte, func() (map[string]int64, error))) error {
	for _, r := range m.recs {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		fn(b, func() (map[string]int64, error) { return nil, nil })
	}
	return nil
}

var _ bridge.Store = (*memStore)(nil)

// dashboardApp serves one ended call with a two-line transcript.
func dashboardApp(t *testing.T, cfg Config, id string) *fiber.App {
	t.Helper()
	ended := time.Date(2026, 11, 21, 10, 3, 10, 0, time.UTC)
	st := &memStore{
		recs: []bridge.CallRecord{{CallID: id, Provider: "twilio", Status: bridge.StatusEnded, StartedAt: ended.Add(-time.Minute), EndedAt: &ended}},
		docs: map[string]any{id + "/transcript.json": bridge.Transcript{CallID: id, Tracks: []string{"inbound", "outbound"}, Segments: []bridge.Segment{
			{Track: "outbound", SegmentID: "outbound-1", StartMs: 2500, EndMs: 3000, Text: "Hi, how can I help?"},
			{Track: "inbound", SegmentID: "inbound-1", StartMs: 500, EndMs: 1700, Text: "Hello — it's Zoë"},
		}}},
	}
	reg := bridge.NewRegistry(bridge.Config{Store: st, Log: zerolog.Nop()})
	_, err := reg.Load()
	require.NoError(t, err)
	cfg.AllowedHosts = append(cfg.AllowedHosts, "example.com") // httptest.NewRequest's Host
	return NewApp(cfg, Deps{Registry: reg, Log: zerolog.Nop()})
}

func do(t *testing.T, app *fiber.App, path string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := app.Test(req, -1)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func TestCaptionRoutes(t *testing.T) {
	const id = "CA 1/2"
	// Anonymous: this is about the caption formats, not access.
	app := dashboardApp(t, Config{AllowAnonymous: true, InboundLabel: "Customer", OutboundLabel: "Rep"}, id)
	esc := "CA%201%2F2"
	cases := []struct {
		name, path  string
		status      int
		ctype, body string
		disposition string
	}{
		{"webvtt", "/api/calls/" + esc + "/transcript.vtt", 200, "text/vtt; charset=utf-8",
			"WEBVTT\n\n1\n00:00:00.500 --> 00:00:01.700\n<v Customer>Hello — it's Zoë\n\n2\n00:00:02.500 --> 00:00:03.000\n<v Rep>Hi, how can I help?\n",
			`attachment; filename="CA_1_2.vtt"`},
		{"subrip", "/api/calls/" + esc + "/transcript.srt", 200, "application/x-subrip; charset=utf-8",
			"1\n00:00:00,500 --> 00:00:01,700\nCustomer: Hello — it's Zoë\n\n2\n00:00:02,500 --> 00:00:03,000\nRep: Hi, how can I help?\n",
			`attachment; filename="CA_1_2.srt"`},
		{"json still served", "/api/calls/" + esc + "/transcript", 200, "application/json", `"segment_id":"inbound-1"`, ""},
		{"unknown call", "/api/calls/nope/transcript.vtt", 404, "application/json", "not found", ""},
		{"unknown format", "/api/calls/" + esc + "/transcript.txt", 404, "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, app, tc.path, nil)
			require.Equal(t, tc.status, resp.StatusCode, body)
			require.Contains(t, resp.Header.Get("Content-Type"), tc.ctype)
			if tc.disposition != "" {
				require.Equal(t, tc.body, body)
			} else {
				require.Contains(t, body, tc.body)
			}
			require.Equal(t, tc.disposition, resp.Header.Get("Content-Disposition"))
		})
	}
}

func TestDashboardConfigAndAccess(t *testing.T) {
	const id, token = "CA1", "tok"
	open := dashboardApp(t, Config{AllowAnonymous: true}, id)
	resp, body := do(t, open, "/api/config", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var cfg dashboardConfig
	require.NoError(t, json.Unmarshal([]byte(body), &cfg))
	require.Equal(t, "Caller", cfg.InboundLabel, "default label")
	require.Equal(t, "Agent", cfg.OutboundLabel)
	require.False(t, cfg.TokenRequired)
	require.NotEmpty(t, cfg.Version)

	locked := dashboardApp(t, Config{APIToken: token, InboundLabel: "Patient", OutboundLabel: "Nurse"}, id)
	html := map[string]string{"Accept": "text/html,application/xhtml+xml"}
	cases := []struct {
		name   string
		path   string
		hdr    map[string]string
		status int
		ctype  string
		body   string
	}{
		{"page without token explains in HTML", "/", html, 401, "text/html", "Access token needed"},
		{"asset without token", "/app.js", nil, 401, "application/json", "a valid API token is required"},
		{"api without token answers JSON even to browsers", "/api/calls", html, 401, "application/json", "a valid API token is required"},
		{"captions without token", "/api/calls/CA1/transcript.srt", nil, 401, "application/json", "token"},
		{"config with bearer", "/api/config", map[string]string{"Authorization": "Bearer " + token}, 200, "application/json", `"inbound_label":"Patient","outbound_label":"Nurse","token_required":true`},
		{"page with cookie", "/", map[string]string{"Cookie": TokenCookie + "=" + token, "Accept": "text/html"}, 200, "text/html", "<title>Call captions</title>"},
		{"captions with cookie", "/api/calls/CA1/transcript.srt", map[string]string{"Cookie": TokenCookie + "=" + token}, 200, "application/x-subrip", "Patient: Hello"},
		{"missing asset is not found", "/nope.html", map[string]string{"Cookie": TokenCookie + "=" + token, "Accept": "text/html"}, 404, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, locked, tc.path, tc.hdr)
			require.Equal(t, tc.status, resp.StatusCode, body)
			require.Contains(t, resp.Header.Get("Content-Type"), tc.ctype)
			require.Contains(t, body, tc.body)
		})
	}

	// The error page's only style is allowed by its hash, nothing else.
	resp, body = do(t, locked, "/", html)
	csp := resp.Header.Get("Content-Security-Policy")
	style := regexp.MustCompile(`(?s)<style>(.*)</style>`).FindStringSubmatch(body)
	require.NotNil(t, style)
	sum := sha256.Sum256([]byte(style[1]))
	require.Contains(t, csp, "style-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
	require.Contains(t, csp, "default-src 'none'")
	require.NotContains(t, body, "<script")
	require.Contains(t, body, `<form method="get" action="/">`)
}
