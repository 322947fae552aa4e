package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// status GETs base+path with hdr and returns the status code.
func statusOf(t *testing.T, base, path string, hdr map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	require.NoError(t, err)
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// captionStatus is the status of a caption socket handshake on base.
func captionStatus(t *testing.T, base string, hdr http.Header) int {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws/captions?call=CAaccess", hdr)
	if err == nil {
		c.Close()
		return http.StatusSwitchingProtocols
	}
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	resp.Body.Close()
	return resp.StatusCode
}

var bannerLink = regexp.MustCompile(`dashboard:\s+(\S+)`)

// TestGeneratedTokenKeptAcrossRestart: the built binary started without
// --api-token refuses anonymous requests, generates a token into
// <data>/api-token (0600), prints a dashboard link that a browser-like
// client follows to read the API, keeps the token out of its JSON log,
// and reuses the same token after a restart. The tools on the machine
// find it: healthcheck and simulate --captions work against it.
func TestGeneratedTokenKeptAcrossRestart(t *testing.T) {
	bin := buildBridge(t, t.TempDir())
	data := t.TempDir()
	b := startChildArgs(t, bin, data)

	path := filepath.Join(data, "api-token")
	st, err := os.Stat(path)
	require.NoError(t, err, "the token is kept in the data directory")
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	tok := strings.TrimSpace(string(raw))
	require.Regexp(t, `^[0-9a-f]{64}$`, tok, "32 random bytes, hex")

	for _, p := range []string{"/api/calls", "/", "/api/calls/CAaccess/recordings/inbound.wav"} {
		require.Equal(t, http.StatusUnauthorized, statusOf(t, b.base, p, nil), "anonymous %s", p)
	}
	require.Equal(t, http.StatusUnauthorized, captionStatus(t, b.base, nil), "anonymous caption socket")
	require.Equal(t, http.StatusOK, statusOf(t, b.base, "/healthz", nil))

	link := func(c *child) string {
		var m []string
		require.Eventually(t, func() bool {
			m = bannerLink.FindStringSubmatch(c.stdout.String())
			return m != nil
		}, 10*time.Second, 10*time.Millisecond, "banner:\n%s", c.stdout.String())
		return m[1]
	}
	dash := link(b)
	require.Equal(t, b.base+"/?token="+tok, dash, "the banner link carries the token")
	require.Contains(t, b.stdout.String(), path, "the banner says where the token is kept")

	// A browser-like client opens the link: the token moves into the
	// cookie, which then opens the API.
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := browser.Get(dash)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, b.base+"/", resp.Request.URL.String(), "the token left the address bar")
	resp, err = browser.Get(b.base + "/api/calls")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.Contains(t, string(body), `"calls"`)
	require.Equal(t, http.StatusSwitchingProtocols, captionStatus(t, b.base, http.Header{"Authorization": {"Bearer " + tok}}))

	// The tools find the token in the data directory.
	u, err := url.Parse(b.base)
	require.NoError(t, err)
	var out, errOut bytes.Buffer
	require.Equal(t, 0, run([]string{"healthcheck", "--addr", u.Host, "--data", data}, &out, &errOut), errOut.String())
	id := fmt.Sprintf("CAtoken%d", time.Now().UnixNano())
	out.Reset()
	errOut.Reset()
	code := run([]string{"simulate", "--addr", u.Host, "--data", data, "--captions", "--call-id", id, "--duration", "4s", "--speed", "0"}, &out, &errOut)
	require.Equal(t, 0, code, "%s%s", out.String(), errOut.String())
	require.Contains(t, out.String(), "1 completed, 0 failed")
	require.Equal(t, http.StatusOK, statusOf(t, b.base, "/api/calls/"+id, map[string]string{"Authorization": "Bearer " + tok}))

	require.NotContains(t, b.stderr.String(), tok, "the token is never in the JSON log")
	require.NotEmpty(t, b.stderr.lines("API token kept in the data directory"))

	// A restart reuses the token: the link and the cookie keep working.
	b.signal(t, syscall.SIGTERM)
	require.Equal(t, 0, b.wait(t, 30*time.Second))
	b2 := startChildArgs(t, bin, data)
	require.Equal(t, b2.base+"/?token="+tok, link(b2))
	again, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, raw, again)
	require.Equal(t, http.StatusOK, statusOf(t, b2.base, "/api/calls", map[string]string{"Authorization": "Bearer " + tok}))
	require.Equal(t, http.StatusUnauthorized, statusOf(t, b2.base, "/api/calls", nil))
}

// TestTokenFileProblemsStopStartUp: a token file that others may read or
// that holds no token stops the start with an error naming the fix.
func TestTokenFileProblemsStopStartUp(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
	}{
		{"readable by others", "0123456789abcdef0123456789", 0o644, "chmod 600"},
		{"empty", "", 0o600, "does not hold a token"},
		{"garbage", "not a token\x00\xff", 0o600, "does not hold a token"},
		{"too short", "abc", 0o600, "does not hold a token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.AllowAnonymous = false
			path := filepath.Join(cfg.Data, "api-token")
			require.NoError(t, os.WriteFile(path, []byte(tc.content), tc.mode))
			require.NoError(t, os.Chmod(path, tc.mode))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := serve(ctx, cfg, zerolog.Nop(), io.Discard, nil)
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, path)
			after, rerr := os.ReadFile(path)
			require.NoError(t, rerr)
			require.Equal(t, tc.content, string(after), "the file is left for the operator")
		})
	}

	t.Run("a token written by hand is used", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.AllowAnonymous = false
		const tok = "hand-written.token~0123456789"
		require.NoError(t, os.WriteFile(filepath.Join(cfg.Data, "api-token"), []byte(tok+"\n"), 0o600))
		_, base := startBridge(t, cfg)
		require.Equal(t, http.StatusOK, statusOf(t, base, "/api/calls", map[string]string{"Authorization": "Bearer " + tok}))
		require.Equal(t, http.StatusUnauthorized, statusOf(t, base, "/api/calls", nil))
	})
}

// TestAllowAnonymousIsLoud: --allow-anonymous serves without a token, says
// so in the log at every start and in the banner, writes no token file,
// and cannot be combined with --api-token.
func TestAllowAnonymousIsLoud(t *testing.T) {
	cfg := testConfig(t)
	require.True(t, cfg.AllowAnonymous)
	_, base, logs := startBridgeLogs(t, cfg)
	require.Equal(t, http.StatusOK, statusOf(t, base, "/api/calls", nil))
	require.Equal(t, http.StatusOK, statusOf(t, base, "/", nil))
	require.Equal(t, http.StatusSwitchingProtocols, captionStatus(t, base, nil))
	warn := logs.lines(`"level":"warn"`, "--allow-anonymous", "readable by anyone")
	require.Len(t, warn, 1, logs.String())
	_, err := os.Stat(filepath.Join(cfg.Data, "api-token"))
	require.ErrorIs(t, err, os.ErrNotExist, "no token is generated")

	var out bytes.Buffer
	printBanner(&out, cfg, "127.0.0.1:8080", "")
	require.Contains(t, out.String(), "readable by ANYONE who can reach this port")
	require.Contains(t, out.String(), "dashboard:     http://127.0.0.1:8080/\n")

	var errOut bytes.Buffer
	require.Equal(t, 2, run([]string{"--allow-anonymous", "--api-token", "tok"}, &out, &errOut))
	require.Contains(t, errOut.String(), "--allow-anonymous: cannot be combined with --api-token")
}

// TestHostsServedEndToEnd: the bridge answers the dashboard and API only
// under its own names: loopback, the --public-url host, --allowed-hosts
// and a specific --addr host; health answers any.
func TestHostsServedEndToEnd(t *testing.T) {
	const tok = "hosts-token-0123456789"
	cfg := testConfig(t)
	cfg.AllowAnonymous = false
	cfg.APIToken = tok
	cfg.PublicURL = "https://captions.example.com"
	cfg.AllowedHosts = []string{"bridge.lan"}
	_, base := startBridge(t, cfg)
	auth := map[string]string{"Authorization": "Bearer " + tok}
	for _, tc := range []struct {
		host string
		want int
	}{
		{"", http.StatusOK},
		{"localhost:8080", http.StatusOK},
		{"captions.example.com", http.StatusOK},
		{"BRIDGE.LAN:8080", http.StatusOK},
		{"evil.example", http.StatusForbidden},
		{"captions.example.com.evil.example", http.StatusForbidden},
	} {
		hdr := map[string]string{"Authorization": auth["Authorization"]}
		if tc.host != "" {
			hdr["Host"] = tc.host
		}
		require.Equal(t, tc.want, statusOf(t, base, "/api/calls", hdr), "Host %q", tc.host)
		require.Equal(t, tc.want, statusOf(t, base, "/", hdr), "Host %q", tc.host)
		require.Equal(t, http.StatusOK, statusOf(t, base, "/healthz", map[string]string{"Host": "evil.example"}))
	}
	h := http.Header{"Authorization": {"Bearer " + tok}, "Host": {"evil.example"}}
	require.Equal(t, http.StatusForbidden, captionStatus(t, base, h))

	for _, tc := range []struct {
		addr string
		want []string
	}{
		{"10.0.0.5:8080", []string{"bridge.lan", "10.0.0.5"}},
		{"bridge.internal:8080", []string{"bridge.lan", "bridge.internal"}},
		{"0.0.0.0:8080", []string{"bridge.lan"}},
		{"[::]:8080", []string{"bridge.lan"}},
		{":8080", []string{"bridge.lan"}},
	} {
		c := cfg
		c.Addr = tc.addr
		require.Equal(t, tc.want, allowedHosts(c), tc.addr)
	}
}
