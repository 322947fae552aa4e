package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/fasthttp/websocket"
	"github.com/rs/zerolog"
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

// TestSecretsNeverLogged runs a bridge with every kind of secret set,
// logging at debug level into a buffer, and uses each secret, right and
// wrong, in every way it is accepted: the API token in a header, the query
// and the cookie (API, dashboard, caption sockets, webhooks); media
// sockets with a path secret, a bearer token, Basic auth and a Twilio
// signature; status callbacks and stream instructions with a path secret
// and with Twilio and SignalWire signatures. Then no secret, no wrong
// guess and no credential derived from them (the Basic header, each
// signature) may appear anywhere in the log, nor in the banner.
//
// That this test catches a leak was checked by hand: logging the request
// path in the media socket refusal makes it fail on the path secret.
func TestSecretsNeverLogged(t *testing.T) {
	cfg := testConfig(t)
	cfg.PublicURL = "https://bridge.example.com"
	cfg.AllowAnonymous = false
	cfg.APIToken = "api-" + randomHex(t)
	cfg.Providers.MediaBearerToken = "bearer-" + randomHex(t)
	cfg.Providers.MediaPathSecret = "path-" + randomHex(t)
	cfg.Providers.ProviderPathSecrets = map[string]string{"plivo": "plivo-" + randomHex(t)}
	cfg.Providers.ProviderBearerTokens = map[string]string{"signalwire": "swbearer-" + randomHex(t)}
	cfg.Providers.TwilioAuthToken = "twilio" + randomHex(t)
	cfg.Providers.SignalWireSigningKey = "PSK" + randomHex(t)
	exoUser, exoPass := "exouser"+randomHex(t)[:12], "exopass"+randomHex(t)
	cfg.Providers.ExotelBasicAuth = exoUser + ":" + exoPass
	require.NoError(t, cfg.Validate())
	wrong := "guess-" + randomHex(t)
	secrets := []string{cfg.APIToken, cfg.Providers.MediaBearerToken, cfg.Providers.MediaPathSecret,
		cfg.Providers.ProviderPathSecrets["plivo"], cfg.Providers.ProviderBearerTokens["signalwire"],
		cfg.Providers.TwilioAuthToken, cfg.Providers.SignalWireSigningKey, exoUser, exoPass, wrong}
	// Credentials derived from the secrets: whatever a request carried.
	basic := func(user, pass string) string {
		return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	}
	derived := []string{basic(exoUser, exoPass), basic(exoUser, wrong)}
	twSign := func(key, u string, form url.Values) string {
		s := twilioSign(key, u, form)
		derived = append(derived, s, url.QueryEscape(s))
		return s
	}
	swSign := func(key, u, body string) string {
		m := hmac.New(sha1.New, []byte(key))
		m.Write([]byte(u + body))
		s := hex.EncodeToString(m.Sum(nil))
		derived = append(derived, s)
		return s
	}

	// Each part runs against a bridge of its own, so that the sampling of
	// refusal logs (a burst of 10 a minute) lets every refusal through and
	// the test can check that it did. The whole log, shutdown included, is
	// searched once the bridge has stopped.
	var base string
	start := func(t *testing.T, wantLines ...string) {
		logs := &logBuffer{}
		log := zerolog.New(logs).Level(zerolog.DebugLevel).With().Timestamp().Logger()
		_, base = startBridgeWith(t, cfg, log, func() {
			all := logs.String()
			if t.Failed() {
				t.Logf("bridge log:\n%s", all)
			}
			for i := 0; i < len(wantLines); i += 2 {
				n, _ := strconv.Atoi(wantLines[i+1])
				require.Len(t, logs.lines(wantLines[i]), n, "every %q was logged", wantLines[i])
			}
			for _, s := range append(secrets, derived...) {
				require.NotContains(t, all, s, "a secret or a credential reached the log")
			}
		})
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path, body string, hdr map[string]string) int {
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		require.NoError(t, err)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := noRedirect.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	withToken := func(t *testing.T, base, path string, v any) int {
		return getJSON(t, base, path+"?token="+url.QueryEscape(cfg.APIToken), v)
	}

	t.Run("API token", func(t *testing.T) {
		start(t)
		ws := "ws" + strings.TrimPrefix(base, "http")
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
			require.Equal(t, tc.want, do(http.MethodGet, tc.path, "", tc.hdr), "%s %v", tc.path, tc.hdr)
		}
		require.Equal(t, authFailures+4, metric(t, base, `bridge_auth_failures_total{scheme="api-token"}`), "refusals are counted")

		sub := dial(t, base, "/ws/captions?call=CAsec0000000000000000000000000001&token="+cfg.APIToken, nil)
		require.NoError(t, sub.Close())
		_, resp, err := websocket.DefaultDialer.Dial(ws+"/ws/captions?token="+wrong, nil)
		require.ErrorIs(t, err, websocket.ErrBadHandshake)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		resp.Body.Close()
	})

	t.Run("media sockets", func(t *testing.T) {
		start(t, "media socket refused before upgrade", "8")
		twilioMediaURL := "wss://bridge.example.com/media/twilio"
		accepted := []struct {
			path string
			hdr  http.Header
			call bool // play a whole call through it
		}{
			{"/media/twilio/" + cfg.Providers.MediaPathSecret, nil, true},
			{"/media/s/" + cfg.Providers.MediaPathSecret, nil, true},
			{"/media/twilio", http.Header{"Authorization": {"Bearer " + cfg.Providers.MediaBearerToken}}, true},
			{"/media/twilio", http.Header{"X-Twilio-Signature": {twSign(cfg.Providers.TwilioAuthToken, twilioMediaURL, nil)}}, true},
			{"/media/plivo/" + cfg.Providers.ProviderPathSecrets["plivo"], nil, false},
			{"/media/signalwire", http.Header{"Authorization": {"Bearer " + cfg.Providers.ProviderBearerTokens["signalwire"]}}, false},
			{"/media/exotel", http.Header{"Authorization": {"Basic " + basic(exoUser, exoPass)}}, false},
		}
		for i, tc := range accepted {
			status, c := tryDial(t, base, tc.path, tc.hdr)
			require.Equal(t, http.StatusSwitchingProtocols, status, tc.path)
			if !tc.call {
				require.NoError(t, c.Close())
				continue
			}
			sid := fmt.Sprintf("CA%032x", 0x5ec0+i)
			send(t, c, twilioStart(sid, "MZ"+sid[2:], []string{"inbound"}, map[string]string{"note": "hello"}),
				twilioMedia("MZ"+sid[2:], "inbound", 2, 1, 0, mulawFrame(tone, 0, 160)), twilioStop("MZ"+sid[2:], sid, 3))
			require.Equal(t, bridge.ReasonStop, waitEndedVia(t, withToken, base, sid).Reason)
		}
		refused := []struct {
			path string
			hdr  http.Header
		}{
			{"/media/twilio/" + wrong, nil},
			{"/media/s/" + wrong, nil},
			{"/media/vobiz/" + cfg.Providers.ProviderPathSecrets["plivo"], nil},
			{"/media/twilio", http.Header{"Authorization": {"Bearer " + wrong}}},
			{"/media/telnyx", http.Header{"Authorization": {"Bearer " + cfg.Providers.ProviderBearerTokens["signalwire"]}}},
			{"/media/exotel", http.Header{"Authorization": {"Basic " + basic(exoUser, wrong)}}},
			{"/media/twilio", http.Header{"X-Twilio-Signature": {twSign(wrong, twilioMediaURL, nil)}}},
			{"/media/twilio", http.Header{"X-Twilio-Signature": {twSign(cfg.Providers.TwilioAuthToken, "wss://elsewhere.example.com/media/twilio", nil)}}},
		}
		for _, tc := range refused {
			status, _ := tryDial(t, base, tc.path, tc.hdr)
			require.Contains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, status, "%s %v", tc.path, tc.hdr)
		}
	})

	t.Run("status callbacks and stream instructions", func(t *testing.T) {
		start(t, "webhook refused", "8")
		const callSid = "CA00000000000000000000000000005ecb"
		form := url.Values{"AccountSid": {"AC00000000000000000000000000000000"}, "CallSid": {callSid},
			"StreamSid": {"MZ00000000000000000000000000005ecb"}, "StreamEvent": {"stream-started"}}
		caller := url.Values{"From": {"+14155550100"}, "To": {"+14155550199"}, "CallSid": {callSid}}
		swBody := `{"event_type":"calling.call.stream","params":{"call_id":"` + callSid + `","control_id":"ctl-1","state":"streaming"}}`
		swml := `{"call":{"call_id":"c-1","from":"+14155550100","to":"+14155550199"},"vars":{}}`
		formHdr := func(kv ...string) map[string]string {
			h := map[string]string{"Content-Type": formType}
			for i := 0; i < len(kv); i += 2 {
				h[kv[i]] = kv[i+1]
			}
			return h
		}
		jsonHdr := func(sig string) map[string]string {
			return map[string]string{"Content-Type": "application/json", "X-SignalWire-Signature": sig}
		}
		for _, tc := range []struct {
			path, body string
			hdr        map[string]string
			ok         bool
		}{
			{"/callbacks/twilio", form.Encode(), formHdr("X-Twilio-Signature", twSign(cfg.Providers.TwilioAuthToken, cfg.PublicURL+"/callbacks/twilio", form)), true},
			{"/callbacks/twilio", form.Encode(), formHdr("X-Twilio-Signature", twSign(wrong, cfg.PublicURL+"/callbacks/twilio", form)), false},
			{"/callbacks/signalwire", swBody, jsonHdr(swSign(cfg.Providers.SignalWireSigningKey, cfg.PublicURL+"/callbacks/signalwire", swBody)), true},
			{"/callbacks/signalwire", swBody, jsonHdr(swSign(wrong, cfg.PublicURL+"/callbacks/signalwire", swBody)), false},
			{"/callbacks/plivo/" + cfg.Providers.MediaPathSecret, "CallUUID=" + callSid + "&Event=StartStream", formHdr(), true},
			{"/callbacks/plivo/" + cfg.Providers.ProviderPathSecrets["plivo"], "CallUUID=" + callSid + "&Event=StopStream", formHdr(), true},
			{"/callbacks/plivo/" + wrong, "CallUUID=" + callSid, formHdr(), false},
			{"/callbacks/plivo", "CallUUID=" + callSid + "&Event=StartStream", formHdr("Authorization", "Bearer "+cfg.APIToken), true},
			{"/callbacks/plivo", "CallUUID=" + callSid, formHdr("Authorization", "Bearer "+wrong), false},
			{"/instructions/twilio", caller.Encode(), formHdr("X-Twilio-Signature", twSign(cfg.Providers.TwilioAuthToken, cfg.PublicURL+"/instructions/twilio", caller)), true},
			{"/instructions/twilio", caller.Encode(), formHdr("X-Twilio-Signature", twSign(wrong, cfg.PublicURL+"/instructions/twilio", caller)), false},
			{"/instructions/swml", swml, jsonHdr(swSign(cfg.Providers.SignalWireSigningKey, cfg.PublicURL+"/instructions/swml", swml)), true},
			{"/instructions/swml", swml, jsonHdr(swSign(wrong, cfg.PublicURL+"/instructions/swml", swml)), false},
			{"/instructions/signalwire/" + cfg.Providers.MediaPathSecret, caller.Encode(), formHdr(), true},
			{"/instructions/plivo/" + cfg.Providers.ProviderPathSecrets["plivo"], caller.Encode(), formHdr(), true},
			{"/instructions/plivo/" + wrong, caller.Encode(), formHdr(), false},
			{"/instructions/vobiz/" + cfg.Providers.ProviderPathSecrets["plivo"], caller.Encode(), formHdr(), false},
		} {
			status := do(http.MethodPost, tc.path, tc.body, tc.hdr)
			if tc.ok {
				require.Equal(t, http.StatusOK, status, "%s %v", tc.path, tc.hdr)
			} else {
				require.Contains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, status, "%s %v", tc.path, tc.hdr)
			}
		}
	})

	// The banner of a service (stdout is not a terminal) keeps the token
	// out of the dashboard link.
	var out bytes.Buffer
	printBanner(&out, cfg, "127.0.0.1:8080", "")
	require.Contains(t, out.String(), "dashboard:")
	for _, s := range secrets {
		require.NotContains(t, out.String(), s)
	}
}
