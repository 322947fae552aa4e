package web

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/callcaptions/bridge/bridge/provider"
)

// TestMalformedRequestHeaders sends headers a client controls, malformed,
// as raw bytes to a real listener: stream instructions are built from the
// request's scheme and host when no public URL is set, so a Host,
// X-Forwarded-Host or X-Forwarded-Proto that is not one is a 400, and a
// form or JSON body that does not parse is a 400, never a panic or a URL
// built from garbage. The server answers the next request either way.
func TestMalformedRequestHeaders(t *testing.T) {
	const secret = "instr-secret-0123456789"
	app, _, _ := securityApp(t, Config{APIToken: "tok", Auth: Auth{
		ExotelUser: "ex", ExotelPassword: "pw", PathSecret: secret,
		ProviderPathSecret: map[provider.Name]string{provider.Twilio: secret},
	}})
	addr := listen(t, app)
	get := func(path, headers string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: bridge.test\r\n" + headers + "Connection: close\r\n\r\n"
	}
	post := func(path, ctype, body string) string {
		return "POST " + path + " HTTP/1.1\r\nHost: bridge.test\r\nContent-Type: " + ctype + "\r\nContent-Length: " +
			strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n" + body
	}
	exotel := "/instructions/exotel/" + secret
	twilio := "/instructions/twilio/" + secret
	for _, tc := range []struct {
		name string
		raw  string
		want int
	}{
		{"exotel X-Forwarded-Host [", get(exotel, "X-Forwarded-Host: [\r\n"), http.StatusBadRequest},
		{"exotel X-Forwarded-Host ]:80", get(exotel, "X-Forwarded-Host: ]:80\r\n"), http.StatusBadRequest},
		{"exotel X-Forwarded-Host with a space", get(exotel, "X-Forwarded-Host: a b\r\n"), http.StatusBadRequest},
		{"exotel X-Forwarded-Host with a path", get(exotel, "X-Forwarded-Host: evil.test/x\r\n"), http.StatusBadRequest},
		{"exotel X-Forwarded-Host with user info", get(exotel, "X-Forwarded-Host: user@evil.test\r\n"), http.StatusBadRequest},
		{"exotel X-Forwarded-Host percent", get(exotel, "X-Forwarded-Host: %zz\r\n"), http.StatusBadRequest},
		{"exotel X-Forwarded-Proto javascript", get(exotel, "X-Forwarded-Proto: javascript\r\n"), http.StatusBadRequest},
		{"exotel X-Forwarded-Proto with a space", get(exotel, "X-Forwarded-Proto: a b\r\n"), http.StatusBadRequest},
		{"twilio X-Forwarded-Host [", get(twilio, "X-Forwarded-Host: [\r\n"), http.StatusBadRequest},
		{"twilio X-Forwarded-Proto ftp", get(twilio, "X-Forwarded-Proto: ftp\r\n"), http.StatusBadRequest},
		{"twilio malformed form body", post(twilio, "application/x-www-form-urlencoded", "From=%zz"), http.StatusBadRequest},
		{"swml malformed JSON body", post("/instructions/swml/"+secret, "application/json", `{"call":`), http.StatusBadRequest},
		{"callback malformed form body", post("/callbacks/twilio/"+secret, "application/x-www-form-urlencoded", "CallSid=%zz"), http.StatusBadRequest},
		{"exotel behind a proxy", get(exotel, "X-Forwarded-Host: bridge.example:8443\r\nX-Forwarded-Proto: https\r\n"), http.StatusOK},
		{"exotel IPv6 host", get(exotel, "X-Forwarded-Host: [::1]:8080\r\n"), http.StatusOK},
		{"twilio plain", get(twilio, ""), http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := rawRequest(t, addr, tc.raw)
			require.Equal(t, tc.want, status, body)
			if status == http.StatusBadRequest {
				require.Regexp(t, `^\{"error":".+"\}$`, body)
			}
			status, _ = rawRequest(t, addr, get("/healthz", ""))
			require.Equal(t, http.StatusOK, status, "the server stopped serving")
		})
	}
}
