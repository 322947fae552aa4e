package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
	"github.com/callcaptions/bridge/recorder"
)

// refusedUpgrade dials url, whose upgrade must be refused, and returns the
// status it was refused with.
func refusedUpgrade(t *testing.T, url string, hdr http.Header) int {
	t.Helper()
	c, resp, err := fws.DefaultDialer.Dial(url, hdr)
	if c != nil {
		c.Close()
	}
	require.ErrorIs(t, err, fws.ErrBadHandshake)
	resp.Body.Close()
	return resp.StatusCode
}

// accessApp serves cfg exactly as given (no test defaults) on a loopback
// port, over a registry of calls in a temporary directory.
func accessApp(t *testing.T, cfg Config) (host string, reg *bridge.Registry, m promSet, data string) {
	t.Helper()
	data = t.TempDir()
	store, err := recorder.NewStore(data)
	require.NoError(t, err)
	hub := NewHub(HubConfig{}, zerolog.Nop())
	m = newPromSet(hub)
	reg = bridge.NewRegistry(bridge.Config{Store: fuzzStore{store}, Publisher: hub, Metrics: m.bridge, Log: zerolog.Nop()})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		reg.Shutdown(ctx)
		hub.Close()
	})
	return listen(t, NewApp(cfg, Deps{Registry: reg, Hub: hub, Metrics: m.web, Gatherer: m, Log: zerolog.Nop()})), reg, m, data
}

// rawGet sends a GET for path to addr with the Host header exactly as
// given (net/http would refuse to send a malformed one) and returns the
// status and body.
func rawGet(t *testing.T, addr, host, path string, hdr map[string]string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n"
	for k, v := range hdr {
		req += k + ": " + v + "\r\n"
	}
	_, err = conn.Write([]byte(req + "\r\n"))
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestNothingAnonymousByDefault: with no token configured and no explicit
// opt-out, the dashboard, the REST API (recordings included) and the
// caption sockets refuse everyone; health and metrics still answer.
func TestNothingAnonymousByDefault(t *testing.T) {
	addr, reg, _, _ := accessApp(t, Config{})
	recordCall(t, reg, "CAanon1")
	for _, path := range []string{"/api/calls", "/", "/index.html", "/api/calls/CAanon1", "/api/calls/CAanon1/recordings/inbound.wav", "/api/calls/CAanon1/transcript", "/api/config"} {
		t.Run(path, func(t *testing.T) {
			status, body := rawGet(t, addr, addr, path, nil)
			require.Equal(t, http.StatusUnauthorized, status, body)
			require.NotContains(t, body, "RIFF")
			require.NotContains(t, body, "CAanon1")
		})
	}
	t.Run("/ws/captions", func(t *testing.T) {
		require.Equal(t, http.StatusUnauthorized, refusedUpgrade(t, "ws://"+addr+"/ws/captions?call=CAanon1", nil))
	})
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		status, body := rawGet(t, addr, addr, path, nil)
		require.Equal(t, http.StatusOK, status, "%s: %s", path, body)
	}
}

// TestAllowAnonymousOpensEverything: the explicit opt-out serves the
// dashboard, the API and the caption sockets without a token.
func TestAllowAnonymousOpensEverything(t *testing.T) {
	addr, reg, _, _ := accessApp(t, Config{AllowAnonymous: true})
	recordCall(t, reg, "CAanon2")
	for _, path := range []string{"/api/calls", "/", "/api/calls/CAanon2/recordings/inbound.wav"} {
		status, body := rawGet(t, addr, addr, path, nil)
		require.Equal(t, http.StatusOK, status, "%s: %s", path, body)
	}
	c, resp, err := fws.DefaultDialer.Dial("ws://"+addr+"/ws/captions?call=CAanon2", nil)
	require.NoError(t, err)
	resp.Body.Close()
	c.Close()
}

// TestHostAllowList: only the bridge's own names reach the dashboard, the
// API and the caption sockets, whatever the token: loopback names, the
// public URL's host and the allowed hosts, compared without case or port.
// A foreign or malformed Host gets 403 naming the fix. Health, metrics and
// media sockets answer any Host.
func TestHostAllowList(t *testing.T) {
	const tok = "host-test-token"
	addr, _, m, _ := accessApp(t, Config{APIToken: tok, PublicURL: "https://Captions.Example.com/bridge",
		AllowedHosts: []string{"bridge.internal:9000", "10.1.2.3", "[2001:db8::1]", "Mixed.Case.Example"}})
	bearer := map[string]string{"Authorization": "Bearer " + tok}
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"127.0.0.1", true},
		{addr, true},
		{"127.9.8.7:1", true},
		{"localhost", true},
		{"LOCALHOST:8080", true},
		{"app.localhost", true},
		{"[::1]", true},
		{"[::1]:8080", true},
		{"captions.example.com", true},
		{"CAPTIONS.example.com:443", true},
		{"captions.example.com.", true},
		{"bridge.internal", true},
		{"bridge.internal:1234", true},
		{"10.1.2.3:80", true},
		{"[2001:DB8::1]:443", true},
		{"mixed.case.example", true},

		{"evil.example", false},
		{"evil.example:" + strings.Split(addr, ":")[1], false},
		{"captions.example.com.evil.example", false},
		{"localhost.evil.example", false},
		{"127.0.0.1.nip.io", false},
		{"10.1.2.4", false},
		{"0.0.0.0", false},
		{"[::2]", false},
		{"", false},
		{"[::1", false},
		{"::1", false},
		{"[127.0.0.1]", false},
		{"localhost:80:80", false},
		{"localhost:http", false},
		{"localhost:", false},
		{"local host", false},
		{"localhost/../", false},
		{"user@localhost", false},
		{strings.Repeat("a.", 200) + "localhost", false},
	} {
		t.Run(fmt.Sprintf("Host %q", tc.host), func(t *testing.T) {
			for _, path := range []string{"/api/calls", "/"} {
				status, body := rawGet(t, addr, tc.host, path, bearer)
				if tc.ok {
					require.Equal(t, http.StatusOK, status, "%s: %s", path, body)
					continue
				}
				require.Equal(t, http.StatusForbidden, status, "%s: %s", path, body)
				if path == "/api/calls" {
					var e apiError
					require.NoError(t, json.Unmarshal([]byte(body), &e), body)
					require.Contains(t, e.Error, "--allowed-hosts")
				}
			}
		})
	}
	require.Positive(t, counterValue(t, m, "bridge_auth_failures_total", "host"), "refused Hosts are counted")

	t.Run("caption socket", func(t *testing.T) {
		hdr := http.Header{"Authorization": {"Bearer " + tok}, "Host": {"evil.example"}}
		require.Equal(t, http.StatusForbidden, refusedUpgrade(t, "ws://"+addr+"/ws/captions", hdr))

		hdr.Set("Host", "captions.example.com")
		c, resp, err := fws.DefaultDialer.Dial("ws://"+addr+"/ws/captions", hdr)
		require.NoError(t, err)
		resp.Body.Close()
		c.Close()
	})
	t.Run("health, metrics and media answer any Host", func(t *testing.T) {
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			status, body := rawGet(t, addr, "evil.example", path, nil)
			require.Equal(t, http.StatusOK, status, "%s: %s", path, body)
		}
		c, resp, err := fws.DefaultDialer.Dial("ws://"+addr+"/media/twilio", http.Header{"Host": {"proxy.provider.example"}})
		require.NoError(t, err)
		resp.Body.Close()
		c.Close()
	})
	t.Run("* allows any Host", func(t *testing.T) {
		any, _, _, _ := accessApp(t, Config{APIToken: tok, AllowedHosts: []string{"*"}})
		status, body := rawGet(t, any, "evil.example", "/api/calls", bearer)
		require.Equal(t, http.StatusOK, status, body)
		status, _ = rawGet(t, any, "bad host", "/api/calls", bearer)
		require.Equal(t, http.StatusForbidden, status, "a malformed Host is refused even then")
	})
}

// TestMediaSocketChecksOrigin: a media socket opened by a web page (it
// carries an Origin of another site, or of a name rebound to the bridge)
// is refused with 403 before the upgrade and no call starts; providers
// send no Origin and are served, as are the bridge's own pages.
func TestMediaSocketChecksOrigin(t *testing.T) {
	addr, reg, m, data := accessApp(t, Config{APIToken: "tok", PublicURL: "https://captions.example.com"})
	start := `{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZorigin","callSid":"%s","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"MZorigin"}`
	port := strings.Split(addr, ":")[1]
	for _, tc := range []struct {
		name, host, origin string
		ok                 bool
	}{
		{"another site", "", "https://evil.example", false},
		{"null origin", "", "null", false},
		{"rebound name", "evil.example:" + port, "http://evil.example:" + port, false},
		{"provider (no Origin)", "", "", true},
		{"the bridge's own page", "", "http://" + addr, true},
		{"the public URL", "", "https://captions.example.com", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := http.Header{}
			if tc.origin != "" {
				hdr.Set("Origin", tc.origin)
			}
			if tc.host != "" {
				hdr.Set("Host", tc.host)
			}
			for _, path := range []string{"/media", "/media/twilio"} {
				call := "CAorigin" + strings.NewReplacer(" ", "", "(", "", ")", "", "'", "").Replace(tc.name) + strings.ReplaceAll(path, "/", "")
				if !tc.ok {
					require.Equal(t, http.StatusForbidden, refusedUpgrade(t, "ws://"+addr+path, hdr))
					require.Zero(t, reg.Active(), "no call started")
					_, known := reg.Record(call)
					require.False(t, known)
					continue
				}
				c, resp, err := fws.DefaultDialer.Dial("ws://"+addr+path, hdr)
				require.NoError(t, err)
				resp.Body.Close()
				if path == "/media/twilio" {
					require.NoError(t, c.WriteMessage(fws.TextMessage, []byte(fmt.Sprintf(start, call))))
					require.Eventually(t, func() bool { _, known := reg.Record(call); return known }, 10*time.Second, 5*time.Millisecond)
				}
				c.Close()
			}
		})
	}
	require.Equal(t, float64(6), counterValue(t, m, "bridge_auth_failures_total", "origin"), "three refusals on two routes are counted")
	entries, err := os.ReadDir(filepath.Join(data, "calls"))
	if err == nil {
		for _, e := range entries {
			require.NotContains(t, e.Name(), "evil", "nothing of a refused socket was written")
		}
	}
}

// counterValue reads one labelled counter from the metrics registry.
func counterValue(t *testing.T, m promSet, name, label string) float64 {
	t.Helper()
	mfs, err := m.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, metric := range mf.GetMetric() {
			for _, lp := range metric.GetLabel() {
				if lp.GetValue() == label {
					return metric.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// FuzzParseHost: any Host header is parsed without a panic, and a name it
// accepts is in canonical form (parsing it again gives it back).
func FuzzParseHost(f *testing.F) {
	for _, s := range []string{"localhost", "LOCALHOST:8080", "[::1]:80", "[::1", "127.0.0.1", "a..b", "x:y:z", "[1.2.3.4]", "captions.example.com.", "", ":80", "[]:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		name, ok := parseHost(h)
		if !ok {
			return
		}
		if strings.Contains(name, ":") {
			name = "[" + name + "]"
		}
		again, ok := parseHost(name)
		if !ok || again != strings.Trim(name, "[]") {
			t.Fatalf("parseHost(%q) = %q, which parses as %q, %v", h, name, again, ok)
		}
	})
}
