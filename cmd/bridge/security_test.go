package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge"
)

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// TestSecretsNeverLogged runs a bridge with an API token and media
// secrets, uses each of them (right and wrong) on every route that takes
// one, and checks that none of them, nor the wrong guesses, ever reaches
// the log (at debug level) or the start-up banner of a service.
func TestSecretsNeverLogged(t *testing.T) {
	cfg := testConfig(t)
	cfg.APIToken = "api-" + randomHex(t)
	cfg.Providers.MediaBearerToken = "bearer-" + randomHex(t)
	cfg.Providers.MediaPathSecret = "path-" + randomHex(t)
	wrong := "guess-" + randomHex(t)
	secrets := []string{cfg.APIToken, cfg.Providers.MediaBearerToken, cfg.Providers.MediaPathSecret, wrong}
	_, base, logs := startBridgeLogs(t, cfg)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string, hdr map[string]string) int {
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		require.NoError(t, err)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := noRedirect.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}

	// The API token, right and wrong, in each place it is accepted.
	authFailures := metric(t, base, `bridge_auth_failures_total{scheme="api-token"}`)
	for _, tc := range []struct {
		path string
		hdr  map[string]string
		want int
	}{
		{"/api/calls", map[string]string{"Authorization": "Bearer " + cfg.APIToken}, http.StatusOK},
		{"/api/calls?token=" + cfg.APIToken, nil, http.StatusOK},
		{"/api/calls", map[string]string{"Cookie": "bridge_token=" + cfg.APIToken}, http.StatusOK},
		{"/?token=" + cfg.APIToken, nil, http.StatusSeeOther},
		{"/api/calls", map[string]string{"Authorization": "Bearer " + wrong}, http.StatusUnauthorized},
		{"/api/calls?token=" + wrong, nil, http.StatusUnauthorized},
		{"/api/calls", map[string]string{"Cookie": "bridge_token=" + wrong}, http.StatusUnauthorized},
		{"/api/calls/" + wrong + "?token=" + cfg.APIToken, nil, http.StatusNotFound},
		{"/?token=" + wrong, nil, http.StatusUnauthorized},
	} {
		require.Equal(t, tc.want, get(tc.path, tc.hdr), "%s %v", tc.path, tc.hdr)
	}
	require.Equal(t, authFailures+4, metric(t, base, `bridge_auth_failures_total{scheme="api-token"}`), "refusals are counted")

	// Caption sockets with the token, and refused without it.
	sub := dial(t, base, "/ws/captions?call=CAsec0000000000000000000000000001&token="+cfg.APIToken, nil)
	_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws/captions?token="+wrong, nil)
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp.Body.Close()

	// Media sockets with the path secret and the bearer token, and with a
	// wrong guess of each.
	for i, path := range []string{"/media/twilio/" + cfg.Providers.MediaPathSecret, "/media/twilio"} {
		hdr := http.Header{}
		if i == 1 {
			hdr.Set("Authorization", "Bearer "+cfg.Providers.MediaBearerToken)
		}
		sid := "CAsec000000000000000000000000000" + string(rune('a'+i))
		c := dial(t, base, path, hdr)
		send(t, c, twilioStart(sid, "MZ"+sid[2:], []string{"inbound"}, map[string]string{"note": "hello"}),
			twilioMedia("MZ"+sid[2:], "inbound", 2, 1, 0, mulawFrame(tone, 0, 160)), twilioStop("MZ"+sid[2:], sid, 3))
		require.Eventually(t, func() bool {
			var rec bridge.CallRecord
			return getJSON(t, base, "/api/calls/"+sid+"?token="+cfg.APIToken, &rec) == http.StatusOK && rec.Reason == bridge.ReasonStop
		}, 10*time.Second, 10*time.Millisecond)
	}
	for _, tc := range []struct {
		path string
		hdr  http.Header
	}{
		{"/media/twilio/" + wrong, nil},
		{"/media/twilio", http.Header{"Authorization": {"Bearer " + wrong}}},
	} {
		c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+tc.path, tc.hdr)
		if c != nil {
			c.Close()
		}
		require.ErrorIs(t, err, websocket.ErrBadHandshake, tc.path)
		require.GreaterOrEqual(t, resp.StatusCode, 400)
		resp.Body.Close()
	}
	require.NoError(t, sub.Close())

	log := logs.String()
	require.NotEmpty(t, logs.lines("media socket refused"), "the refusals were logged, without the secrets")
	for _, s := range secrets {
		require.NotContains(t, log, s)
	}

	// The banner of a service (stdout is not a terminal) keeps the token
	// out of the dashboard link.
	var out bytes.Buffer
	printBanner(&out, cfg, "127.0.0.1:8080", "")
	require.Contains(t, out.String(), "dashboard:")
	for _, s := range secrets {
		require.NotContains(t, out.String(), s)
	}
}
