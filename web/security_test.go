package web

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/bridge/provider"
	"github.com/callcaptions/bridge/recorder"
)

// securityApp is the app over a registry of calls in data. Without a
// token it serves anonymously: those tests are about other things.
func securityApp(t *testing.T, cfg Config) (app *fiber.App, reg *bridge.Registry, data string) {
	t.Helper()
	cfg.AllowAnonymous = cfg.APIToken == ""
	cfg.AllowedHosts = append(cfg.AllowedHosts, "example.com") // httptest.NewRequest's Host
	data = t.TempDir()
	store, err := recorder.NewStore(data)
	require.NoError(t, err)
	hub := NewHub(HubConfig{}, zerolog.Nop())
	reg = bridge.NewRegistry(bridge.Config{Store: fuzzStore{store}, Publisher: hub, Log: zerolog.Nop()})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		reg.Shutdown(ctx)
		hub.Close()
	})
	return NewApp(cfg, Deps{Registry: reg, Hub: hub, Log: zerolog.Nop()}), reg, data
}

// recordCall plays a short one-track call into reg and waits until it ended.
func recordCall(t *testing.T, reg *bridge.Registry, id string) {
	t.Helper()
	s, err := reg.StartStream(provider.Twilio, &provider.Start{CallID: id, StreamID: "MZsec", Tracks: []string{"inbound"},
		Format: provider.Format{Encoding: provider.PCMU, SampleRate: 8000, Channels: 1}})
	require.NoError(t, err)
	ev := provider.Event{Kind: provider.KindMedia, Track: "inbound", Payload: bytes.Repeat([]byte{0x7f}, 160)}
	require.NoError(t, s.Media(&ev))
	s.End(bridge.ReasonStop, nil)
	require.Eventually(t, func() bool {
		rec, ok := reg.Record(id)
		return ok && rec.Status == bridge.StatusEnded
	}, 10*time.Second, 5*time.Millisecond)
}

// listen serves app on a random loopback port until the test ends and
// returns its host:port.
func listen(t *testing.T, app *fiber.App) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- app.Listener(BatchListener(ln)) }()
	t.Cleanup(func() {
		require.NoError(t, app.ShutdownWithTimeout(5*time.Second))
		<-served
	})
	return ln.Addr().String()
}

func fetch(t *testing.T, app *fiber.App, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := app.Test(req, 10_000)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	resp.Body.Close()
	return resp, body
}

// TestNoCORSByDefault: no route answers a cross-origin request or
// preflight with CORS headers, so other sites' pages cannot read the API.
func TestNoCORSByDefault(t *testing.T) {
	app, _, _ := securityApp(t, Config{})
	for _, path := range []string{"/api/calls", "/api/calls/CA1", "/metrics", "/healthz", "/", "/ws/captions"} {
		for _, method := range []string{http.MethodOptions, http.MethodGet} {
			req := httptest.NewRequest(method, path, nil)
			req.Header.Set("Origin", "https://evil.example")
			req.Header.Set("Access-Control-Request-Method", "GET")
			resp, _ := fetch(t, app, req)
			for k := range resp.Header {
				require.False(t, strings.HasPrefix(strings.ToLower(k), "access-control-"), "%s %s answered %s", method, path, k)
			}
		}
	}
}

// TestCaptionSocketChecksOrigin: a browser page of another origin cannot
// open the caption socket; the bridge's own pages, configured origins and
// non-browser clients (no Origin) can.
func TestCaptionSocketChecksOrigin(t *testing.T) {
	app, _, _ := securityApp(t, Config{PublicURL: "https://captions.example.com", AllowedOrigins: []string{"https://crm.example.com"}})
	host := listen(t, app)
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"http://" + host, true},
		{"https://captions.example.com", true},
		{"https://crm.example.com", true},
		{"https://evil.example", false},
		{"null", false},
		{"http://" + host + ".evil.example", false},
		{"https://captions.example.com.evil.example", false},
		{"http://localhost", false},
	} {
		t.Run("origin "+tc.origin, func(t *testing.T) {
			hdr := http.Header{}
			if tc.origin != "" {
				hdr.Set("Origin", tc.origin)
			}
			c, resp, err := fws.DefaultDialer.Dial("ws://"+host+"/ws/captions?call=CA1", hdr)
			if resp != nil {
				resp.Body.Close()
			}
			if tc.ok {
				require.NoError(t, err)
				c.Close()
				return
			}
			require.ErrorIs(t, err, fws.ErrBadHandshake)
			require.Equal(t, http.StatusForbidden, resp.StatusCode)
		})
	}
}

// TestRecordingsOnlyForKnownCallsAndTracks: the recordings route serves
// the WAV of a known call's known track and nothing else: no other file of
// the data directory, whatever the id or track name says.
func TestRecordingsOnlyForKnownCallsAndTracks(t *testing.T) {
	app, reg, data := securityApp(t, Config{})
	recordCall(t, reg, "CAsec1")
	recordCall(t, reg, "../../hostile")
	const secret = "RIFF-SECRET-NOT-A-RECORDING"
	for _, p := range []string{"secret.wav", "calls/secret.wav", "calls/CAsec1/extra.wav", "calls/inbound.wav"} {
		require.NoError(t, os.WriteFile(filepath.Join(data, p), []byte(secret), 0o644))
	}

	for _, tc := range []struct {
		path string
		want int
	}{
		{"/api/calls/CAsec1/recordings/inbound.wav", http.StatusOK},
		{"/api/calls/..%2F..%2Fhostile/recordings/inbound.wav", http.StatusOK}, // its own, safely stored
		{"/api/calls/CAsec1/recordings/outbound.wav", http.StatusNotFound},
		{"/api/calls/CAsec1/recordings/extra.wav", http.StatusNotFound},
		{"/api/calls/CAsec1/recordings/call.json", http.StatusNotFound},
		{"/api/calls/CAsec1/recordings/..%2Fsecret.wav", http.StatusNotFound},
		{"/api/calls/CAsec1/recordings/..%2F..%2Fsecret.wav", http.StatusNotFound},
		{"/api/calls/CAsec1/recordings/%2E%2E%2F..%2Fsecret.wav", http.StatusNotFound},
		{"/api/calls/CAsec1/recordings/inbound.wav%00.json", http.StatusNotFound},
		{"/api/calls/unknown/recordings/inbound.wav", http.StatusNotFound},
		{"/api/calls/..%2Fsecret/recordings/inbound.wav", http.StatusNotFound},
		{"/api/calls/..%2F..%2Fsecret/recordings/inbound.wav", http.StatusNotFound},
		{"/api/calls/calls/recordings/secret.wav", http.StatusNotFound},
		{"/api/calls/%2E%2E/recordings/secret.wav", http.StatusNotFound},
		{"/api/calls/CAsec1/recordings/..%5C..%5Csecret.wav", http.StatusNotFound},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := fetch(t, app, httptest.NewRequest(http.MethodGet, tc.path, nil))
			require.NotContains(t, string(body), secret)
			if tc.want == http.StatusOK {
				require.Equal(t, http.StatusOK, resp.StatusCode)
				require.Equal(t, "audio/wav", resp.Header.Get("Content-Type"))
				require.Equal(t, "RIFF", string(body[:4]))
				return
			}
			require.GreaterOrEqual(t, resp.StatusCode, 400, "refused")
			require.Less(t, resp.StatusCode, 500)
		})
	}
}

// TestDashboardSecurityHeaders: the dashboard and the API carry a strict
// content security policy and the usual hardening headers, and the
// dashboard needs nothing the policy forbids (no inline script or style).
func TestDashboardSecurityHeaders(t *testing.T) {
	app, _, _ := securityApp(t, Config{APIToken: "tok"})
	for _, path := range []string{"/?token=tok", "/index.html?token=tok", "/api/calls?token=tok", "/api/calls", "/nowhere"} {
		t.Run(path, func(t *testing.T) {
			resp, _ := fetch(t, app, httptest.NewRequest(http.MethodGet, path, nil))
			h := resp.Header
			require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"))
			require.Equal(t, "DENY", h.Get("X-Frame-Options"))
			require.Equal(t, "no-referrer", h.Get("Referrer-Policy"))
			csp := map[string]string{}
			for _, d := range strings.Split(h.Get("Content-Security-Policy"), ";") {
				if name, val, _ := strings.Cut(strings.TrimSpace(d), " "); name != "" {
					csp[name] = val
				}
			}
			require.Equal(t, "'self'", csp["default-src"])
			require.Equal(t, "'self'", csp["script-src"])
			require.Equal(t, "'none'", csp["frame-ancestors"])
			require.Equal(t, "'none'", csp["base-uri"])
			for name, val := range csp {
				require.NotContains(t, val, "unsafe-", "%s allows %s", name, val)
				require.NotContains(t, val, "*", "%s allows any origin", name)
			}
		})
	}

	// The dashboard works under that policy: scripts and styles come from
	// files of its own, never inline.
	inline := regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]|<style|\son[a-z]+\s*=|\sstyle\s*=|javascript:`)
	scriptTag := regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>`)
	pages, err := filepath.Glob(filepath.Join("static", "*.html"))
	require.NoError(t, err)
	require.NotEmpty(t, pages)
	for _, p := range pages {
		b, err := staticFiles.ReadFile(filepath.ToSlash(p))
		require.NoError(t, err)
		require.Empty(t, inline.FindAllString(string(b), -1), "%s has inline script or style the policy blocks", p)
		for _, tag := range scriptTag.FindAllString(string(b), -1) {
			require.Contains(t, tag, "src=", "%s: every script is a file", p)
		}
	}
}

// TestRequestBodyLimit: request bodies over the limit are refused before
// any handler reads them, with the default limit and a configured one.
func TestRequestBodyLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int
		size  int
		want  int
	}{
		{"default limit (1 MiB)", 0, 1<<20 + 1, http.StatusRequestEntityTooLarge},
		{"configured limit", 4096, 4097, http.StatusRequestEntityTooLarge},
		{"under the limit", 4096, 100, http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app, _, _ := securityApp(t, Config{BodyLimit: tc.limit})
			host := listen(t, app)
			// The headers announce the body; it is sent only when it fits,
			// which shows the refusal comes before the body is read.
			conn, err := net.Dial("tcp", host)
			require.NoError(t, err)
			defer conn.Close()
			req := fmt.Sprintf("POST /api/calls HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", host, tc.size)
			if tc.want != http.StatusRequestEntityTooLarge {
				req += strings.Repeat(" ", tc.size)
			}
			_, err = conn.Write([]byte(req))
			require.NoError(t, err)
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, tc.want, resp.StatusCode)
		})
	}
}
