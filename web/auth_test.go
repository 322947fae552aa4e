package web

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge/provider"
)

// TestTwilioMAC checks the signature against the worked example of
// Twilio's webhook security guide.
func TestTwilioMAC(t *testing.T) {
	params := url.Values{
		"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+12349013030"}, "Digits": {"1234"},
		"From": {"+12349013030"}, "To": {"+18005551212"},
	}
	const u = "https://mycompany.com/myapp.php?foo=1&bar=2"
	got := base64.StdEncoding.EncodeToString(provider.TwilioMAC("12345", u, params))
	require.Equal(t, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", got)

	params.Set("Digits", "9999")
	require.NotEqual(t, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", base64.StdEncoding.EncodeToString(provider.TwilioMAC("12345", u, params)))
	require.Equal(t, provider.TwilioMAC("k", "wss://h/media", nil), provider.TwilioMAC("k", "wss://h/media", url.Values{}), "no body is no parameters")
}

func TestPortVariants(t *testing.T) {
	cases := []struct {
		name string
		u    url.URL
		want []string
	}{
		{"wss without port adds 443", url.URL{Scheme: "wss", Host: "h.example", Opaque: "/media/twilio"},
			[]string{"wss://h.example/media/twilio", "wss://h.example:443/media/twilio"}},
		{"wss with 443 strips it", url.URL{Scheme: "wss", Host: "h.example:443", Opaque: "/media"},
			[]string{"wss://h.example:443/media", "wss://h.example/media"}},
		{"another port stays", url.URL{Scheme: "wss", Host: "h.example:8443", Opaque: "/media"},
			[]string{"wss://h.example:8443/media"}},
		{"ws uses 80", url.URL{Scheme: "ws", Host: "h.example", Opaque: "/m"},
			[]string{"ws://h.example/m", "ws://h.example:80/m"}},
		{"https keeps the query", url.URL{Scheme: "https", Host: "h.example", Opaque: "/i/twilio", RawQuery: "dial=%2B1555"},
			[]string{"https://h.example/i/twilio?dial=%2B1555", "https://h.example:443/i/twilio?dial=%2B1555"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, portVariants(&tc.u))
		})
	}
}

func TestParseAuthorization(t *testing.T) {
	cases := []struct {
		in, scheme, cred string
	}{
		{"Bearer abc", "bearer", "abc"},
		{"bearer   abc  ", "bearer", "abc"},
		{"BASIC dXNlcjpwYXNz", "basic", "dXNlcjpwYXNz"},
		{"Bearer", "", ""},
		{"Bearer ", "", ""},
		{"", "", ""},
		{" abc", "", ""},
		{"Digest a b c", "digest", "a b c"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			s, c := parseAuthorization(tc.in)
			require.Equal(t, tc.scheme, s)
			require.Equal(t, tc.cred, c)
		})
	}
}

func TestParseBasic(t *testing.T) {
	cases := []struct {
		name, in, user, pass string
		ok                   bool
	}{
		{"padded", base64.StdEncoding.EncodeToString([]byte("KEY:TOKEN")), "KEY", "TOKEN", true},
		{"unpadded", base64.RawStdEncoding.EncodeToString([]byte("ab:c")), "ab", "c", true},
		{"colon in password", base64.StdEncoding.EncodeToString([]byte("u:p:q")), "u", "p:q", true},
		{"no colon", base64.StdEncoding.EncodeToString([]byte("user")), "", "", false},
		{"not base64", "!!!", "", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, p, ok := parseBasic(tc.in)
			require.Equal(t, tc.ok, ok)
			if ok {
				require.Equal(t, tc.user, u)
				require.Equal(t, tc.pass, p)
			}
		})
	}
}

func TestRedactPath(t *testing.T) {
	cases := map[string]string{
		"/media/plivo/s3cr3t-s3cr3t-s3cr3t": "/media/plivo/<secret>",
		"/media/s/s3cr3t-s3cr3t-s3cr3t":     "/media/s/<secret>",
		"/instructions/vobiz/abc":           "/instructions/vobiz/<secret>",
		"/callbacks/plivo/abc/extra":        "/callbacks/plivo/<secret>/extra",
		"/media/twilio":                     "/media/twilio",
		"/api/calls/abc":                    "/api/calls/abc",
	}
	for in, want := range cases {
		t.Run(in, func(t *testing.T) {
			require.Equal(t, want, redactPath(in))
		})
	}
}

// TestCheckMedia covers the decision table of checkMedia without sockets;
// the end-to-end tests in cmd/bridge dial real ones.
func TestCheckMedia(t *testing.T) {
	auth := Auth{
		TwilioAuthToken: "twilio-token", BearerToken: "shared-bearer-token",
		PathSecret:         "shared-path-secret",
		ProviderPathSecret: map[provider.Name]string{provider.Plivo: "plivo-only-secret"},
		ProviderBearer:     map[provider.Name]string{provider.SignalWire: "signalwire-only-token"},
		ExotelUser:         "KEY", ExotelPassword: "TOKEN",
	}
	sign := func(u string) string {
		m := hmac.New(sha1.New, []byte("twilio-token"))
		m.Write([]byte(u))
		return base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	cases := []struct {
		name, path, secret string
		p                  provider.Name
		hdr                map[string]string
		status             int
		scheme             string
		bound              provider.Name
	}{
		{"nothing", "/media/twilio", "", provider.Twilio, nil, 401, SchemeNone, ""},
		{"twilio signature", "/media/twilio", "", provider.Twilio, map[string]string{"X-Twilio-Signature": sign("wss://bridge.example/media/twilio")}, 0, SchemeTwilio, provider.Twilio},
		{"twilio signature with :443", "/media/twilio", "", provider.Twilio, map[string]string{"X-Twilio-Signature": sign("wss://bridge.example:443/media/twilio")}, 0, SchemeTwilio, provider.Twilio},
		{"twilio signature over https", "/media/twilio", "", provider.Twilio, map[string]string{"X-Twilio-Signature": sign("https://bridge.example/media/twilio")}, 403, SchemeTwilio, ""},
		{"twilio signature on auto route binds", "/media", "", "", map[string]string{"X-Twilio-Signature": sign("wss://bridge.example/media")}, 0, SchemeTwilio, provider.Twilio},
		{"bearer", "/media/signalwire", "", provider.SignalWire, map[string]string{"Authorization": "Bearer shared-bearer-token"}, 0, SchemeBearer, ""},
		{"provider bearer", "/media/signalwire", "", provider.SignalWire, map[string]string{"Authorization": "Bearer signalwire-only-token"}, 0, SchemeBearer, provider.SignalWire},
		{"provider bearer for another provider", "/media/telnyx", "", provider.Telnyx, map[string]string{"Authorization": "Bearer signalwire-only-token"}, 403, SchemeBearer, ""},
		{"wrong bearer", "/media/signalwire", "", provider.SignalWire, map[string]string{"Authorization": "Bearer nope"}, 403, SchemeBearer, ""},
		{"path secret", "/media/vobiz/x", "shared-path-secret", provider.Vobiz, nil, 0, SchemePath, ""},
		{"provider path secret", "/media/plivo/x", "plivo-only-secret", provider.Plivo, nil, 0, SchemePath, provider.Plivo},
		{"provider path secret on auto route binds", "/media/s/x", "plivo-only-secret", "", nil, 0, SchemePath, provider.Plivo},
		{"provider path secret elsewhere", "/media/vobiz/x", "plivo-only-secret", provider.Vobiz, nil, 403, SchemePath, ""},
		{"wrong secret wins over no header", "/media/vobiz/x", "nope", provider.Vobiz, nil, 403, SchemePath, ""},
		{"basic", "/media/exotel", "", provider.Exotel, map[string]string{"Authorization": basic("KEY", "TOKEN")}, 0, SchemeBasic, provider.Exotel},
		{"basic wrong password", "/media/exotel", "", provider.Exotel, map[string]string{"Authorization": basic("KEY", "nope")}, 403, SchemeBasic, ""},
		{"basic for another provider", "/media/twilio", "", provider.Twilio, map[string]string{"Authorization": basic("KEY", "TOKEN")}, 403, SchemeBasic, ""},
		{"a valid credential beside a wrong one", "/media/plivo/x", "shared-path-secret", provider.Plivo, map[string]string{"Authorization": "Bearer nope"}, 0, SchemePath, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{cfg: Config{Auth: auth, PublicURL: "https://bridge.example"}}
			app := fiber.New()
			var cred credential
			var aerr *authError
			app.Get("/*", func(c *fiber.Ctx) error {
				cred, aerr = s.checkMedia(c, tc.p, tc.secret)
				return nil
			})
			req := httptest.NewRequest("GET", tc.path, nil)
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			_, err := app.Test(req)
			require.NoError(t, err)
			if tc.status != 0 {
				require.NotNil(t, aerr)
				require.Equal(t, tc.status, aerr.status, aerr.msg)
				require.Equal(t, tc.scheme, aerr.scheme)
				require.NotContains(t, aerr.msg, "secret-", "no secret in a refusal")
				return
			}
			require.Nil(t, aerr)
			require.Equal(t, tc.scheme, cred.scheme)
			require.Equal(t, tc.bound, cred.bound)
		})
	}
}

func TestCheckMediaOpen(t *testing.T) {
	s := &Server{}
	app := fiber.New()
	var aerr *authError
	var cred credential
	app.Get("/*", func(c *fiber.Ctx) error {
		cred, aerr = s.checkMedia(c, "", c.Query("secret"))
		return nil
	})
	_, err := app.Test(httptest.NewRequest("GET", "/media", nil))
	require.NoError(t, err)
	require.Nil(t, aerr)
	require.Equal(t, "open", cred.scheme)
	_, err = app.Test(httptest.NewRequest("GET", "/media/s/x?secret=abc", nil))
	require.NoError(t, err)
	require.NotNil(t, aerr)
	require.Equal(t, fiber.StatusNotFound, aerr.status)
}

func TestSignalWireJSONSignature(t *testing.T) {
	const key = "PSK_signing_key"
	body := `{"event_type":"calling.call.stream","params":{"call_id":"c1","state":"streaming"}}`
	m := hmac.New(sha1.New, []byte(key))
	m.Write([]byte("https://bridge.example/callbacks/signalwire" + body))
	good := hex.EncodeToString(m.Sum(nil))
	s := &Server{cfg: Config{PublicURL: "https://bridge.example"}}
	app := fiber.New()
	var ok bool
	app.Post("/*", func(c *fiber.Ctx) error {
		ok = s.signalWireSignatureOK(c, key, c.Get("X-SignalWire-Signature"), nil)
		return nil
	})
	for _, tc := range []struct {
		sig  string
		body string
		want bool
	}{{good, body, true}, {good, strings.Replace(body, "c1", "c2", 1), false}, {"00" + good[2:], body, false}} {
		req := httptest.NewRequest("POST", "/callbacks/signalwire", strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-SignalWire-Signature", tc.sig)
		_, err := app.Test(req)
		require.NoError(t, err)
		require.Equal(t, tc.want, ok)
	}
}

// FuzzParseAuthorization: any header splits without panicking into a
// lower-case scheme and trimmed, non-empty credentials, or into nothing;
// Basic credentials decode or are refused.
func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{"Bearer abc", "Basic " + base64.StdEncoding.EncodeToString([]byte("KEY:TOKEN")), "basic ", "", " ", "Bearer\tx", "Basic ###", "Basic Og==", "x y z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		scheme, cred := parseAuthorization(h)
		if scheme == "" {
			require.Empty(t, cred)
			return
		}
		require.Equal(t, strings.ToLower(scheme), scheme)
		require.NotContains(t, scheme, " ")
		require.NotEmpty(t, cred)
		require.Equal(t, strings.TrimSpace(cred), cred)
		if scheme == "basic" {
			if u, p, ok := parseBasic(cred); ok {
				require.False(t, strings.Contains(u, ":"), "the user ends at the first colon")
				_ = p
			}
		}
	})
}
